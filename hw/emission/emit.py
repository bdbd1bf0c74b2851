"""Verilog emission: ``NAME.v``, one ``NAME_<rom>.mem`` per ROM, ``NAME.json``.

The core's ROMs are :class:`amaranth.lib.memory.Memory` objects tagged
``hardyt_rom``; :class:`ReadmemhPlatform` replaces each of them (through
Amaranth's ``platform.get_memory`` hook) with an instance of a small
hand-written module, ``NAME_rom``, that loads its contents with
``$readmemh("NAME_<rom>.mem")`` and has one registered read port per port of
the Amaranth memory. A user can therefore change coefficients by editing the
``.mem`` files without regenerating the Verilog. The path is relative:
simulators and synthesis tools must run with the emitted directory as their
working directory (or the files copied next to the project).

Emission is deterministic (no timestamps, no source paths, stable order), so
the same spec always gives byte-identical files.
"""
from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Shape, Value

from hardyt.quant.contract.names import layer_stem
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir
from hardyt.quant.version import hardyt_version

from ..datapath.axis_top import AxisTop
from ..datapath.cores import build_core
from .fusesoc import core_file, smoke_testbench, smoke_vectors

__all__ = ["ReadmemhPlatform", "emit", "emit_verilog", "top_verilog", "load_manifest", "verilog_name", "MANIFEST_KEYS"]

MANIFEST_KEYS = ("hardyt_version", "core", "name", "top", "verilog", "mems", "latency", "channels", "lanes",
                 "in_bits", "out_bits", "s_axis_tdata_width", "m_axis_tdata_width", "spec")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_name(v) -> bool:
    return isinstance(v, str) and bool(v) and "/" not in v and "\0" not in v


#: What a manifest's keys must hold (every other key of MANIFEST_KEYS: an integer).
_MANIFEST_TYPES = {"hardyt_version": lambda v: isinstance(v, str), "core": lambda v: isinstance(v, str),
                   "name": _is_name, "top": _is_name, "verilog": _is_name,
                   "mems": lambda v: isinstance(v, list) and all(_is_name(f) for f in v),
                   "spec": lambda v: isinstance(v, dict)}

_ROM_MODULE = """\
// Read-only memory loaded from a $readmemh file, PORTS synchronous read ports{style_note}.
// Port p reads addr[p*ABITS +: ABITS] into data[p*WIDTH +: WIDTH] when en[p].
module {name} #(
    parameter WIDTH = 1,
    parameter DEPTH = 1,
    parameter ABITS = 1,
    parameter PORTS = 1,
    parameter INIT_FILE = ""
) (
    input wire clk,
    input wire [PORTS-1:0] en,
    input wire [PORTS*ABITS-1:0] addr,
    output reg [PORTS*WIDTH-1:0] data
);
    {style}reg [WIDTH-1:0] mem [0:DEPTH-1];
    integer p;
    initial begin
        // Yosys also elaborates the unparameterized module: skip the empty default.
        if (INIT_FILE != "") $readmemh(INIT_FILE, mem);
        data = {{PORTS*WIDTH{{1'b0}}}};
    end
    always @(posedge clk)
        for (p = 0; p < PORTS; p = p + 1)
            if (en[p]) data[p*WIDTH +: WIDTH] <= mem[addr[p*ABITS +: ABITS]];
endmodule
"""


# Yosys's Verilog backend (which Amaranth uses) writes correct but lint-noisy
# Verilog: it relies on Verilog's implicit widening in expressions whose widths
# Amaranth has already made exact (WIDTHEXPAND/WIDTHTRUNC), declares wires for
# intermediate values and struct fields that end up unused (UNUSEDSIGNAL),
# initializes registers in their declaration (PROCASSINIT) and names submodules
# `top.sub` (DECLFILENAME). These are waived for the generated part only; the
# hand-written ROM module after it is linted with every warning on.
_WAIVED = ("WIDTHEXPAND", "WIDTHTRUNC", "UNUSEDSIGNAL", "PROCASSINIT", "DECLFILENAME")
_LINT_OFF = "".join(f"// verilator lint_off {w}\n" for w in _WAIVED)
_LINT_ON = "".join(f"// verilator lint_on {w}\n" for w in _WAIVED)


def verilog_name(name: str) -> str:
    """A Verilog identifier from a layer name: the one naming rule, :func:`hardyt.quant.contract.names.layer_stem`.

    >>> verilog_name("blocks.0.norm1"), verilog_name("3x")
    ('blocks_0_norm1', 'm_3x')
    """
    return layer_stem(name)


