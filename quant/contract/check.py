"""The validators every spec, format and table uses: one set, one error type.

Each raises :class:`~hardyt.quant.errors.SpecError` naming the field and the
offending value, so a bad spec file says exactly what to fix.

>>> check_int("lanes", 4, 1, 256)
>>> check_int("lanes", 0, 1, 256)
Traceback (most recent call last):
...
hardyt.quant.errors.SpecError: lanes: must be an integer 1..256, got 0
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import HardytError, SpecError

__all__ = ["check_int", "check_real", "check_codes", "check_input", "check_options", "env_seconds"]


def check_int(name: str, v, lo: int, hi: int | None = None) -> None:
    """``v`` is an integer (not a bool) in ``lo..hi`` (``hi=None``: no upper bound)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo or (hi is not None and v > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise SpecError(name, f"must be an integer {rng}, got {v!r}")


def check_real(name: str, v, positive: bool = True) -> None:
    """``v`` is a finite real number (and ``> 0`` when ``positive``)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) \
            or (positive and v <= 0):
        kind = "a positive finite number" if positive else "a finite number"
        raise SpecError(name, f"must be {kind}, got {v!r}")


def check_codes(name: str, values, lo: int, hi: int) -> None:
    """Every element of ``values`` is an integer in ``lo..hi``; the error names ``name[i]``."""
    for i, v in enumerate(values):
        check_int(f"{name}[{i}]", v, lo, hi)


def check_input(x, channels: int, in_bits: int) -> np.ndarray:
    """Integer codes of shape ``(..., channels)`` in the signed ``in_bits`` range, as int64.

    >>> check_input([[1, -2]], 2, 4).dtype
    dtype('int64')
    """
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise HardytError(f"input: must be integer codes, got dtype {x.dtype}")
    if x.ndim == 0 or x.shape[-1] != channels:
        raise HardytError(f"input: last dimension must be channels={channels}, got shape {x.shape}")
    x = x.astype(np.int64)
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise HardytError(f"input: codes must lie in {lo}..{hi} (in_bits={in_bits}), got {x.min()}..{x.max()}")
    return x


def check_options(options, source: str, *, ints=None, positive=(), non_negative=(), choices=None) -> None:
    """Fields of an options object (``ConvertOptions``, ``TrainOptions``) checked: a :class:`SpecError`
    naming ``source``, the first bad field and its value.

    ``ints``: name -> ``(lo, hi)`` (``hi=None``: no bound); ``positive``/``non_negative``:
    finite reals ``> 0`` / ``>= 0``; ``choices``: name -> allowed values.

    >>> class Options: steps = -1
    >>> check_options(Options(), "convert", ints={"steps": (0, None)})
    Traceback (most recent call last):
    ...
    hardyt.quant.errors.SpecError: convert: steps: must be an integer >= 0, got -1
    """
    try:
        for name, (lo, hi) in (ints or {}).items():
            check_int(name, getattr(options, name), lo, hi)
        for name in positive:
            check_real(name, getattr(options, name))
        for name in non_negative:
            check_real(name, getattr(options, name), positive=False)
            if getattr(options, name) < 0:
                raise SpecError(name, f"must be >= 0, got {getattr(options, name)!r}")
        for name, allowed in (choices or {}).items():
            if getattr(options, name) not in allowed:
                raise SpecError(name, f"must be one of {', '.join(map(str, allowed))}, got {getattr(options, name)!r}")
    except SpecError as e:
        raise SpecError(e.field, e.message, source=source) from None


def env_seconds(name: str, default: float) -> float:
    """A timeout in seconds from the environment variable ``name``, else ``default``; positive.

    >>> env_seconds("HARDYT_UNSET_FOR_DOCTEST", 3.0)
    3.0
    """
    import os

    text = os.environ.get(name)
    try:
        value = default if text is None else float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise HardytError(f"{name}: must be a positive number of seconds, got {text!r}")
    return value
