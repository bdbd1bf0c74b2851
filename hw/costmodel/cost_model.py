"""The cost model: resources and Fmax of cores not synthesized, from those that were.

Two levels (see :mod:`hardyt.hw.costmodel.cost_features` for what they read):

1. **Within a structure.** Cores of one :func:`structure` differ only in
   ROM contents: FF, DSP, BRAM and Fmax are those of the structure's runs
   (their mean), and LUTs those of the runs plus ``w * (rom_logic - rom_logic
   of the runs)``, ``w`` the LUTs per unit of :func:`rom_logic` (structures
   whose ROMs went to block RAM: no content term).
2. **Across structures**, for a structure no run has: per resource, least
   squares on :data:`~hardyt.hw.costmodel.cost_features.FEATURES` over every DyT run
   (a small ridge term: few runs). LayerNorm cores are not predicted:
   :func:`hardyt.hw.costmodel.costs.synthesis_plan` synthesizes each LayerNorm
   structure (it has no table, so one run is exact).

``w`` comes from structures with several runs (the contents' own effect,
every structure's offset removed); with one run per structure nothing says
how contents move LUTs within one, and ``w`` is 0: the structure's run
stands for its siblings. (On the bundled ViT the within-structure ``w`` is
about 0 anyway: each layer's tanh table spans that layer's own range, so
the tables of one structure are nearly alike, and what differs between
their runs is the mapper's noise, a few percent.)

:func:`holdout_error` says how far off it is: each synthesized DyT core is
held out in turn, the model fitted on the others and its prediction compared
with the real run; the errors are split by whether the held-out core's
structure had another run (the case of every core the model predicts when
the synthesis budget covers every structure) or not.
"""
from __future__ import annotations

import numpy as np

from hardyt.quant.errors import HardytError

from .cost_features import FEATURES, features, structure

__all__ = ["RESOURCES", "CostModel", "holdout_error", "prediction_error"]

RESOURCES = ("lut", "ff", "dsp", "bram")
_LOGIC = FEATURES.index("rom_logic")


def _lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    reg = 1e-3 * np.eye(x.shape[1])
    return np.linalg.solve(x.T @ x + reg, x.T @ y)


class CostModel:
    """Resources of a core from synthesized ones (see the module docstring); predictions are clipped at 0.

    Parameters
    ----------
    target : str
        The synthesis target (sets the LUT size :func:`rom_logic` counts in).
    groups : dict
        ``{structure: {"logic": mean rom_logic, "rom_in_logic": bool, key: mean value}}`` of the runs.
    across : dict
        ``{key: weight vector over FEATURES}``, fitted over every DyT run.
    lut_per_logic : float
        ``w``: LUTs per unit of ``rom_logic`` within a structure.
    """

    def __init__(self, target: str, groups: dict, across: dict, lut_per_logic: float):
        self.target, self.groups, self.across, self.lut_per_logic = target, groups, across, lut_per_logic

    @classmethod
    def fit(cls, specs: list[dict], reports: list[dict], target: str = "ecp5") -> "CostModel":
        if not specs:
            raise HardytError("cost model: no synthesis run to fit")
        keys = RESOURCES + (("fmax_mhz",) if all("fmax_mhz" in r for r in reports) else ())
        x = [features(s, target) for s in specs]
        by: dict[tuple, list[int]] = {}
        for i, s in enumerate(specs):
            by.setdefault(structure(s), []).append(i)
        groups = {}
        for st, idx in by.items():
            groups[st] = {k: float(np.mean([reports[i][k] for i in idx])) for k in keys}
            groups[st] |= {"logic": float(np.mean([x[i][_LOGIC] for i in idx])),
                           "rom_in_logic": all(reports[i]["bram"] == 0 for i in idx)}
        dyt = [i for i, s in enumerate(specs) if s["hardyt"] == "dyt"]
        across = {}
        if dyt:
            xd = np.stack([x[i] for i in dyt])
            across = {k: _lstsq(xd, np.array([float(reports[i][k]) for i in dyt])) for k in keys}
        return cls(target, groups, across, _lut_per_logic(by, x, reports))

    def predict(self, spec_dict: dict) -> dict:
        """``{lut, ff, dsp, bram[, fmax_mhz], "across": bool}``: ``across`` when no run had its structure."""
        f = features(spec_dict, self.target)
        g = self.groups.get(structure(spec_dict))
        if g is not None:
            out = {k: g[k] for k in RESOURCES + ("fmax_mhz",) if k in g}
            if g["rom_in_logic"]:
                out["lut"] = g["lut"] + self.lut_per_logic * (f[_LOGIC] - g["logic"])
            across = False
        elif spec_dict["hardyt"] == "layernorm" or not self.across:
            raise HardytError(f"cost model: no synthesis run of a core like {structure(spec_dict)[:5]}")
        else:
            out, across = {k: float(f @ w) for k, w in self.across.items()}, True
        out = {k: max(0.0, v) for k, v in out.items()}
        return {k: (round(v, 1) if k == "fmax_mhz" else int(round(v))) for k, v in out.items()} | {"across": across}


