"""Closed-form fit of one DyT layer to the LayerNorm output it replaces.

alpha by a log-grid search refined once, gamma/beta by per-channel least
squares (or kept, for the naive swap), optionally per-channel power-of-two
alpha shifts.
"""
from __future__ import annotations

import math

import torch

from .modules import NOT_LAYERNORM_EPS, DyT, ShiftDyT

__all__ = ["FitResult", "fit_dyt"]


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


