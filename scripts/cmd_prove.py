"""``hardyt prove``: formal proofs (SymbiYosys) of an emitted core's stream properties.

::

    hardyt prove DIR [--property NAME ...] [--timeout S] [--keep] [--scheduler tcp://HOST:PORT] [--workers N]

DIR is one directory written by ``hardyt rtl`` (a DyT core, a LayerNorm core
or a DyT engine) or a ``hardyt rtl`` output of a converted model (one
subdirectory per layer: each proven, a Dask job of its own). The properties
are bound to the Verilog as emitted (:mod:`hardyt.hw.formal_harness`); each
core's results go to ``prove.json`` beside its manifest. Exits 1 when a
property fails (the counterexample trace's path is printed) or is not
decided.
"""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.errors import HardytError

from .emitted import core_dirs
from .flags import add_sweep_flags


def add_parser(sub):
    from hardyt.hw.formal import PROPERTIES

    p = sub.add_parser("prove", help="prove an emitted core's AXI4-Stream, conservation and latency properties "
                                     "(SymbiYosys)",
                       description="Prove, with SymbiYosys on the emitted Verilog, the AXI4-Stream rules on "
                                   "m_axis, beat conservation, drain and latency of every core in DIR (and the "
                                   "engine's bank properties); write prove.json per core.")
    p.add_argument("dir", metavar="DIR", help="a `hardyt rtl` output: one core, or one subdirectory per layer")
    p.add_argument("--property", action="append", choices=sorted(PROPERTIES), metavar="NAME",
                   help=f"prove only this property (repeatable; default all of the core's: {', '.join(PROPERTIES)})")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per SymbiYosys task (default 600)")
    p.add_argument("--keep", action="store_true", help="keep every task's work directory (DIR/formal/)")
    add_sweep_flags(p)
    p.set_defaults(func=run)


def report_lines(name: str, r: dict) -> list[str]:
    """What ``hardyt prove`` prints for one core."""
    verdict = "PROVEN" if r["ok"] else "FAIL"
    lines = [f"{name}: {verdict} ({r['kind']}, latency {r['latency']}, {r['beats_per_token']} beats/token, "
             f"{r['seconds']} s)"]
    for p in r["properties"]:
        bound = "unbounded (k-induction, k = {depth})" if p["mode"] == "prove" else "bounded, {depth} cycles"
        lines.append(f"  {p['property']}: {p['result']}, {bound.format(depth=p['depth'])}, {p['seconds']} s "
                     f"(task {p['task']})")
        for key in ("assertion", "trace", "log"):
            if p.get(key):
                lines.append(f"    {key}: {p[key]}")
    return lines


def run(args) -> int:
    from hardyt.hw.formal import prove_core
    from hardyt.hw.sweep import dask_client, failure_error, run_jobs

    root = Path(args.dir)
    cores = core_dirs(root)
    kw = {"properties": args.property, "timeout": args.timeout, "keep": args.keep}
    if len(cores) == 1:
        results, errors = {str(cores[0]): prove_core(cores[0], **kw)}, {}
    else:
        jobs = {str(core): (_prove, (core, kw)) for core in cores}
        with dask_client(args.scheduler, args.workers) as client:
            results, errors = run_jobs(client, jobs, desc="prove")
    failed = []
    for core in cores:
        name = str(core)
        if name in errors:
            continue
        for line in report_lines(name, results[name]):
            print(line, flush=True)
        if not results[name]["ok"]:
            failed.append(core.name)
    if errors:
        raise failure_error(errors, len(cores), "proof")
    if failed:
        raise HardytError(f"{root}: a property failed or was not decided in {len(failed)} of {len(cores)} "
                          f"cores: {', '.join(failed)} (counterexample traces above)")
    return 0


def _prove(core, kw):
    from hardyt.hw.formal import prove_core
    return prove_core(core, **kw)
