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
from .graph import hooks, kl_to, model_logits
from .modules import effective_alpha

__all__ = ["quantized_forward", "reconstruct"]


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


def reconstruct(model: nn.Module, dyts: dict, batches: list, teacher: nn.Module, *, steps: int,
                lr: float = 2e-3, alpha_lr: float = 2e-3, quant=None, augment_mode: str = "",
                temperature: float = 1.0, feature_weight: float = 0.0, other_lr: float = 0.0, seed: int = 0,
                progress=None) -> list[float]:
    """Adam on the DyT parameters only: KL of the logits to the LayerNorm model's.

    ``dyts`` maps names to DyT modules inside ``model``; every other
    parameter is frozen for the duration. ``teacher`` is the LayerNorm
    model. ``alpha_lr`` is relative to each layer's starting alpha. Cosine
    learning-rate decay. ``quant`` = ``(scales, in_bits, out_bits)`` trains
    through the fixed-point quantization (straight-through estimator);
    ``augment_mode`` varies the batches (:func:`~hardyt.quant.conversion.augment.augment_batch`).
    ``feature_weight > 0`` adds that times the mean over layers of each DyT
    output's MSE to the LayerNorm output at the same place in the teacher
    (normalized by its variance). ``other_lr > 0``
    also trains every other weight at that rate (label-free
    self-distillation: not post-training any more, never the default).
    Returns the loss per step.
    """
    if steps <= 0:
        return []
    targets = _Targets(teacher, batches, augment_mode, seed, keep_batches=not (augment_mode or feature_weight))
    features = _Features(teacher, model, dyts) if feature_weight else contextlib.nullcontext()
    frozen = {p: p.requires_grad for p in model.parameters()}
    opt = torch.optim.Adam(_param_groups(model, dyts, lr, alpha_lr, other_lr))
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    losses = []
    ctx = quantized_forward(dyts, *quant) if quant else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    try:
        with features, ctx, torch.enable_grad():
            for step in range(steps):
                batch, target = targets.pair(step)
                loss = kl_to(target, model_logits(model, batch), temperature)
                if feature_weight:
                    loss = loss + feature_weight * features.loss()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                decay = 0.5 * (1 + math.cos(math.pi * (step + 1) / steps))
                for g in opt.param_groups:
                    g["lr"] = g["initial_lr"] * decay
                with torch.no_grad():
                    for m in dyts.values():
                        m.alpha.clamp_(min=1e-6)
                losses.append(float(loss.detach()))
                if progress is not None:
                    progress.update(1)
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.train(was_training)
    return losses


class _Targets:
    """Calibration batches (augmented afresh each step when asked) and the teacher's logits on them."""

    def __init__(self, teacher: nn.Module, batches: list, augment_mode: str, seed: int, *, keep_batches: bool):
        self.teacher, self.batches, self.augment_mode = teacher, batches, augment_mode
        self.gen = torch.Generator().manual_seed(seed)
        self.keep = keep_batches
        self.cache = {}

    def pair(self, step: int):
        b = step % len(self.batches)
        batch = augment_batch(self.batches[b], self.augment_mode, self.gen) if self.augment_mode \
            else self.batches[b]
        if not self.keep or b not in self.cache:
            with torch.no_grad():
                self.cache[b] = model_logits(self.teacher, batch)
        return batch, self.cache[b]


class _Features(contextlib.ExitStack):
    """While active, keeps each DyT's output and the teacher's LayerNorm output at the same place."""

    def __init__(self, teacher: nn.Module, model: nn.Module, dyts: dict):
        super().__init__()
        self.names = list(dyts)
        self.seen = {"teacher": {}, "student": {}}
        self.enter_context(hooks([(n, teacher.get_submodule(n)) for n in dyts], lambda n: self._keep("teacher", n)))
        self.enter_context(hooks(list(dyts.items()), lambda n: self._keep("student", n)))

    def _keep(self, kind, name):
        def f(_m, _i, out):
            self.seen[kind][name] = out
        return f

    def loss(self) -> torch.Tensor:
        """Mean over layers of the DyT output's MSE to the LayerNorm output, relative to its variance."""
        t, s = self.seen["teacher"], self.seen["student"]
        return sum(F.mse_loss(s[n], t[n]) / t[n].var().clamp_min(1e-12) for n in self.names) / len(self.names)


def _param_groups(model: nn.Module, dyts: dict, lr: float, alpha_lr: float, other_lr: float) -> list[dict]:
    """Adam groups: each alpha at ``alpha_lr`` times itself, gamma/beta at ``lr``, the rest at ``other_lr``.

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
    if other_lr > 0:
        mine = {id(p) for g in groups for p in g["params"]}
        others = [p for p in model.parameters() if id(p) not in mine]
        for p in others:
            p.requires_grad_(True)
        groups.append({"params": others, "lr": other_lr})
    return groups
