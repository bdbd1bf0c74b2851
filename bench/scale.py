"""Conversion cost on a real size: a DeiT-Tiny-size timm ViT, 1 and N processes (torch.distributed, gloo).

    .venv/bin/python bench/scale.py                    # 256 images, 100 steps, 1 and 2 processes
    .venv/bin/python bench/scale.py --steps 20 --procs 1 2

The model: the timm-layout ``VisionTransformer`` of hardyt.quant.zoo.vit with DeiT-Tiny's shape (12 blocks,
192 wide, 3 heads, 224x224 input, 16x16 patches, 1000 classes, 5.7 M
parameters), random weights, random images (cost does not depend on the
values); the bundled ViT (0.3 M parameters) under the same settings, for
how time grows with size. Each run is the default conversion (every weight
adapts) with ``steps`` reconstruction steps on batches of ``--batch``
images, one torch thread per process, processes started on 127.0.0.1.
Reports the conversion time (rank 0) and the peak resident memory of the
largest rank. Writes bench/results/scale.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch.multiprocessing as mp

OUT = Path(__file__).parent / "results"
DEIT_TINY = dict(img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=192, depth=12, num_heads=3)


def _model(kind: str):
    import torch

    from hardyt.quant.zoo.load import default_model_path, load_vit
    from hardyt.quant.zoo.vit import VisionTransformer
    if kind == "bundled":
        return load_vit(default_model_path()).eval(), (1, 28, 28)
    torch.manual_seed(0)
    return VisionTransformer(**DEIT_TINY).eval(), (3, 224, 224)


def _rank(rank: int, world: int, port: int, job: dict, out) -> None:
    import torch
    import torch.distributed as dist

    from hardyt.quant.conversion.pipeline import convert

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(minutes=30))
    try:
        model, shape = _model(job["model"])
        g = torch.Generator().manual_seed(0)
        images = torch.randn(job["images"], *shape, generator=g)
        t0 = time.perf_counter()
        _, report = convert(model, list(images.split(job["batch"])), steps=job["steps"],
                            fit_samples=job["images"])
        seconds = time.perf_counter() - t0
        out.put({"rank": rank, "seconds": seconds, "params": sum(p.numel() for p in model.parameters()),
                 "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                 "world_size": report["world_size"]})
    finally:
        if world > 1:
            dist.destroy_process_group()


def measure(job: dict, world: int) -> dict:
    """Run one conversion on ``world`` processes; rank 0's time, the largest rank's peak memory."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_rank, args=(r, world, port, job, out)) for r in range(world)]
    for p in procs:
        p.start()
    results = [out.get(timeout=4 * 3600) for _ in procs]
    for p in procs:
        p.join()
    rank0 = next(r for r in results if r["rank"] == 0)
    return {**job, "world_size": world, "seconds": rank0["seconds"], "params": rank0["params"],
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    cmd = "python bench/scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows = []
    for model in ("bundled", "deit-tiny"):
        for world in args.procs:
            job = {"model": model, "images": args.images, "steps": args.steps, "batch": args.batch}
            rows.append(measure(job, world))
            r = rows[-1]
            print(f"{model}: {world} process(es): {r['seconds']:.1f} s, {r['peak_rss_mb']:.0f} MB", flush=True)
    base = {r["world_size"]: r["seconds"] for r in rows if r["model"] == "bundled"}
    table = ["| model | parameters | processes | conversion time (s) | per step (s) | vs bundled | peak RSS per rank (MB) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['model']} | {r['params'] / 1e6:.2f} M | {r['world_size']} | {r['seconds']:.1f} "
                     f"| {r['seconds'] / r['steps']:.2f} | {r['seconds'] / base[r['world_size']]:.1f}x "
                     f"| {r['peak_rss_mb']:.0f} |")
    text = "\n".join(table)
    print(text)
    meta = {"command": cmd, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count()}
    OUT.mkdir(exist_ok=True)
    from hardyt.quant.files import atomic_write_text
    atomic_write_text(OUT / "scale.json", json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    atomic_write_text(OUT / "scale.md", f"# Conversion cost by model size and processes\n\nCommand: `{cmd}`; "
                      f"{args.images} random images in batches of {args.batch}, {args.steps} reconstruction steps, "
                      "default options (every weight adapts), one torch thread per process, gloo on 127.0.0.1, "
                      f"{os.cpu_count()} CPU cores shared with other jobs.\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
