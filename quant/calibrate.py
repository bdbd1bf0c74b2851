"""Calibration of DyT layers that replace a trained model's LayerNorms.

Labels are never used: every target is the original (LayerNorm) model's own
activations or logits on the calibration images.

* :func:`fit_dyt` — one layer in closed form: alpha by search, per-channel
  gamma/beta by least squares against the LayerNorm's output.
* :func:`reconstruct` — Adam on the DyT parameters only (every other weight
  frozen), minimizing the KL divergence of the logits to the LayerNorm
  model's, optionally through the fixed-point input/output quantization
  (straight-through estimator).
* :func:`choose_clip` — the input scale of the fixed-point layer chosen by the
  layer's output error, not by the largest input.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from .dyt import DyT
from .errors import HardytError
from .fixed import signed_range
from .tanh import full_scale

__all__ = [
    "model_logits", "run_model", "get_module", "set_module", "layer_norm_names", "capture",
    "ShiftDyT", "FitResult", "fit_dyt", "augment", "reconstruct", "choose_clip", "kl_to",
]


# -- running arbitrary models ---------------------------------------------

def run_model(model: nn.Module, batch):
    """``model(**batch)`` for a dict batch, else ``model(batch)``."""
    return model(**batch) if isinstance(batch, dict) else model(batch)


def model_logits(model: nn.Module, batch) -> torch.Tensor:
    """The logits of one batch: a tensor output, ``.logits``, or the first element."""
    out = run_model(model, batch)
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, dict) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if hasattr(out, "to_tuple") and isinstance(out.to_tuple()[0], torch.Tensor):
        return out.to_tuple()[0]
    raise HardytError(f"model output: expected a tensor, a tuple or an output with .logits, got {type(out).__name__}")


def get_module(root: nn.Module, name: str) -> nn.Module:
    return root.get_submodule(name)


def set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule ``name`` (dotted path) of ``root``."""
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once what was needed is captured."""


@contextlib.contextmanager
def _hooks(modules, fn):
    handles = [m.register_forward_hook(fn(name)) for name, m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def layer_norm_names(model: nn.Module, batch) -> list[str]:
    """Names of every ``nn.LayerNorm`` in the order a forward pass runs them."""
    lns = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)]
    order: list[str] = []

    def hook(name):
        def f(_m, _i, _o):
            if name not in order:
                order.append(name)
        return f

    with torch.no_grad(), _hooks(lns, hook):
        run_model(model, batch)
    # LayerNorms the forward pass never ran are not part of the model's function.
    return order


def _row_index(n_rows: int, take: int, seed: int) -> torch.Tensor:
    if take >= n_rows:
        return torch.arange(n_rows)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_rows, generator=g)[:take].sort().values


def capture(model: nn.Module, names: list[str], batches: list, *, rows_per_batch: int | None = None,
            outputs: bool = False, seed: int = 0) -> dict:
    """Inputs (and outputs) of modules ``names`` as ``(rows, C)`` float tensors.

    The same ``seed`` picks the same token rows in every model of the same
    structure, so inputs of one model pair with outputs of another. The
    forward pass stops after the last module that ran.
    """
    got = {n: ([], []) for n in names}
    remaining = set()
    state = {"b": 0}

    def hook(name):
        def f(_m, inp, out):
            x = inp[0].detach()
            c = x.shape[-1]
            x = x.reshape(-1, c)
            idx = _row_index(x.shape[0], rows_per_batch or x.shape[0], seed * 7919 + state["b"])
            got[name][0].append(x[idx].float())
            if outputs:
                got[name][1].append(out.detach().reshape(-1, c)[idx].float())
            remaining.discard(name)
            if not remaining:
                raise _Stop
        return f

    modules = [(n, model.get_submodule(n)) for n in names]
    with torch.no_grad(), _hooks(modules, hook):
        for b, batch in enumerate(batches):
            state["b"] = b
            remaining.update(names)
            try:
                run_model(model, batch)
            except _Stop:
                pass
    return {n: (torch.cat(xs), torch.cat(ys) if ys else None) for n, (xs, ys) in got.items()}


# Callers that read a LayerNorm's ``eps`` (nn.TransformerEncoderLayer's fused fast
# path requires norm1.eps == norm2.eps) must take their generic path, which calls
# the DyT module: NaN never compares equal.
NOT_LAYERNORM_EPS = float("nan")


# -- DyT with per-channel power-of-two alpha ------------------------------

class ShiftDyT(DyT):
    """DyT whose per-channel alpha is ``alpha * 2**shift[c]`` (hardware: a left shift).

    Parameters
    ----------
    channels : int
    alpha : float
        The smallest alpha (shift 0).
    shift : sequence of int
        Per-channel shifts, 0..8.
    affine : bool
    """

    def __init__(self, channels: int, alpha: float, shift, *, affine: bool = True):
        super().__init__(channels, alpha, affine=affine)
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.int64).reshape(channels))

    def effective_alpha(self) -> torch.Tensor:
        return self.alpha * torch.exp2(self.shift.float())

    def forward(self, x):
        y = torch.tanh(self.effective_alpha() * x)
        if self.weight is not None:
            y = y * self.weight + self.bias
        return y


def effective_alpha(dyt: DyT) -> torch.Tensor:
    """Per-channel (or scalar) alpha of a DyT layer."""
    return dyt.effective_alpha() if isinstance(dyt, ShiftDyT) else dyt.alpha


# -- closed-form fit of one layer ------------------------------------------

class FitResult:
    """alpha (scalar), shift (per channel or None), gamma, beta, relative error."""

    def __init__(self, alpha, shift, gamma, beta, error):
        self.alpha, self.shift, self.gamma, self.beta, self.error = alpha, shift, gamma, beta, error

    def module(self, channels: int) -> DyT:
        if self.shift is None:
            m = DyT(channels, self.alpha)
        else:
            m = ShiftDyT(channels, self.alpha, self.shift)
        with torch.no_grad():
            m.weight.copy_(self.gamma)
            m.bias.copy_(self.beta)
        m.eps = NOT_LAYERNORM_EPS
        return m


def _residuals(x, y, alpha, gamma=None, beta=None):
    """Per-channel squared error of the best (or the given) affine of tanh(alpha x)."""
    t = torch.tanh(alpha * x)
    if gamma is not None:
        return ((t * gamma + beta - y) ** 2).mean(0), gamma, beta
    tm, ym = t.mean(0), y.mean(0)
    tc = t - tm
    vt = (tc * tc).mean(0).clamp_min(1e-12)
    cov = (tc * (y - ym)).mean(0)
    g = cov / vt
    res = ((y - ym) ** 2).mean(0) - cov * g
    return res.clamp_min(0), g, ym - g * tm


def fit_dyt(x: torch.Tensor, y: torch.Tensor, *, shifts: int = 0, keep_affine=None, grid: int = 48) -> FitResult:
    """Fit ``gamma * tanh(alpha * x) + beta`` to ``y`` (both ``(rows, C)``).

    ``keep_affine=(gamma, beta)`` fits alpha alone (the naive swap);
    otherwise gamma/beta are least squares per channel. ``shifts > 0`` also
    picks per-channel shifts ``0..shifts`` (alpha_c = alpha * 2**k_c).
    alpha is searched on a log grid, then refined on a finer one.
    """
    x, y = x.float(), y.float()
    scale = x.abs().amax().clamp_min(1e-12)
    total = ((y - y.mean(0)) ** 2).mean(0).sum().clamp_min(1e-12)
    g_kept, b_kept = keep_affine if keep_affine is not None else (None, None)

    def score(alpha):
        if shifts:
            per = torch.stack([_residuals(x, y, alpha * 2 ** k)[0] for k in range(shifts + 1)])
            best, k = per.min(0)
            return float(best.sum()), k
        return float(_residuals(x, y, alpha, g_kept, b_kept)[0].sum()), None

    lo, hi = math.log(0.02 / scale.item()), math.log(40.0 / scale.item())
    for _ in range(2):
        alphas = torch.linspace(lo, hi, grid).exp().tolist()
        scores = [score(a)[0] for a in alphas]
        i = min(range(grid), key=scores.__getitem__)
        step = (hi - lo) / (grid - 1)
        lo, hi, grid = lo + (i - 1) * step, lo + (i + 1) * step, 16
    alpha = alphas[i]
    _, shift = score(alpha)
    a = alpha if shift is None else alpha * torch.exp2(shift.float())
    res, gamma, beta = _residuals(x, y, a, g_kept, b_kept)
    return FitResult(alpha, None if shift is None else shift.tolist(), gamma, beta, float(res.sum() / total))


# -- reconstruction ----------------------------------------------------------

def kl_to(teacher_logits: torch.Tensor, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) of the softmax distributions at ``temperature``, mean over samples."""
    c = logits.shape[-1]
    return F.kl_div(F.log_softmax(logits.float() / temperature, -1).reshape(-1, c),
                    F.log_softmax(teacher_logits.float() / temperature, -1).reshape(-1, c),
                    log_target=True, reduction="batchmean") * temperature ** 2


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