def _lut_per_logic(by: dict, x: list, reports: list) -> float:
    """LUTs per unit of rom_logic within a structure: the within-structure regression (every structure's
    mean removed) over structures with several runs whose ROMs are logic; 0 when there is none."""
    dx, dy = [], []
    for idx in by.values():
        if len(idx) > 1 and all(reports[i]["bram"] == 0 for i in idx):
            mx = np.mean([x[i][_LOGIC] for i in idx])
            my = np.mean([reports[i]["lut"] for i in idx])
            dx += [x[i][_LOGIC] - mx for i in idx]
            dy += [reports[i]["lut"] - my for i in idx]
    if dx and float(np.dot(dx, dx)) > 0:
        return float(np.dot(dx, dy) / np.dot(dx, dx))
    return 0.0


def _stats(errors: list[float]) -> dict | None:
    if not errors:
        return None
    return {"n": len(errors), "mean_abs_pct": round(float(np.mean(errors)), 1),
            "max_abs_pct": round(float(np.max(errors)), 1)}


def prediction_error(predicted: list[dict], real: list[dict]) -> dict:
    """How far ``predicted`` reports are from ``real`` ones (same order): per key, ``n``,
    ``mean_abs_pct``, ``max_abs_pct`` (percent of the real value; LUT+FF as ``lut_ff``), and for DSP and
    BRAM, whose counts are often 0, ``exact`` (the share predicted exactly).

    >>> e = prediction_error([{"lut": 90, "ff": 10, "dsp": 0, "bram": 1}], [{"lut": 100, "ff": 10, "dsp": 0, "bram": 1}])
    >>> e["lut"]["mean_abs_pct"], e["lut_ff"]["mean_abs_pct"], e["dsp"]["exact"]
    (10.0, 9.1, 1.0)
    """
    out = {}
    pairs = [(p | {"lut_ff": p["lut"] + p["ff"]}, r | {"lut_ff": r["lut"] + r["ff"]}) for p, r in zip(predicted, real)]
    for k in ("lut", "ff", "lut_ff", "fmax_mhz"):
        e = [100 * abs(p[k] - r[k]) / max(1, r[k]) for p, r in pairs if k in p and k in r]
        out[k] = _stats(e)
    for k in ("dsp", "bram"):
        out[k] = {"n": len(pairs), "exact": round(sum(p[k] == r[k] for p, r in pairs) / max(1, len(pairs)), 3)}
    return out


def holdout_error(specs: list[dict], reports: list[dict], target: str = "ecp5") -> dict:
    """Leave-one-out error of :class:`CostModel` on the synthesized DyT runs (LayerNorm runs are exact).

    Returns ``{"runs": n, "lut_ff": {...}, "fmax_mhz": {...}, "within_structure": {...},
    "across_structures": {...}, "rows": [...]}``: each summary has ``n``,
    ``mean_abs_pct`` and ``max_abs_pct`` (percent of the real value) or is
    ``None`` when no run was held out; ``within_structure`` /
    ``across_structures`` split the LUT+FF errors by whether another run had
    the held-out core's structure. ``rows``: each held-out run's real and
    predicted LUT+FF and Fmax.
    """
    n = len(specs)
    errs: dict[str, list] = {"lut_ff": [], "fmax_mhz": [], "within_structure": [], "across_structures": []}
    rows = []
    for i in range(n):
        rest_s, rest_r = specs[:i] + specs[i + 1:], reports[:i] + reports[i + 1:]
        if specs[i]["hardyt"] != "dyt" or not any(s["hardyt"] == "dyt" for s in rest_s):
            continue
        p, r = CostModel.fit(rest_s, rest_r, target).predict(specs[i]), reports[i]
        row = {"structure": structure(specs[i])[0], "real_lut_ff": r["lut"] + r["ff"],
               "predicted_lut_ff": p["lut"] + p["ff"], "across": p["across"]}
        e = 100 * abs(row["predicted_lut_ff"] - row["real_lut_ff"]) / max(1, row["real_lut_ff"])
        errs["lut_ff"].append(e)
        errs["across_structures" if p["across"] else "within_structure"].append(e)
        if "fmax_mhz" in p:
            row |= {"real_fmax_mhz": r["fmax_mhz"], "predicted_fmax_mhz": p["fmax_mhz"]}
            errs["fmax_mhz"].append(100 * abs(p["fmax_mhz"] - r["fmax_mhz"]) / r["fmax_mhz"])
        rows.append(row)
    return {"runs": n} | {k: _stats(v) for k, v in errs.items()} | {"rows": rows}
