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
from ..runtime.graph import hooks, kl_to, model_logits, token_mask, token_rows
from .modules import effective_alpha
from .schedule import compute_seconds

__all__ = ["STOPPED_WORSE", "quantized_forward", "reconstruct", "to_device", "feature_distance"]

STOPPED_WORSE = "the held-out check stayed worse than where it started"


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
                feature_scale: dict | None = None, quant=None, device=None, progress=None, referee=None,
                objective: str = "kl", patience: int | None = None, budget: float | None = None) -> dict:
    """Adam on the DyT parameters (and ``weights``) toward the LayerNorm model.

    Returns ``{"losses": per step, "held_out": None or {"best_step", "kl": [[step, score], ...], "best",
    "start"}, "steps_run", "stopped"}`` (why it stopped: ``steps``, ``time budget``, or
    :data:`STOPPED_WORSE` after ``patience`` checks in a row worse than the starting state).

    ``data`` is a :class:`~hardyt.quant.conversion.calibration.Calibration`:
    each step takes this rank's rows of the next batch (augmented afresh
    with ``opts.augment``) and the teacher's logits on them, computed then
    (never cached: the set may be any size). The loss is the KL of the
    logits at ``opts.temperature`` (``objective="kl"``; ``"cosine"``:
    :func:`feature_distance` of the output) plus ``opts.feature_weight`` times the
    mean over layers of each DyT output's MSE to the LayerNorm output at the
    same place in ``teacher``, divided by ``feature_scale[name]`` (the
    LayerNorm output's variance). ``alpha_lr`` is relative to each layer's
    starting alpha; ``weights`` (name → parameter of ``model``) adapt at
    ``opts.self_distill_lr``; cosine decay. Every other parameter is frozen
    for the duration. Under torch.distributed the gradients are summed over
    the ranks weighted by their rows: the same step as one process on the
    whole batch. ``quant`` = ``(scales, in_bits, out_bits)`` trains through
    the fixed-point quantization (straight-through). With a ``referee``
    (:class:`~hardyt.quant.conversion.referee.Referee`) the trainable state
    with the lowest :meth:`~hardyt.quant.conversion.referee.Referee.score`,
    measured every ``opts.eval_every`` steps, is the one kept. ``budget``
    (seconds): the steps shrink to fit it, measured at each check.
    """
    steps = opts.steps
    if steps <= 0:
        return {"losses": [], "held_out": None, "steps_run": 0, "stopped": "no steps"}
    t0 = compute_seconds()
    features = _Features(teacher, model, dyts, feature_scale) if opts.feature_weight else contextlib.nullcontext()
    frozen = {p: p.requires_grad for p in model.parameters()}
    groups = _param_groups(model, dyts, opts.lr, opts.alpha_lr, weights or {}, opts.self_distill_lr,
                           relative=opts.relative_lr)
    trainable = [p for g in groups for p in g["params"]]
    opt = torch.optim.Adam(groups)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    stopper = _EarlyStop(model, referee, trainable) if referee is not None else None
    run = _Step(model, teacher, data, opts, objective, features, trainable, opt, device)
    ctx = quantized_forward(dyts, *quant) if quant else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    stopped, step = "steps", 0
    try:
        with features, ctx, torch.enable_grad():
            while step < steps:
                run(step, steps)
                with torch.no_grad():
                    for m in dyts.values():
                        m.alpha.clamp_(min=1e-6)
                step += 1
                if progress is not None:
                    progress.update(1)
                if step % opts.eval_every and step != steps:
                    continue
                if stopper:
                    stopper.check(step)
                    if patience and stopper.worse_than_start() >= patience:
                        stopped = STOPPED_WORSE
                        break
                if budget is not None:  # the mean over ranks, so every rank decides alike
                    elapsed = all_sum([compute_seconds() - t0])[0] / rank_world()[1]
                    if elapsed >= budget:
                        stopped = "time budget"
                        break
                    steps = min(steps, step + int((budget - elapsed) * step / max(elapsed, 1e-9)))
        if stopper:
            stopper.restore()
    finally:
        for p, flag in frozen.items():
            p.requires_grad_(flag)
        model.train(was_training)
    held = {"best_step": stopper.best[1], "kl": stopper.history, "best": stopper.best[0],
            "start": stopper.history[0][1]} if stopper else None
    return {"losses": run.losses, "held_out": held, "steps_run": step, "stopped": stopped}


