"""Reconstruction: Adam on the DyT parameters against the LayerNorm model's logits.

Labels are never used: the target is the trained (LayerNorm) model's own
output on each (augmented) calibration batch. Optionally through the
fixed-point quantization (straight-through estimator), with a per-layer
feature term, and with every other weight adapting too.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..contract.fixed import signed_range
from ..contract.tanh import full_scale
from .augment import augment_batch
from .calibration import batch_samples
from .distributed import all_sum, rank_world, sum_gradients
from ..runtime.graph import hooks, kl_to, model_logits
from .modules import effective_alpha

__all__ = ["quantized_forward", "reconstruct", "to_device", "held_out_kl"]


class _FakeQuant(torch.autograd.Function):
    """Round to codes on the forward pass, identity gradient (straight-through)."""

    @staticmethod
    def forward(ctx, x, scale, lo, hi):
        return torch.floor(x / scale + 0.5).clamp(lo, hi) * scale

    @staticmethod
    def backward(ctx, g):
        return g, None, None, None


@contextlib.contextmanager
def quantized_forward(dyts: dict, scales: dict, in_bits: int, out_bits: int):
    """Make each DyT quantize its input and tanh output (STE) while active."""
    lo, hi = signed_range(in_bits)
    t_max = full_scale(out_bits)

    def patched(m, s):
        def forward(x):
            xq = _FakeQuant.apply(x, s, lo, hi)
            t = torch.tanh(effective_alpha(m) * xq)
            t = _FakeQuant.apply(t, 1.0 / t_max, -t_max, t_max)
            return t * m.weight + m.bias if m.weight is not None else t
        return forward

    for name, m in dyts.items():
        m.forward = patched(m, scales[name])
    try:
        yield
    finally:
        for m in dyts.values():
            del m.forward


def reconstruct(model: nn.Module, dyts: dict, data, teacher: nn.Module, opts, *, weights: dict | None = None,
                feature_scale: dict | None = None, quant=None, device=None, progress=None) -> dict:
    """Adam on the DyT parameters (and ``weights``) toward the LayerNorm model.

    Returns ``{"losses": per step, "held_out": None or {"best_step", "kl": [[step, kl], ...]}}``.

    ``data`` is a :class:`~hardyt.quant.conversion.calibration.Calibration`:
    each step takes this rank's rows of the next batch (augmented afresh
    with ``opts.augment``) and the teacher's logits on them, computed then
    (never cached: the set may be any size). The loss is the KL of the
    logits at ``opts.temperature`` plus ``opts.feature_weight`` times the
    mean over layers of each DyT output's MSE to the LayerNorm output at the
    same place in ``teacher``, divided by ``feature_scale[name]`` (the
    LayerNorm output's variance). ``alpha_lr`` is relative to each layer's
    starting alpha; ``weights`` (name → parameter of ``model``) adapt at
    ``opts.self_distill_lr``; cosine decay. Every other parameter is frozen
    for the duration. Under torch.distributed the gradients are summed over
    the ranks weighted by their rows: the same step as one process on the
    whole batch. ``quant`` = ``(scales, in_bits, out_bits)`` trains through
    the fixed-point quantization (straight-through). With a hold-out
    (``data.holdout``) the trainable state with the lowest held-out KL,
    measured every ``opts.eval_every`` steps, is the one kept.
    """
    steps = opts.steps
    if steps <= 0:
        return {"losses": [], "held_out": None}
    rank, world = rank_world()
    gen = torch.Generator().manual_seed(opts.seed)
    features = _Features(teacher, model, dyts, feature_scale) if opts.feature_weight else contextlib.nullcontext()
    frozen = {p: p.requires_grad for p in model.parameters()}
    groups = _param_groups(model, dyts, opts.lr, opts.alpha_lr, weights or {}, opts.self_distill_lr)
    trainable = [p for g in groups for p in g["params"]]
    opt = torch.optim.Adam(groups)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    stopper = _EarlyStop(model, teacher, data.holdout, trainable, device) if data.holdout else None
    losses = []
    ctx = quantized_forward(dyts, *quant) if quant else contextlib.nullcontext()
    stream = data.cycle()
    was_training = model.training
    model.eval()
    try:
        with features, ctx, torch.enable_grad():
            for step in range(steps):
                local = to_device(next(stream), device)
                n_local = batch_samples(local)
                n = all_sum([n_local])[0] if world > 1 else n_local
                opt.zero_grad(set_to_none=False)
                loss = torch.zeros(())
                if n_local:
                    batch = augment_batch(local, opts.augment, gen, (rank, world, int(n))) if opts.augment \
                        else local
                    with torch.no_grad():
                        target = model_logits(teacher, batch)
                    loss = kl_to(target, model_logits(model, batch), opts.temperature)
                    if opts.feature_weight:
                        loss = loss + opts.feature_weight * features.loss()
                    (loss * (n_local / n)).backward()
                sum_gradients(trainable)
                opt.step()
                decay = 0.5 * (1 + math.cos(math.pi * (step + 1) / steps))
                for g in opt.param_groups:
                    g["lr"] = g["initial_lr"] * decay
                with torch.no_grad():
                    for m in dyts.values():
                        m.alpha.clamp_(min=1e-6)
                losses.append(float(loss.detach()))
                if stopper and ((step + 1) % opts.eval_every == 0 or step + 1 == steps):
                    stopper.check(step + 1)
                if progress is not None:
                    progress.update(1)
        if stopper:
            stopper.restore()
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.train(was_training)
    held = {"best_step": stopper.best[1], "kl": stopper.history} if stopper else None
    return {"losses": losses, "held_out": held}


def to_device(batch, device):
    """A batch (tensor, dict, tuple or list of tensors) on ``device`` (unchanged if ``None``)."""
    if device is None:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def held_out_kl(model: nn.Module, batches: list, targets: list, device=None) -> float:
    """Mean logit KL of ``model`` to ``targets`` (the teacher's logits) over ``batches``."""
    total, n = 0.0, 0
    with torch.no_grad():
        for b, t in zip(batches, targets):
            total += float(kl_to(t, model_logits(model, to_device(b, device)))) * len(t)
            n += len(t)
    return total / max(n, 1)


class _EarlyStop:
    """Keeps the trainable state with the lowest KL on the held-out batches (the same on every rank)."""

    def __init__(self, model, teacher, batches, params, device):
        self.model, self.batches, self.params, self.device = model, batches, params, device
        with torch.no_grad():
            self.targets = [model_logits(teacher, to_device(b, device)) for b in batches]
        self.best = (held_out_kl(model, batches, self.targets, device), 0, [p.detach().clone() for p in params])
        self.history = [(0, self.best[0])]

    def check(self, step: int) -> None:
        kl = held_out_kl(self.model, self.batches, self.targets, self.device)
        self.history.append((step, kl))
        if kl < self.best[0]:
            self.best = (kl, step, [p.detach().clone() for p in self.params])

    def restore(self) -> None:
        with torch.no_grad():
            for p, saved in zip(self.params, self.best[2]):
                p.copy_(saved)


class _Features(contextlib.ExitStack):
    """While active, keeps each DyT's output and the teacher's LayerNorm output at the same place."""

    def __init__(self, teacher: nn.Module, model: nn.Module, dyts: dict, scale: dict | None):
        super().__init__()
        self.names = list(dyts)
        self.scale = scale
        self.seen = {"teacher": {}, "student": {}}
        self.enter_context(hooks([(n, teacher.get_submodule(n)) for n in dyts], lambda n: self._keep("teacher", n)))
        self.enter_context(hooks(list(dyts.items()), lambda n: self._keep("student", n)))

    def _keep(self, kind, name):
        def f(_m, _i, out):
            self.seen[kind][name] = out
        return f

    def loss(self) -> torch.Tensor:
        """Mean over layers of the DyT output's MSE to the LayerNorm output, relative to its variance.

        The variance is the fixed ``scale[name]`` when given (the same on every
        rank and every step), else the batch's.
        """
        t, s = self.seen["teacher"], self.seen["student"]
        return sum(F.mse_loss(s[n], t[n]) / (self.scale[n] if self.scale else t[n].var().clamp_min(1e-12))
                   for n in self.names) / len(self.names)


def _param_groups(model: nn.Module, dyts: dict, lr: float, alpha_lr: float, weights: dict,
                  weight_lr: float) -> list[dict]:
    """Adam groups: each alpha at ``alpha_lr`` times itself, gamma/beta at ``lr``, ``weights`` at ``weight_lr``.

    Every parameter not in a group is left frozen (``requires_grad`` off);
    the caller restores the flags.
    """
    for p in model.parameters():
        p.requires_grad_(False)
    groups = []
    for m in dyts.values():
        m.alpha.requires_grad_(True)
        groups.append({"params": [m.alpha], "lr": alpha_lr * float(m.alpha.detach().abs().mean())})
        if m.weight is not None:
            m.weight.requires_grad_(True)
            m.bias.requires_grad_(True)
            groups.append({"params": [m.weight, m.bias], "lr": lr})
    if weights and weight_lr > 0:
        for p in weights.values():
            p.requires_grad_(True)
        groups.append({"params": list(weights.values()), "lr": weight_lr})
    return groups
