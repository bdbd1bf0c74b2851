"""Explore on the conversions a user gets: families of ``hardyt convert --keep K --layer-formats F``.

A *family* is one conversion with the library's defaults (weights adapting,
guarded as :func:`~hardyt.quant.conversion.pipeline.convert` does it) and a
set ``K`` of LayerNorms kept. Its calibration does not depend on the
fixed-point formats (they are chosen after the reconstruction), so every
per-layer format choice of a family is a conversion the user reproduces
with ``hardyt convert --keep K --layer-formats F``: the same reconstruction,
then each layer's input scale chosen for its format on the same rows
(:func:`~hardyt.quant.conversion.pipeline.clip_inputs`) and its spec built by
the same :func:`~hardyt.quant.conversion.fixed_dyt.make_spec`.

A family is a :class:`~hardyt.quant.conversion.explore.ExploreCalibration` whose
``teacher`` is the converted model itself (adapted weights, the kept
LayerNorms in place), so :class:`~hardyt.quant.conversion.explore.Evaluator`
and :func:`~hardyt.quant.conversion.explore.pick_model` run it unchanged.

Which families (:func:`kept_sets`): every subset of the LayerNorms when
there are no more than ``conversions`` of them (a small model: the answer is
then the exhaustive one); else a chain — none kept (the default
conversion), then the 1, 2, … LayerNorms whose replacement alone costs the
most (logit KL of a frozen-weight conversion, as ``hardyt convert
--max-drop`` ranks them).

How a family's formats are searched (:func:`sensitivity_search`): exactly
(every configuration measured) when the space is small; else each choice's
effect alone is measured on the first family (all other layers at the
8-bit reference), a configuration's accuracy is predicted as the sum of its
choices' effects (:func:`additive_front`, exact over the space), and
``measure`` configurations spread along that predicted front are measured
for real, in every family: the front is made of measured points only.
"""
from __future__ import annotations

import copy
import itertools

import torch
from torch import nn

from ..errors import HardytError
from .clip import choose_clip
from . import explore
from .explore import SQNR_FLOOR_DB, ExploreCalibration, _layer, _spec, _spread, exhaustive, pareto
from .fixed_dyt import FORMAT_DEFAULTS
from .fidelity import sqnr_db
from .fold import fold_all
from .partial import layer_costs
from .pipeline import clip_inputs, convert, dyt_layers

__all__ = ["convert_family", "family_candidates", "build_family", "layer_ranking", "kept_sets", "additive_front",
           "sensitivity_search", "reference_config", "REFERENCE"]

REFERENCE = "dyt lut8 out8"     # the label prefix of the default conversion's format (8-bit LUT tanh)


def convert_family(model: nn.Module, batches: list, kept, options: dict) -> ExploreCalibration:
    """The conversion keeping ``kept`` (float DyT, not folded: folding comes after the reconstruction and
    changes nothing it computes), as a :class:`Calibration` whose teacher is the converted model."""
    options = {k: v for k, v in options.items() if k not in ("fold", "keep")}
    student, report = convert(model, batches, fixed_point=False, fold=False, keep=tuple(kept), **options)
    names = [layer["name"] for layer in report["layers"]]
    inputs = clip_inputs(student, names, batches, **options) if names else {}
    folded = fold_all(copy.deepcopy(student), names, batches[0]) if names else {}
    return ExploreCalibration(student.eval(), student, names, inputs, {n: folded[n]["into"] for n in names}, report)


def family_candidates(fam: ExploreCalibration, lanes=None,
                      choices=None) -> dict[str, list[tuple[dict, dict, object]]]:
    """``{layer: [(choice, formats, DyTSpec)]}`` of every converted layer: the spec ``hardyt convert`` builds
    with those formats (input scale chosen for them on the same rows). Formats: :data:`TANH_CHOICES` (LUT
    6/8/10, PWL 12, threshold 8/10/12/16), output width the input width (threshold: at most
    :data:`THRESHOLD_MAX_OUT_BITS`) and the narrowest one whose layer output stays at or above the SQNR floor."""
    out = {}
    for name in fam.names:
        dyt, x = fam.student.get_submodule(name), fam.inputs[name]
        affine = "folded" if fam.folds[name] else "channel"
        with torch.no_grad():
            ref = dyt(x)
        cands = []
        for tanh, bits in choices or explore.TANH_CHOICES:
            top = min(bits, explore.THRESHOLD_MAX_OUT_BITS) if tanh == "threshold" else bits
            base = {"tanh": tanh, "in_bits": bits, "out_bits": top, "affine_out_bits": top, "lanes": lanes}
            in_scale = choose_clip(name, dyt, x, FORMAT_DEFAULTS | base)[0]
            widths = [top]
            for w in range(3, top):     # the narrowest output width meeting the floor, at the same clip
                spec = _spec(fam, name, FORMAT_DEFAULTS | base | {"out_bits": w, "affine_out_bits": w}, in_scale)
                with torch.no_grad():
                    if sqnr_db(ref, _layer(dyt, spec)(x)) >= SQNR_FLOOR_DB:
                        widths.insert(0, w)
                        break
            for w in widths:
                formats = base | {"out_bits": w, "affine_out_bits": w}
                f = FORMAT_DEFAULTS | formats
                spec = _spec(fam, name, f, choose_clip(name, dyt, x, f)[0])   # as convert chooses it
                choice = {"core": "dyt", "tanh": tanh, "in_bits": bits, "out_bits": w, "affine": affine}
                cands.append((choice, {k: v for k, v in formats.items() if v is not None}, spec))
        out[name] = cands
    return out


