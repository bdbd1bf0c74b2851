"""Hardware-aware partial replacement: keep the fewest LayerNorms under an accuracy budget.

1. convert every LayerNorm once with the other weights frozen (no folding,
   so each DyT layer fits the trained weights and stands alone);
2. **rank** the LayerNorms by the cost of converting each one alone: the KL
   divergence of the logits to the LayerNorm model's on the calibration set;
3. **curve**: accuracy with the k cheapest converted, k = 0..L, on the
   trained weights — on a labelled validation split when one is given
   (``x_eval``, ``y_eval``), else on the **referee** (the calibration
   samples held out of every fit): there "accuracy" is the top-1 agreement
   with the LayerNorm model (1 at k = 0), whose loss bounds the accuracy
   drop from above. Never on the test split: the caller reports that once,
   at the end;
4. **select** the largest k whose accuracy drop is within ``max_drop``
   points; the others stay LayerNorm (served by the LayerNorm core);
5. convert again with those LayerNorms kept, so that the calibration
   reconstructs the model as it will run;
6. when the weights adapt (the default), the curve is pessimistic: the
   adapted model loses less than the frozen one. **Search** k upward with
   full conversions (all L first, then bisection between the curve's k and
   L), each measured on the evaluation set, and return the conversion with
   the largest k found within ``max_drop``; every try is in the report.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..errors import HardytError
from ..runtime.evaluate import accuracy, predictions
from ..runtime.graph import kl_to, model_logits
from .calibration import Calibration
from .options import ConvertOptions
from .fixed_dyt import dyt_layers, with_layers
from .pipeline import calibration_batches, convert

__all__ = ["layer_kl", "layer_costs", "accuracy_curve", "select_kept", "partial_convert"]


def layer_kl(model: nn.Module, modules: dict, batches: list) -> dict[str, float]:
    """KL on ``batches`` of the model with only one LayerNorm replaced, per layer (the order of replacement;
    not to be confused with :func:`hardyt.hw.costmodel.costs.layer_costs`, hardware resources)."""
    with torch.no_grad():
        teacher = [model_logits(model, b) for b in batches]
        costs = {}
        for name in modules:
            m = with_layers(model, modules, [name]).eval()
            costs[name] = sum(float(kl_to(t, model_logits(m, b))) * len(t) for t, b in zip(teacher, batches))
            costs[name] /= sum(len(t) for t in teacher)
    return costs


def accuracy_curve(model: nn.Module, modules: dict, order: list[str], x, y, **kw) -> list[float]:
    """Accuracy with the ``k`` first layers of ``order`` replaced, for k = 0..len(order)."""
    return [accuracy(with_layers(model, modules, order[:k]).eval(), x, y, **kw) for k in range(len(order) + 1)]


layer_costs = layer_kl  # the old name


def select_kept(order: list[str], curve: list[float], max_drop_pt: float) -> list[str]:
    """The LayerNorms to keep: those after the largest k within ``max_drop_pt`` of ``curve[0]``.

    >>> select_kept(["a", "b", "c"], [0.90, 0.899, 0.897, 0.85], 0.5)
    ['c']
    """
    best = max(k for k, acc in enumerate(curve) if 100 * (curve[0] - acc) <= max_drop_pt)
    return list(order[best:])


def _referee_scorer(model: nn.Module, calib, options: dict):
    """``(x, y, decided_on)``: the referee's held-out samples labelled with the LayerNorm model's own top-1."""
    data = Calibration(calib, fit_samples=1, holdout=options.get("holdout", 0))
    if not data.holdout or not all(isinstance(b, torch.Tensor) for b in data.holdout):
        raise HardytError("--max-drop: no held-out calibration images to decide on (too few, or batches that are "
                          "not tensors): give more calibration data or a labelled validation split")
    x = torch.cat(data.holdout)
    return x, predictions(model, x), {"split": "referee", "samples": len(x),
                                      "metric": "top-1 agreement with the LayerNorm model"}


def partial_convert(model: nn.Module, calib, x_eval=None, y_eval=None, *, max_drop: float, fixed_point=False,
                    progress: bool = False, **options):
    """Convert all but the fewest LayerNorms such that top-1 drops by at most ``max_drop`` points.

    ``x_eval``, ``y_eval``: a labelled validation split to decide on (never
    the test split); None: the referee (top-1 agreement with the LayerNorm
    model on the held-out calibration samples).

    Returns ``(converted, report)`` like :func:`hardyt.quant.convert`, with
    ``report["partial"]``: ``costs``, ``order`` (cheapest first), ``curve``
    (accuracy on the deciding split vs number converted, trained weights),
    ``kept``, ``max_drop``, ``decided_on`` (``split``, ``samples``,
    ``metric``) and ``tried`` (each full conversion: ``converted`` count,
    ``accuracy`` on the deciding split).
    """
    if not max_drop >= 0:
        raise HardytError(f"--max-drop must be a non-negative number of points, got {max_drop!r}")
    if x_eval is None:
        x_eval, y_eval, decided = _referee_scorer(model, calib, options)
    else:
        decided = {"split": "validation", "samples": len(x_eval), "metric": "top-1 accuracy"}
    batches = calibration_batches(calib)  # each conversion holds out the same referee samples
    ranking = Calibration(batches, fit_samples=math.inf, holdout=options.get("holdout", 0)).fit  # none of them
    adapts = ConvertOptions.from_kwargs(**options).weight_lr > 0
    alone, _ = convert(model, batches, fixed_point=fixed_point, progress=progress,
                       **(options | {"fold": False, "strict": False, "freeze_weights": True}))
    modules = dyt_layers(alone)
    teacher = copy.deepcopy(model).eval()
    costs = layer_kl(teacher, modules, ranking)
    order = sorted(costs, key=costs.__getitem__)
    curve = accuracy_curve(teacher, modules, order, x_eval, y_eval, progress=progress)
    k0 = len(order) - len(select_kept(order, curve, max_drop))
    tried = {}

    def attempt(k: int):
        if k not in tried:
            conv, rep = convert(model, batches, fixed_point=fixed_point, progress=progress,
                                **(options | {"keep": tuple(order[k:])}))
            tried[k] = (conv, rep, accuracy(conv, x_eval, y_eval) if adapts else None)
        return tried[k]

    best = _largest_within(k0, len(order), lambda k: 100 * (curve[0] - attempt(k)[2]) <= max_drop) \
        if adapts else k0
    converted, report, _ = attempt(best)
    report["partial"] = {"max_drop": max_drop, "costs": costs, "order": order, "curve": curve,
                         "kept": list(order[best:]), "decided_on": decided,
                         "tried": [{"converted": k, "accuracy": acc} for k, (_, _, acc) in sorted(tried.items())]}
    return converted, report


def _largest_within(lo: int, hi: int, ok) -> int:
    """The largest k in ``lo..hi`` with ``ok(k)``: ``hi`` first, then bisection, ``lo`` when none is.

    ``lo`` is taken as the answer without calling ``ok`` on it (the frozen curve already put it within).

    >>> calls = []
    >>> _largest_within(2, 9, lambda k: calls.append(k) or k <= 6), calls
    (6, [9, 5, 7, 6])
    >>> _largest_within(3, 3, lambda k: False)
    3
    """
    if lo >= hi:
        return lo
    if ok(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo
