"""hardyt.quant.contract: the number contract, in NumPy only (no torch, no amaranth).

What the hardware computes is defined here and nowhere else: fixed-point
formats and the one rounding rule (:mod:`.fixed`), the validators
(:mod:`.check`), the integer tanh tables (:mod:`.tanh`, :mod:`.tanh_base`, :mod:`.threshold`), the DyT and
LayerNorm specs (:mod:`.spec`, :mod:`.layernorm`, :mod:`.specfile`,
:mod:`.spec_io`), their golden models (:mod:`.golden_dyt`,
:mod:`.layernorm`; for a spec of either kind :func:`golden`, which is
``spec.reference``), random specs for exploring hardware
(:mod:`.random_dyt`, ``layernorm.random_layernorm_spec``) and the stream
framing (:mod:`.stream`). ``hardyt.hw``
and ``hardyt.sim`` build on it; the torch side only reads it.
"""
from .fixed import FixedFormat, Rounding, dequantize, narrow, quantize, round_half_up, round_shift, saturate
from .golden_dyt import dyt_golden
from .layernorm import LayerNormSpec, layernorm_golden, random_layernorm_spec
from .random_dyt import random_dyt_spec
from .spec import SPEC_VERSION, ChannelAffine, DyTSpec, FoldedAffine
from .spec_io import golden, load_spec, spec_from_dict
from .tanh import (TanhLUT, TanhPWL, TanhThreshold, build_lut, build_pwl, build_tanh, build_threshold, error_report,
                   full_scale, tanh_int)

__all__ = [
    "FixedFormat", "Rounding", "dequantize", "narrow", "quantize", "round_half_up", "round_shift", "saturate",
    "dyt_golden", "LayerNormSpec", "layernorm_golden", "random_layernorm_spec", "random_dyt_spec",
    "SPEC_VERSION", "ChannelAffine", "DyTSpec", "FoldedAffine", "golden", "load_spec", "spec_from_dict",
    "TanhLUT", "TanhPWL", "TanhThreshold", "build_lut", "build_pwl", "build_tanh", "build_threshold", "error_report",
    "full_scale", "tanh_int",
]
