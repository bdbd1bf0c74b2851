"""Fmax in explore's objective: the floor every core of a pick must reach, and the throughput it gives.

A replacement must not slow the system it goes into: by default the floor
is the slowest LayerNorm core of the all-LayerNorm design. A design's Fmax
is its slowest core's, so the floor holds for a configuration exactly when
it holds for each of its cores: explore removes slower choices before it
searches.
"""
from __future__ import annotations

__all__ = ["fmax_floor", "throughput"]


def fmax_floor(min_fmax: float | None, fmax: dict[tuple, float | None], names: list[str]) -> float | None:
    """The Fmax (MHz) every chosen core must reach, or ``None`` for no floor.

    ``min_fmax``: the user's floor (``0``: none); ``None``: the slowest
    LayerNorm core of the all-LayerNorm design, so that a replacement never
    slows the system it goes into. ``fmax[(layer, label)]``: each core's
    Fmax (``None`` for a target without place and route: no floor).

    >>> f = {("a", "layernorm"): 120.0, ("b", "layernorm"): 130.0, ("a", "x"): 90.0}
    >>> fmax_floor(None, f, ["a", "b"]), fmax_floor(100, f, ["a", "b"]), fmax_floor(0, f, ["a", "b"])
    (120.0, 100.0, None)
    """
    if min_fmax is not None:
        return float(min_fmax) if min_fmax > 0 else None
    ln = [fmax.get((n, "layernorm")) for n in names]
    return None if any(f is None for f in ln) else min(ln)


def throughput(fmax_mhz: float | None, lanes: int) -> float | None:
    """Elements per second of a core at ``fmax_mhz`` with ``lanes`` channels per beat (initiation interval 1).

    >>> throughput(200.0, 8)
    1600000000.0
    """
    return None if fmax_mhz is None else fmax_mhz * 1e6 * lanes
