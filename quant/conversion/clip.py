"""The fixed-point input scale of a DyT layer, chosen by its output error."""
from __future__ import annotations

import math

import torch

from ..contract.fixed import signed_range
from ..contract.tanh import full_scale
from ..errors import HardytError
from .fixed_dyt import FixedDyT, make_spec
from .modules import DyT, ShiftDyT, effective_alpha

__all__ = ["choose_clip"]


def choose_clip(name: str, dyt: DyT, x: torch.Tensor, formats: dict, *, candidates: int = 40):
    """Input scale of the fixed-point layer minimizing its output error on ``x``.

    The error is ``mean((gamma * (fixed(x) - tanh(alpha x)))**2)``, the
    affine output's, over the calibration rows ``x`` (``(rows, C)``); the
    clip is searched from 5 % of the largest useful input (where tanh
    saturates in the output format, or max|x| if smaller) up to all of it.
    Returns ``(in_scale, clip, error)``.
    """
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
