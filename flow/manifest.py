"""The emitted-core manifest (``NAME.json`` next to ``NAME.v``): a typed view, and its one-line summary.

:func:`hardyt.hw.emission.emit.emit` (and ``emit_engine``) write it;
:func:`read_manifest` is its reader (through
:func:`hardyt.hw.emission.emit.load_manifest`, which checks every listed file is
there). Keys this code does not know (an engine's ``layers``, ``roms``, ...)
stay in ``extra``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .record import Record

__all__ = ["CoreManifest", "read_manifest", "summary"]


@dataclass
class CoreManifest(Record):
    """One emitted core's (or engine's) manifest."""

    hardyt_version: str = None
    core: str = None
    name: str = None
    top: str = None
    verilog: str = None
    mems: list = None
    latency: int = None
    channels: int = None
    lanes: int = None
    in_bits: int = None
    out_bits: int = None
    s_axis_tdata_width: int = None
    m_axis_tdata_width: int = None
    spec: dict = None
    dir: str = None

    @property
    def directory(self) -> Path:
        return Path(self.dir)

    @property
    def is_engine(self) -> bool:
        return "layers" in self.extra


def read_manifest(directory) -> CoreManifest:
    """The checked manifest of the core emitted in ``directory``."""
    from hardyt.hw.emission.emit import load_manifest
    return CoreManifest.from_dict(load_manifest(directory), str(directory))


def _engine_summary(m: CoreManifest) -> str:
    layers = m.extra["layers"]
    channel = sum(lay.get("affine") == "channel" for lay in layers)

    def span(key):
        lo, hi = min(lay[key] for lay in layers), max(lay[key] for lay in layers)
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    kind = "DyT threshold engine" if (m.spec or {}).get("tanh") == "threshold" else "DyT engine"
    return (f"{m.name}: {m.directory / m.verilog}, {kind} for {len(layers)} layers "
            f"({channel} with channel affine; C <= {m.channels}, P={m.lanes}, {m.in_bits}-bit in, "
            f"{m.out_bits}-bit out), latency {m.latency} cycles, {len(layers)} coefficient images of "
            f"{span('frame_beats')} x {m.extra['coef_tdata_width']}-bit beats, {span('load_cycles')} cycles to "
            "load a layer")


def summary(m: CoreManifest) -> str:
    """The line ``hardyt rtl`` prints for an emitted core."""
    if m.is_engine:
        return _engine_summary(m)
    return (f"{m.name}: {m.directory / m.verilog} + {len(m.mems)} .mem ({m.core}, C={m.channels}, "
            f"P={m.lanes}), latency {m.latency} cycles, s_axis_tdata {m.s_axis_tdata_width} bits "
            f"({m.lanes}x{m.in_bits}), m_axis_tdata {m.m_axis_tdata_width} bits ({m.lanes}x{m.out_bits})")
