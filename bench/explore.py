"""``hardyt explore`` on the bundled ViT: the front, the picks within 0.3 and 1.0 points, 1 vs 2 Dask workers.

    .venv/bin/python bench/explore.py                       # prints the table, writes
                                                            # bench/results/explore.{json,md,png}
    .venv/bin/python bench/explore.py --synth-budget 8 --val-size 500 --calib-size 256 --steps 50 --beam 2
                                                            # quicker (what a busy 2-core machine managed)

One run of the search (``hardyt.scripts.cmd_explore.explore``: convert once,
every candidate core costed, beam search on the validation split), then each
budget's pick measured once on the test split. Synthesis runs with a fresh
cache, so its wall time is that of ``--synth-budget`` real runs on one local
Dask worker; then the same runs again, fresh cache, on two workers. The
picks' converted directories go to ``--work`` (default ``out/bench-explore``).
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hardyt.hw.costs import layer_costs
from hardyt.hw.sweep import dask_client
from hardyt.quant.files import atomic_write_text, save_json_atomic
from hardyt.scripts import cmd_explore

OUT = Path(__file__).parent / "results"
BUDGETS = (0.3, 1.0)


def _explore_args(a) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd_explore.add_parser(parser.add_subparsers())
    argv = ["explore", "--max-drop", str(BUDGETS[-1]), "--target", "ecp5", "--synth-budget", str(a.synth_budget),
            "--val-size", str(a.val_size), "--calib-size", str(a.calib_size), "--beam", str(a.beam), "--cache", str(a.cache), "--workers", "1", "--out", str(a.work)]
    if a.steps is not None:
        argv += ["--steps", str(a.steps)]
    return parser.parse_args(argv)


def _row(name: str, p: dict, ref: dict) -> str:
    ratio = p["lut_ff"] / ref["lut_ff"]
    test = f"{100 * p['test_accuracy']:.2f}" if "test_accuracy" in p else "—"
    return (f"| {name} | {100 * p['accuracy']:.2f} | {test} | {p['lut']} | {p['ff']} | {p['dsp']} | {p['bram']} | "
            f"{p['fmax_mhz']:.0f} | {ratio:.2f} |")


def table(results: dict, timing: dict) -> str:
    first = results[BUDGETS[0]]
    base = first["baselines"]
    ln = base["all_layernorm"]
    lines = ["| configuration | val top-1 % | test top-1 % | LUT | FF | DSP | BRAM | Fmax MHz | LUT+FF / LN |",
             "|---|---|---|---|---|---|---|---|---|",
             _row("all LayerNorm", ln, ln), _row("all DyT 8-bit LUT", base["all_dyt_8bit"], ln)]
    lines += [_row(f"pick within {b} pt", results[b]["pick"], ln) for b in BUDGETS]
    lines += ["", "Front (validation):", "", "| LUT+FF | val top-1 % | DSP | BRAM | Fmax MHz |", "|---|---|---|---|---|"]
    lines += [f"| {p['lut_ff']} | {100 * p['accuracy']:.2f} | {p['dsp']} | {p['bram']} | {p['fmax_mhz']:.0f} |"
              for p in first["front"]]
    lines += ["", "| synthesis of the same runs (fresh cache) | wall time (s) |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timing.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth-budget", type=int, default=16, help="synthesis runs (default 16)")
    ap.add_argument("--val-size", type=int, default=2000, help="validation images (default 2000)")
    ap.add_argument("--calib-size", type=int, default=1024, help="calibration images (default 1024)")
    ap.add_argument("--beam", type=int, default=3, help="beam width (default 3)")
    ap.add_argument("--steps", type=int, help="reconstruction steps (default: the library's)")
    ap.add_argument("--work", type=Path, default=Path("out/bench-explore"), help="picks' converted directories")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    caches = [Path(tempfile.mkdtemp(prefix="hardyt-bench-explore-")) for _ in range(2)]
    try:
        a.cache = caches[0]
        args = _explore_args(a)
        e = cmd_explore.explore(args)
        results = {}
        for b in BUDGETS:
            results[b] = cmd_explore.finish(e, b)
            cmd_explore.write(a.work / f"drop-{b}", e, results[b])
        t1 = time.perf_counter()
        with dask_client(workers=2) as client:
            again = layer_costs(client, e["dicts"], "ecp5", caches[1], budget=args.synth_budget)
        timing = {"1 worker": e["seconds"]["synthesis"], "2 workers": time.perf_counter() - t1}
    finally:
        for c in caches:
            shutil.rmtree(c, ignore_errors=True)
    same = all(again["costs"][k] == v for k, v in e["hw"]["costs"].items())
    text = table(results, timing)
    print(text)
    meta = {"command": "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])]),
            "machine": platform.platform(), "python": platform.python_version(),
            "seconds": round(time.perf_counter() - t0, 1), "explore_seconds": e["seconds"]}
    OUT.mkdir(exist_ok=True)
    save_json_atomic(OUT / "explore.json", {"meta": meta, "timing": timing, "two_workers_same_costs": same,
                                            "results": {str(b): r for b, r in results.items()}})
    shutil.copyfile(a.work / f"drop-{BUDGETS[-1]}" / "front.png", OUT / "explore.png")
    r = results[BUDGETS[0]]
    syn = r["synthesis"]
    err = syn["model_error"]["lut_ff"]
    md = ["# hardyt explore on the bundled ViT (ECP5)", "", f"`{meta['command']}` on {meta['machine']}, "
          f"{meta['seconds']:.0f} s in all (calibration {e['seconds']['calibration']} s, search "
          f"{e['seconds']['search']} s). {r['splits']['validation']} validation images and {r['splits']['test']} "
          f"test images, disjoint halves of the test split; {r['splits']['calibration']} training images calibrate. "
          f"Lanes: the default (8). {syn['cores']} candidate cores, {syn['runs']} synthesized, {syn['estimated']} "
          f"from the cost model (leave-one-out LUT+FF error on the runs: "
          + (f"mean {err['mean_abs_pct']} %, max {err['max_abs_pct']} %" if err else "not measured")
          + f"). Beam {r['search']['beam']}: {r['search']['measured']} configurations measured of "
          f"{r['search']['space']:.3g}. Two workers gave the same costs: {same}.", "",
          "![front](explore.png)", "", text, "",
          "The machine's 2 cores are shared with other jobs: the 2-worker time is what it measured here.", ""]
    atomic_write_text(OUT / "explore.md", "\n".join(md))
    print(json.dumps(timing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
