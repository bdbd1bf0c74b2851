"""Per-layer normalization choices under an accuracy budget: the torch side of ``hardyt explore``.

1. :func:`calibrate` converts **once** (float DyT, nothing folded, so every
   layer stands alone), records each layer's calibration inputs and which
   layers fold into the Linear layers they feed;
2. :func:`candidates` derives each layer's candidate fixed-point layers from
   that one calibration with :func:`~hardyt.quant.conversion.fixed_dyt.make_spec`
   (only the formats change, and the input scale chosen for each format): LUT
   tanh at input widths 6, 8 and 10, PWL at 12 (a table of 4096 entries per
   lane is past what a LUT core should spend), folded affine where the layer
   folds, channel affine where it does not; output widths: the input width
   and the narrowest one whose layer output stays at or above the fidelity
   check's :data:`~hardyt.quant.conversion.fidelity.SQNR_FLOOR_DB` (same clip);
   and keeping the LayerNorm;
3. :class:`Evaluator` measures a configuration's top-1 on a validation split
   with every DyT layer in the golden model's integer arithmetic
   (:class:`FixedDyT`; a folded layer is followed by its float gamma/beta,
   which is what its next Linear computes once they are folded into it);
4. :func:`beam_search` searches the per-layer choices and :func:`pareto`
   keeps the front of accuracy against cost.

Why beam search and not exact search: ``K`` choices for each of ``L`` layers
are ``K**L`` configurations (the bundled ViT: 9 layers, up to 9 choices, 3.9e8),
and a configuration's accuracy is not the sum of its layers' (errors of
successive layers compound), so it must be measured, not added up. The beam
walks the layers in execution order, tries every choice of the next layer on
each of the ``beam`` kept configurations (the not yet decided layers stay
LayerNorm), and keeps ``beam`` configurations spread along the Pareto front
of what it measured: ``L * K * beam`` measured configurations, every one a
complete configuration and a point of the front's candidates. :func:`search`
measures every configuration instead when there are no more of them than the
beam would measure (a small model): the front is then exact.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import HardytError
from .clip import choose_clip
from ..runtime.evaluate import accuracy
from .fixed_dyt import FORMAT_DEFAULTS, FixedDyT, make_spec
from .fidelity import SQNR_FLOOR_DB, sqnr_db
from .fold import fold_all
from ..runtime.graph import capture, set_module
from .modules import ShiftDyT
from .pipeline import convert

__all__ = ["TANH_CHOICES", "SQNR_FLOOR_DB", "LAYERNORM", "ExploreCalibration", "Calibration", "calibrate", "label", "candidates",
           "Evaluator", "pareto", "beam_search", "exhaustive", "search", "pick_within", "FoldedEmulation", "pick_model"]

# (tanh kind, input width) of the DyT candidates.
TANH_CHOICES = (("lut", 6), ("lut", 8), ("lut", 10), ("pwl", 12),
                ("threshold", 8), ("threshold", 10), ("threshold", 12), ("threshold", 16))
# A threshold tanh holds 2**out_bits - 1 thresholds: its output stays this narrow whatever its input.
THRESHOLD_MAX_OUT_BITS = 8
LAYERNORM = {"core": "layernorm"}


@dataclass
class ExploreCalibration:
    """One conversion's float DyT layers, from which every candidate is derived (not
    :class:`hardyt.quant.conversion.calibration.Calibration`, a source of calibration batches).

    Members
    -------
    teacher : nn.Module
        The input model (LayerNorm), eval mode.
    student : nn.Module
        The model with every LayerNorm a calibrated float DyT (gamma/beta not folded).
    names : list of str
        The LayerNorms, in execution order.
    inputs : dict
        ``{name: (rows, C) float tensor}``: each DyT's calibration inputs.
    folds : dict
        ``{name: [Linear names]}``: where each layer's gamma/beta fold (empty: they do not).
    report : dict
        :func:`convert`'s report.
    """
    teacher: nn.Module
    student: nn.Module
    names: list
    inputs: dict
    folds: dict
    report: dict


Calibration = ExploreCalibration  # the old name


def calibrate(model: nn.Module, batches: list, **options) -> Calibration:
    """Convert ``model`` once (float DyT, unfolded, the other weights as trained) and record what the
    candidates need.

    The weights besides DyT's stay as trained (``freeze_weights``), whatever
    ``options`` say: a configuration keeps some LayerNorms and the trained
    weights around every layer (the :class:`Evaluator` and :func:`pick_model`
    run them), so each DyT layer must stand alone next to those weights.
    DyT layers calibrated with weights that adapt do not fit the trained
    weights: on the bundled ViT (50 steps, 256 images), all-DyT 8-bit scored
    75.9 % on validation that way and 85.3 % calibrated alone (LayerNorm:
    91.4 %).
    """
    student, report = convert(model, batches, fixed_point=False,
                              **(options | {"fold": False, "freeze_weights": True}))
    names = [layer["name"] for layer in report["layers"]]
    if not names:
        raise HardytError("explore: the model has no LayerNorm to replace")
    seed = report["options"]["seed"] + 1
    inputs = {n: x for n, (x, _) in capture(student, names, batches[:4], rows_per_batch=256, seed=seed).items()}
    folded = fold_all(copy.deepcopy(student), names, batches[0])
    return Calibration(copy.deepcopy(model).eval(), student, names, inputs,
                       {n: folded[n]["into"] for n in names}, report)


def label(choice: dict) -> str:
    """A choice's short name.

    >>> label({"core": "dyt", "tanh": "lut", "in_bits": 8, "out_bits": 6, "affine": "folded"})
    'dyt lut8 out6 folded'
    >>> label(LAYERNORM)
    'layernorm'
    """
    if choice["core"] == "layernorm":
        return "layernorm"
    return f"dyt {choice['tanh']}{choice['in_bits']} out{choice['out_bits']} {choice['affine']}"


class FoldedEmulation(nn.Module):
    """A folded fixed-point DyT followed by the gamma/beta its next Linear absorbs once folded.

    Members
    -------
    fixed : FixedDyT
        The hardware layer (tanh codes, dequantized).
    """

    def __init__(self, fixed: FixedDyT, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.fixed = fixed
        self.register_buffer("weight", weight.detach().clone())
        self.register_buffer("bias", bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fixed(x) * self.weight + self.bias


def _layer(dyt: nn.Module, spec) -> nn.Module:
    """The emulation of ``spec`` in place of the float DyT ``dyt``."""
    fixed = FixedDyT(spec, dyt)
    return FoldedEmulation(fixed, dyt.weight, dyt.bias) if spec.affine.mode == "folded" else fixed


def _spec(cal: Calibration, name: str, formats: dict, in_scale: float):
    dyt = cal.student.get_submodule(name)
    folded = bool(cal.folds[name])
    return make_spec(name, float(dyt.alpha.detach().reshape(-1)[0]), in_scale, formats, channels=dyt.channels,
                     alpha_shift=dyt.shift.tolist() if isinstance(dyt, ShiftDyT) else None,
                     gamma=None if folded else dyt.weight.detach().numpy(),
                     beta=None if folded else dyt.bias.detach().numpy())


def _layer_candidates(cal: Calibration, name: str, lanes) -> list[tuple[dict, object]]:
    dyt, x = cal.student.get_submodule(name), cal.inputs[name]
    affine = "folded" if cal.folds[name] else "channel"
    with torch.no_grad():
        ref = dyt(x)
    out = []
    for tanh, bits in TANH_CHOICES:
        top = min(bits, THRESHOLD_MAX_OUT_BITS) if tanh == "threshold" else bits
        formats = FORMAT_DEFAULTS | {"tanh": tanh, "in_bits": bits, "out_bits": top, "affine_out_bits": top,
                                     "lanes": lanes}
        in_scale = choose_clip(name, dyt, x, formats)[0]
        widths = [top]
        for w in range(3, top):     # the narrowest output width meeting the floor, same clip
            spec = _spec(cal, name, formats | {"out_bits": w, "affine_out_bits": w}, in_scale)
            with torch.no_grad():
                if sqnr_db(ref, _layer(dyt, spec)(x)) >= SQNR_FLOOR_DB:
                    widths.insert(0, w)
                    break
        for w in widths:
            choice = {"core": "dyt", "tanh": tanh, "in_bits": bits, "out_bits": w, "affine": affine}
            out.append((choice, _spec(cal, name, formats | {"out_bits": w, "affine_out_bits": w}, in_scale)))
    return out


def candidates(cal: Calibration, lanes=None) -> dict[str, list[tuple[dict, object]]]:
    """``{layer: [(choice, DyTSpec)]}``: the DyT candidates of every layer (LayerNorm is the other choice)."""
    return {name: _layer_candidates(cal, name, lanes) for name in cal.names}


class Evaluator:
    """Validation top-1 of configurations (``{layer: choice label}``), each measured once.

    Parameters
    ----------
    cal : Calibration
    specs : dict
        ``{(layer, label): DyTSpec}`` of every DyT candidate.
    x, y : Tensor
        The validation split (never the test split).
    """

    def __init__(self, cal: Calibration, specs: dict, x: torch.Tensor, y: torch.Tensor):
        self.cal, self.x, self.y = cal, x, y
        self.layers = {key: _layer(cal.student.get_submodule(key[0]), spec) for key, spec in specs.items()}
        self.work = copy.deepcopy(cal.teacher).eval()
        self.seen: dict[tuple, float] = {}

    def model(self, config: dict[str, str]) -> nn.Module:
        """The working model set to ``config`` (shared: valid until the next call)."""
        for name in self.cal.names:
            lab = config.get(name, "layernorm")
            m = self.cal.teacher.get_submodule(name) if lab == "layernorm" else self.layers[(name, lab)]
            set_module(self.work, name, m)
        return self.work

    def __call__(self, config: dict[str, str]) -> float:
        key = tuple(config.get(n, "layernorm") for n in self.cal.names)
        if key not in self.seen:
            self.seen[key] = accuracy(self.model(config), self.x, self.y)
        return self.seen[key]


def pareto(points: list[dict]) -> list[dict]:
    """The points no other point beats: cheapest first, each more accurate than every cheaper one.

    ``points`` have ``accuracy`` and ``cost``; on the front more cost always buys more accuracy.

    >>> [p["cost"] for p in pareto([{"cost": 3, "accuracy": .9}, {"cost": 1, "accuracy": .8},
    ...                             {"cost": 2, "accuracy": .7}, {"cost": 1, "accuracy": .85}])]
    [1, 3]
    """
    front = []
    for p in sorted(points, key=lambda p: (p["cost"], -p["accuracy"])):
        if not front or p["accuracy"] > front[-1]["accuracy"]:
            front.append(p)
    return front


def _spread(front: list[dict], k: int) -> list[dict]:
    """At most ``k`` points of ``front``, evenly spaced along it, both ends kept."""
    if len(front) <= k:
        return front
    if k == 1:
        return [front[0]]
    return [front[round(i * (len(front) - 1) / (k - 1))] for i in range(k)]


def beam_search(names: list[str], options: dict[str, list[str]], cost: dict[tuple, float], evaluate,
                beam: int = 3, progress=None) -> list[dict]:
    """Every configuration the beam measured, as points ``{"layers", "accuracy", "cost"}``.

    ``options[name]``: the labels layer ``name`` may take (``"layernorm"``
    among them); ``cost[(name, label)]``: that choice's cost; ``evaluate``:
    configuration -> accuracy. Start: every layer LayerNorm.
    """
    if beam < 1:
        raise HardytError(f"beam: must be >= 1, got {beam}")

    def point(config):
        return {"layers": dict(config), "accuracy": evaluate(config),
                "cost": sum(cost[(n, lab)] for n, lab in config.items())}

    start = {n: "layernorm" for n in names}
    seen = {tuple(start.values()): point(start)}
    states = [start]
    for name in names:
        layer_points = []
        for state in states:
            for lab in options[name]:
                config = state | {name: lab}
                key = tuple(config.values())
                if key not in seen:
                    seen[key] = point(config)
                    if progress is not None:
                        progress.update(1)
                layer_points.append(seen[key])
        states = [p["layers"] for p in _spread(pareto(layer_points), beam)]
    return list(seen.values())


def exhaustive(names: list[str], options: dict[str, list[str]], cost: dict[tuple, float], evaluate,
               progress=None) -> list[dict]:
    """Every configuration, measured: the points :func:`beam_search` returns, all of them."""
    points = []
    for labels in itertools.product(*(options[n] for n in names)):
        config = dict(zip(names, labels))
        points.append({"layers": config, "accuracy": evaluate(config),
                       "cost": sum(cost[(n, lab)] for n, lab in config.items())})
        if progress is not None:
            progress.update(1)
    return points


def search(names: list[str], options: dict[str, list[str]], cost: dict[tuple, float], evaluate,
           beam: int = 3, progress=None) -> tuple[list[dict], str]:
    """``(points, method)``: :func:`exhaustive` (``"exact"``) when the configurations are no more than
    the beam would measure (``L * K * beam``, K the most choices of a layer), else :func:`beam_search`.

    >>> names, options = ["a", "b"], {"a": ["layernorm", "x"], "b": ["layernorm", "x"]}
    >>> cost = {(n, lab): (0 if lab == "x" else 1) for n in names for lab in options[n]}
    >>> points, method = search(names, options, cost, lambda c: 0.5, beam=1)
    >>> method, len(points)
    ('exact', 4)
    """
    space = 1
    for n in names:
        space *= len(options[n])
    if space <= len(names) * max(len(options[n]) for n in names) * beam:
        return exhaustive(names, options, cost, evaluate, progress), "exact"
    return beam_search(names, options, cost, evaluate, beam, progress), "beam"


def pick_within(front: list[dict], reference: float, max_drop_pt: float) -> dict:
    """The cheapest point of ``front`` within ``max_drop_pt`` points of ``reference`` accuracy.

    >>> pick_within([{"cost": 1, "accuracy": .80}, {"cost": 2, "accuracy": .895}], .90, 1.0)["cost"]
    2
    """
    ok = [p for p in front if 100 * (reference - p["accuracy"]) <= max_drop_pt + 1e-9]
    if not ok:
        raise HardytError(f"no configuration within {max_drop_pt} points of {100 * reference:.2f} % "
                          f"(the best measured: {100 * max(p['accuracy'] for p in front):.2f} %)")
    return min(ok, key=lambda p: p["cost"])


def pick_model(cal: Calibration, specs: dict[str, object], batch):
    """The pick as ``hardyt convert`` writes a model: ``(float_model, fixed_model, folded)``.

    ``specs``: ``{layer: DyTSpec}`` of the layers that become DyT (the others
    stay LayerNorm). Folded layers' gamma/beta go into their Linear layers;
    ``folded`` is :func:`fold_all`'s answer.
    """
    float_model = copy.deepcopy(cal.teacher).eval()
    for name in specs:
        set_module(float_model, name, copy.deepcopy(cal.student.get_submodule(name)))
    to_fold = [n for n, s in specs.items() if s.affine.mode == "folded"]
    folded = fold_all(float_model, to_fold, batch) if to_fold else {}
    bad = [n for n in to_fold if not folded[n]["into"]]
    if bad:
        raise HardytError(f"explore: layer(s) {bad} folded during the search but not in the pick's model")
    fixed_model = copy.deepcopy(float_model)
    for name, spec in specs.items():
        set_module(fixed_model, name, FixedDyT(spec, float_model.get_submodule(name)))
    return float_model, fixed_model, folded
