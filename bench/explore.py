"""``hardyt explore`` on a ViT: the front, the picks within 0.3, 0.5 and 1.0 points (each with its test accuracy,
never used to pick), against all-LayerNorm and all-DyT 8-bit; wall time and machine load.

    .venv/bin/python bench/explore.py                     # the bundled ViT, explore's defaults, 1 Dask worker
    .venv/bin/python bench/explore.py --workers 2
    .venv/bin/python bench/explore.py --checkpoint bench/models/vit_fmnist_d6w32.safetensors

One run of the search (``hardyt.flow.explore.explore``: the default
conversion and the chain of conversions keeping 1, 2 LayerNorms as Dask jobs,
every candidate core costed — one synthesis run per core structure, fresh
cache, the cost model for the rest —, each conversion's formats searched on
the validation split), then each budget's pick written as ``hardyt convert``
writes it and measured from that directory, on validation and once on test.
Writes ``bench/results/explore[-NAME].{json,md,png}``.
"""
from __future__ import annotations

import argparse
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hardyt.flow import explore as explore_step
from hardyt.flow.explore_report import layer_choice, model_error_text, search_text
from hardyt.flow.options import ExploreConfig, ModelSource
from hardyt.quant.files import atomic_write_text, save_json_atomic

OUT = Path(__file__).parent / "results"
BUDGETS = (0.3, 0.5, 1.0)


def _explore_config(a, cache) -> ExploreConfig:
    source = ModelSource(checkpoint=str(a.checkpoint) if a.checkpoint else None)
    if a.calib_size is not None:
        source.calib_size = a.calib_size
    given = {k: getattr(a, k) for k in ("steps", "val_size", "conversions", "measure") if getattr(a, k) is not None}
    return ExploreConfig(source=source, max_drop=BUDGETS[0], target="ecp5", cache=str(cache), workers=a.workers,
                         out=str(a.work), **given)


def _row(name: str, p: dict, ln: dict) -> str:
    test = f"{100 * p['test_accuracy']:.2f}" if "test_accuracy" in p else "—"
    rate = "—" if p.get("throughput_eps") is None else f"{p['throughput_eps'] / 1e9:.2f}"
    return (f"| {name} | {100 * p['accuracy']:.2f} | {test} | {p['lut']} | {p['ff']} | {p['lut_ff']} | "
            f"{p['lut_ff'] / ln['lut_ff']:.3f} | {p['dsp']} | {p['bram']} | {p['fmax_mhz']:.0f} | {rate} | "
            + " ".join(layer_choice(c) for c in p["layers"].values()) + " |")


def table(results: dict) -> str:
    first = results[BUDGETS[0]]
    base, ref = first["baselines"], first["reference"]
    ln = base["all_layernorm"]
    lines = [f"LayerNorm model: validation {100 * ref['validation_accuracy']:.2f} %, test "
             f"{100 * ref['test_accuracy']:.2f} %.", "",
             "| configuration | val top-1 % | test top-1 % | LUT | FF | LUT+FF | / LN | DSP | BRAM | Fmax MHz | "
             "Gelem/s | layers |", "|---" * 12 + "|",
             _row("all LayerNorm", ln, ln), _row("all DyT 8-bit LUT (`hardyt convert`)", base["all_dyt_8bit"], ln)]
    lines += [_row(f"pick within {b} pt", results[b]["pick"], ln) for b in BUDGETS]
    lines += ["", "Front (validation; every point a `hardyt convert` with its `--keep`/`--layer-formats`):", "",
              "| LUT+FF | / LN | val top-1 % | DSP | BRAM | Fmax MHz | kept | layers |", "|---" * 8 + "|"]
    for p in first["front"]:
        lines.append(f"| {p['lut_ff']} | {p['lut_ff'] / ln['lut_ff']:.3f} | {100 * p['accuracy']:.2f} | {p['dsp']} | "
                     f"{p['bram']} | {p['fmax_mhz']:.0f} | {len(p['kept'])} | "
                     + " ".join(layer_choice(c) for c in p["layers"].values()) + " |")
    return "\n".join(lines)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, help="a timm-format checkpoint (default: the bundled ViT)")
    ap.add_argument("--name", help="results file suffix (default: the checkpoint's stem, none for the bundled ViT)")
    ap.add_argument("--workers", type=int, default=1, help="local Dask workers (default 1)")
    for flag in ("steps", "calib-size", "val-size", "conversions", "measure"):
        ap.add_argument(f"--{flag}", type=int, help=f"explore's --{flag} (default: explore's)")
    ap.add_argument("--work", type=Path, default=Path("out/bench-explore"), help="picks' converted directories")
    a = ap.parse_args(argv)
    name = a.name if a.name is not None else (a.checkpoint.stem if a.checkpoint else "")
    load = {"before": _uptime()}
    t0 = time.perf_counter()
    cache = Path(tempfile.mkdtemp(prefix="hardyt-bench-explore-"))
    try:
        e = explore_step.explore(_explore_config(a, cache))
        results = {}
        for b in BUDGETS:
            result = explore_step.finish(e, b)
            explore_step.write(a.work / f"{name or 'bundled'}-drop-{b}", e, result)
            results[b] = result.to_dict()
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    wall = round(time.perf_counter() - t0, 1)
    load["after"] = _uptime()
    text = table(results)
    print(text)
    meta = {"command": "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])]),
            "machine": platform.platform(), "python": platform.python_version(), "load": load,
            "workers": a.workers, "seconds": wall, "explore_seconds": e["seconds"]}
    stem = "explore" + (f"-{name}" if name else "")
    OUT.mkdir(exist_ok=True)
    save_json_atomic(OUT / f"{stem}.json", {"meta": meta, "results": {str(b): r for b, r in results.items()}})
    shutil.copyfile(a.work / f"{name or 'bundled'}-drop-{BUDGETS[-1]}" / "front.png", OUT / f"{stem}.png")
    atomic_write_text(OUT / f"{stem}.md", render(meta, results, text, stem))
    return 0


def render(meta: dict, results: dict, text: str, stem: str) -> str:
    r = results[BUDGETS[0]]
    syn = r["synthesis"]
    return "\n".join([
        f"# hardyt explore on `{r['checkpoint']}` (ECP5)", "",
        f"`{meta['command']}` on {meta['machine']}, {meta['workers']} Dask worker(s): {meta['seconds']:.0f} s in all "
        f"(conversions {meta['explore_seconds']['conversions']} s, synthesis {meta['explore_seconds']['synthesis']} s, "
        f"search {meta['explore_seconds']['search']} s; the rest: writing and measuring the three picks). "
        f"{r['splits']['validation']} validation images decide, {r['splits']['test']} test images (disjoint, "
        f"from the test split) report; {r['splits']['calibration']} training images calibrate.", "",
        f"Machine load (`uptime`; the 2 cores are shared with other jobs): before `{meta['load']['before']}`, after "
        f"`{meta['load']['after']}`.", "",
        search_text(r["search"]) + f" Fmax floor: {r['fmax_floor_mhz']} MHz.", "",
        f"Synthesis: {syn['cores']} candidate cores of {syn['structures']} structures; {syn['runs']} synthesis runs, "
        f"{syn['estimated']} cores from the cost model, whose leave-one-out error on this run's synthesized DyT "
        f"cores is {model_error_text(syn['model_error'])}.", "",
        f"![front]({stem}.png)", "", text, ""])


if __name__ == "__main__":
    sys.exit(main())