def shift_radius(h: int, w: int) -> int:
    """Largest translation of the ``shift`` augmentation: 1/14 of the shorter side, at least 1.

    >>> shift_radius(28, 28), shift_radius(224, 224), shift_radius(8, 8)
    (2, 16, 1)
    """
    return max(1, round(min(h, w) / 14))


def augment(batch, mode: str, gen: torch.Generator):
    """A label-free variant of an image batch: ``flip`` (horizontal, half the
    samples), ``shift`` (each sample translated by up to :func:`shift_radius`
    pixels each way, edges replicated) and/or ``mixup`` (each sample blended
    with another, weight U(0.5, 1)); ``+``-separated. Non-image batches are
    returned unchanged."""
    def one(x):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
            return x
        n = x.shape[0]
        if "flip" in mode:
            x = torch.where((torch.rand(n, generator=gen) < 0.5)[:, None, None, None], x.flip(-1), x)
        if "shift" in mode:
            h, w = x.shape[-2:]
            r = shift_radius(h, w)
            padded = F.pad(x, (r, r, r, r), mode="replicate")
            dy, dx = torch.randint(0, 2 * r + 1, (2, n), generator=gen).tolist()
            x = torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(zip(dy, dx))])
        if "mixup" in mode:
            lam = 0.5 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
            x = lam * x + (1 - lam) * x[torch.randperm(n, generator=gen)]
        return x
    if isinstance(batch, dict):
        return {k: one(v) for k, v in batch.items()}
    return one(batch)


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
    ``augment_mode`` varies the batches (:func:`augment`).
    ``feature_weight > 0`` adds that times the mean over layers of each DyT
    output's MSE to the LayerNorm output at the same place in the teacher
    (normalized by its variance). ``other_lr > 0``
    also trains every other weight at that rate (label-free
    self-distillation: not post-training any more, never the default).
    Returns the loss per step.
    """
    if steps <= 0:
        return []
    gen = torch.Generator().manual_seed(seed)
    cache = {}
    feats = {"teacher": {}, "student": {}}

    def keep(kind, name):
        def f(_m, _i, out):
            feats[kind][name] = out
        return f

    def pair(step):
        b = step % len(batches)
        batch = augment(batches[b], augment_mode, gen) if augment_mode else batches[b]
        if augment_mode or feature_weight or b not in cache:
            with torch.no_grad():
                cache[b] = model_logits(teacher, batch)
        return batch, cache[b]

    def feature_loss():
        t, s = feats["teacher"], feats["student"]
        return sum(F.mse_loss(s[n], t[n]) / t[n].var().clamp_min(1e-12) for n in dyts) / len(dyts)

    hooks = contextlib.ExitStack()
    if feature_weight:
        hooks.enter_context(_hooks([(n, teacher.get_submodule(n)) for n in dyts], lambda n: keep("teacher", n)))
        hooks.enter_context(_hooks(list(dyts.items()), lambda n: keep("student", n)))

    frozen = {p: p.requires_grad for p in model.parameters()}
    for p in frozen:
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
        others = [p for p in frozen if id(p) not in mine]
        for p in others:
            p.requires_grad_(True)
        groups.append({"params": others, "lr": other_lr})
    opt = torch.optim.Adam(groups)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    losses = []
    ctx = quantized_forward(dyts, *quant) if quant else contextlib.nullcontext()
    was_training = model.training
    model.eval()
    try:
        with hooks, ctx, torch.enable_grad():
            for step in range(steps):
                batch, target = pair(step)
                loss = kl_to(target, model_logits(model, batch), temperature)
                if feature_weight:
                    loss = loss + feature_weight * feature_loss()
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


# -- input scale ---------------------------------------------------------

def choose_clip(name: str, dyt: DyT, x: torch.Tensor, formats: dict, *, candidates: int = 40):
    """Input scale of the fixed-point layer minimizing its output error on ``x``.

    The error is ``mean((gamma * (fixed(x) - tanh(alpha x)))**2)``, the
    affine output's, over the calibration rows ``x`` (``(rows, C)``); the
    clip is searched from 5 % of the largest useful input (where tanh
    saturates in the output format, or max|x| if smaller) up to all of it.
    Returns ``(in_scale, clip, error)``.
    """
    from .fixed_dyt import FixedDyT, make_spec
    alpha_c = effective_alpha(dyt).detach().float()
    alpha = float(dyt.alpha.detach().reshape(-1)[0]) if isinstance(dyt, ShiftDyT) else None
    shift = dyt.shift.tolist() if isinstance(dyt, ShiftDyT) else None
    if alpha is None:
        if alpha_c.numel() != 1:
            raise HardytError(f"{name}: per-channel alpha must be power-of-two shifts for fixed point")
        alpha = float(alpha_c)
    gamma = dyt.weight.detach() if dyt.weight is not None else torch.ones(x.shape[-1])
    exact = torch.tanh(alpha_c * x)
    t_max = full_scale(formats["out_bits"])
    x_sat = math.atanh(1 - 0.5 / t_max) / float(alpha_c.min())
    top = min(float(x.abs().max()), x_sat)
    if top <= 0:
        raise HardytError(f"{name}: calibration inputs are all zero; cannot choose an input scale")
    half = -signed_range(formats["in_bits"])[0]
    best = None
    for frac in torch.linspace(0.05, 1.0, candidates).tolist():
        clip = frac * top
        spec = make_spec(name, alpha, clip / half, formats, channels=x.shape[-1], alpha_shift=shift)
        err = float(((FixedDyT(spec)(x) - exact) ** 2 * gamma ** 2).mean())
        if best is None or err < best[2]:
            best = (clip / half, clip, err)
    return best
