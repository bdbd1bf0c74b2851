"""Core specs of any kind (DyT or LayerNorm) from JSON, and their golden model.

>>> from hardyt.quant.contract.layernorm import random_layernorm_spec
>>> spec = random_layernorm_spec(4, 2, 8, 8)
>>> spec_from_dict(spec.to_dict()) == spec
True
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import HardytError, SpecError
from .layernorm import LayerNormSpec
from .spec import DyTSpec

__all__ = ["CoreSpec", "spec_from_dict", "load_spec", "golden"]

CoreSpec = DyTSpec | LayerNormSpec


def golden(x, spec: CoreSpec) -> np.ndarray:
    """The golden model of a core spec (DyT or LayerNorm) on ``(..., C)`` integer codes.

    Every core spec has a ``reference`` method; this is the one name for it.
    """
    return spec.reference(x)


def spec_from_dict(d: dict):
    """A core spec of any kind from its JSON object (dispatch on ``"hardyt"``)."""
    kind = d.get("hardyt") if isinstance(d, dict) else None
    if kind == "layernorm":
        return LayerNormSpec.from_dict(d)
    return DyTSpec.from_dict(d)


def load_spec(path):
    """Read a core spec JSON file (DyT or LayerNorm); errors name the file and field."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise HardytError(f"{path}: cannot read spec: {e.strerror or e}") from None
    try:
        d = json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SpecError("spec", f"not valid JSON: {e}", source=path) from None
    try:
        return spec_from_dict(d)
    except SpecError as e:
        raise SpecError(e.field, e.message, source=path) from None
