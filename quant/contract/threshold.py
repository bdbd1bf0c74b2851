"""Threshold tanh: the correctly rounded tanh as its step points (kind ``threshold``).

A non-decreasing function onto the signed ``b``-bit codes is fully described
by where it steps: with ``L = 2**(b-1)`` the output is

    y = #{k : x >= thresholds[k]} - L,

``thresholds[k]`` (``k = 0 .. 2**b - 2``) being the smallest input whose
output is at least ``k + 1 - L``. The thresholds here are those of the
contract's correctly rounded tanh (the ``lut`` kind with ``drop_bits = 0``):
``sign(x) * min(T, round_half_up(tanh(a*|x|) / s))`` — ties of the magnitude
round up, so a negative tie rounds toward -inf, exactly as the LUT does —
found from ``atanh`` and then checked code by code against that rounding, so
the threshold kind equals the LUT on every input code. ``thresholds[0]`` is
the smallest input code (level ``-L + 1 = -T`` is always reached: code ``-L``
is never produced); a level no input code reaches has threshold
``2**(in_bits-1)``, one past the largest code, so a word takes
``in_bits + 1`` bits.

The hardware finds ``y`` by binary search, one compare per stage: stage
``i`` holds ``2**i`` thresholds addressed by the ``i`` bits found so far
(:func:`threshold_stages`); ``2**b - 1`` words whatever the input width.

>>> t = build_threshold(in_bits=6, out_bits=4, alpha_scale=0.125)
>>> t.thresholds
(-32, -13, -8, -6, -4, -2, -1, 0, 1, 2, 3, 5, 7, 9, 14)
>>> threshold_int(np.array([-32, -3, 0, 3, 31]), t)
array([-7, -3,  0,  3,  7])
>>> threshold_stages(t)[:2]
((0,), (-6, 5))
>>> small = build_threshold(6, 4, 0.01)          # levels past tanh(0.32) are never reached: 32
>>> small.thresholds[-6:], small.word_bits
((22, 32, 32, 32, 32, 32), 7)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from .check import check_codes
from .fixed import bits_for_signed, round_half_up
from .tanh_base import _check_common, _exact, _max_mag, _out_scale, full_scale

__all__ = ["TanhThreshold", "build_threshold", "threshold_int", "threshold_stages", "stage_words", "stage_search",
           "radix_stages", "radix_search"]


@dataclass(frozen=True)
class TanhThreshold:
    """A tanh given by the ``2**out_bits - 1`` inputs where its output steps.

    Parameters
    ----------
    in_bits, out_bits : int
        Signed input and output widths.
    alpha_scale : float
        tanh argument per input code.
    thresholds : tuple of int
        Non-decreasing, ``2**out_bits - 1`` of them, each in
        ``-2**(in_bits-1) .. 2**(in_bits-1)``; output ``#{x >= t} - 2**(out_bits-1)``.
    out_scale : float or None
        Real value of one output code; ``None`` means ``1/T``.
    """

    in_bits: int
    out_bits: int
    alpha_scale: float
    thresholds: tuple[int, ...] = field(repr=False)
    out_scale: float | None = None
    kind: str = field(default="threshold", init=False)

    def __post_init__(self):
        _check_common(self.in_bits, self.out_bits, self.alpha_scale, self.out_scale)
        object.__setattr__(self, "out_scale", _out_scale(self.out_scale, self.out_bits))
        object.__setattr__(self, "thresholds", tuple(self.thresholds))
        n = (1 << self.out_bits) - 1
        if len(self.thresholds) != n:
            raise SpecError("tanh.thresholds", f"must have 2**out_bits - 1 = {n} entries, got {len(self.thresholds)}")
        m = _max_mag(self.in_bits)
        check_codes("tanh.thresholds", self.thresholds, -m, m)
        if any(b < a for a, b in zip(self.thresholds, self.thresholds[1:])):
            raise SpecError("tanh.thresholds", "must be non-decreasing")
        if self.thresholds[0] != -m:
            raise SpecError("tanh.thresholds", f"entry 0 must be the smallest input code {-m} "
                                               f"(code {-full_scale(self.out_bits)} is the lowest output), "
                                               f"got {self.thresholds[0]}")

    @property
    def word_bits(self) -> int:
        """Signed width of a threshold word (``in_bits + 1`` when a level is never reached)."""
        return bits_for_signed(min(self.thresholds), max(self.thresholds))

    @property
    def stages(self) -> int:
        """Compare stages of the binary search: ``out_bits``."""
        return self.out_bits

    @property
    def rom_bits(self) -> int:
        return len(self.thresholds) * self.word_bits


def _magnitude(mag: int, alpha_scale: float, out_scale: float, t_max: int) -> int:
    """The LUT's output magnitude at ``|x| = mag``: ``min(T, round_half_up(tanh(a*mag)/s))``."""
    exact = _exact(np.array([mag], dtype=np.int64), alpha_scale, out_scale)
    return int(min(t_max, round_half_up(exact)[0]))


