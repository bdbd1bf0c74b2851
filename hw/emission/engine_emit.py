"""Emission of a DyT engine: ``NAME.v``, a coefficient image per layer, and the manifest.

Files written into the output directory (atomically, all or none):

- ``NAME.v``: the AXI4-Stream top (:class:`EngineTop`); it has no ROMs;
- ``NAME.core`` and ``NAME_tb.v``: a FuseSoC CAPI2 core (:mod:`hardyt.hw.emission.fusesoc`) and its smoke testbench;
- per layer ``L`` (index ``k`` in the layer order): ``L.coef.bin`` (the
  frame's 32-bit beats, little-endian), ``L.coef.mem`` (the same beats, one
  hex word per line, for simulation; ``tlast`` is on the last), and
  ``L.spec.json`` (the layer's spec, re-laned to the engine's lanes);
- ``NAME.json``: the manifest: what every core's manifest has, plus
  ``frame`` (the format), ``coef_tdata_width``, ``layer_select_width``,
  ``extra_ports``, ``stages`` (what the latency counts) and ``layers``
  (index, name, affine mode, files, ``load_cycles``, ``frame_beats``,
  channels, widths) in the model's order.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from amaranth.hdl import Module
from amaranth.lib.wiring import In, Out

from hardyt.quant.files import atomic_output_dir
from hardyt.quant.version import hardyt_version

from ..datapath.axis_top import AxisTop
from ..datapath.coef_frame import COEF_BITS, FRAME_FORMAT, THRESHOLD_FRAME_FORMAT, frame_beats, load_cycles
from ..datapath.coef_loader import Status
from .emit import top_verilog, verilog_name
from ..datapath.engine import DyTEngine
from .fusesoc import core_file, engine_smoke_testbench, smoke_vectors
from ..datapath.engine_set import engine_shape, layer_frame, relane

__all__ = ["EngineTop", "emit_engine", "ENGINE_CORE"]

#: The manifest's ``core`` for an engine.
ENGINE_CORE = "dyt-engine"

#: The manifest's ``stages``: the registers an input beat passes, in order (the latency counts them).
ENGINE_STAGES = {
    "folded": ["table RAM read", "RAM output register", "output buffer"],
    "channel": ["table, gamma and beta RAM read", "RAM output register", "gamma*t", "+ beta', shift",
                "saturate (or t for a folded layer), output buffer"],
}


def _threshold_stages(engine: DyTEngine) -> list[str]:
    """A threshold engine's ``stages``, from the tags of its control registers (the ``ctrl_<tag>`` names)."""
    what = {"t0": "stage 0 threshold RAM read", "t": "last compare, gamma and beta RAM read",
            "r": "RAM output register", "prod": "gamma*t", "acc": "+ beta', shift"}
    names = []
    for reg in engine.control_regs:
        tag = reg.removeprefix("ctrl_")
        if tag in what:
            names.append(what[tag])
        elif tag[0] == "s":
            names.append(f"compare {int(tag[1:]) - 1}, stage {tag[1:]} threshold RAM read")
        else:
            names.append(f"stage {tag[1:]} threshold word register (block RAM output)")
    last = "saturate (or t for a folded layer), output buffer" if engine.shape.affine else \
        f"compare {engine.shape.table_bits - 1}, output buffer"
    return names + [last]


