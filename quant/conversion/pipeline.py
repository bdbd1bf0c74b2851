"""Post-training LayerNorm → DyT conversion: :func:`convert` (``hardyt.quant.convert``).

The pipeline (labels never used, the input model never modified):

1. every ``nn.LayerNorm`` that runs in the forward pass is found, in
   execution order (pre-LN ViTs and post-LN models alike);
2. **sequential least squares**: each layer, in order, is fitted on the
   inputs it sees once the layers before it are DyT, against the *original*
   model's LayerNorm output (alpha by search, gamma/beta by least squares);
3. **reconstruction**: Adam on the DyT parameters only, minimizing the KL
   divergence of the logits to the LayerNorm model's plus the error of each
   DyT output to the LayerNorm output it replaces;
4. the fixed-point input scale of each layer is chosen by its output error;
5. gamma/beta are folded into the following Linear layers where that is
   exact; the others keep a per-channel affine;
6. each layer's :class:`~hardyt.quant.spec.DyTSpec` is built, and with
   ``fixed_point`` each layer becomes a :class:`FixedDyT` running the
   golden model's integer arithmetic.
"""
from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn
from tqdm import tqdm

from ..errors import HardytError
from .clip import choose_clip
from .fit import fit_dyt
from .fidelity import check_fidelity
from .fixed_dyt import FixedDyT, dyt_layers, formats_from, make_spec, to_float
from .fold import fold_all
from .graph import capture, kl_to, layer_norm_names, model_logits, set_module
from .modules import DyT, ShiftDyT
from .options import METHODS, OPTION_DEFAULTS, ConvertOptions
from .reconstruct import reconstruct

__all__ = ["METHODS", "OPTION_DEFAULTS", "ConvertOptions", "convert", "calibration_batches", "to_float", "dyt_layers"]


def _tensors(batch):
    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, dict):
        return [v for v in batch.values() if isinstance(v, torch.Tensor)]
    if isinstance(batch, (tuple, list)):
        return [v for v in batch if isinstance(v, torch.Tensor)]
    return []


def calibration_batches(calib) -> list:
    """The calibration batches as a list; empty or constant data is an error.

    A single tensor is split into batches of 64 samples.
    """
    if isinstance(calib, torch.Tensor):
        calib = list(calib.split(64)) if calib.ndim else [calib]
    try:
        batches = list(calib)
    except TypeError:
        raise HardytError(f"calibration data: expected an iterable of batches, got {type(calib).__name__}") from None
    batches = [b for b in batches if not all(t.shape[:1] == (0,) for t in _tensors(b))]
    if not batches:
        raise HardytError("calibration set is empty: no samples to calibrate on")
    # Constant data gives every LayerNorm the same input: nothing to fit alpha on.
    ranges = {}
    for b in batches:
        for i, t in enumerate(_tensors(b)):
            lo, hi = float(t.min()), float(t.max())
            a, z = ranges.get(i, (lo, hi))
            ranges[i] = (min(a, lo), max(z, hi))
    if ranges and all(lo == hi for lo, hi in ranges.values()):
        raise HardytError(f"calibration set is constant (every value is {next(iter(ranges.values()))[0]:g}): "
                          "alpha cannot be calibrated on it")
    return batches


def _samples(batches) -> int:
    n = 0
    for b in batches:
        ts = _tensors(b)
        n += ts[0].shape[0] if ts and ts[0].ndim else 1
    return n


def _first_samples(batches, n: int) -> list:
    """The leading batches that hold at least ``n`` samples (all of them if fewer)."""
    total = 0
    for i, b in enumerate(batches):
        total += _samples([b])
        if total >= n:
            return batches[:i + 1]
    return batches


def _check_layer_norms(model: nn.Module, names: list[str]) -> None:
    for name in names:
        ln = model.get_submodule(name)
        if len(ln.normalized_shape) != 1:
            raise HardytError(f"{name}: LayerNorm over {tuple(ln.normalized_shape)} — only the last dimension "
                              "can become DyT")


