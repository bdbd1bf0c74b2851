"""The export step: a converted directory → ONNX (float DyT) or QONNX (DyT in the hardware's integers)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardyt.quant.errors import HardytError

from .converted import ConvertedDir
from .options import ExportConfig

__all__ = ["Exported", "export_model"]


@dataclass
class Exported:
    """The written file and what it holds."""

    path: Path
    model: object  # onnx.ModelProto
    what: str
    kept: int


def _layer_spec(conv, name: str):
    for module_name, spec in conv.specs.items():
        if name in (module_name, spec.name):
            return spec
    kept = " (a kept LayerNorm, not a DyT layer)" if name in conv.kept else ""
    raise HardytError(f"--layer {name}: no such DyT layer in {conv.directory}{kept}; layers: "
                      f"{', '.join(conv.specs)}")


def _check(config: ExportConfig) -> Path:
    out = Path(config.out)
    if config.batch < 1:
        raise HardytError(f"--batch must be >= 1, got {config.batch}")
    if config.layer and config.format != "qonnx":
        raise HardytError("--layer exports one layer in integer codes: it needs --format qonnx")
    if out.is_dir():
        raise HardytError(f"{out}: is a directory; --out takes a file name")
    if not out.parent.is_dir():
        why = "is not a directory" if out.parent.exists() else "does not exist"
        raise HardytError(f"{out}: cannot write: {out.parent} {why}")
    return out


def export_model(converted, config: ExportConfig) -> Exported:
    """Write ``converted`` (a :class:`ConvertedDir` or its path) as ``config.format`` to ``config.out``."""
    from hardyt.quant.export import float_onnx, layer_qonnx, qonnx_model, save_model

    out = _check(config)
    conv = (converted if isinstance(converted, ConvertedDir) else ConvertedDir(converted)).models()
    if config.layer:
        spec = _layer_spec(conv, config.layer)
        model = layer_qonnx(spec, rows=config.batch)
        what = f"layer {config.layer} (INT{spec.in_bits} codes in, INT{spec.out_bits} codes out)"
    elif config.format == "qonnx":
        model, what = qonnx_model(conv, batch=config.batch), f"{len(conv.specs)} DyT layers as QONNX integer nodes"
    else:
        model, what = float_onnx(conv), f"{len(conv.specs)} DyT layers in float"
    save_model(model, out)
    return Exported(out, model, what, len(conv.kept))