class _Step:
    """One reconstruction step: the next batch, augmented, the loss against the teacher, Adam, the decay."""

    def __init__(self, model, teacher, data, opts, objective, features, trainable, opt, device):
        self.model, self.teacher, self.opts, self.objective = model, teacher, opts, objective
        self.features, self.trainable, self.opt, self.device = features, trainable, opt, device
        self.stream = data.cycle()
        self.gen = torch.Generator().manual_seed(opts.seed)
        self.losses = []

    def __call__(self, step: int, steps: int) -> None:
        rank, world = rank_world()
        opts = self.opts
        local = to_device(next(self.stream), self.device)
        n_local = batch_samples(local)
        n = all_sum([n_local])[0] if world > 1 else n_local
        self.opt.zero_grad(set_to_none=False)
        loss = torch.zeros(())
        if n_local:
            batch = augment_batch(local, opts.augment, self.gen, (rank, world, int(n))) if opts.augment else local
            with torch.no_grad():
                target = model_logits(self.teacher, batch)
            out = model_logits(self.model, batch)
            mask = token_mask(batch)
            loss = kl_to(target, out, opts.temperature) if self.objective == "kl" else \
                feature_distance(target, out, mask)
            if opts.feature_weight:
                loss = loss + opts.feature_weight * self.features.loss(mask)
            (loss * (n_local / n)).backward()
        sum_gradients(self.trainable)
        self.opt.step()
        decay = 0.5 * (1 + math.cos(math.pi * (step + 1) / steps))
        for g in self.opt.param_groups:
            g["lr"] = g["initial_lr"] * decay
        self.losses.append(float(loss.detach()))


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


def feature_distance(target: torch.Tensor, out: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The objective for outputs that are not logits (hidden states, embeddings): mean over the
    last-dimension vectors of ``1 - cosine``, plus the MSE relative to the target's variance (the scale);
    token states ``(B, T, C)`` only where ``mask`` (:func:`token_mask`) keeps the token.

    >>> t = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    >>> round(float(feature_distance(t, t)), 6)
    0.0
    """
    t, o = token_rows(target.float(), mask), token_rows(out.float(), mask)
    cos = F.cosine_similarity(t, o, dim=1, eps=1e-12)
    return (1 - cos).mean() + F.mse_loss(o, t) / t.var().clamp_min(1e-12)


class _EarlyStop:
    """Keeps the trainable state with the lowest referee score (the same on every rank)."""

    def __init__(self, model, referee, params):
        self.model, self.referee, self.params = model, referee, params
        self.best = (referee.score(model), 0, [p.detach().clone() for p in params])
        self.history = [(0, self.best[0])]

    def worse_than_start(self) -> int:
        """How many of the last checks in a row scored worse than the starting state.

        Not "checks since the best": under the cosine decay the score often
        rises while the rate is high and falls below its best as it anneals
        (docs/conversion.md, "How the default was chosen"). Only a phase that
        stays worse than where it started is hurting the model.
        """
        start, n = self.history[0][1], 0
        for _, score in reversed(self.history[1:]):
            if score <= start:
                break
            n += 1
        return n

    def check(self, step: int) -> None:
        score = self.referee.score(self.model)
        self.history.append((step, score))
        if score < self.best[0]:
            self.best = (score, step, [p.detach().clone() for p in self.params])

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

    def loss(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean over layers of the DyT output's MSE to the LayerNorm output, relative to its variance,
        over the tokens ``mask`` keeps (:func:`token_mask`; ``None``: every row).

        The variance is the fixed ``scale[name]`` when given (the same on every
        rank and every step), else the batch's.
        """
        t = {n: token_rows(v, mask) for n, v in self.seen["teacher"].items()}
        s = {n: token_rows(v, mask) for n, v in self.seen["student"].items()}
        return sum(F.mse_loss(s[n], t[n]) / (self.scale[n] if self.scale else t[n].var().clamp_min(1e-12))
                   for n in self.names) / len(self.names)


def _param_groups(model: nn.Module, dyts: dict, lr: float, alpha_lr: float, weights: dict,
                  weight_lr: float, relative=None) -> list[dict]:
    """Adam groups: each alpha at ``alpha_lr`` times itself, gamma/beta at ``lr``, ``weights`` at ``weight_lr``
    (``relative``: each weight tensor at ``relative`` times its RMS, at least 1e-3 of it — the step is a
    share of the tensor's scale, whatever the model's).

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
        if relative:
            groups += [{"params": [p], "lr": relative * max(float(p.detach().float().pow(2).mean().sqrt()), 1e-3)}
                       for p in weights.values()]
        else:
            groups.append({"params": list(weights.values()), "lr": weight_lr})
    return groups