def _ln_affine(ln: nn.LayerNorm):
    c = ln.normalized_shape[0]
    w = ln.weight.detach().float() if ln.weight is not None else torch.ones(c)
    b = ln.bias.detach().float() if getattr(ln, "bias", None) is not None else torch.zeros(c)
    return w, b


def _fit_layers(teacher, student, names, batches, opts, bar) -> dict:
    """Closed-form fit of every layer (method naive/lstsq/sequential); swaps them into ``student``."""
    rows, seed = opts.rows_per_batch, opts.seed
    targets = capture(teacher, names, batches, rows_per_batch=rows, outputs=True, seed=seed)
    sequential = opts.method in ("sequential", "reconstruct")
    fits = {}
    for name in names:
        ln = teacher.get_submodule(name)
        x = capture(student, [name], batches, rows_per_batch=rows, seed=seed)[name][0] if sequential \
            else targets[name][0]
        keep = _ln_affine(ln) if opts.method == "naive" else None
        fits[name] = fit_dyt(x, targets[name][1], shifts=opts.alpha_shift, keep_affine=keep)
        if sequential:
            set_module(student, name, fits[name].module(ln.normalized_shape[0]))
        bar.update(1)
    if not sequential:
        for name in names:
            set_module(student, name, fits[name].module(teacher.get_submodule(name).normalized_shape[0]))
    return fits


def _clips(student, names, batches, formats, opts) -> dict:
    xs = capture(student, names, batches, rows_per_batch=opts.rows_per_batch, seed=opts.seed + 1)
    return {n: choose_clip(n, student.get_submodule(n), xs[n][0], formats) for n in names}


def _alpha_of(dyt: DyT) -> float:
    return float(dyt.alpha.detach().reshape(-1)[0])


