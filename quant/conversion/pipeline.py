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
from dataclasses import replace

import torch
from torch import nn

from ..errors import HardytError
from ..progress import progress
from .calibration import Calibration, batch_samples
from .clip import choose_clip
from .distributed import all_sum, pick_device, rank_world
from .fit import fit_dyt
from .fidelity import check_fidelity
from .fixed_dyt import FixedDyT, dyt_layers, formats_from, layer_formats, make_spec, to_float
from .fold import fold_all
from ..runtime.graph import capture, is_logits, kl_to, layer_norm_names, model_logits, selected_output, set_module
from .modules import DyT, ShiftDyT
from .options import METHODS, OPTION_DEFAULTS, ConvertOptions
from .guard import guarded_reconstruct, phase_record, stop_reason
from .reconstruct import reconstruct, to_device
from .schedule import FROZEN_FEATURE_WEIGHT, plan_steps
from .referee import Referee, referee_warnings, teacher_section
from .weights import adapted_parameters, snapshot, weight_changes

__all__ = ["METHODS", "OPTION_DEFAULTS", "ConvertOptions", "convert", "clip_inputs", "calibration_batches", "to_float",
           "dyt_layers"]


def calibration_batches(calib) -> list:
    """The calibration batches as a list (non-empty ones); empty or constant data is an error.

    A single tensor is split into batches of 64 samples. For callers that
    need every batch at hand (partial replacement); :func:`convert` streams.
    """
    data = Calibration(calib, fit_samples=math.inf)
    return data.holdout + data.fit


def _check_layer_norms(model: nn.Module, names: list[str]) -> None:
    for name in names:
        ln = model.get_submodule(name)
        if len(ln.normalized_shape) != 1:
            raise HardytError(f"{name}: LayerNorm over {tuple(ln.normalized_shape)} — only the last dimension "
                              "can become DyT")


def _ln_affine(ln: nn.LayerNorm):
    c = ln.normalized_shape[0]
    w = ln.weight.detach().float().cpu() if ln.weight is not None else torch.ones(c)
    b = ln.bias.detach().float().cpu() if getattr(ln, "bias", None) is not None else torch.zeros(c)
    return w, b


def _fit_layers(teacher, student, names, batches, opts, bar) -> tuple[dict, dict]:
    """Closed-form fit of every layer (method naive/lstsq/sequential); swaps them into ``student``.

    Returns the fits and each LayerNorm output's variance (the feature loss's scale).
    """
    rows, seed = opts.rows_per_batch, opts.seed
    targets = {n: (x.cpu(), y.cpu()) for n, (x, y) in
               capture(teacher, names, batches, rows_per_batch=rows, outputs=True, seed=seed).items()}
    sequential = opts.method in ("sequential", "reconstruct")
    fits = {}
    for name in names:
        ln = teacher.get_submodule(name)
        x = capture(student, [name], batches, rows_per_batch=rows, seed=seed)[name][0].cpu() if sequential \
            else targets[name][0]
        keep = _ln_affine(ln) if opts.method == "naive" else None
        fits[name] = fit_dyt(x, targets[name][1], shifts=opts.alpha_shift, keep_affine=keep)
        if sequential:
            set_module(student, name, fits[name].module(ln.normalized_shape[0]).to(_device_of(student)))
        bar.update(1)
    if not sequential:
        for name in names:
            set_module(student, name, fits[name].module(teacher.get_submodule(name).normalized_shape[0])
                       .to(_device_of(student)))
    return fits, {n: float(y.var().clamp_min(1e-12)) for n, (_, y) in targets.items()}


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.zeros(())).device


def _clip_rows(student, names, batches, opts) -> dict:
    """``{layer: (rows, C)}``: the inputs each layer's input scale is chosen on."""
    xs = capture(student, names, batches, rows_per_batch=opts.rows_per_batch, seed=opts.seed + 1)
    return {n: xs[n][0] for n in names}


def _clips(student, names, batches, formats, opts) -> dict:
    xs = _clip_rows(student, names, batches, opts)
    return {n: choose_clip(n, student.get_submodule(n), xs[n], layer_formats(formats, n)) for n in names}


