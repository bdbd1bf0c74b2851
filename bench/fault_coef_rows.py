"""The coefficient-port rows of ``bench/faults.py``: fuzzed frames in Amaranth's simulator, in the HDL
harness (Verilator, every check in HDL) and in the engine's cocotb test."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzz_coef  # noqa: E402 - the Amaranth-simulator fuzz lives beside the tests
from fault_table import row as _row  # noqa: E402

__all__ = ["coef_frames", "coef_hdl", "coef_verilator"]


def coef_frames(n: int, seed: int, budget: float) -> list[dict]:
    """``n`` frames in chunks of 1000 (a simulation each), or as many as ``budget`` seconds allow."""
    totals = {"frames": 0, "elements": 0, "mismatches": 0, "violations": 0, "cycles": 0, "tokens": 0}
    by_kind, chunk, t0, k = {}, 1000, time.monotonic(), 0
    while totals["frames"] < n and time.monotonic() - t0 < budget:
        r = fuzz_coef.fuzz_engine(min(chunk, n - totals["frames"]), seed=seed + k)
        k += 1
        for key in totals:
            totals[key] += r[key]
        for kind, counts in r["by_kind"].items():
            for status, c in counts.items():
                by_kind.setdefault(kind, {}).setdefault(str(status), 0)
                by_kind[kind][str(status)] += c
        print(f"  coefficient frames: {totals['frames']} ({totals['cycles'] / (time.monotonic() - t0):.0f} "
              "cycles/s)", flush=True)
    took = time.monotonic() - t0
    short = "" if totals["frames"] >= n else f"STOPPED at the {budget:.0f} s budget, {n} asked; "
    return [_row("coefficient frames fuzzed while streaming (Amaranth sim)", totals["frames"],
                 totals["frames"] if totals["violations"] == 0 else 0, totals["mismatches"] + totals["violations"],
                 [], f"{short}{totals['tokens']} tokens, {totals['elements']} output elements bit-exact; "
                     f"{totals['cycles']} cycles in {took:.0f} s ({totals['cycles'] / took:.0f} cycles/s, "
                     f"{totals['frames'] / took:.1f} frames/s); statuses by kind {by_kind}") | {"by_kind": by_kind}]


def coef_hdl(n: int, seed: int, tmp: Path, simulator: str = "verilator") -> list[dict]:
    """``n`` frames in one simulation of ``sim/coef_fuzz_harness.v`` (every check in HDL)."""
    from hardyt.hw.emission.engine_emit import emit_engine
    from hardyt.sim.coef_fuzz_run import run_coef_fuzz

    t0 = time.monotonic()
    emit_engine(fuzz_coef.layer_specs(), tmp / "engine", "fuzz_engine")
    r = run_coef_fuzz(tmp / "engine", n, seed=seed, simulator=simulator, cache=tmp / "cache")
    c, took = r["counters"], time.monotonic() - t0
    swapped = r["disguised"].get("swapped beats", 0)
    return [_row(f"coefficient frames fuzzed while streaming, checked in HDL ({simulator})", r["frames"],
                 r["frames"] if r["ok"] else 0, r["lost"], [],
                 f"{r['tokens']} tokens, {r['elements']} output elements bit-exact, {r['keep_alive_frames']} "
                 f"valid frames more to let the last tokens through; {c['cycles']} cycles, build "
                 f"{r['build_seconds']:.0f} s, simulation {r['sim_seconds']:.0f} s, {took:.0f} s in all; violations "
                 f"{ {k: c[k] for k in ('status_bad', 'table_bad', 'start_bad', 'switch_bad', 'out_bad')} }; "
                 f"statuses by kind {r['by_kind']}; loaded without being a layer's frame: {r['disguised']} "
                 f"(resealed ones are self-consistent; {swapped} with two beats swapped passed the plain-sum "
                 "checksum: docs/hardware.md)") | {"by_kind": r["by_kind"], "disguised": r["disguised"],
                                                   "undetected_swapped_beats": swapped}]


def coef_verilator(n: int, seed: int, tmp: Path) -> list[dict]:
    t0 = time.monotonic()
    r = fuzz_coef.verilator_run(tmp, n, seed=seed % 1000 + 1)
    return [_row("coefficient frames fuzzed, emitted Verilog in Verilator (cocotb)", r["frames"],
                 r["frames"] if r["ok"] else 0, r["mismatches"], [],
                 f"{r['elements']} output elements bit-exact (tokens between groups of frames); build "
                 f"{r['build_seconds']} s, simulation {r['sim_seconds']} s, {time.monotonic() - t0:.0f} s in all"
                 + (f"; {r['report'][:3]}" if r["report"] else ""))]
