"""Bulk mode's stimulus and expected-value files (``bulk_x.mem``, ``bulk_y.mem``, ``bulk_last.mem``).

The stream is the saturation corners, every code on every channel when it
fits :data:`EXHAUSTIVE_BUDGET`, the activations if given, then random
tokens; or one part of the exhaustive sweep (:mod:`hardyt.sim.exhaustive`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hardyt.quant.contract.stream import lane_channels
from hardyt.quant.files import atomic_write_bytes

from .stimulus import exhaustive_tokens, extreme_tokens, random_tokens, tokens_to_beats

__all__ = ["EXHAUSTIVE_BUDGET", "exhaustive_fits", "bulk_stream", "write_bulk_files"]

#: Bulk mode sends every code on every channel when that is at most this many elements (any input
#: width): 4M elements, ~15 s of Verilator here. ``hardyt sim --exhaustive`` covers any size in parts.
EXHAUSTIVE_BUDGET = 1 << 22


def exhaustive_fits(spec) -> bool:
    """Whether the bulk stream of ``spec`` holds every code on every channel (inputs of at most
    10 bits, or ``2**in_bits * C`` within :data:`EXHAUSTIVE_BUDGET`)."""
    return spec.in_bits <= 10 or (1 << spec.in_bits) * spec.channels <= EXHAUSTIVE_BUDGET


def bulk_stream(spec, vectors: int, seed: int, activations=None, part=None) -> tuple[np.ndarray, np.ndarray]:
    """Bulk stimulus: saturation corners, every code on every channel (when :func:`exhaustive_fits`, or
    when ``vectors`` is at least that many elements), the tokens of an activations file if given, then
    random tokens up to ``vectors`` elements.

    ``part=(k, n)``: only part ``k`` of ``n`` of the exhaustive tokens (every code on every channel
    is the union of the ``n`` parts), nothing else.
    """
    if part is not None:
        k, n = part
        tokens = 1 << spec.in_bits
        return tokens_to_beats(exhaustive_tokens(spec.in_bits, spec.channels, k * tokens // n,
                                                 (k + 1) * tokens // n), spec.lanes)
    rng = np.random.default_rng([seed, 99])
    parts = [extreme_tokens(spec.in_bits, spec.channels)]
    if exhaustive_fits(spec) or spec.channels << spec.in_bits <= vectors:
        parts.append(exhaustive_tokens(spec.in_bits, spec.channels))
    if activations is not None:
        with np.load(activations, allow_pickle=False) as f:
            parts.append(np.asarray(f["x"], dtype=np.int64).reshape(-1, spec.channels))
    have = sum(p.size for p in parts)
    if vectors > have:
        parts.append(random_tokens(rng, vectors - have, spec.channels, spec.in_bits))
    return tokens_to_beats(np.concatenate(parts), spec.lanes)


def _hex_bytes(values, bits: int, depth: int) -> bytes:
    """``$readmemh`` text of ``values`` (two's complement, ``bits`` wide), zero-padded to ``depth`` lines.

    >>> _hex_bytes([1, -1], 8, 3)
    b'01\\nff\\n00\\n'
    """
    digits = -(-bits // 4)
    v = np.zeros(depth, dtype=np.int64)
    flat = np.asarray(values, dtype=np.int64).reshape(-1)
    v[:len(flat)] = flat & ((1 << bits) - 1)
    chars = np.empty((depth, digits + 1), dtype=np.uint8)
    for d in range(digits):
        chars[:, d] = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[(v >> (4 * (digits - 1 - d))) & 15]
    chars[:, digits] = ord("\n")
    return chars.tobytes()


def _small(a, bits: int) -> np.ndarray:
    """``a`` in the narrowest of int16/int32 that holds ``bits``-bit codes (the stream file stays small)."""
    return np.asarray(a, dtype=np.int16 if bits <= 16 else np.int32)


def write_bulk_files(run_dir: Path, spec, manifest, vectors: int, seed: int, activations,
                      part=None) -> tuple[int, int]:
    """Write the stream's files into ``run_dir`` (and ``bulk_stream.npz`` for reports); its beats and the
    harness's memory depth."""
    x, last = bulk_stream(spec, vectors, seed, activations, part)
    y = spec.reference_stream(x, last)
    beats, lanes = len(x), spec.lanes
    depth = max(256, 1 << (beats - 1).bit_length())
    atomic_write_bytes(run_dir / "bulk_x.mem", _hex_bytes(x, manifest["in_bits"], depth * lanes))
    atomic_write_bytes(run_dir / "bulk_y.mem", _hex_bytes(y, manifest["out_bits"], depth * lanes))
    atomic_write_bytes(run_dir / "bulk_last.mem", _hex_bytes(last, 1, depth))
    np.savez(run_dir / "bulk_stream.npz", x=_small(x, manifest["in_bits"]), y=_small(y, manifest["out_bits"]),
             channels=_small(lane_channels(last, lanes, spec.channels), 16 if spec.channels < 1 << 15 else 32))
    return beats, depth
