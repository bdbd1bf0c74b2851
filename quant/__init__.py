"""hardyt.quant: the number contract and the model side, in three rooms.

* :mod:`hardyt.quant.contract` — NumPy only: formats and rounding, tanh
  tables, specs, the DyT and LayerNorm golden models. ``hardyt.hw`` and
  ``hardyt.sim`` import this and nothing torch.
* :mod:`hardyt.quant.conversion` — torch: DyT modules, calibration (fit,
  reconstruction, clip search, augmentation), conversion, folding, partial
  replacement, evaluation.
* :mod:`hardyt.quant.zoo` — torch: the ViT, checkpoint loading, datasets,
  training, the bundled model.

This package re-exports the public names of all three. The torch-side names
are resolved on first use (PEP 562), so that importing ``hardyt.quant`` (and
with it the contract) never imports torch; ``tests/test_architecture.py``
holds that.
"""
from .contract import (SPEC_VERSION, ChannelAffine, DyTSpec, FixedFormat, FoldedAffine, LayerNormSpec, Rounding,
                       TanhLUT, TanhPWL, TanhThreshold, build_lut, build_pwl, build_tanh, build_threshold, dequantize,
                       error_report, full_scale, golden, load_spec, narrow, quantize, round_shift, saturate, tanh_int)
from .errors import HardytError, SpecError

__all__ = [
    "HardytError", "SpecError", "FixedFormat", "Rounding", "dequantize", "narrow", "quantize", "round_shift",
    "saturate", "golden", "SPEC_VERSION", "ChannelAffine", "DyTSpec", "FoldedAffine", "LayerNormSpec", "load_spec",
    "TanhLUT", "TanhPWL", "TanhThreshold", "build_lut", "build_pwl", "build_tanh", "build_threshold", "error_report",
    "full_scale", "tanh_int", "DyT", "convert", "partial_convert", "to_float", "FixedDyT", "accuracy",
    "VisionTransformer", "load_vit", "load_hf", "load_dataset", "SentenceEncoder", "load_sentence_transformer",
    "load_onnx_bert", "load_onnx_dinov2",
]

_TORCH_SIDE = {
    "DyT": "conversion.modules", "FixedDyT": "conversion.fixed_dyt",
    "convert": "conversion.pipeline", "to_float": "conversion.pipeline",
    "partial_convert": "conversion.partial", "accuracy": "runtime.evaluate",
    "VisionTransformer": "zoo.vit", "load_vit": "zoo.load", "load_hf": "zoo.load", "load_dataset": "zoo.data",
    "SentenceEncoder": "zoo.encoders", "load_sentence_transformer": "zoo.encoders", "load_onnx_bert": "zoo.onnx_weights",
    "load_onnx_dinov2": "zoo.onnx_vit",
}


def __getattr__(name):
    if name in _TORCH_SIDE:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_TORCH_SIDE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
