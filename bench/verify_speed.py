"""Verification speed: elements checked bit-exact per second, per simulator and mode.

    .venv/bin/python bench/verify_speed.py      # prints the table, writes bench/results/verify_speed.{json,md}

One core (pwl tanh, per-channel affine, C=192, P=8, 8-bit in and out, seed 0)
is emitted once, then simulated with :func:`hardyt.sim.runner.run_sim` (the
code behind ``hardyt sim``) on Icarus and Verilator, in cocotb mode (Python
drivers, monitor and scoreboard: all seven tests) and bulk mode (stimulus and
expected values from memory files, checked in HDL; random idle and
backpressure on, plus a full-rate throughput run). "wall" includes the
build, writing stimulus and computing the expected values with the golden
model; "sim" is the simulator run alone; CPU is this process plus its
children. The "cache" column says what the build started from: ``empty``
(compile the design and, for Verilator, its runtime library, ~19 s of CPU),
``runtime`` (Verilator's runtime objects cached by :mod:`hardyt.sim.objcache`,
the design compiled: any new core after the first one on a machine) or
``design`` (the same Verilog built before: re-verifying new ``.mem`` contents,
e.g. new weights, needs no rebuild). Every row must be bit-exact (0
mismatches) or the script exits 1.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from hardyt.hw import emit, random_dyt_spec
from hardyt.quant.files import atomic_write_text
from hardyt.sim.runner import run_sim

OUT = Path(__file__).parent / "results"
CORE = {"channels": 192, "lanes": 8, "in_bits": 8, "out_bits": 8, "tanh": "pwl", "affine": "channel"}
# (simulator, mode, vectors, cache): cocotb mode's cost is per cycle in Python, bulk mode's is the simulator's.
BIG = 1_000_000
RUNS = [("icarus", "cocotb", 10_000, "empty"), ("verilator", "cocotb", 20_000, "empty"),
        ("icarus", "bulk", 50_000, "empty"), ("verilator", "bulk", BIG, "empty"),
        ("verilator", "bulk", BIG, "runtime"), ("verilator", "bulk", BIG, "design")]
TARGET = {"elements": 1_000_000, "wall_s": 60.0}


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def measure(core: Path, simulator: str, mode: str, vectors: int, cache: Path, state: str) -> dict:
    """One run; ``cache`` must already be in the ``state`` the row claims."""
    c0, t0 = _cpu(), time.perf_counter()
    r = run_sim(core, simulator=simulator, mode=mode, vectors=vectors, cache=cache)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    return {"simulator": simulator, "mode": mode, "cache": state, "vectors": vectors, "elements": r["elements"],
            "mismatches": r["mismatches"], "failed_tests": r["failed"], "bit_exact": r["ok"], "cycles": r["cycles"],
            "beats_per_cycle": r["beats_per_cycle"], "latency": r["latency"], "manifest_latency": r["manifest_latency"],
            "build_s": r["build_seconds"], "sim_s": r["sim_seconds"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "elements_per_s_wall": round(r["elements"] / wall), "elements_per_s_sim": round(r["elements"] / r["sim_seconds"])}


def table(rows: list[dict]) -> str:
    head = ("| simulator | mode | cache | elements | mismatches | build s | sim s | wall s (incl. build) | CPU s "
            "| elements/s (wall) | elements/s (sim) |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    return head + "".join(
        f"| {r['simulator']} | {r['mode']} | {r['cache']} | {r['elements']:,} | {r['mismatches']} | {r['build_s']:.1f} | "
        f"{r['sim_s']:.1f} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['elements_per_s_wall']:,} | "
        f"{r['elements_per_s_sim']:,} |\n" for r in rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bulk-vectors", type=int, default=BIG, help=f"Verilator bulk elements (default {BIG:,})")
    args = p.parse_args(argv)
    runs = [(s, m, args.bulk_vectors if v == BIG else v, c) for s, m, v, c in RUNS]
    with tempfile.TemporaryDirectory(prefix="hardyt-verify-speed-") as tmp:
        work = Path(tmp)
        load0 = round(os.getloadavg()[0], 2)
        t0 = time.perf_counter()
        spec = random_dyt_spec(CORE["channels"], CORE["lanes"], CORE["in_bits"], CORE["out_bits"],
                               tanh=CORE["tanh"], affine=CORE["affine"], seed=0)
        core = emit(spec, work / "core", "dyt").parent
        emit_s = time.perf_counter() - t0
        rows = []
        for simulator, mode, vectors, state in runs:
            print(f"{simulator} {mode}, cache {state}: {vectors:,} vectors ...", flush=True)
            cache = work / f"cache-{simulator}-{mode}"
            if state == "empty":
                shutil.rmtree(cache, ignore_errors=True)
            elif state == "runtime":
                shutil.rmtree(cache / "build")  # keep objcache/: Verilator's runtime objects
            rows.append(measure(core, simulator, mode, vectors, cache, state))
            print(f"  {rows[-1]['elements']:,} elements, {rows[-1]['mismatches']} mismatches, "
                  f"{rows[-1]['wall_s']} s wall", flush=True)
    text = table(rows)
    print(text)
    verdicts, met = [], {}
    for r in rows:
        if r["simulator"] == "verilator" and r["mode"] == "bulk":
            met[r["cache"]] = ok = (r["bit_exact"] and r["elements"] >= TARGET["elements"]
                                    and r["wall_s"] < TARGET["wall_s"])
            verdicts.append(f"Verilator bulk, cache {r['cache']}: {r['elements']:,} elements bit-exact in "
                            f"{r['wall_s']:.1f} s wall ({r['cpu_s']:.1f} s CPU) including the build "
                            f"(target >= {TARGET['elements']:,} in < {TARGET['wall_s']:.0f} s): "
                            f"{'met' if ok else 'NOT met'}")
    print("\n".join(verdicts))
    cmd = shlex.join(["python", "bench/verify_speed.py", *(sys.argv[1:] if argv is None else argv)])
    meta = {"command": cmd, "core": CORE, "seed": 0, "emit_s": round(emit_s, 2), "cpus": os.cpu_count(),
            "load_avg_1min": {"start": load0, "end": round(os.getloadavg()[0], 2)}, "python": sys.version.split()[0],
            "machine": platform.machine(), "target": TARGET, "target_met": met}
    OUT.mkdir(exist_ok=True)
    atomic_write_text(OUT / "verify_speed.json", json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    c = CORE
    atomic_write_text(OUT / "verify_speed.md", (
        f"# Verification speed\n\nCommand: `{cmd}`\n\nCore: {c['tanh']} tanh, {c['affine']} affine, C={c['channels']}, "
        f"P={c['lanes']}, {c['in_bits']}-bit in / {c['out_bits']}-bit out. Wall time includes the build from "
        f"the cache state given (see the script's docstring). {os.cpu_count()} CPUs, 1-minute load average "
        f"{load0} at the start, {meta['load_avg_1min']['end']} at the end (the machine is shared with other jobs).\n\n{text}\n" + "\n\n".join(verdicts) + "\n"))
    return 0 if all(r["bit_exact"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