class EngineTop(AxisTop):
    """:class:`DyTEngine` behind AXI4-Stream names: the data ports of every core, plus

    Members
    -------
    s_axis_coef_tdata : In(32)
    s_axis_coef_tvalid, s_axis_coef_tlast : In(1)
    s_axis_coef_tready : Out(1)
        Coefficient frames (:mod:`hardyt.hw.datapath.coef_frame`).
    layer_select : In(max(1, ceil(log2(layers))))
        Sampled with the first beat of each token.
    coef_status : Out(3)
        Outcome of the last frame (0 none, 1 loaded, 2 bad header, 3 bad length, 4 bad checksum).
    coef_done : Out(1)
        One cycle high when a frame ends.
    """

    @staticmethod
    def ports(core) -> dict:
        return AxisTop.ports(core) | {
            "s_axis_coef_tdata": In(COEF_BITS),
            "s_axis_coef_tvalid": In(1),
            "s_axis_coef_tready": Out(1),
            "s_axis_coef_tlast": In(1),
            "layer_select": In(len(core.layer_select)),
            "coef_status": Out(len(core.coef_status.as_value())),
            "coef_done": Out(1),
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.axis = super().elaborate(platform)
        core = self.core
        m.d.comb += [
            core.coef.payload.data.eq(self.s_axis_coef_tdata),
            core.coef.payload.last.eq(self.s_axis_coef_tlast),
            core.coef.valid.eq(self.s_axis_coef_tvalid),
            self.s_axis_coef_tready.eq(core.coef.ready),
            core.layer_select.eq(self.layer_select),
            self.coef_status.eq(core.coef_status),
            self.coef_done.eq(core.coef_done),
        ]
        return m


def _port_widths(top: EngineTop, names) -> dict:
    return {n: len(getattr(top, n)) for n in names}


def emit_engine(specs, out_dir, name: str = "dyt_engine", lanes: int | None = None, tanh: str | None = None) -> Path:
    """Write the engine serving ``specs`` (in that order: layer index = position) into ``out_dir``.

    Returns the manifest's path. A layer the engine cannot serve raises a
    :class:`HardytError` naming it, before anything is written. ``tanh``:
    what its RAMs hold (:func:`hardyt.hw.datapath.engine_set.engine_shape`).
    """
    name = verilog_name(name)
    shape = engine_shape(specs, lanes, tanh)
    specs = [relane(s, shape.lanes) for s in specs]
    engine = DyTEngine(shape)
    top = EngineTop(engine)
    threshold = shape.tanh == "threshold"
    latency = top.latency                  # elaborates the engine: its control registers are named
    stages = _threshold_stages(engine) if threshold else ENGINE_STAGES["channel" if shape.affine else "folded"]
    assert len(stages) == latency, (stages, latency)
    held = "Thresholds are" if threshold else "Tables are"
    notes = (f"// Manifest: {name}.json (the coefficient frame format, layers, load times). Lane j of a\n"
             f"// beat is tdata[j*W +: W]. {held} loaded at run time through s_axis_coef.\n")
    kind = "DyT threshold engine" if threshold else "DyT engine"
    text, _ = top_verilog(top, name, f"{kind} for {shape.layers} layers", notes)
    files = {f"{name}.v": text.encode()}
    layers = []
    for k, spec in enumerate(specs):
        base = verilog_name(spec.name)
        words = np.asarray(layer_frame(spec, k, shape), dtype="<u4")
        files[f"{base}.coef.bin"] = words.tobytes()
        files[f"{base}.coef.mem"] = "".join(f"{int(w):08x}\n" for w in words).encode()
        files[f"{base}.spec.json"] = spec.to_json().encode()
        affine = spec.affine.mode == "channel"
        channels = spec.channels if affine else 0
        assert len(words) == frame_beats(shape.in_bits, shape.entry_bits, channels,
                                         *((shape.affine.gamma_bits, shape.affine.beta_bits) if affine else ()),
                                         entries=shape.entries)
        layers.append({"index": k, "name": spec.name, "affine": spec.affine.mode, "spec_file": f"{base}.spec.json",
                       "image": f"{base}.coef.bin", "image_mem": f"{base}.coef.mem", "frame_beats": len(words),
                       "load_cycles": load_cycles(shape.in_bits, channels, entries=shape.entries),
                       "channels": spec.channels, "tanh": spec.tanh.kind,
                       "beats_per_token": spec.channels // shape.lanes, "in_bits": spec.in_bits,
                       "out_bits": spec.out_bits})
    manifest = {
        "hardyt_version": hardyt_version(), "core": ENGINE_CORE, "name": name, "top": name,
        "verilog": f"{name}.v", "mems": [], "roms": {}, "latency": top.latency,
        "fusesoc_core": f"{name}.core",        # FuseSoC CAPI2 (hw/fusesoc.py), with its smoke testbench
        "channels": shape.channels, "lanes": shape.lanes, "in_bits": shape.in_bits, "out_bits": shape.out_bits,
        "s_axis_tdata_width": len(top.s_axis_tdata), "m_axis_tdata_width": len(top.m_axis_tdata),
        "coef_tdata_width": COEF_BITS, "layer_select_width": len(top.layer_select),
        "extra_ports": {"in": _port_widths(top, ("s_axis_coef_tdata", "s_axis_coef_tvalid", "s_axis_coef_tlast",
                                                 "layer_select")),
                        "out": _port_widths(top, ("s_axis_coef_tready", "coef_status", "coef_done"))},
        "stages": stages,
        "reset": "aresetn, active low, synchronous to aclk; clears every loaded set",
        "frame": FRAME_FORMAT | (THRESHOLD_FRAME_FORMAT if threshold else {})
                 | {"table_bits": shape.table_bits, "entries_per_beat": COEF_BITS // shape.entry_bits,
                    "status_codes": {s.value: s.name.lower() for s in Status}}
                 | ({"threshold_bits": shape.entry_bits, "entries": shape.entries} if threshold else {})
                 | ({"gamma_bits": shape.affine.gamma_bits, "beta_bits": shape.affine.beta_bits,
                     "shifts": [shape.affine.shift_lo, shape.affine.shift_hi]} if shape.affine else {}),
        "spec": shape.to_dict(),
        "layers": layers,
    }
    with atomic_output_dir(out_dir) as tmp:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        (tmp / f"{name}.json").write_text(json.dumps(manifest, indent=1) + "\n")
        # Yosys writes the loader's FSM as case statements over only the states that assign a signal.
        (tmp / f"{name}.core").write_text(core_file(manifest, waive=("CASEINCOMPLETE",)))
        (tmp / f"{name}_tb.v").write_text(engine_smoke_testbench(manifest))
        for fname, text in smoke_vectors(manifest, specs[0]).items():
            (tmp / fname).write_text(text)
    return Path(out_dir) / f"{name}.json"