def _first_reaching(level: int, top: int, alpha_scale: float, out_scale: float, t_max: int) -> int:
    """Smallest magnitude ``1..top`` whose rounded output is at least ``level`` (``top + 1`` if none).

    Starts from ``atanh((level - 1/2) * s) / a`` and walks to the exact edge of
    the contract's float64 rounding (a step or two at most).
    """
    edge = (level - 0.5) * out_scale
    c = top + 1 if edge >= 1.0 else max(1, min(top + 1, math.ceil(math.atanh(edge) / alpha_scale)))

    def reaches(m):
        return _magnitude(m, alpha_scale, out_scale, t_max) >= level

    while c > 1 and reaches(c - 1):
        c -= 1
    while c <= top and not reaches(c):
        c += 1
    return c


def build_threshold(in_bits: int, out_bits: int, alpha_scale: float, out_scale: float | None = None) -> TanhThreshold:
    """The step points of the correctly rounded tanh (equal to ``build_lut(..., drop_bits=0)`` on every code).

    Level ``k >= 1`` is reached at ``x >= m_k``, the first magnitude that
    rounds to ``k`` or more; level ``-k <= 0`` at ``x >= 1 - m_{k+1}`` (a
    negative input outputs ``-k`` or more while its magnitude rounds below
    ``k + 1``); the most negative input, magnitude ``2**(in_bits-1)``, counts.

    >>> build_threshold(4, 3, 0.5).thresholds
    (-8, -2, -1, 0, 1, 2, 3)
    """
    _check_common(in_bits, out_bits, alpha_scale, out_scale)
    scale, t_max, m = _out_scale(out_scale, out_bits), full_scale(out_bits), _max_mag(in_bits)
    first = {k: _first_reaching(k, m, alpha_scale, scale, t_max) for k in range(1, t_max + 1)}
    thr = [-m]                                                        # level -T: every input
    thr += [max(-m, 1 - first[k + 1]) for k in range(t_max - 1, -1, -1)]   # levels -T+1 .. 0
    thr += [min(first[k], m) for k in range(1, t_max + 1)]          # levels 1 .. T (m: never, x <= m - 1)
    return TanhThreshold(in_bits, out_bits, float(alpha_scale), tuple(int(v) for v in thr), scale)


def threshold_int(x, t: TanhThreshold) -> np.ndarray:
    """Output codes of in-range integer codes ``x``: ``#{x >= thresholds} - 2**(out_bits-1)``.

    >>> threshold_int(np.array([-8, -1, 0, 7]), build_threshold(4, 3, 0.5))
    array([-3, -1,  0,  3])
    """
    x = np.asarray(x, dtype=np.int64)
    return np.searchsorted(np.asarray(t.thresholds, dtype=np.int64), x, side="right") - (1 << (t.out_bits - 1))


