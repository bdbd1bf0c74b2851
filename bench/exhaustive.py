"""Every input of a 16-bit PWL DyT core at C = 768: 65,536 x 768 elements, on 1 and 2 Dask workers.

    python bench/exhaustive.py [--channels 768] [--in-bits 16] [--out DIR]

Emits the core (pwl tanh, 64 segments, channel affine, P = 1), then runs
:func:`hardyt.sim.exhaustive.run_exhaustive` (Verilator bulk mode, random
pauses on both sides, every output element compared in HDL) with a local Dask
cluster of 1 worker, then of 2. The Verilator build is shared (same Verilog,
same memory depth): the first run pays it. Writes
``bench/results/exhaustive.json`` and ``.md`` with the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.emission.emit import emit
from hardyt.hw.tools.sweep import dask_client
from hardyt.quant.files import atomic_write_text
from hardyt.sim.exhaustive import run_exhaustive

RESULTS = Path(__file__).with_name("results")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=768)
    ap.add_argument("--in-bits", type=int, default=16)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", default=str(RESULTS / "exhaustive"))
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hardyt-exhaustive-"))
    core = work / "core"
    emit(random_dyt_spec(args.channels, 1, args.in_bits, 8, tanh="pwl", affine="channel", segments=64, seed=3), core)
    rows = []
    for workers in args.workers:
        load = os.getloadavg()
        t0 = time.perf_counter()
        with dask_client(None, workers) as client:
            r = run_exhaustive(core, client=client, workers=workers, cache=work / "cache")
        rows.append({"workers": workers, "parts": r["parts"], "elements": r["elements"], "space": r["space"],
                     "mismatches": r["mismatches"], "ok": r["ok"], "wall_s": round(time.perf_counter() - t0, 1),
                     "part_s": r["part_seconds"], "load_before": [round(x, 2) for x in load],
                     "load_after": [round(x, 2) for x in os.getloadavg()]})
        print(json.dumps(rows[-1]), flush=True)
    doc = {"command": "python bench/exhaustive.py " + " ".join(sys.argv[1:]), "core": {
        "tanh": "pwl", "segments": 64, "affine": "channel", "channels": args.channels, "lanes": 1,
        "in_bits": args.in_bits, "out_bits": 8}, "simulator": "verilator (bulk mode, random pauses)",
        "cpus": os.cpu_count(), "machine": platform.machine(), "runs": rows}
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".json"), json.dumps(doc, indent=1) + "\n")
    lines = [f"# Exhaustive: every input of a {args.in_bits}-bit PWL DyT core, C = {args.channels}", "",
             f"`{doc['command']}` — {os.cpu_count()} CPUs; 1-minute load average before/after each run "
             "(the machine was shared).", "",
             "| Dask workers | parts | elements checked | of | mismatches | wall s | per part s (build + sim) | load before | load after |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['workers']} | {r['parts']} | {r['elements']:,} | {r['space']:,} | {r['mismatches']} | "
              f"{r['wall_s']} | {', '.join(map(str, r['part_s']))} | {r['load_before'][0]} | {r['load_after'][0]} |"
              for r in rows]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
