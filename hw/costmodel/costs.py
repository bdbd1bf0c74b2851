"""What a core costs: synthesis runs cached by content, and a cost model fitted to them.

:func:`synth_cached` emits a spec's core (under one fixed name: a layer's
name changes no gate), looks its report up in the synthesis cache
(:mod:`hardyt.hw.tools.synth_cache`: keyed by a hash of the emitted Verilog and
``.mem`` files, the target, the placement seed and the tool versions; a
stale or corrupted entry is re-run, never reused) and otherwise runs
:func:`hardyt.hw.tools.synth.synth` and stores the report. It is a plain function
of picklable arguments, so it runs as a Dask job (:mod:`hardyt.hw.tools.sweep`).

:func:`synthesis_plan` chooses which cores to synthesize (by default one of
each structure, :func:`~hardyt.hw.costmodel.cost_features.structure`), and
:func:`layer_costs` runs them as Dask jobs and costs every core: synthesized
(or found in the cache from an earlier run), or predicted by the
:class:`~hardyt.hw.costmodel.cost_model.CostModel` fitted to those runs, whose
leave-one-out error it reports.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from hardyt.quant.contract.spec_io import spec_from_dict
from hardyt.quant.errors import HardytError

from ..tools import synth_cache
from .cost_features import structure
from .cost_model import RESOURCES, CostModel, holdout_error

__all__ = ["CORE_NAME", "spec_key", "emitted_key", "cached_report", "synth_cached", "synthesis_plan", "layer_costs"]

CORE_NAME = "hardyt_core"   # every cached core is emitted under this name: equal contents, equal files


def spec_key(spec_dict: dict, target: str, seed: int = 1) -> str:
    """A spec's identity for one target and seed, its name left out: which specs are the same core.

    Not the cache key (:func:`emitted_key` is): the same spec may emit other
    Verilog once the generator changes.
    """
    content = {k: v for k, v in spec_dict.items() if k != "name"}
    text = json.dumps({"spec": content, "target": target, "seed": seed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _emit(spec_dict: dict, out_dir: Path) -> dict:
    from ..emission.emit import emit, load_manifest

    emit(spec_from_dict(spec_dict), out_dir, name=CORE_NAME)
    return load_manifest(out_dir)


def emitted_key(out_dir, target: str, seed: int = 1) -> str:
    """The synthesis cache key of the core emitted in ``out_dir`` (:func:`hardyt.hw.tools.synth_cache.content_key`)."""
    from ..emission.emit import load_manifest

    m = load_manifest(out_dir)
    return synth_cache.content_key(out_dir, [m["verilog"], *m["mems"]], target, seed)


def _lookup(spec_dict: dict, target: str, cache_dir, seed: int, synthesize: bool) -> dict | None:
    work = Path(tempfile.mkdtemp(prefix="hardyt-cost-"))
    try:
        _emit(spec_dict, work / "core")
        key, spec_id = emitted_key(work / "core", target, seed), spec_key(spec_dict, target, seed)
        found = synth_cache.load(cache_dir, key, spec_id)
        if found is not None:
            return found | {"cached": True, "key": key}
        if not synthesize:
            return None
        from ..tools.synth import synth

        report = synth(work / "core", target, progress=False, seed=seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    synth_cache.store(cache_dir, key, report)
    synth_cache.remember(cache_dir, spec_id, key)
    return report | {"cached": False, "key": key}


def cached_report(spec_dict: dict, target: str, cache_dir, seed: int = 1) -> dict | None:
    """The cached report of this spec's synthesis (its core emitted now, looked up by content), or ``None``."""
    return _lookup(spec_dict, target, cache_dir, seed, synthesize=False)


def synth_cached(spec_dict: dict, target: str, cache_dir, seed: int = 1) -> dict:
    """The synthesis report of a spec (a dict, as ``spec.to_dict()``), from the cache or from a fresh run.

    The result has ``cached`` (``True`` when no tool ran) and ``key`` (the content key).
    """
    return _lookup(spec_dict, target, cache_dir, seed, synthesize=True)


