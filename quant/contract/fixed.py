"""Fixed-point integer arithmetic: formats, the one rounding rule, saturation.

Bit-count convention (used everywhere in hardyt): ``bits`` is the total width
of the code *including* the sign bit for signed formats; ``frac`` is the number
of fractional bits, so a code ``q`` stands for ``q * 2**-frac`` and the format
has ``bits - frac`` integer bits, sign included. Q1.7 is ``FixedFormat(8, 7)``.

All functions take and return ``np.int64`` arrays (scalars are promoted), are
pure, and never wrap: every narrowing saturates.

>>> fmt = FixedFormat(8, 7)
>>> fmt.min_code, fmt.max_code
(-128, 127)
>>> quantize(np.array([0.5, -1.0, 2.0]), fmt)
array([  64, -128,  127])
>>> round_shift(np.array([5, 6, -5, -6]), 2)     # x / 4, round half up
array([ 1,  2, -1, -1])
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from .check import check_int, check_real

__all__ = [
    "Rounding", "FixedFormat", "round_half_up", "round_shift", "saturate", "narrow",
    "quantize", "dequantize", "signed_range", "bits_for_signed", "bits_for_unsigned",
]


class Rounding(enum.Enum):
    """How a right shift drops bits.

    ``HALF_UP`` (the datapath's rule): add half an LSB, then shift right
    arithmetically, so ties go towards +inf. ``FLOOR``: plain arithmetic shift.
    """

    HALF_UP = "half_up"
    FLOOR = "floor"


def signed_range(bits: int) -> tuple[int, int]:
    """Smallest and largest code of a signed ``bits``-wide integer.

    >>> signed_range(8)
    (-128, 127)
    """
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def bits_for_signed(lo: int, hi: int) -> int:
    """Fewest bits (sign included) of a signed integer holding ``lo..hi``.

    >>> bits_for_signed(-128, 127), bits_for_signed(0, 128), bits_for_signed(0, 0)
    (8, 9, 1)
    """
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def bits_for_unsigned(hi: int) -> int:
    """Fewest bits of an unsigned integer holding ``0..hi`` (at least 1).

    >>> bits_for_unsigned(0), bits_for_unsigned(1), bits_for_unsigned(128)
    (1, 1, 8)
    """
    return max(1, int(hi).bit_length())


@dataclass(frozen=True)
class FixedFormat:
    """A two's complement (or unsigned) fixed-point format.

    Parameters
    ----------
    bits : int
        Total width, sign bit included.
    frac : int
        Fractional bits (may exceed ``bits`` or be negative).
    signed : bool
        Two's complement if true.
    """

    bits: int
    frac: int = 0
    signed: bool = True

    def __post_init__(self):
        check_int("bits", self.bits, 1)
        check_int("frac", self.frac, -(1 << 16))

    @property
    def min_code(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def lsb(self) -> float:
        """Real value of one code step."""
        return 2.0 ** -self.frac


def _as_int64(x) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "iub":
        raise TypeError(f"expected an integer array, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def round_half_up(v) -> np.ndarray:
    """Real values to the nearest integers, ties toward +inf: the contract's rule on reals.

    The same rule as :func:`round_shift` on integers; every real-to-code
    step in hardyt (tables, quantization, coefficients) goes through it.

    >>> round_half_up(np.array([-1.5, -0.5, 0.5, 1.49]))
    array([-1,  0,  1,  1])
    """
    return np.floor(np.asarray(v, dtype=np.float64) + 0.5).astype(np.int64)


def round_shift(x, shift: int, rounding: Rounding = Rounding.HALF_UP) -> np.ndarray:
    """Divide integers by ``2**shift`` with the given rounding (``shift >= 0``).

    This is the only place hardyt drops low bits; the RTL computes it as
    ``(x + (1 << (shift - 1))) >>> shift``.

    >>> round_shift(np.array([-3, -2, -1, 0, 1, 2, 3]), 1)
    array([-1, -1,  0,  0,  1,  1,  2])
    >>> round_shift(np.array([-3, 3]), 1, Rounding.FLOOR)
    array([-2,  1])
    >>> round_shift(np.array([7]), 0)
    array([7])
    """
    x = _as_int64(x)
    if shift < 0:
        raise ValueError(f"shift must be >= 0, got {shift}")
    if shift == 0:
        return x.copy()
    if rounding is Rounding.HALF_UP:
        x = x + np.int64(1 << (shift - 1))
    return x >> np.int64(shift)


def saturate(x, fmt: FixedFormat) -> np.ndarray:
    """Clamp codes into ``fmt``'s range (the only narrowing hardyt does).

    >>> saturate(np.array([-300, 5, 300]), FixedFormat(8))
    array([-128,    5,  127])
    """
    return np.clip(_as_int64(x), fmt.min_code, fmt.max_code)


def narrow(x, shift: int, fmt: FixedFormat) -> np.ndarray:
    """Round away ``shift`` low bits (half up), then saturate into ``fmt``.

    >>> narrow(np.array([1000, -1000, 6]), 2, FixedFormat(8))
    array([ 127, -128,    2])
    """
    return saturate(round_shift(x, shift), fmt)


def quantize(x, fmt: FixedFormat, scale: float | None = None) -> np.ndarray:
    """Real values to codes: ``x / scale`` rounded half up, saturated.

    ``scale`` defaults to the format's LSB ``2**-frac``; pass a real scale for
    the edge formats whose step is not a power of two.

    >>> quantize(np.array([0.26, -0.26, 0.25]), FixedFormat(4, 2))
    array([ 1, -1,  1])
    >>> quantize(np.array([1.0, -1.0]), FixedFormat(8), scale=1 / 127)
    array([ 127, -127])
    """
    scale = fmt.lsb if scale is None else float(scale)
    check_real("scale", scale)
    v = np.nan_to_num(np.asarray(x, dtype=np.float64) / scale, nan=0.0, posinf=fmt.max_code, neginf=fmt.min_code)
    return round_half_up(np.clip(v, fmt.min_code, fmt.max_code))


def dequantize(q, fmt: FixedFormat, scale: float | None = None) -> np.ndarray:
    """Codes to real values (``float64``).

    >>> dequantize(np.array([64, -128]), FixedFormat(8, 7))
    array([ 0.5, -1. ])
    """
    scale = fmt.lsb if scale is None else float(scale)
    return _as_int64(q).astype(np.float64) * scale
