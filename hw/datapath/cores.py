"""Which core implements a spec; the random specs for exploring hardware, re-exported.

``random_dyt_spec`` and ``random_layernorm_spec`` live in the number contract
(they need no hardware) and are re-exported here, their old place.
"""
from __future__ import annotations

from hardyt.quant.contract.layernorm import LayerNormSpec, random_layernorm_spec
from hardyt.quant.contract.random_dyt import random_dyt_spec
from hardyt.quant.contract.spec import DyTSpec
from hardyt.quant.errors import SpecError

from .dyt_core import DyTCore
from .layernorm_core import LayerNormCore

__all__ = ["build_core", "random_dyt_spec", "random_layernorm_spec"]


def build_core(spec, radix: int | None = None):
    """The streaming core for ``spec``: :class:`DyTCore` (``radix``: its threshold search's) or
    :class:`LayerNormCore`."""
    if isinstance(spec, DyTSpec):
        return DyTCore(spec, radix)
    if isinstance(spec, LayerNormSpec):
        return LayerNormCore(spec)
    raise SpecError("spec", f"no core for a {type(spec).__name__}")
