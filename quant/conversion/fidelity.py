"""Does the fixed-point model compute what the float DyT model computes? Checked in every conversion.

Per layer, on the float DyT model's own calibration activations (so each
layer is judged alone, not with the error of the layers before it):

* ``sqnr_db``: ``10 log10(sum(y**2) / sum((y_fixed - y)**2))``, ``y`` the
  float DyT output, ``y_fixed`` the golden model's dequantized output;
* ``min_in_bits`` / ``min_out_bits``: the smallest input (output) width at
  which the layer meets :data:`SQNR_FLOOR_DB`, the other width at the global
  format, each measured by building the layer at that width (same clip) and
  quantizing the activations, ``None`` if no width up to 16 does.

End to end, the fixed-point model against the float DyT model on the
calibration batches: ``cosine`` (mean per-sample cosine of the outputs), and
for classifiers (``(batch, classes)`` outputs) ``kl`` and ``top1_agreement``.

A layer below the SQNR floor, or agreement below its floor, is a warning
naming the layer and the remedy; ``strict`` turns warnings into an error.

>>> round(sqnr_db(torch.tensor([1.0, -1.0]), torch.tensor([1.1, -1.0])), 2)   # 10 log10(2 / 0.01)
23.01
"""
from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HardytError
from .fixed_dyt import FixedDyT, layer_formats, make_spec, to_float, with_layers
from ..runtime.graph import capture, model_logits, token_mask
from .modules import DyT

__all__ = ["SQNR_FLOOR_DB", "EXACT_DB", "AGREEMENT_FLOORS", "sqnr_db", "layer_sqnr", "spec_at", "min_widths", "agreement", "output_agreement",
           "check_fidelity"]

# Floors: see docs/fixed_point.md ("Fidelity check") for why these values.
SQNR_FLOOR_DB = 20.0
AGREEMENT_FLOORS = {"top1_agreement": 0.99, "cosine": 0.99}
_MAX_WIDTH = 16
# Zero error reports this (float64 resolves about 320 dB): JSON has no infinity.
EXACT_DB = 300.0


