"""Stimulus: integer input codes as tokens, and tokens as AXI4-Stream beats.

A token is one vector of C channel codes; it travels as C/P beats of P lanes,
the last beat flagged with tlast.

>>> import numpy as np
>>> beats, last = tokens_to_beats(np.arange(8).reshape(2, 4), lanes=2)
>>> beats.tolist(), last.tolist()
([[0, 1], [2, 3], [4, 5], [6, 7]], [False, True, False, True])
>>> exhaustive_tokens(3, 2).T.tolist()
[[-4, -3, -2, -1, 0, 1, 2, 3], [-3, -2, -1, 0, 1, 2, 3, -4]]
"""
from __future__ import annotations

import numpy as np

from hardyt.quant.contract.fixed import signed_range

__all__ = ["tokens_to_beats", "random_tokens", "exhaustive_tokens", "code_sweep_tokens", "extreme_tokens",
           "mixed_length_stream"]


def tokens_to_beats(x, lanes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(T, C)`` codes -> ``(T*C/P, P)`` beats and ``(T*C/P,)`` tlast flags."""
    x = np.asarray(x, dtype=np.int64)
    tokens, channels = x.shape
    per = channels // lanes
    last = np.zeros((tokens, per), dtype=bool)
    last[:, -1] = True
    return x.reshape(-1, lanes), last.reshape(-1)


def random_tokens(rng: np.random.Generator, elements: int, channels: int, in_bits: int) -> np.ndarray:
    """At least ``elements`` uniformly random codes, as whole tokens."""
    lo, hi = signed_range(in_bits)
    tokens = max(1, -(-elements // channels))
    return rng.integers(lo, hi + 1, (tokens, channels), dtype=np.int64)


def exhaustive_tokens(in_bits: int, channels: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Every code on every channel: ``2**in_bits`` tokens, channel c rotated by c (tokens
    ``start:stop`` of them: a part of the sweep).

    >>> exhaustive_tokens(3, 2, 6).tolist()
    [[2, 3], [3, -4]]
    """
    lo, _ = signed_range(in_bits)
    n = 1 << in_bits
    t = np.arange(start, n if stop is None else stop)[:, None] + np.arange(channels)[None, :]
    return lo + t % n


def code_sweep_tokens(in_bits: int, channels: int) -> np.ndarray:
    """Every input code at least once, in as few tokens as hold them: ``lo, lo+1, ...`` across the channels.

    >>> code_sweep_tokens(3, 3).tolist()
    [[-4, -3, -2], [-1, 0, 1], [2, 3, -4]]
    """
    lo, _ = signed_range(in_bits)
    n = 1 << in_bits
    tokens = -(-n // channels)
    return lo + np.arange(tokens * channels).reshape(tokens, channels) % n


def extreme_tokens(in_bits: int, channels: int) -> np.ndarray:
    """Saturation corners: min, min+1, -1, 0, 1, max-1, max on every channel, and alternating min/max."""
    lo, hi = signed_range(in_bits)
    codes = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    rows = [np.full(channels, c) for c in codes]
    alt = np.where(np.arange(channels) % 2 == 0, lo, hi)
    rows += [alt, alt[::-1].copy()]
    return np.array(rows, dtype=np.int64)


def mixed_length_stream(rng: np.random.Generator, tokens: int, channels: int, lanes: int,
                        in_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Tokens of random length (1..C/P beats), each ending with tlast."""
    lo, hi = signed_range(in_bits)
    lengths = rng.integers(1, channels // lanes + 1, tokens)
    last = np.zeros(int(lengths.sum()), dtype=bool)
    last[np.cumsum(lengths) - 1] = True
    beats = rng.integers(lo, hi + 1, (len(last), lanes), dtype=np.int64)
    return beats, last
