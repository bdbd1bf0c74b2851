"""Stream semantics shared by every core: which channel each lane of a beat holds.

Lane ``i`` of beat ``k`` of a token holds channel ``k * P + i``. The beat
counter restarts after a beat with ``last`` set, and also wraps after
``C / P`` beats (a token with no ``last`` is taken as back-to-back tokens).

>>> beat_index(np.array([0, 0, 1, 0, 0, 0, 0]), beats_per_token=3)
array([0, 1, 2, 0, 1, 2, 0])
>>> beat_index(np.array([1, 0, 1, 0]), beats_per_token=4)
array([0, 0, 1, 0])
"""
from __future__ import annotations

import numpy as np

__all__ = ["beat_index", "lane_channels", "pack_lanes", "unpack_lanes"]


def beat_index(last, beats_per_token: int) -> np.ndarray:
    """Beat counter value for each beat of a stream with ``last`` flags."""
    last = np.asarray(last, dtype=bool)
    out = np.empty(len(last), dtype=np.int64)
    k = 0
    for n, is_last in enumerate(last):
        out[n] = k
        k = 0 if is_last or k == beats_per_token - 1 else k + 1
    return out


def lane_channels(last, lanes: int, channels: int) -> np.ndarray:
    """Channel of every lane of every beat: shape ``(beats, lanes)``.

    >>> lane_channels([0, 1], lanes=2, channels=4)
    array([[0, 1],
           [2, 3]])
    """
    k = beat_index(last, channels // lanes)
    return k[:, None] * lanes + np.arange(lanes, dtype=np.int64)[None, :]


def pack_lanes(values, bits: int) -> int:
    """``values`` as ``bits``-wide two's complement fields of one integer, lane 0 lowest
    (a beat's tdata, a ROM word).

    >>> hex(pack_lanes([1, -1], 4))
    '0xf1'
    """
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (j * bits) for j, v in enumerate(values))


def unpack_lanes(word: int, lanes: int, bits: int) -> list[int]:
    """The signed ``bits``-wide lanes of ``word`` (the inverse of :func:`pack_lanes`).

    >>> unpack_lanes(0xf1, 2, 4)
    [1, -1]
    """
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    fields = [(int(word) >> (j * bits)) & mask for j in range(lanes)]
    return [v - (1 << bits) if v & sign else v for v in fields]