def clip_inputs(student: nn.Module, names: list[str], calib, **options) -> dict:
    """``{layer: (rows, C)}``: the rows :func:`convert` (same ``calib`` and ``options``) chooses each layer's
    input scale on, for a converted, unfolded ``student``; so that a caller builds the specs other formats
    would give (:func:`~hardyt.quant.conversion.clip.choose_clip`) exactly as ``convert`` builds them."""
    opts = ConvertOptions.from_kwargs(**options)
    return _clip_rows(student, names, Calibration(calib, fit_samples=opts.fit_samples, holdout=opts.holdout).fit,
                      opts)


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
    opts = ConvertOptions.from_kwargs(**options)
    with selected_output(opts.output):
        return _convert(model, calib, fixed_point, opts)


def _convert(model, calib, fixed_point, opts: ConvertOptions):
    t0 = time.perf_counter()
    formats = formats_from(fixed_point)
    rank, world = rank_world()
    device = pick_device(opts.device)
    data = Calibration(calib, fit_samples=opts.fit_samples, holdout=opts.holdout, rank=rank, world=world)
    torch.manual_seed(opts.seed)
    teacher = copy.deepcopy(model).eval().to(device)
    student = copy.deepcopy(model).eval().to(device)
    fit_batches = [to_device(b, device) for b in data.fit]
    all_names = layer_norm_names(teacher, fit_batches[0])
    unknown = set(opts.keep) - set(all_names)
    if unknown:
        raise HardytError(f"convert: keep names no LayerNorm of the model: {sorted(unknown)}")
    unknown = set(formats.get("layers", {})) - set(all_names)
    if unknown:
        raise HardytError(f"convert: fixed_point layers names no LayerNorm of the model: {sorted(unknown)}")
    if not all_names:
        raise HardytError("model has no nn.LayerNorm that runs in its forward pass: nothing to convert")
    names = [n for n in all_names if n not in set(opts.keep)]
    _check_layer_norms(teacher, names)
    with torch.no_grad():
        if not all(torch.isfinite(model_logits(teacher, b)).all() for b in fit_batches):
            raise HardytError("model output on the calibration set is not finite")
    objective = opts.objective if opts.objective != "auto" else \
        ("kl" if is_logits(teacher, fit_batches[0]) else "cosine")
    referee = Referee(teacher, data.holdout, classifier=objective == "kl") if data.holdout else None

    recon_on = opts.method == "reconstruct" and bool(names) and opts.steps != 0
    adapts = recon_on and opts.weight_lr > 0
    plan = plan_steps(steps=opts.steps, time_budget=opts.time_budget, adapt=adapts and opts.guard,
                      train_samples=data.samples - data.holdout_samples, batch=batch_samples(fit_batches[0]),
                      frozen_feature_weight=FROZEN_FEATURE_WEIGHT if adapts else opts.feature_weight)
    with progress(total=len(names) * 2 + (plan.total if recon_on else 0), desc="convert", unit="step",
                  disable=not opts.progress or rank,
              leave=False) as bar:
        # Closed-form stages on a bounded prefix (the same on every rank): their memory grows
        # with the rows they hold; a larger calibration set pays off in the reconstruction.
        fits, feature_scale = _fit_layers(teacher, student, names, fit_batches, opts, bar)
        dyts = {n: student.get_submodule(n) for n in names}
        weights = adapted_parameters(student, dyts, opts.adapt, fit_batches[0]) if adapts else {}
        before = snapshot(weights)
        recon = _reconstruct(student, dyts, data, teacher, opts, plan, weights, fit_batches, formats,
                             referee=referee, objective=objective, feature_scale=feature_scale, device=device,
                             progress=bar) if recon_on else {"losses": [], "held_out": None, "phases": [], "choice": None}
        changes = weight_changes(before, weights)
        teacher, student = teacher.cpu(), student.cpu()
        clips = _clips(student, names, data.fit, formats, opts) if names else {}
        bar.update(len(names))
    folded = fold_all(student, names, data.fit[0]) if opts.fold and names else {}

    layers, specs = _layer_records(student, names, fits, clips, folded, formats)
    fixed = fixed_point is not False and fixed_point is not None
    if fixed:
        for name in names:
            set_module(student, name, FixedDyT(specs[name], student.get_submodule(name)))
    samples, n_batches = data.samples, data.batches
    report = {
        "method": opts.method, "fixed_point": bool(fixed_point), "formats": formats,
        "options": opts.as_report(),
        "calib_samples": samples, "calib_batches": n_batches, "held_out_samples": data.holdout_samples,
        "world_size": world, "device": str(device),
        "layers": layers, "kept_layernorms": [n for n in all_names if n not in names],
        "folded": sum(1 for layer in layers if layer["folded"]),
        "kl": _logit_kl(teacher, student, data.fit) if objective == "kl" else None,
        "kl_samples": sum(batch_samples(b) for b in data.fit), "objective": objective,
        "reconstruction_loss": {"first": recon["losses"][0], "last": recon["losses"][-1]} if recon["losses"] else None,
        "held_out": recon["held_out"],
        "weights": _weights_record(opts, changes, recon["choice"]),
    }
    # The fixed point checked against float, every conversion (docs/fixed_point.md, "Fidelity check").
    report |= check_fidelity(student, specs, layers, data.fit, formats, rows_per_batch=opts.rows_per_batch,
                             seed=opts.seed + 2, classifier=objective == "kl")
    # The converted model against the model given, on the held-out samples (docs/conversion.md, "The referee").
    report["teacher"] = teacher_section(referee, student, fixed, names, data, objective)
    report["teacher"] |= {"weights": recon["choice"], "steps": plan.as_report() if recon_on else None,
                          "phases": recon["phases"], "stopped": stop_reason(recon["phases"])}
    report["warnings"] = report["warnings"] + referee_warnings(report["teacher"])
    if opts.strict and report["warnings"]:
        raise HardytError("convert --strict: the converted model fails its checks (fixed point vs float DyT; the "
                          "held-out check against the LayerNorm model):\n  " + "\n  ".join(report["warnings"]))
    report["seconds"] = time.perf_counter() - t0
    return student, report


