"""The LayerNorm core's reciprocal square root, in integers: seed table plus one Newton step.

``spec`` arguments are :class:`~hardyt.quant.contract.layernorm.LayerNormSpec`
(only ``rsqrt_index_bits``, ``rsqrt_frac`` and ``rsqrt_table`` are read).
"""
from __future__ import annotations

import numpy as np

from ..errors import HardytError
from .check import check_int
from .fixed import round_half_up, round_shift

__all__ = ["build_rsqrt_table", "rsqrt_int", "rsqrt_error"]


def build_rsqrt_table(index_bits: int, frac: int) -> tuple[int, ...]:
    """The reciprocal square root seeds: ``3 * 2**(index_bits-2)`` entries, ``frac`` fractional bits.

    The normalized variance ``u`` lies in ``[1, 4)``; its leading ``index_bits``
    bits (two integer, the rest fractional) pick bin ``i`` covering
    ``[lo, hi) = [(i + 2^(T-2)) * 2^(2-T), +2^(2-T))``. The entry is the value
    with equal relative error at both ends, ``2 / (sqrt(lo) + sqrt(hi))``,
    rounded half up: the best start for the Newton step, whose error is
    ``1.5 * delta**2`` for a start ``(1 + delta)`` times the true value.

    >>> build_rsqrt_table(3, 8)
    (230, 194, 171, 155, 142, 132)
    """
    check_int("rsqrt.index_bits", index_bits, 2, 14)
    check_int("rsqrt.frac", frac, 2, 30)
    width = 2.0 ** (2 - index_bits)
    lo = (np.arange(3 << (index_bits - 2)) + (1 << (index_bits - 2))) * width
    seed = 2.0 / (np.sqrt(lo) + np.sqrt(lo + width))
    return tuple(int(v) for v in round_half_up(seed * (1 << frac)))


def _bit_length(v: np.ndarray) -> np.ndarray:
    """``int.bit_length`` of every element of a non-negative int64 array."""
    v = v.copy()
    n = np.zeros(v.shape, dtype=np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= (np.int64(1) << s)
        n += np.where(big, s, 0)
        v = np.where(big, v >> s, v)
    return n + (v > 0)


def rsqrt_int(w, spec: "LayerNormSpec") -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal square root of positive integers ``w``: ``(r1, e)`` with ``w^(-1/2) ~ r1 / 2^(R + e)``.

    1. normalize by an even shift: ``e = (bit_length(w) - 1) // 2``, so
       ``w / 4^e`` lies in ``[1, 4)``; ``u = floor(w * 2^R / 4^e)`` (R
       fractional bits; the dropped bits are truncated: ``u`` indexes a table
       and must stay below ``4 * 2^R``);
    2. seed ``r0 = table[(u >> (R + 2 - T)) - 2^(T-2)]`` (the leading ``T`` bits of ``u``);
    3. one Newton step ``r1 = r0 * (3 - u * r0^2) / 2`` in fixed point, each
       product rounded half up back to ``R`` fractional bits:
       ``a = round(r0^2, R)``, ``b = round(u*a, R)``, ``r1 = round(r0 * (3*2^R - b), R + 1)``.

    >>> from hardyt.quant.contract.layernorm import random_layernorm_spec
    >>> spec = random_layernorm_spec(4, 1, 8, 8)
    >>> r1, e = rsqrt_int(np.array([1, 2, 3, 4, 1000000]), spec)
    >>> r1.tolist(), e.tolist()
    ([16383, 11585, 9459, 16383, 8389], [0, 0, 0, 1, 9])
    >>> round(float(r1[4]) / 2 ** (14 + 9) * 1000, 4)      # 1000 / sqrt(1e6)
    1.0
    """
    R, T = spec.rsqrt_frac, spec.rsqrt_index_bits
    w = np.asarray(w, dtype=np.int64)
    if w.size and w.min() < 1:
        raise HardytError(f"rsqrt: needs positive integers, got {w.min()}")
    e = (_bit_length(w) - 1) // 2
    s = 2 * e - R
    u = np.where(s >= 0, w >> np.maximum(s, 0), w << np.maximum(-s, 0))
    table = np.asarray(spec.rsqrt_table, dtype=np.int64)
    r0 = table[(u >> (R + 2 - T)) - (1 << (T - 2))]
    a = round_shift(r0 * r0, R)
    b = round_shift(u * a, R)
    r1 = round_shift(r0 * ((3 << R) - b), R + 1)
    return r1, e


def rsqrt_error(spec: "LayerNormSpec") -> dict:
    """Worst relative error of :func:`rsqrt_int` over every normalized ``u`` (all ``3 * 2^R`` of them).

    Measured against ``1/sqrt(u')`` for every real ``u'`` that truncates to ``u``
    (both ends of ``[u, u + 1)`` in units of ``2^-R``), so it includes the
    truncation of ``u``, the seed, the Newton step and its roundings.

    >>> from hardyt.quant.contract.layernorm import random_layernorm_spec
    >>> round(rsqrt_error(random_layernorm_spec(4, 1, 8, 8))["worst_rel"], 6)
    0.000129
    """
    R = spec.rsqrt_frac
    u = np.arange(1 << R, 4 << R, dtype=np.int64)
    # W = u * 2^R has bit_length - 1 in {2R, 2R + 1}: e = R for every u and the normalization keeps u as it is.
    r1, e = rsqrt_int(u << R, spec)
    assert np.all(e == R)
    got = r1.astype(np.float64) / 2.0 ** R
    lo, hi = 1 / np.sqrt(u / 2.0 ** R), 1 / np.sqrt((u + 1) / 2.0 ** R)
    rel = np.maximum(np.abs(got / lo - 1), np.abs(got / hi - 1))
    k = int(np.argmax(rel))
    return {"worst_rel": float(rel[k]), "worst_u": float(u[k] / 2.0 ** R), "entries": len(spec.rsqrt_table),
            "bits": len(spec.rsqrt_table) * (R + 1)}