def build_family(model: nn.Module, batches: list, kept, options: dict, lanes=None, choices=None):
    """``(family, candidates)``: :func:`convert_family` and :func:`family_candidates`, one Dask job
    (``choices``: the caller's :data:`TANH_CHOICES`, passed on to workers in other processes)."""
    fam = convert_family(model, batches, kept, options)
    return fam, family_candidates(fam, lanes, choices)


def layer_ranking(model: nn.Module, batches: list, options: dict) -> list[str]:
    """The LayerNorms, cheapest to replace first: logit KL on the calibration set of a frozen-weight conversion
    with that layer alone replaced (the order ``hardyt convert --max-drop`` keeps LayerNorms by)."""
    options = {k: v for k, v in options.items() if k not in ("fold", "keep", "freeze_weights", "strict")}
    alone, _ = convert(model, batches, fixed_point=False, fold=False, freeze_weights=True, **options)
    costs = layer_costs(copy.deepcopy(model).eval(), dyt_layers(alone), batches)
    return sorted(costs, key=costs.__getitem__)


def kept_sets(names: list[str], conversions: int, order: list[str] | None = None) -> list[tuple[str, ...]]:
    """The LayerNorms each family keeps: every subset when there are at most ``conversions`` (none kept first),
    else none, then the 1, 2, … last of ``order`` (the costliest to replace), ``conversions`` sets in all.

    >>> kept_sets(["a", "b"], 4)
    [(), ('a',), ('b',), ('a', 'b')]
    >>> kept_sets(["a", "b", "c"], 3, order=["b", "c", "a"])
    [(), ('a',), ('a', 'c')]
    """
    if conversions < 1:
        raise HardytError(f"conversions: must be >= 1, got {conversions}")
    if 2 ** len(names) <= conversions:
        return [tuple(c) for k in range(len(names) + 1) for c in itertools.combinations(names, k)]
    if order is None:
        raise HardytError("kept_sets: a ranking of the layers is needed when not every subset is converted")
    costly = list(reversed(order))
    return [tuple(costly[:k]) for k in range(min(conversions, len(names)))]


def additive_front(names: list[str], options: dict, cost: dict, delta: dict) -> list[dict]:
    """The exact Pareto front of configurations under the additive prediction: cost and predicted accuracy
    (``delta[(layer, label)]`` summed) of every configuration, found layer by layer keeping only the
    undominated partial configurations. Points ``{"layers", "cost", "accuracy"}``, cheapest first.

    >>> opts = {"a": ["x", "y"], "b": ["x", "y"]}
    >>> cost = {(n, l): (1 if l == "x" else 2) for n in opts for l in opts[n]}
    >>> delta = {("a", "x"): -0.1, ("a", "y"): 0.0, ("b", "x"): -0.01, ("b", "y"): 0.0}
    >>> [(p["cost"], p["layers"]["a"], p["layers"]["b"]) for p in additive_front(["a", "b"], opts, cost, delta)]
    [(2, 'x', 'x'), (3, 'y', 'x'), (4, 'y', 'y')]
    """
    states = [{"layers": {}, "cost": 0, "accuracy": 0.0}]
    for n in names:
        grown = [{"layers": s["layers"] | {n: lab}, "cost": s["cost"] + cost[(n, lab)],
                  "accuracy": s["accuracy"] + delta[(n, lab)]} for s in states for lab in options[n]]
        states = pareto(grown)
    return states


def sensitivity_search(names: list[str], options: dict, cost: dict, evaluate, reference: dict, *,
                       delta: dict | None = None, measure: int = 12, exact_limit: int = 0) -> tuple[list, dict, str]:
    """``(points, delta, method)``: the measured configurations of one family.

    ``exact`` when the space has at most ``exact_limit`` configurations
    (every one measured); else ``sensitivity``: ``delta`` (each choice's
    effect alone against ``reference``, measured now unless given: another
    family's) predicts the front (:func:`additive_front`), and ``measure``
    of its points, spread along it, are measured (with ``reference``).
    """
    space = 1
    for n in names:
        space *= len(options[n])
    if space <= exact_limit:
        return exhaustive(names, options, cost, evaluate), delta or {}, "exact"

    def point(config):
        return {"layers": dict(config), "accuracy": evaluate(config), "cost": sum(cost[(n, c)] for n, c in config.items())}

    base = point(reference)
    if delta is None:
        delta = {}
        for n in names:
            for lab in options[n]:
                delta[(n, lab)] = 0.0 if lab == reference[n] else \
                    evaluate(reference | {n: lab}) - base["accuracy"]
    predicted = additive_front(names, options, cost, {k: delta.get(k, 0.0) for k in
                                                      ((n, lab) for n in names for lab in options[n])})
    points = [base] + [point(p["layers"]) for p in _spread(predicted, measure)]
    return points, delta, "sensitivity"


def reference_config(names: list[str], options: dict) -> dict:
    """Every layer at the default conversion's format (8-bit LUT tanh, 8-bit out), or its only choice."""
    return {n: next((lab for lab in options[n] if lab.startswith(REFERENCE)), options[n][0]) for n in names}