def _reconstruct(student, dyts, data, teacher, opts, plan, weights, fit_batches, formats, *, referee, objective,
                 **kw) -> dict:
    """The reconstruction: guarded (frozen phase, then the weights kept only if they beat it), or not."""
    quant = None
    if opts.quant_aware:
        scales = {n: c[0] for n, c in _clips(student, list(dyts), fit_batches, formats, opts).items()}
        quant = (scales, formats["in_bits"], formats["out_bits"])
    if opts.guard or not weights:
        return guarded_reconstruct(student, dyts, data, teacher, opts, plan, weights=weights, referee=referee,
                                   objective=objective, quant=quant, **kw)
    recon = reconstruct(student, dyts, data, teacher, replace(opts, steps=plan.total), weights=weights,
                        referee=referee, objective=objective, budget=plan.seconds, quant=quant, **kw)
    return recon | {"phases": [phase_record("adapted, unguarded", recon)], "choice": None}


def _layer_records(student, names, fits, clips, folded, formats) -> tuple[list[dict], dict]:
    """Per DyT layer: the report's record and the :class:`DyTSpec` the hardware builds."""
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
    return layers, specs


def _weights_record(opts: ConvertOptions, changes: dict, choice: dict | None) -> dict:
    """What the report says of the weights besides DyT's: which adapted, at what rate, how far each moved
    (relative norm of the change made by the reconstruction, before gamma/beta folding), and whether the
    adapted ones were kept (``kept``: ``adapted`` or ``frozen``, ``reason``)."""
    kept_frozen = choice is not None and choice["kept"] == "frozen"
    adapted = "frozen" if opts.freeze_weights or (kept_frozen and changes) else (opts.adapt if changes else "none")
    if kept_frozen:
        changes = dict.fromkeys(changes, 0.0)
    return {"adapted": adapted, "lr": opts.weight_lr, "tensors": 0 if kept_frozen else len(changes),
            "max_change": max(changes.values(), default=0.0),
            "relative_change": {} if kept_frozen else changes,
            **({"kept": choice["kept"], "reason": choice["reason"]} if choice and not opts.freeze_weights else {})}


def _logit_kl(teacher, student, batches) -> float | None:
    """Mean logit KL of ``student`` to ``teacher`` over ``batches``."""
    kl, n = 0.0, 0
    with torch.no_grad():
        for b in batches:
            k = batch_samples(b)
            kl += float(kl_to(model_logits(teacher, b), model_logits(student, b))) * k
            n += k
    kl /= max(n, 1)
    return kl if math.isfinite(kl) else None
