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

__all__ = ["beat_index", "lane_channels"]


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