def convert(model: nn.Module, calib, *, fixed_point=False, **options):
    """Replace every LayerNorm of ``model`` by a calibrated DyT; return ``(converted, report)``.

    Parameters
    ----------
    model : nn.Module
        Any model with ``nn.LayerNorm`` layers over the last dimension; it is
        deep-copied, never modified.
    calib : iterable of batches
        A batch is passed as ``model(**batch)`` if it is a dict, else
        ``model(batch)``. The output may be a tensor, a tuple (first element)
        or an object with ``.logits``. Labels are never needed.
    fixed_point : bool or dict
        ``True`` makes every DyT layer compute the golden model's integer
        arithmetic (:class:`FixedDyT`); a dict overrides the formats of
        :data:`hardyt.quant.fixed_dyt.FORMAT_DEFAULTS` (e.g.
        ``{"in_bits": 6, "tanh": "pwl"}``) and implies ``True``.
    **options
        See :class:`~hardyt.quant.conversion.options.ConvertOptions` (``method``, ``steps``, ``alpha_shift``,
        ``fold``, ``keep``, ``quant_aware``, ...).

    Returns
    -------
    converted : nn.Module
    report : dict
        ``layers``: per layer ``name``, ``alpha``, ``alpha_shift``,
        ``in_scale``, ``clip``, ``fit_error`` (relative, closed-form fit),
        ``clip_error``, ``folded``, ``folded_into``, ``spec`` (the DyTSpec
        as a dict); and totals (``seconds``, ``calib_samples``, ``kl`` of
        the converted model's logits to the original's on the calibration set).
    """
    t0 = time.perf_counter()
    opts = ConvertOptions.from_kwargs(**options)
    formats = formats_from(fixed_point)
    batches = calibration_batches(calib)
    torch.manual_seed(opts.seed)
    teacher = copy.deepcopy(model).eval()
    student = copy.deepcopy(model).eval()
    all_names = layer_norm_names(teacher, batches[0])
    unknown = set(opts.keep) - set(all_names)
    if unknown:
        raise HardytError(f"convert: keep names no LayerNorm of the model: {sorted(unknown)}")
    if not all_names:
        raise HardytError("model has no nn.LayerNorm that runs in its forward pass: nothing to convert")
    names = [n for n in all_names if n not in set(opts.keep)]
    _check_layer_norms(teacher, names)
    with torch.no_grad():
        teacher_logits = [model_logits(teacher, b).detach() for b in batches]
    if not all(torch.isfinite(t).all() for t in teacher_logits):
        raise HardytError("model output on the calibration set is not finite")

    steps = opts.steps if opts.method == "reconstruct" and names else 0
    total = len(names) * 2 + steps
    with tqdm(total=total, desc="convert", unit="step", disable=not opts.progress, leave=False) as bar:
        # Closed-form stages on a bounded subset: their memory grows with the rows they
        # hold, and a larger calibration set pays off in the reconstruction, not here.
        fit_batches = _first_samples(batches, opts.fit_samples)
        fits = _fit_layers(teacher, student, names, fit_batches, opts, bar)
        dyts = {n: student.get_submodule(n) for n in names}
        losses = []
        if steps:
            quant = None
            if opts.quant_aware:
                scales = {n: c[0] for n, c in _clips(student, names, fit_batches, formats, opts).items()}
                quant = (scales, formats["in_bits"], formats["out_bits"])
            losses = reconstruct(student, dyts, batches, teacher, steps=steps, lr=opts.lr,
                                 alpha_lr=opts.alpha_lr, quant=quant, augment_mode=opts.augment,
                                 temperature=opts.temperature, feature_weight=opts.feature_weight,
                                 other_lr=opts.self_distill_lr,
                                 seed=opts.seed, progress=bar)
        clips = _clips(student, names, fit_batches, formats, opts) if names else {}
        bar.update(len(names))
    folded = fold_all(student, names, batches[0]) if opts.fold and names else {}

    layers, specs = [], {}
    for name in names:
        dyt = student.get_submodule(name)
        in_scale, clip, clip_err = clips[name]
        shift = dyt.shift.tolist() if isinstance(dyt, ShiftDyT) else None
        gamma = None if dyt.weight is None else dyt.weight.detach().numpy()
        beta = None if dyt.bias is None else dyt.bias.detach().numpy()
        spec = make_spec(name, _alpha_of(dyt), in_scale, formats, channels=dyt.channels, alpha_shift=shift,
                         gamma=gamma, beta=beta)
        specs[name] = spec
        into = folded.get(name, {}).get("into", [])
        layers.append({
            "name": name, "spec_name": spec.name, "channels": dyt.channels, "alpha": _alpha_of(dyt),
            "alpha_shift": shift, "in_scale": in_scale, "clip": clip, "fit_error": fits[name].error,
            "clip_error": clip_err, "folded": bool(into), "folded_into": into,
            "fold_change": folded.get(name, {}).get("change"), "spec": spec.to_dict(),
        })
    if fixed_point is not False and fixed_point is not None:
        for name in names:
            set_module(student, name, FixedDyT(specs[name], student.get_submodule(name)))
    with torch.no_grad():
        kl = sum(float(kl_to(t, model_logits(student, b))) * len(t) for t, b in zip(teacher_logits, batches))
    kl /= sum(len(t) for t in teacher_logits)
    report = {
        "method": opts.method, "fixed_point": bool(fixed_point), "formats": formats,
        "options": opts.as_report(),
        "calib_samples": _samples(batches), "calib_batches": len(batches),
        "layers": layers, "kept_layernorms": [n for n in all_names if n not in names],
        "folded": sum(1 for layer in layers if layer["folded"]),
        "kl": kl if math.isfinite(kl) else None,
        "reconstruction_loss": {"first": losses[0], "last": losses[-1]} if losses else None,
    }
    # The fixed point checked against float, every conversion (docs/fixed_point.md, "Fidelity check").
    report |= check_fidelity(student, specs, layers, batches, formats, rows_per_batch=opts.rows_per_batch,
                             seed=opts.seed + 2, strict=opts.strict)
    report["seconds"] = time.perf_counter() - t0
    return student, report
