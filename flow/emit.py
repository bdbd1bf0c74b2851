"""The emit step: specs (a spec file, a converted directory, or a spec object) → emitted cores.

One core per spec, each in a directory of its own named by the layer (the
one naming rule), or one DyT engine for every layer of a converted
directory. Every form writes the spec it used next to the Verilog, so
:func:`hardyt.flow.simulate` and :func:`hardyt.flow.synthesize` need nothing else.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hardyt.quant.contract.names import layer_stem
from hardyt.quant.contract.spec_io import load_spec
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir

from .converted import ConvertedDir
from .manifest import CoreManifest
from .options import EmitConfig

__all__ = ["EmittedCores", "emit_cores", "emit_spec"]


@dataclass
class EmittedCores:
    """What the emit step wrote.

    Members
    -------
    root : Path
        ``--out``: one core, an engine, or one directory per layer.
    manifests : list of CoreManifest
    """

    root: Path
    manifests: list[CoreManifest]

    @property
    def dirs(self) -> list[Path]:
        return [m.directory for m in self.manifests]


def _manifest(path: Path) -> CoreManifest:
    return CoreManifest.from_dict(json.loads(path.read_text()) | {"dir": str(path.parent.resolve())}, str(path))


def emit_spec(spec, out, name: str | None = None) -> EmittedCores:
    """One core of ``spec`` (a :class:`DyTSpec` or :class:`LayerNormSpec`) into ``out``."""
    from hardyt.hw.emission.emit import emit
    return EmittedCores(Path(out), [_manifest(emit(spec, Path(out), name))])


def emit_cores(source, config: EmitConfig) -> EmittedCores:
    """Emit ``source`` — a spec file, a :class:`ConvertedDir` or a converted directory's path."""
    from hardyt.hw.emission.emit import emit
    from hardyt.hw.emission.engine_emit import emit_engine

    out = Path(config.out)
    converted = source if isinstance(source, ConvertedDir) else \
        ConvertedDir(source) if Path(source).is_dir() else None
    if config.engine:
        if converted is None:
            raise HardytError(f"--engine: {source} is not a converted directory (`hardyt convert --out`)")
        path = emit_engine(converted.specs(config.layers), out, config.name or "dyt_engine", lanes=config.lanes)
        return EmittedCores(out, [_manifest(path)])
    if converted is not None:
        if config.name:
            raise HardytError("--name names one core; a converted directory emits one per layer")
        # The whole --out at once (every layer, or none): hardyt.quant.files.atomic_output_dir.
        with atomic_output_dir(out) as tmp:
            names = [emit(spec, tmp / layer_stem(spec.name)).relative_to(tmp) for spec in converted.specs(config.layers)]
        return EmittedCores(out, [_manifest(out / n) for n in names])
    source = Path(source)
    if not source.is_file():
        raise HardytError(f"{source}: no such spec file or converted directory")
    if config.layers:
        raise HardytError("--layers selects layers of a converted directory, not of one spec file")
    return emit_spec(load_spec(source), out, config.name)
