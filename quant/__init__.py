"""hardyt.quant: fixed-point formats, tanh tables, the DyT spec and golden model,
and the model side (torch DyT, loading, calibration, conversion).

Modules that need torch are imported lazily so that ``hardyt.hw`` and
``hardyt.sim`` can use the numerics without importing torch.
"""
from .errors import HardytError, SpecError
from .fixed import FixedFormat, Rounding, dequantize, narrow, quantize, round_shift, saturate
from .golden_model import golden
from .spec import SPEC_VERSION, ChannelAffine, DyTSpec, FoldedAffine, load_spec
from .tanh import TanhLUT, TanhPWL, build_lut, build_pwl, build_tanh, error_report, full_scale, tanh_int

__all__ = [
    "HardytError", "SpecError", "FixedFormat", "Rounding", "dequantize", "narrow", "quantize", "round_shift",
    "saturate", "golden", "SPEC_VERSION", "ChannelAffine", "DyTSpec", "FoldedAffine", "load_spec",
    "TanhLUT", "TanhPWL", "build_lut", "build_pwl", "build_tanh", "error_report", "full_scale", "tanh_int",
    "DyT", "convert", "partial_convert", "to_float", "FixedDyT", "accuracy",
    "VisionTransformer", "load_vit", "load_hf", "load_dataset",
]

_LAZY = {"DyT": ".dyt", "convert": ".convert", "to_float": ".convert", "partial_convert": ".partial",
         "FixedDyT": ".fixed_dyt", "accuracy": ".evaluate",
         "VisionTransformer": ".vit", "load_vit": ".load", "load_hf": ".load", "load_dataset": ".data"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
