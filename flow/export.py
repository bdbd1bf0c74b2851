"""The export step: a converted directory → ONNX (float DyT), QONNX (DyT in the hardware's integers) or
hls4ml projects (one per DyT layer and one for the set, integer codes in and out)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardyt.quant.errors import HardytError

from .converted import ConvertedDir
from .options import ExportConfig

__all__ = ["Exported", "export_model", "export_hls4ml"]


@dataclass
class Exported:
    """The written file and what it holds."""

    path: Path
    model: object  # onnx.ModelProto
    what: str
    kept: int


def _layer_spec(specs: dict, directory, name: str, kept=()):
    for module_name, spec in specs.items():
        if name in (module_name, spec.name):
            return spec
    kept = " (a kept LayerNorm, not a DyT layer)" if name in kept else ""
    raise HardytError(f"--layer {name}: no such DyT layer in {directory}{kept}; layers: {', '.join(specs)}")


def _check(config: ExportConfig) -> Path:
    if config.backend or config.check:
        raise HardytError(f"--{'backend' if config.backend else 'check'} applies to --format hls4ml")
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
    """Write ``converted`` (a :class:`ConvertedDir` or its path) as ``config.format`` (onnx, qonnx) to
    ``config.out``."""
    from hardyt.quant.export import float_onnx, layer_qonnx, qonnx_model, save_model

    out = _check(config)
    conv = (converted if isinstance(converted, ConvertedDir) else ConvertedDir(converted)).models()
    if config.layer:
        spec = _layer_spec(conv.specs, conv.directory, config.layer, conv.kept)
        model = layer_qonnx(spec, rows=config.batch)
        what = f"layer {config.layer} (INT{spec.in_bits} codes in, INT{spec.out_bits} codes out)"
    elif config.format == "qonnx":
        model, what = qonnx_model(conv, batch=config.batch), f"{len(conv.specs)} DyT layers as QONNX integer nodes"
    else:
        model, what = float_onnx(conv), f"{len(conv.specs)} DyT layers in float"
    save_model(model, out)
    return Exported(out, model, what, len(conv.kept))


def export_hls4ml(converted, config: ExportConfig) -> dict:
    """hls4ml projects of ``converted`` into the directory ``config.out``: one per DyT layer and
    ``dyt_layers`` with all of them (``config.layer``: that one); ``config.check`` builds each C simulation
    and compares it with the golden model first. The report of
    :func:`hardyt.quant.export.hls4ml_project.write_projects`."""
    from hardyt.quant.export import converted_specs
    from hardyt.quant.export.hls4ml_project import require_hls4ml, write_projects

    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise HardytError(f"{out}: exists and is not a directory; --format hls4ml writes a directory")
    require_hls4ml()
    path = converted.path if isinstance(converted, ConvertedDir) else converted
    specs = converted_specs(path)
    chosen = [_layer_spec(specs, path, config.layer)] if config.layer else list(specs.values())
    return write_projects(chosen, out, backend=config.backend or "Vitis", layer_set=not config.layer,
                          check=config.check)