def threshold_stages(t: TanhThreshold) -> tuple[tuple[int, ...], ...]:
    """The thresholds per stage of the binary search: stage ``i`` has ``2**i`` words.

    Word ``p`` of stage ``i`` (``p`` = the ``i`` bits found so far) is
    ``thresholds[(2p + 1) * 2**(b-1-i) - 1]``: the middle of the levels
    those bits leave open.

    >>> threshold_stages(build_threshold(4, 3, 0.5))
    ((0,), (-2, 2), (-8, -1, 1, 3))
    """
    return stage_words(t.thresholds, t.out_bits)


def stage_words(thresholds, out_bits: int) -> tuple[tuple[int, ...], ...]:
    """:func:`threshold_stages` of any ``2**out_bits - 1`` non-decreasing ``thresholds``.

    >>> stage_words([-8, -2, -1, 0, 1, 2, 3], 3)
    ((0,), (-2, 2), (-8, -1, 1, 3))
    """
    b = out_bits
    assert len(thresholds) == (1 << b) - 1, (len(thresholds), b)
    return tuple(tuple(int(thresholds[((2 * p + 1) << (b - 1 - i)) - 1]) for p in range(1 << i)) for i in range(b))


def radix_stages(thresholds, out_bits: int, radix: int = 2) -> tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]:
    """The search in stages of ``log2(radix)`` output bits each (the first takes the rest when
    ``out_bits`` is not a multiple): per stage ``(bits, words)``, ``words[p]`` the ``2**bits - 1``
    thresholds it compares with once the bits found so far are ``p``, in increasing order. The stage
    appends the number of them ``x`` reaches. Radix 2 is :func:`stage_words`, one word per entry.

    >>> radix_stages([-8, -2, -1, 0, 1, 2, 3], 3, radix=4)
    ((1, ((0,),)), (2, ((-8, -2, -1), (1, 2, 3))))
    >>> t = build_threshold(6, 5, 0.1)
    >>> x = np.arange(-32, 32)
    >>> bool(np.array_equal(radix_search(x, radix_stages(t.thresholds, 5, 4)) - 16, threshold_int(x, t)))
    True
    """
    b, step = out_bits, radix.bit_length() - 1
    if radix < 2 or radix != 1 << step:
        raise ValueError(f"radix must be a power of two >= 2, got {radix}")
    assert len(thresholds) == (1 << b) - 1, (len(thresholds), b)
    widths = ([b % step] if b % step else []) + [step] * (b // step)
    out, found = [], 0
    for bits in widths:
        rest = b - found
        words = tuple(tuple(int(thresholds[(((p << bits) + q) << (rest - bits)) - 1]) for q in range(1, 1 << bits))
                      for p in range(1 << found))
        out.append((bits, words))
        found += bits
    return tuple(out)


def radix_search(x, stages) -> np.ndarray:
    """The search :func:`radix_stages` describes, stage by stage: ``#{x >= thresholds}``."""
    x = np.asarray(x, dtype=np.int64)
    p = np.zeros_like(x)
    for bits, words in stages:
        w = np.asarray(words, dtype=np.int64)[p]                 # (n, 2**bits - 1)
        p = (p << bits) + (x[:, None] >= w).sum(axis=1)
    return p


def stage_search(x, stages) -> np.ndarray:
    """The binary search the hardware runs, stage by stage: ``#{x >= thresholds}``.

    >>> t = build_threshold(4, 3, 0.5)
    >>> x = np.arange(-8, 8)
    >>> bool(np.array_equal(stage_search(x, threshold_stages(t)) - 4, threshold_int(x, t)))
    True
    """
    x = np.asarray(x, dtype=np.int64)
    p = np.zeros_like(x)
    for words in stages:
        p = 2 * p + (x >= np.asarray(words, dtype=np.int64)[p])
    return p
