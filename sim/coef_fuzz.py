"""Fuzzed coefficient frames for the DyT engine, and what the engine must do with each.

:func:`make_frame` draws one frame of a :data:`KINDS` kind from the layers'
good frames; :func:`expect` is a model of the loader (:mod:`hardyt.hw.datapath.coef_loader`)
for an engine without channel affine: the status a frame ends with and, if it
loads, the layer and table it puts in a bank. :func:`claims` says whether a
frame claims (and so invalidates) a bank. Used by ``tests/fuzz_coef.py``
(Amaranth simulator) and the ``fuzzed_frames`` cocotb test (:mod:`hardyt.sim.cocotb_engine`).

>>> from hardyt.hw.datapath.cores import random_dyt_spec
>>> from hardyt.hw.datapath.engine_set import engine_shape, layer_frame
>>> specs = [random_dyt_spec(8, 2, 5, 8, seed=i, name=f"l{i}") for i in range(2)]
>>> shape = engine_shape(specs)
>>> good = layer_frame(specs[1], 1, shape)
>>> expect(good, shape)[:2], expect(good[:-1], shape)[0], expect(good + [0], shape)[0]
((1, 1), 3, 3)
>>> import numpy as np
>>> expect(make_frame("truncated", np.random.default_rng(0), [good]), shape)[0]
3
"""
from __future__ import annotations

import numpy as np

from hardyt.hw.datapath.coef_frame import COEF_BITS, MAGIC, checksum, entries_per_beat, frame_beats

__all__ = ["KINDS", "make_frame", "expect", "claims", "disguised", "lookup", "sign_extend"]

MASK = (1 << COEF_BITS) - 1
KINDS = ("valid", "random", "truncated", "oversized", "bit flip", "swapped beats", "resealed table",
         "resealed header")


def sign_extend(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def _header_ok(head: int, shape) -> bool:
    return (head & 0xFF) == MAGIC and (head >> 8 & 0xFF) < shape.layers and (head >> 16) < shape.beats


def claims(words, shape) -> bool:
    """Whether the frame claims a bank (good header, more beats follow): that bank is invalid until it loads."""
    return _header_ok(words[0], shape) and len(words) > 1


def disguised(words, good_frames) -> bool:
    """Whether a frame that loads (status 1) is none of the layers' frames: a fault the checks let through.

    Resealed frames (a new table or header, the checksum recomputed) are self-consistent: no checksum can
    tell them. Two beats swapped keep the plain sum (:func:`hardyt.hw.datapath.coef_frame.checksum`).

    >>> good = [[0x1D7, 5, 7, 0x1D7 + 12]]
    >>> disguised(good[0], good), disguised([0x1D7, 7, 5, 0x1D7 + 12], good)
    (False, True)
    """
    return [int(w) for w in words] not in [[int(w) for w in f] for f in good_frames]


def lookup(table, x, in_bits: int) -> np.ndarray:
    """A folded layer's outputs: the table entry of each input code's two's complement."""
    return np.asarray(table, dtype=np.int64)[np.asarray(x, dtype=np.int64) & ((1 << in_bits) - 1)]


def expect(words, shape) -> tuple[int, int | None, list | None]:
    """The model of the loader: ``(status, layer, table)`` of one frame (``tlast`` on its last word);
    ``shape`` needs ``layers``, ``beats``, ``in_bits`` and ``table_bits``."""
    head = words[0]
    if not _header_ok(head, shape):
        return 2, None, None
    if len(words) != frame_beats(shape.in_bits, shape.table_bits):
        return 3, None, None
    if checksum(words[:-1]) != words[-1]:
        return 4, None, None
    k, bits = entries_per_beat(shape.table_bits), shape.table_bits
    table = [sign_extend(words[1 + u // k] >> (u % k) * bits & ((1 << bits) - 1), bits) for u in range(1 << shape.in_bits)]
    return 1, head >> 8 & 0xFF, table


def make_frame(kind: str, rng, good_frames: list) -> list[int]:
    """One frame of ``kind`` (see :data:`KINDS`) made from a random layer's good frame."""
    good = [int(w) for w in good_frames[int(rng.integers(len(good_frames)))]]
    n = len(good)
    if kind == "valid":
        return good
    if kind == "random":
        words = [int(w) for w in rng.integers(0, 1 << 32, int(rng.integers(1, 2 * n)), dtype=np.uint64)]
        if rng.random() < 0.5:  # a good magic, to get past the header now and then
            words[0] = (words[0] & ~0xFF & MASK) | MAGIC
        return words
    if kind == "truncated":
        return good[:int(rng.integers(1, n))]
    if kind == "oversized":
        return good + [int(w) for w in rng.integers(0, 1 << 32, int(rng.integers(1, 8)), dtype=np.uint64)]
    f = list(good)
    if kind == "bit flip":
        j = int(rng.integers(n))
        f[j] ^= 1 << int(rng.integers(32))
        return f
    if kind == "swapped beats":
        a, b = rng.choice(n, 2, replace=False)
        f[a], f[b] = f[b], f[a]
        return f
    if kind == "resealed table":
        f[1:-1] = [int(w) for w in rng.integers(0, 1 << 32, n - 2, dtype=np.uint64)]
    elif kind == "resealed header":
        f[0] = (MAGIC if rng.random() < 0.8 else int(rng.integers(256))) | int(rng.integers(4)) << 8 \
            | int(rng.integers(6)) << 16
    return f[:-1] + [checksum(f[:-1])]