class ReadmemhPlatform:
    """Emission-time platform: tagged ROMs become ``$readmemh`` instances.

    Parameters
    ----------
    name : str
        The design's name: ROM files are ``NAME_<rom>.mem``, the ROM module
        ``NAME_rom`` (unique per design, so several cores can share a project).

    Attributes
    ----------
    roms : dict
        File name → ``{"rom", "width", "depth", "words"}`` in elaboration order.
    """

    def __init__(self, name: str):
        self.name = name
        self.rom_module = f"{name}_rom"
        self.block_module = f"{name}_rom_block"
        self.roms: dict[str, dict] = {}
        self.block_used = False

    def _file_for(self, rom: str, width: int, words: list[int]) -> str:
        entry = {"rom": rom, "width": width, "depth": len(words), "words": words}
        fname, n = f"{self.name}_{rom}.mem", 1
        while fname in self.roms and self.roms[fname] != entry:
            fname, n = f"{self.name}_{rom}_{n}.mem", n + 1
        self.roms[fname] = entry
        return fname

    def get_memory(self, memory):
        rom = memory.attrs.get("hardyt_rom")
        ports = memory.read_ports
        if rom is None or memory.write_ports or not ports or any(p.domain == "comb" for p in ports):
            return memory.elaborate(None)  # a RAM or untagged memory: Amaranth's own lowering
        domains = sorted({p.domain for p in ports})
        if len(domains) != 1:
            raise HardytError(f"ROM {rom}: read ports in several clock domains {domains}")
        width = Shape.cast(memory.shape).width
        words = [int(v) & ((1 << width) - 1) for v in memory.init]
        fname = self._file_for(str(rom), width, words)
        abits = len(ports[0].addr)
        m = Module()
        # A ROM tagged ``hardyt_rom_style = "block"`` is built by a module that asks synthesis for block RAM.
        block = memory.attrs.get("hardyt_rom_style") == "block"
        self.block_used |= block
        m.submodules.rom = Instance(
            self.block_module if block else self.rom_module,
            p_WIDTH=width, p_DEPTH=len(words), p_ABITS=max(1, abits), p_PORTS=len(ports), p_INIT_FILE=fname,
            i_clk=ClockSignal(domains[0]),
            i_en=Cat(*(p.en for p in ports)),
            # A one-word ROM has a 0-bit address in Amaranth; Verilog needs at least one bit.
            i_addr=Cat(*((p.addr if abits else Const(0, 1)) for p in ports)),
            o_data=Cat(*(Value.cast(p.data) for p in ports)),
        )
        return m

    def rom_verilog(self) -> str:
        text = _ROM_MODULE.format(name=self.rom_module, style="", style_note="")
        if self.block_used:
            text += "\n" + _ROM_MODULE.format(name=self.block_module, style='(* rom_style = "block" *) ',
                                              style_note=", in block RAM")
        return text

    def mem_text(self, fname: str) -> str:
        """``$readmemh`` text: one zero-padded hex word per line, address 0 first."""
        entry = self.roms[fname]
        digits = max(1, (entry["width"] + 3) // 4)
        return "".join(f"{w:0{digits}x}\n" for w in entry["words"])


def _spec_kind(spec) -> str:
    return spec.to_dict().get("hardyt", "dyt")


def emit_verilog(spec, name: str, radix: int | None = None) -> tuple[str, ReadmemhPlatform, AxisTop]:
    """The Verilog text of ``spec``'s AXI4-Stream top named ``name`` (ROMs not yet written)."""
    top = AxisTop(build_core(spec, radix))
    notes = (f"// Spec: {name}.spec.json; manifest: {name}.json. Lane j of a beat is tdata[j*W +: W].\n"
             f"// ROM contents are loaded with $readmemh from {name}_<rom>.mem, a path relative to the\n"
             f"// working directory: run simulators and synthesis from this file's directory.\n")
    text, platform = top_verilog(top, name, f"{_spec_kind(spec)} core", notes)
    return text, platform, top


def top_verilog(top, name: str, what: str, notes: str) -> tuple[str, ReadmemhPlatform]:
    """The Verilog of an elaboratable ``top`` named ``name``: a header (``what``, then ``notes``),
    the lint-waived generated part and the ROM module; and the platform that saw its ROMs."""
    platform = ReadmemhPlatform(name)
    body = verilog.convert(top, name=name, platform=platform, emit_src=False, strip_internal_attrs=True)
    header = f"// {name}.v: hardyt {hardyt_version()} {what}, AXI4-Stream top `{name}`.\n" + notes
    return header + _LINT_OFF + body + _LINT_ON + "\n" + platform.rom_verilog(), platform


def emit(spec, out_dir, name: str | None = None, radix: int | None = None) -> Path:
    """Write ``NAME.v``, ``NAME_<rom>.mem``, ``NAME.json``, ``NAME.spec.json``, ``NAME.core`` (+ ``NAME_tb.v``).

    Parameters
    ----------
    spec : DyTSpec or LayerNormSpec
        The core to build.
    out_dir : path
        Created if needed; files are written atomically (nothing half-written).
    name : str, optional
        Top module and file name (default: ``spec.name`` or ``"dyt"``); made a
        Verilog identifier.
    radix : int, optional
        A threshold tanh's search radix (:class:`hardyt.hw.datapath.dyt_core.DyTCore`; default 2),
        recorded in the manifest as ``threshold_radix``.

    Returns
    -------
    Path
        The manifest ``NAME.json``.
    """
    name = verilog_name(name or getattr(spec, "name", None) or "dyt")
    text, platform, top = emit_verilog(spec, name, radix)
    d = spec.to_dict()
    mems = sorted(platform.roms)
    manifest = {
        "hardyt_version": hardyt_version(),
        "core": d.get("hardyt", "dyt"),
        "name": name,
        "top": name,
        "verilog": f"{name}.v",
        "mems": mems,
        "roms": {f: {k: platform.roms[f][k] for k in ("rom", "width", "depth")} for f in mems},
        "spec_file": f"{name}.spec.json",
        "fusesoc_core": f"{name}.core",        # FuseSoC CAPI2 (hw/fusesoc.py), with its smoke testbench
        "latency": top.latency,
        "channels": spec.channels,
        "lanes": spec.lanes,
        "in_bits": spec.in_bits,
        "out_bits": spec.out_bits,
        "s_axis_tdata_width": len(top.s_axis_tdata),
        "m_axis_tdata_width": len(top.m_axis_tdata),
        "reset": "aresetn, active low, synchronous to aclk",
        "spec": d,
    }
    if getattr(getattr(spec, "tanh", None), "kind", None) == "threshold":
        manifest["threshold_radix"] = top.core.radix
    with atomic_output_dir(out_dir) as tmp:
        (tmp / f"{name}.v").write_text(text)
        for fname in mems:
            (tmp / fname).write_text(platform.mem_text(fname))
        (tmp / f"{name}.spec.json").write_text(json.dumps(d, indent=1) + "\n")
        (tmp / f"{name}.json").write_text(json.dumps(manifest, indent=1) + "\n")
        (tmp / f"{name}.core").write_text(core_file(manifest))
        (tmp / f"{name}_tb.v").write_text(smoke_testbench(manifest))
        for fname, text in smoke_vectors(manifest, spec).items():
            (tmp / fname).write_text(text)
    return Path(out_dir) / f"{name}.json"


def load_manifest(directory) -> dict:
    """The manifest of an emitted directory, checked: exactly one, every file present.

    The returned dict also has ``"dir"``: the directory as an absolute path string.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise HardytError(f"{directory}: not a directory of emitted RTL")
    found = []
    for path in sorted(directory.glob("*.json")):
        if path.name.endswith(".spec.json"):
            continue
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(d, dict) and "hardyt_version" in d and "verilog" in d:
            found.append((path, d))
    if len(found) != 1:
        what = "no hardyt manifest" if not found else \
            f"{len(found)} manifests ({', '.join(p.name for p, _ in found)})"
        raise HardytError(f"{directory}: expected exactly one emitted core, found {what}; run `hardyt rtl`")
    path, d = found[0]
    missing = [k for k in MANIFEST_KEYS if k not in d]
    if missing:
        raise HardytError(f"{path}: manifest lacks {', '.join(missing)}")
    wrong = [k for k in MANIFEST_KEYS if not _MANIFEST_TYPES.get(k, _is_int)(d[k])]
    if wrong:
        raise HardytError(f"{path}: manifest key {wrong[0]} has the wrong type ({type(d[wrong[0]]).__name__})")
    absent = [f for f in [d["verilog"], *d["mems"]] if not (directory / f).is_file()]
    if absent:
        raise HardytError(f"{directory}: missing emitted file(s) {', '.join(absent)} listed in {path.name}")
    return d | {"dir": str(directory.resolve())}
