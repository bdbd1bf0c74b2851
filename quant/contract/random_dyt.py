"""A random DyT spec for exploring hardware without a model (beside ``layernorm.random_layernorm_spec``)."""
from __future__ import annotations

import numpy as np

from ..errors import SpecError
from .spec import ChannelAffine, DyTSpec, FoldedAffine
from .tanh import build_tanh, full_scale, range_out_scale

__all__ = ["random_dyt_spec"]


def random_dyt_spec(channels: int, lanes: int, in_bits: int, out_bits: int, *, tanh: str = "lut",
                    affine: str = "folded", alpha: float | None = None, segments: int = 16,
                    drop_bits: int = 0, seed: int = 0, alpha_shift: bool = False,
                    out_range: str = "layer", name: str = "dyt") -> DyTSpec:
    """A DyT spec for exploring hardware without a model.

    ``alpha`` is per input LSB (the tanh argument per code, as in ``hardyt
    tanh``; default ``2 / 2**(in_bits-1)``: tanh(2) at full-scale input); the input
    scale is 1. ``channel`` affine draws integer gamma in ``[-127, 127]``
    (8 bits, shift 6) and beta spanning the output range, from ``seed``;
    ``alpha_shift`` draws per-channel shifts in 0..2. ``out_range`` is the
    tanh output format: ``"layer"`` spans the input range's tanh (the
    default, as conversions make it), ``"full"`` spans ±1.

    >>> s = random_dyt_spec(8, 2, 8, 8, affine="channel", seed=1)
    >>> s.affine.gamma_bits, len(s.affine.beta), s.tanh.in_bits
    (8, 8, 8)
    """
    if affine not in ("folded", "channel"):
        raise SpecError("affine.mode", f"must be 'folded' or 'channel', got {affine!r}")
    if not isinstance(in_bits, int) or in_bits < 2:
        raise SpecError("in_bits", f"must be an integer >= 2, got {in_bits!r}")
    rng = np.random.default_rng(seed)
    if alpha is None:
        alpha = 2.0 / (1 << (in_bits - 1))
    shifts = tuple(int(k) for k in rng.integers(0, 3, channels)) if alpha_shift else None
    extra = max(shifts) if shifts else 0
    if out_range not in ("layer", "full"):
        raise SpecError("out_range", f"must be 'layer' or 'full', got {out_range!r}")
    out_scale = range_out_scale(in_bits + extra, out_bits, float(alpha)) if out_range == "layer" else None
    t = build_tanh(tanh, in_bits + extra, out_bits, float(alpha), segments=segments, drop_bits=drop_bits,
                   out_scale=out_scale)
    aff = FoldedAffine()
    if affine == "channel":
        shift = 6
        gamma = rng.integers(-127, 128, channels)
        top = full_scale(out_bits) << shift
        beta = rng.integers(-top // 2, top // 2 + 1, channels)
        aff = ChannelAffine(tuple(int(g) for g in gamma), tuple(int(b) for b in beta), 8, out_bits + shift + 1,
                            shift, out_bits, 1.0 / full_scale(out_bits))
    return DyTSpec(channels, lanes, in_bits, 1.0, float(alpha), t, aff, shifts, name)