def sqnr_db(ref: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio of ``approx`` against ``ref``, in dB (:data:`EXACT_DB` if equal).

    A zero reference with any error is -300 dB: nothing of the signal is left.
    """
    ref, approx = ref.double(), approx.double()
    noise = float(((approx - ref) ** 2).sum())
    signal = float((ref ** 2).sum())
    if noise == 0.0:
        return EXACT_DB
    if signal == 0.0:
        return -EXACT_DB
    return max(-EXACT_DB, min(EXACT_DB, 10.0 * math.log10(signal / noise)))


def layer_sqnr(float_dyt: nn.Module, spec, x: torch.Tensor) -> float:
    """SQNR of the fixed-point layer ``spec`` against ``float_dyt`` on input rows ``x``."""
    with torch.no_grad():
        return sqnr_db(float_dyt(x), FixedDyT(spec)(x))


def _affine(dyt: DyT):
    """The float layer's gamma and beta as arrays, ``None`` when folded."""
    if dyt.weight is None:
        return None, None
    return dyt.weight.detach().numpy(), dyt.bias.detach().numpy()


def spec_at(name: str, dyt: DyT, spec, formats: dict, **widths):
    """``spec`` rebuilt with other widths, same clip (input range) and calibration."""
    f = formats | widths
    clip = spec.in_scale * 2 ** (spec.in_bits - 1)
    gamma, beta = _affine(dyt)
    return make_spec(name, spec.alpha, clip / 2 ** (f["in_bits"] - 1), f, channels=spec.channels,
                     alpha_shift=spec.alpha_shift, gamma=gamma, beta=beta)


def min_widths(name: str, dyt: DyT, spec, x: torch.Tensor, formats: dict,
               floor: float = SQNR_FLOOR_DB) -> dict:
    """Smallest ``in_bits`` and ``out_bits`` (the other at ``formats``) meeting ``floor`` on ``x``."""
    found = {}
    for key in ("in_bits", "out_bits"):
        found[f"min_{key}"] = None
        for w in range(2, _MAX_WIDTH + 1):
            if layer_sqnr(dyt, spec_at(name, dyt, spec, formats, **{key: w}), x) >= floor:
                found[f"min_{key}"] = w
                break
    return found


def output_agreement(pairs, classifier: bool, masks=None) -> dict:
    """How outputs agree with reference outputs, over ``(reference, output)`` batch pairs.

    ``cosine``: mean over samples of the cosine of the flattened outputs;
    for a ``classifier`` also ``kl`` (reference to output, mean over samples)
    and ``top1_agreement`` (share of equal argmax), else ``None``. ``masks``:
    per pair, the batch's :func:`~hardyt.quant.runtime.graph.token_mask` (or
    ``None``): a token output ``(B, T, ...)`` is compared on the tokens that
    count only, padding left out.

    >>> ref = torch.tensor([[[1.0, 0.0], [5.0, 5.0]]])      # one sample, a real token and a padding one
    >>> out = torch.tensor([[[1.0, 0.0], [-5.0, 5.0]]])
    >>> round(output_agreement([(ref, out)], False)["cosine"], 4)      # 1 / 51, the padding token counted
    0.0196
    >>> round(output_agreement([(ref, out)], False, [None])["cosine"], 4)
    0.0196
    >>> output_agreement([(ref, out)], False, [torch.tensor([[True, False]])])["cosine"]
    1.0
    """
    cos, kl, same, n = 0.0, 0.0, 0, 0
    for (ref, out), mask in zip(pairs, masks if masks is not None else itertools.repeat(None)):
        ref, out = _padding_zeroed(ref.double(), mask), _padding_zeroed(out.double(), mask)
        cos += float(F.cosine_similarity(ref.reshape(len(ref), -1), out.reshape(len(out), -1), dim=1,
                                         eps=1e-30).sum())
        if classifier:
            kl += float(F.kl_div(F.log_softmax(out, -1), F.log_softmax(ref, -1), log_target=True, reduction="sum"))
            same += int((ref.argmax(-1) == out.argmax(-1)).sum())
        n += len(ref)
    n = max(n, 1)
    return {"samples": n, "cosine": cos / n, "kl": kl / n if classifier else None,
            "top1_agreement": same / n if classifier else None}


def _padding_zeroed(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``x`` with its padding tokens set to 0 when it is a token output ``(B, T, ...)`` of a batch with
    the ``(B, T)`` ``mask``: in a cosine they then count on neither side."""
    if mask is None or x.ndim < 3 or tuple(x.shape[:2]) != tuple(mask.shape):
        return x
    return x * mask.to(x.device, x.dtype).reshape(*mask.shape, *[1] * (x.ndim - 2))


def agreement(reference: nn.Module, model: nn.Module, batches, classifier: bool | None = None) -> dict:
    """:func:`output_agreement` of ``model``'s outputs with ``reference``'s on ``batches``
    (``classifier`` None: a classifier when the outputs are ``(batch, classes)``)."""
    with torch.no_grad():
        pairs = [(model_logits(reference, b), model_logits(model, b)) for b in batches]
    return output_agreement(pairs, all(ref.ndim == 2 for ref, _ in pairs) if classifier is None else classifier,
                            [token_mask(b) for b in batches])


def _alpha_clip(spec) -> float:
    """alpha times the clip, the largest tanh argument the layer sees (its largest alpha shift included)."""
    return spec.tanh.alpha_scale * 2 ** (spec.tanh.in_bits - 1)


def _layer_warning(layer: dict, floor: float) -> str:
    meets = [f"{k}={layer['min_' + k]}" for k in ("in_bits", "out_bits") if layer["min_" + k]]
    widths = f"it meets the floor at {' or '.join(meets)}" if meets else "no width up to 16 bits meets the floor"
    return (f"{layer['name']}: fixed-point DyT SQNR {layer['sqnr_db']:.1f} dB is below the {floor:g} dB floor "
            f"(alpha*clip = {layer['alpha_clip']:.3g}); {widths}: give it more bits, or keep this "
            f"LayerNorm (convert(..., keep=['{layer['name']}']); hardyt convert --max-drop keeps the costliest)")


def _agreement_warnings(fid: dict, layers: list[dict]) -> list[str]:
    worst = sorted(layers, key=lambda r: r["sqnr_db"])[:3]
    blame = ", ".join(f"{r['name']} ({r['sqnr_db']:.1f} dB)" for r in worst)
    out = []
    for key, floor in AGREEMENT_FLOORS.items():
        if fid[key] is not None and fid[key] < floor:
            out.append(f"end to end: the fixed-point model's {key} with the float DyT model is {fid[key]:.4f}, "
                       f"below the {floor:g} floor; lowest-SQNR layers: {blame}: give them more bits or "
                       "keep those LayerNorms")
    return out


def check_fidelity(model: nn.Module, specs: dict, layers: list[dict], batches, formats: dict, *,
                   rows_per_batch: int = 512, seed: int = 0, strict: bool = False,
                   classifier: bool | None = None) -> dict:
    """Check a converted ``model`` (float DyT or FixedDyT layers) against its fixed point.

    Adds ``alpha_clip``, ``out_scale``, ``sqnr_db``, ``min_in_bits`` and
    ``min_out_bits`` to each entry of ``layers`` (in place) and returns
    ``{"fidelity": {...}, "warnings": [...]}`` for the report. With
    ``strict``, any warning is a :class:`HardytError` listing them all.
    """
    float_model = to_float(model)
    fixed_model = with_layers(float_model, lambda n, m: FixedDyT(specs[n], m))
    xs = capture(float_model, list(specs), batches, rows_per_batch=rows_per_batch, seed=seed)
    warnings = []
    for layer in layers:
        name = layer["name"]
        dyt, spec = float_model.get_submodule(name), specs[name]
        x = xs[name][0]
        layer |= {"alpha_clip": _alpha_clip(spec), "out_scale": spec.out_scale,
                  "sqnr_db": layer_sqnr(dyt, spec, x), **min_widths(name, dyt, spec, x, layer_formats(formats, name))}
        if not layer["sqnr_db"] >= SQNR_FLOOR_DB:
            warnings.append(_layer_warning(layer, SQNR_FLOOR_DB))
    fid = agreement(float_model, fixed_model, batches, classifier)
    fid |= {"sqnr_floor_db": SQNR_FLOOR_DB, "floors": dict(AGREEMENT_FLOORS),
            "min_sqnr_db": min((r["sqnr_db"] for r in layers), default=None)}
    warnings += _agreement_warnings(fid, layers)
    if strict and warnings:
        raise HardytError("convert --strict: the fixed-point model fails its fidelity check:\n  "
                          + "\n  ".join(warnings))
    return {"fidelity": fid, "warnings": warnings}
