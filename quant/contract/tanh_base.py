"""What every fixed-point tanh kind shares: widths, the output scale, the exact function.

The kinds themselves are in :mod:`hardyt.quant.contract.tanh` (``lut``,
``pwl``) and :mod:`hardyt.quant.contract.threshold` (``threshold``).
"""
from __future__ import annotations

import numpy as np

from .check import check_int, check_real

__all__ = ["MAX_IN_BITS", "MAX_OUT_BITS", "full_scale", "range_out_scale"]

# Exhaustive error reports and int64 intermediates stay cheap below these.
MAX_IN_BITS = 24
MAX_OUT_BITS = 24


def full_scale(out_bits: int) -> int:
    """The output code that stands for 1.0: ``2**(out_bits-1) - 1``.

    >>> full_scale(8)
    127
    """
    return (1 << (out_bits - 1)) - 1


def range_out_scale(in_bits: int, out_bits: int, alpha_scale: float) -> float:
    """The output scale whose code ``T`` is the largest tanh of the input range.

    ``tanh(alpha_scale * 2**(in_bits-1)) / T``: the table spans the outputs
    the layer can produce, whatever alpha times its clip is.

    >>> round(range_out_scale(8, 8, 4 / 128) * 127, 4), round(range_out_scale(8, 8, 0.01 / 128) * 127, 4)
    (0.9993, 0.01)
    """
    _check_common(in_bits, out_bits, alpha_scale)
    return float(np.tanh(alpha_scale * _max_mag(in_bits))) / full_scale(out_bits)


def _check_common(in_bits, out_bits, alpha_scale, out_scale=None):
    check_int("tanh.in_bits", in_bits, 2, MAX_IN_BITS)
    check_int("tanh.out_bits", out_bits, 2, MAX_OUT_BITS)
    check_real("tanh.alpha_scale", alpha_scale)
    if out_scale is not None:
        check_real("tanh.out_scale", out_scale)


def _out_scale(out_scale, out_bits: int) -> float:
    """``out_scale`` as given, ``1/T`` when ``None`` (full scale 1.0, version-1 specs)."""
    return 1.0 / full_scale(out_bits) if out_scale is None else float(out_scale)


def _exact(mag: np.ndarray, alpha_scale: float, out_scale: float) -> np.ndarray:
    """Exact ``tanh(a * m) / s`` in float64 (output codes, unrounded)."""
    return np.tanh(alpha_scale * mag.astype(np.float64)) / out_scale


def _max_mag(in_bits: int) -> int:
    """Largest ``|x|`` of a signed ``in_bits`` code (that of the minimum code)."""
    return 1 << (in_bits - 1)
