"""Core specs not from a conversion: a random DyT or LayerNorm spec described by its formats."""
from __future__ import annotations

__all__ = ["random_spec"]


def random_spec(core: str = "dyt", *, channels: int, lanes: int = 1, in_bits: int = 8, out_bits: int = 8,
                tanh: str = "lut", affine: str = "folded", alpha: float | None = None, segments: int = 16,
                drop_bits: int = 0, seed: int = 0, name: str | None = None):
    """A :class:`DyTSpec` (random gamma/beta from ``seed``) or, for ``core="layernorm"``, a
    :class:`LayerNormSpec` of the same shape (``tanh``, ``affine``, ``alpha``, ... unused)."""
    from hardyt.quant.contract import random_dyt_spec, random_layernorm_spec
    if core == "layernorm":
        return random_layernorm_spec(channels, lanes, in_bits, out_bits, seed)
    return random_dyt_spec(channels, lanes, in_bits, out_bits, tanh=tanh, affine=affine, alpha=alpha,
                           segments=segments, drop_bits=drop_bits, seed=seed, name=name or core)
