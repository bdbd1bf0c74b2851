"""The prove step: emitted cores → SymbiYosys proofs of their stream properties (one Dask job per core).

Each core's results are also written to ``prove.json`` beside its manifest
(:func:`hardyt.hw.formal.prove.prove_core`).
"""
from __future__ import annotations

from pathlib import Path

from .emitted import CoreResults, core_dirs
from .options import ProveConfig

__all__ = ["ProveResults", "prove", "prove_one", "report_lines", "PROPERTIES"]


def __getattr__(name):
    if name == "PROPERTIES":   # what the command line offers, without importing amaranth at parse time
        from hardyt.hw.formal.prove import PROPERTIES
        return PROPERTIES
    raise AttributeError(name)


class ProveResults(CoreResults):
    """Per core directory: the ``prove.json`` contents (``ok``, ``properties``, ...), or an error."""


def prove_one(core: Path, config: ProveConfig) -> dict:
    """Prove one emitted core (a Dask job of its own when there are several)."""
    from hardyt.hw.formal.prove import prove_core

    return prove_core(core, properties=config.property, timeout=config.timeout, keep=config.keep)


def prove(root, config: ProveConfig) -> ProveResults:
    """Prove every core under ``root`` (one core, an engine, or one directory per layer)."""
    from hardyt.hw.tools.sweep import dask_client, run_jobs

    root = Path(root)
    cores = core_dirs(root)
    if len(cores) == 1:
        return ProveResults(root, {str(cores[0]): prove_one(cores[0], config)})
    jobs = {str(core): (prove_one, (core, config)) for core in cores}
    with dask_client(config.scheduler, config.workers) as client:
        results, errors = run_jobs(client, jobs, desc="prove")
    return ProveResults(root, {str(c): results[str(c)] for c in cores if str(c) in results},
                        {str(c): errors[str(c)] for c in cores if str(c) in errors})


def report_lines(name: str, r: dict) -> list[str]:
    """What ``hardyt prove`` prints for one core."""
    verdict = "PROVEN" if r["ok"] else "FAIL"
    lines = [f"{name}: {verdict} ({r['kind']}, latency {r['latency']}, {r['beats_per_token']} beats/token, "
             f"{r['seconds']} s)"]
    for p in r["properties"]:
        bound = "unbounded (k-induction, k = {depth})" if p["mode"] == "prove" else "bounded, {depth} cycles"
        lines.append(f"  {p['property']}: {p['result']}, {bound.format(depth=p['depth'])}, {p['seconds']} s "
                     f"(task {p['task']})")
        lines += [f"    {key.replace('_', ' ')}: {p[key]}" for key in ("bounded_because", "assertion", "trace", "log")
                  if p.get(key)]
    return lines