def synthesis_plan(specs: dict[str, dict], budget: int | str | None = None) -> list[str]:
    """Which of ``specs`` (``{label: spec dict}``, distinct contents) to synthesize.

    ``budget``: ``None`` (the default) one core of each structure;
    ``"all"`` every core; ``N``: at most N runs, one core of each structure
    first (LayerNorm cores before DyT cores: with no table, their one run is
    exact), then a second of each, and so on. With one run per structure,
    every core not synthesized differs from a synthesized one in ROM contents
    only.

    >>> s = lambda c, b: {"hardyt": "layernorm", "channels": c, "lanes": 1, "in_bits": b, "out_bits": b}
    >>> synthesis_plan({"a": s(4, 8), "b": s(4, 8), "c": s(4, 6)})
    ['a', 'c']
    >>> synthesis_plan({"a": s(4, 8), "b": s(4, 8), "c": s(4, 6)}, 1), synthesis_plan({"a": s(4, 8), "b": s(4, 8)}, "all")
    (['a'], ['a', 'b'])
    """
    found: dict[tuple, list[str]] = {}
    for label in sorted(specs):
        found.setdefault(structure(specs[label]), []).append(label)
    groups = sorted(found.values(), key=lambda g: structure(specs[g[0]])[0] != "layernorm")   # stable
    if budget is None:
        return [g[0] for g in groups]
    order = [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]
    return order if budget == "all" else order[:budget]


def layer_costs(client, specs: dict[str, dict], target: str, cache_dir, *, budget: int | str | None = None,
                seed: int = 1, progress: bool = True, reuse: bool = True) -> dict:
    """Cost of every core in ``specs`` (``{label: spec dict}``, label naming the layer and choice).

    The cores of :func:`synthesis_plan` are synthesized as Dask jobs on
    ``client`` (cached ones run no tool); with ``reuse``, a core the cache
    already holds from an earlier run is used as well (looking it up emits
    it: about a second per core); every other core is
    predicted by the :class:`CostModel` fitted to all of those runs. A failed
    job raises, naming its label, once every other job has finished (their
    reports are in the cache, so a rerun synthesizes only what failed).

    Returns ``{"costs": {label: {lut, ff, dsp, bram, fmax_mhz?, "synthesized": bool}}, "runs": n_planned,
    "synthesized": n_tool_runs, "cached": n_cache_hits (planned), "reused": n_other_cached,
    "estimated": n_predicted, "structures": n, "structures_synthesized": n, "model_error": ...}``.
    """
    from ..tools.sweep import failure_error, run_jobs

    # One job per distinct content (e.g. the LayerNorm core of every layer of one width).
    first: dict[str, str] = {}
    for label in sorted(specs):
        first.setdefault(spec_key(specs[label], target, seed), label)
    distinct = {label: specs[label] for label in first.values()}
    plan = synthesis_plan(distinct, budget)
    # The planned cores are synthesized (or found); every other core is looked up (emitted, hashed) alike.
    jobs = {label: (synth_cached if label in plan else cached_report, (specs[label], target, str(cache_dir), seed))
            for label in (distinct if reuse else plan)}
    found, failures = run_jobs(client, jobs, desc=f"synth {target}", progress=progress)
    if failures:
        raise failure_error(failures, len(jobs), "synthesis job")
    planned = {label: found[label] for label in plan}
    reports = {label: r for label, r in found.items() if r is not None}
    keys = RESOURCES + (("fmax_mhz",) if target == "ecp5" else ())
    costs = {}
    for label, spec in specs.items():
        r = reports.get(first[spec_key(spec, target, seed)])
        if r is not None:
            costs[label] = {k: r[k] for k in keys} | {"synthesized": True}
    rest = [label for label in specs if label not in costs]
    runs = sorted(reports)
    fit = ([distinct[lab] for lab in runs], [reports[lab] for lab in runs])
    if rest:
        model = CostModel.fit(*fit, target)
        costs |= {label: model.predict(specs[label]) | {"synthesized": False} for label in rest}
    return {"costs": costs, "runs": len(plan), "synthesized": sum(not r["cached"] for r in planned.values()),
            "cached": sum(bool(r["cached"]) for r in planned.values()), "reused": len(reports) - len(planned),
            "estimated": len(rest), "structures": len({structure(s) for s in distinct.values()}),
            "structures_synthesized": len({structure(distinct[lab]) for lab in runs}),
            "model_error": holdout_error(*fit, target)}
