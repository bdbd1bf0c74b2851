"""The DyT golden model: what a DyT core computes, in integer NumPy.

This function *defines* the hardware's arithmetic; the RTL is held to it bit
for bit. No torch, no amaranth.

>>> from hardyt.quant.contract.tanh import build_lut
>>> from hardyt.quant.contract.spec import DyTSpec, ChannelAffine
>>> t = build_lut(6, 8, 0.1)
>>> folded = DyTSpec(channels=2, lanes=1, in_bits=6, in_scale=0.05, alpha=2.0, tanh=t)
>>> dyt_golden(np.array([[-32, 5], [0, 31]]), folded)
array([[-127,   59],
       [   0,  126]])
>>> ch = DyTSpec(2, 1, 6, 0.05, 2.0, t, ChannelAffine(gamma=(64, -32), beta=(0, 256),
...              gamma_bits=8, beta_bits=12, shift=6, out_bits=8, out_scale=1 / 64))
>>> dyt_golden(np.array([[-32, 5], [0, 31]]), ch)
array([[-127,  -25],
       [   0,  -59]])
"""
from __future__ import annotations

import numpy as np

from .check import check_input
from .fixed import FixedFormat, narrow
from .tanh import tanh_int

__all__ = ["dyt_golden", "dyt_elements"]


def dyt_golden(x, spec: DyTSpec) -> np.ndarray:
    """DyT of integer input codes ``x`` (shape ``(..., C)``) as output codes.

    1. per-channel alpha shift: ``x << alpha_shift[c]`` (exact, widens);
    2. ``t = tanh_int(x)`` — odd, saturating, see :mod:`hardyt.quant.contract.tanh`;
    3. ``folded``: output ``t``; ``channel``: output
       ``sat(round_shift(gamma[c] * t + beta[c], shift), out_bits)``.
    """
    x = check_input(x, spec.channels, spec.in_bits)
    return dyt_elements(x, np.arange(spec.channels), spec)


def dyt_elements(x: np.ndarray, channel: np.ndarray, spec: DyTSpec) -> np.ndarray:
    """DyT of codes ``x`` whose channels are ``channel`` (broadcast together).

    The streaming form of :func:`dyt_golden`, for beats whose channel comes from
    a counter rather than a position. ``x`` must already be in range.
    """
    x = np.asarray(x, dtype=np.int64)
    channel = np.asarray(channel, dtype=np.int64)
    if spec.alpha_shift is not None:
        x = x << np.asarray(spec.alpha_shift, dtype=np.int64)[channel]
    t = tanh_int(x, spec.tanh)
    a = spec.affine
    if a.mode != "channel":
        return t
    acc = np.asarray(a.gamma, dtype=np.int64)[channel] * t + np.asarray(a.beta, dtype=np.int64)[channel]
    return narrow(acc, a.shift, FixedFormat(a.out_bits))
