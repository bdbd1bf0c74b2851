"""Threshold lists: the contract's integer functions as QONNX ``MultiThreshold`` inputs.

A ``MultiThreshold`` maps ``v`` to ``out_bias + #{j : v >= thr[c, j]}``, so any
non-decreasing integer function of ``v`` is exactly a threshold list (one row
per channel, or one row shared by all). Every list here is computed from the
contract's own functions, so the QONNX graph rounds the way the hardware does.
Rows have equal length; a level a channel never reaches gets ``+NEVER``, one
it always reaches ``-NEVER`` (finite, so FINN's threshold arithmetic stays finite).

>>> quantizer_thresholds(0.5, 3)            # codes -4..3 of x / 0.5, ties toward +inf
array([[-1.75, -1.25, -0.75, -0.25,  0.25,  0.75,  1.25]], dtype=float32)
>>> step_thresholds(np.array([[-2, -2, 0, 1]]), lo=-4, out_min=-2, out_max=1)
array([[-2., -2.,  -1.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np

from ..contract.fixed import signed_range
from ..errors import HardytError

__all__ = ["NEVER", "EXACT_INT", "quantizer_thresholds", "step_thresholds", "requant_thresholds"]

# A threshold no finite activation of a ViT reaches; float32-exact.
NEVER = np.float32(2.0 ** 100)
# float32 holds every integer of magnitude up to 2**24 exactly.
EXACT_INT = 1 << 24


def _codes_of(x: np.ndarray, in_scale: float, lo: int, hi: int) -> np.ndarray:
    """The contract's input quantizer on float32 values, computed in float64 as FixedDyT does."""
    return np.clip(np.floor(x.astype(np.float64) / in_scale + 0.5), lo, hi)


def quantizer_thresholds(in_scale: float, in_bits: int) -> np.ndarray:
    """Thresholds on a real float32 input giving ``sat(round_half_up(x / in_scale))`` codes.

    Threshold ``j`` is the smallest float32 ``x`` whose code is at least
    ``lo + j + 1``: the tie ``(k - 1/2) * in_scale`` itself maps up, as the
    contract's rounding (half toward +inf) asks, which QONNX's ``Quant``
    (half away from zero) would not do for negative ties. Use with
    ``out_bias = lo``; shape ``(1, 2**in_bits - 1)``.
    """
    lo, hi = signed_range(in_bits)
    k = np.arange(lo + 1, hi + 1, dtype=np.float64)
    thr = ((k - 0.5) * in_scale).astype(np.float32)
    # The float32 nearest the tie may sit one ulp off the float64 rule: walk to the exact edge.
    for _ in range(4):
        below = np.nextafter(thr, np.float32(-np.inf))
        thr = np.where(_codes_of(below, in_scale, lo, hi) >= k, below, thr)
        thr = np.where(_codes_of(thr, in_scale, lo, hi) >= k, thr, np.nextafter(thr, np.float32(np.inf)))
    ok = (_codes_of(thr, in_scale, lo, hi) >= k) & \
         (_codes_of(np.nextafter(thr, np.float32(-np.inf)), in_scale, lo, hi) < k)
    if not ok.all():
        raise HardytError(f"in_scale {in_scale!r}: no exact float32 threshold for code {int(k[~ok][0])}")
    return thr.reshape(1, -1)


def step_thresholds(f: np.ndarray, *, lo: int, out_min: int, out_max: int, name: str = "layer") -> np.ndarray:
    """Thresholds of a non-decreasing integer function given by its values on ``lo, lo+1, ...``.

    ``f`` is ``(rows, n)``: row ``r`` holds ``f_r(lo + i)`` at column ``i``.
    The result is ``(rows, out_max - out_min)``: threshold ``j`` is the first
    input whose value is at least ``out_min + j + 1`` (``lo`` if every input
    reaches it, ``+NEVER`` if none does). Use with ``out_bias = out_min``.
    A decreasing step is an error: no threshold list can express it.
    """
    f = np.asarray(f, dtype=np.int64)
    drop = np.argwhere(np.diff(f, axis=1) < 0)
    if drop.size:
        r, i = (int(v) for v in drop[0])
        raise HardytError(f"{name}: the integer function decreases from code {lo + i} to {lo + i + 1} "
                          f"(row {r}: {f[r, i]} -> {f[r, i + 1]}); a MultiThreshold needs it non-decreasing")
    if f.min() < out_min or f.max() > out_max:
        raise HardytError(f"{name}: values {f.min()}..{f.max()} outside the output range {out_min}..{out_max}")
    levels = np.arange(out_min + 1, out_max + 1, dtype=np.int64)
    below = (f[:, None, :] < levels[None, :, None]).sum(axis=2)       # inputs under each level
    thr = np.where(below >= f.shape[1], NEVER, lo + below.astype(np.float64))
    return thr.astype(np.float32)


def requant_thresholds(sign: np.ndarray, shift: int, out_bits: int) -> np.ndarray:
    """Thresholds of the channel affine's narrowing, on the accumulator ``|g|*t + sign*b``.

    A channel with ``sign = +1`` outputs ``sat(round_shift(acc, shift))``; one
    with ``sign = -1`` outputs ``c`` with ``-c == sat(round_shift(-acc, shift))``,
    which is non-decreasing in ``acc`` (a ``Mul`` by ``sign`` afterwards gives
    the code). Levels run from ``lo + 1`` to ``-lo`` with ``out_bias = lo``
    (``lo`` the smallest ``out_bits`` code); shape ``(C, 2**out_bits)``.

    >>> thr = requant_thresholds(np.array([1, -1]), 1, 3)     # codes -4..3, round half = 1
    >>> thr[0, :-1].astype(int), bool(thr[0, -1] == NEVER)     # y >= k  <=>  acc >= 2k - 1
    (array([-7, -5, -3, -1,  1,  3,  5]), True)
    >>> thr[1, 1:].astype(int), bool(thr[1, 0] == -NEVER)     # -y >= k  <=>  acc >= 2k
    (array([-4, -2,  0,  2,  4,  6,  8]), True)
    """
    lo, hi = signed_range(out_bits)
    half = (1 << (shift - 1)) if shift else 0
    k = np.arange(lo + 1, -lo + 1, dtype=np.float64)
    pos = np.where(k <= hi, k * 2.0 ** shift - half, float(NEVER))            # y >= k  <=>  acc + half >= k*2^s
    neg = np.where(k >= -hi + 1, (k - 1) * 2.0 ** shift + half + 1, -float(NEVER))  # ceil((acc-half)/2^s) >= k
    thr = np.where(np.asarray(sign)[:, None] > 0, pos[None, :], neg[None, :])
    finite = np.abs(thr[np.abs(thr) < float(NEVER)])
    if finite.size and finite.max() >= EXACT_INT:
        raise HardytError(f"affine shift {shift}: thresholds reach {finite.max():.0f}, beyond float32's exact "
                          f"integers (2**24)")
    return thr.astype(np.float32)
