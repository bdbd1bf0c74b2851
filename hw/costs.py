"""What a core costs: synthesis runs cached by spec content, and a cost model fitted to them.

:func:`synth_cached` emits a spec's core into a temporary directory, runs
:func:`hardyt.hw.synth.synth` on it and stores the report under
``CACHE/<key>.json``, ``key`` a hash of the spec's content (its name left
out: the name changes no gate), the target, the placement seed and the
hardyt version (a new version may build other gates). A spec already in the
cache is never synthesized again. It is a plain function of picklable
arguments, so it runs as a Dask job (:mod:`hardyt.hw.sweep`).

:class:`CostModel` predicts the resources and Fmax of cores that were not
synthesized: per report key, least squares on a few features of the spec
that the hardware scales with (:func:`features`: lanes, datapath widths, ROM
bits). :func:`holdout_error` says how far off it is: each synthesized core is
held out in turn, the model fitted on the others, and its prediction compared
with the real run.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from hardyt.quant.contract.spec_io import spec_from_dict
from hardyt.quant.errors import HardytError
from hardyt.quant.files import prepare_out_dir, save_json_atomic
from hardyt.quant.version import hardyt_version

__all__ = ["RESOURCES", "spec_key", "cached_report", "synth_cached", "structure", "synthesis_plan", "features",
           "CostModel", "holdout_error", "layer_costs"]

RESOURCES = ("lut", "ff", "dsp", "bram")
FEATURES = ("one", "layernorm", "layernorm_lanes", "lanes_in_bits", "lanes_out_bits", "tanh_rom", "affine_rom")


def spec_key(spec_dict: dict, target: str, seed: int = 1) -> str:
    """The cache key of one synthesis run: the spec's content without its name, target, seed, version."""
    content = {k: v for k, v in spec_dict.items() if k != "name"}
    text = json.dumps({"spec": content, "target": target, "seed": seed, "hardyt": hardyt_version()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_report(spec_dict: dict, target: str, cache_dir, seed: int = 1) -> dict | None:
    """The cached report of this spec's synthesis, or ``None``."""
    path = Path(cache_dir) / f"{spec_key(spec_dict, target, seed)}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def synth_cached(spec_dict: dict, target: str, cache_dir, seed: int = 1) -> dict:
    """The synthesis report of a spec (a dict, as ``spec.to_dict()``), from the cache or from a fresh run.

    The result has ``cached`` (``True`` when no tool ran) and ``key``.
    """
    from .emit import emit
    from .synth import synth

    found = cached_report(spec_dict, target, cache_dir, seed)
    key = spec_key(spec_dict, target, seed)
    if found is not None:
        return found | {"cached": True, "key": key}
    spec = spec_from_dict(spec_dict)
    work = Path(tempfile.mkdtemp(prefix="hardyt-cost-"))
    try:
        emit(spec, work / "core")
        report = synth(work / "core", target, progress=False, seed=seed)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    save_json_atomic(prepare_out_dir(cache_dir) / f"{key}.json", report)
    return report | {"cached": False, "key": key}


def structure(spec_dict: dict) -> tuple:
    """What shapes the gates of a core, its ROM contents aside: cores alike in this differ only in coefficients."""
    if spec_dict["hardyt"] == "layernorm":
        return ("layernorm", spec_dict["channels"], spec_dict["lanes"], spec_dict["in_bits"], spec_dict["out_bits"])
    t, a = spec_dict["tanh"], spec_dict["affine"]
    return ("dyt", spec_dict["channels"], spec_dict["lanes"], spec_dict["in_bits"], t["out_bits"], t["kind"],
            len(t.get("slope", ())), a["mode"])


def synthesis_plan(specs: dict[str, dict], budget: int | None) -> list[str]:
    """Which of ``specs`` (``{label: spec dict}``, distinct contents) to synthesize within ``budget`` runs.

    One core of each structure first (LayerNorm cores before DyT cores: the
    cost model has no other way to know them), then a second of each, and so
    on: the cost model sees every kind of core it can, and the rest differ
    from a synthesized one in ROM contents only. ``None``: all of them.

    >>> s = lambda c, b: {"hardyt": "layernorm", "channels": c, "lanes": 1, "in_bits": b, "out_bits": b}
    >>> synthesis_plan({"a": s(4, 8), "b": s(4, 8), "c": s(4, 6)}, 2)
    ['a', 'c']
    """
    found: dict[tuple, list[str]] = {}
    for label in sorted(specs):
        found.setdefault(structure(specs[label]), []).append(label)
    groups = sorted(found.values(), key=lambda g: structure(specs[g[0]])[0] != "layernorm")   # stable
    order = [g[i] for i in range(max(map(len, groups), default=0)) for g in groups if i < len(g)]
    return order if budget is None else order[:budget]


def features(spec_dict: dict) -> np.ndarray:
    """The cost model's features of a core (see :data:`FEATURES`)."""
    spec = spec_from_dict(spec_dict)
    p = spec.lanes
    if spec_dict["hardyt"] == "layernorm":
        return np.array([1.0, 1.0, p, p * spec.in_bits, p * spec.out_bits, 0.0, 0.0])
    affine = 0.0
    if spec.affine.mode == "channel":
        affine = spec.channels * (spec.affine.gamma_bits + spec.affine.beta_bits) / 64
    return np.array([1.0, 0.0, 0.0, p * spec.in_bits, p * spec.tanh.out_bits, p * spec.tanh.rom_bits / 64, affine])


class CostModel:
    """Least squares per report key on :func:`features`; predictions are clipped at 0.

    Parameters
    ----------
    weights : dict
        ``{key: weight vector}`` for each of :data:`RESOURCES` and ``fmax_mhz`` (if fitted).
    """

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights

    @classmethod
    def fit(cls, specs: list[dict], reports: list[dict]) -> "CostModel":
        x = np.stack([features(s) for s in specs])
        keys = RESOURCES + (("fmax_mhz",) if all("fmax_mhz" in r for r in reports) else ())
        # A small ridge term: few runs, and features that some runs leave at zero.
        reg = 1e-6 * np.eye(x.shape[1])
        weights = {}
        for k in keys:
            y = np.array([float(r[k]) for r in reports])
            weights[k] = np.linalg.solve(x.T @ x + reg, x.T @ y)
        return cls(weights)

    def predict(self, spec_dict: dict) -> dict:
        f = features(spec_dict)
        out = {k: max(0.0, float(f @ w)) for k, w in self.weights.items()}
        return {k: (round(v, 1) if k == "fmax_mhz" else int(round(v))) for k, v in out.items()}


def holdout_error(specs: list[dict], reports: list[dict]) -> dict:
    """Leave-one-out error of :class:`CostModel` on synthesized runs.

    Returns ``{"runs": n, "lut_ff": {...}, "fmax_mhz": {...}}``, each with
    ``mean_abs_pct`` and ``max_abs_pct`` (percent of the real value) and the
    per-run ``rows``; ``None`` values with fewer than 3 runs.
    """
    n = len(specs)
    out = {"runs": n, "lut_ff": None, "fmax_mhz": None, "rows": []}
    if n < 3:
        return out
    errs = {"lut_ff": [], "fmax_mhz": []}
    for i in range(n):
        model = CostModel.fit(specs[:i] + specs[i + 1:], reports[:i] + reports[i + 1:])
        p, r = model.predict(specs[i]), reports[i]
        row = {"real_lut_ff": r["lut"] + r["ff"], "predicted_lut_ff": p["lut"] + p["ff"]}
        errs["lut_ff"].append(100 * abs(row["predicted_lut_ff"] - row["real_lut_ff"]) / max(1, row["real_lut_ff"]))
        if "fmax_mhz" in p:
            row |= {"real_fmax_mhz": r["fmax_mhz"], "predicted_fmax_mhz": p["fmax_mhz"]}
            errs["fmax_mhz"].append(100 * abs(p["fmax_mhz"] - r["fmax_mhz"]) / r["fmax_mhz"])
        out["rows"].append(row)
    for k, e in errs.items():
        if e:
            out[k] = {"mean_abs_pct": round(float(np.mean(e)), 1), "max_abs_pct": round(float(np.max(e)), 1)}
    return out


def layer_costs(client, specs: dict[str, dict], target: str, cache_dir, *, budget: int | None = None,
                seed: int = 1, progress: bool = True) -> dict:
    """Cost of every core in ``specs`` (``{label: spec dict}``, label naming the layer and choice).

    The cores of :func:`synthesis_plan` are synthesized as Dask jobs on
    ``client`` (cached ones run no tool); every other core is predicted by
    the :class:`CostModel` fitted to those runs. A failed job raises, naming
    its label, once every other job has finished (their reports are in the
    cache, so a rerun synthesizes only what failed).

    Returns ``{"costs": {label: {lut, ff, dsp, bram, fmax_mhz?, "synthesized": bool}}, "runs": n,
    "synthesized": n_tool_runs, "cached": n_cache_hits, "estimated": n_predicted, "model_error": ...}``.
    """
    from .sweep import failure_error, run_jobs

    # One job per distinct content (e.g. the LayerNorm core of every layer of one width).
    first: dict[str, str] = {}
    for label in sorted(specs):
        first.setdefault(spec_key(specs[label], target, seed), label)
    plan = synthesis_plan({label: specs[label] for label in first.values()}, budget)
    jobs = {label: (synth_cached, (specs[label], target, str(cache_dir), seed)) for label in plan}
    reports, failures = run_jobs(client, jobs, desc=f"synth {target}", progress=progress)
    if failures:
        raise failure_error(failures, len(jobs), "synthesis job")
    keys = RESOURCES + (("fmax_mhz",) if target == "ecp5" else ())
    costs = {}
    for label, spec in specs.items():
        r = reports.get(first[spec_key(spec, target, seed)])
        if r is not None:
            costs[label] = {k: r[k] for k in keys} | {"synthesized": True}
    rest = [label for label in specs if label not in costs]
    error = holdout_error([specs[lab] for lab in plan], [reports[lab] for lab in plan])
    if rest:
        if len(plan) < 2:
            raise HardytError(f"cost model: {len(rest)} cores to predict from {len(plan)} synthesis run(s); "
                              "raise the synthesis budget")
        model = CostModel.fit([specs[lab] for lab in plan], [reports[lab] for lab in plan])
        costs |= {label: model.predict(specs[label]) | {"synthesized": False} for label in rest}
    return {"costs": costs, "runs": len(plan), "synthesized": sum(not r["cached"] for r in reports.values()),
            "cached": sum(bool(r["cached"]) for r in reports.values()), "estimated": len(rest),
            "model_error": error}
