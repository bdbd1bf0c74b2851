"""A FuseSoC CAPI2 core file for an emitted core or DyT engine, and the smoke testbench its ``sim`` target runs.

``NAME.core`` lists ``NAME.v`` and the ``.mem`` files (a core's ROMs; an
engine's coefficient images, ``<layer>.coef.mem``); they are ``copyto``
entries, so FuseSoC copies them into the tool's work directory, where the
``$readmemh`` paths (relative) find them. Targets (through Edalize):

- ``default``: the files, top ``NAME`` (what an including project uses);
- ``lint``: Verilator ``--lint-only``;
- ``sim``: Icarus Verilog on ``NAME_tb.v``, which resets the core, streams
  every channel of a few tokens (``NAME_tb_x.mem``: corners, then random
  codes) with the sink always ready and compares every output beat and its
  ``tlast`` with the golden model's (``NAME_tb_y.mem``, written by
  :func:`smoke_vectors`): a core that outputs zeros fails it. An engine's
  testbench first sends layer 0's coefficient image, checks that it loads,
  then streams that layer's tokens.

``fusesoc --cores-root DIR run --target lint hardyt:dyt:NAME`` from any directory.
"""
from __future__ import annotations

import numpy as np

from hardyt.quant.contract.fixed import signed_range
from hardyt.quant.contract.stream import pack_lanes

__all__ = ["core_name", "core_file", "smoke_testbench", "engine_smoke_testbench", "smoke_vectors", "SMOKE_TOKENS"]

SMOKE_TOKENS = 3


def core_name(manifest: dict) -> str:
    """The core's VLNV: ``hardyt:<dyt|layernorm>:NAME:<version>``."""
    version = manifest["hardyt_version"].split("+")[0]
    return f"hardyt:{manifest['core']}:{manifest['name']}:{version}"


def core_file(manifest: dict, waive=()) -> str:
    """The CAPI2 ``NAME.core`` text of an emitted core's manifest; ``waive``: Verilator lint warnings
    the ``lint`` target turns off."""
    name = manifest["name"]
    options = f"\n      verilator_options: [{', '.join(f'-Wno-{w}' for w in waive)}]" if waive else ""
    files = manifest["mems"] + [lay["image_mem"] for lay in manifest.get("layers", [])]
    mems = "".join(f"      - {m}: {{file_type: user, copyto: {m}}}\n" for m in files)
    return f"""CAPI=2:
# Written by hardyt rtl. The .mem files are copied next to the tools ($readmemh paths are relative).
name: {core_name(manifest)}
description: "hardyt {manifest['core']} core: {manifest['channels']} channels, {manifest['lanes']} lanes, \
AXI4-Stream, latency {manifest['latency']} cycles"

filesets:
  rtl:
    files:
      - {manifest['verilog']}
{mems}    file_type: verilogSource
  smoke_tb:
    files:
      - {name}_tb.v
      - {name}_tb_x.mem: {{file_type: user, copyto: {name}_tb_x.mem}}
      - {name}_tb_y.mem: {{file_type: user, copyto: {name}_tb_y.mem}}
    file_type: verilogSource

targets:
  default:
    filesets: [rtl]
    toplevel: {name}
  lint:
    flow: lint
    flow_options:
      tool: verilator{options}
    filesets: [rtl]
    toplevel: {name}
  sim:
    flow: sim
    flow_options:
      tool: icarus
      iverilog_options: [-g2012]
    filesets: [rtl, smoke_tb]
    toplevel: {name}_tb
"""


def smoke_vectors(manifest: dict, spec, seed: int = 0) -> dict[str, str]:
    """``NAME_tb_x.mem`` and ``NAME_tb_y.mem``: ``SMOKE_TOKENS`` tokens of ``spec`` (the core's, or an
    engine's layer 0) as packed input beats, minimum and maximum code first, then random codes, and
    the golden model's output beats, one hex word per line (the manifest's port widths)."""
    lo, hi = signed_range(spec.in_bits)
    x = np.random.default_rng(seed).integers(lo, hi + 1, (SMOKE_TOKENS, spec.channels), dtype=np.int64)
    x[0, 0], x[-1, -1] = lo, hi
    beats = x.reshape(-1, manifest["lanes"])
    last = (np.arange(len(beats)) % (spec.channels // manifest["lanes"])) == spec.channels // manifest["lanes"] - 1
    y = spec.reference_stream(beats, last)
    out = {}
    for key, words, bits in (("x", beats, manifest["in_bits"]), ("y", y, manifest["out_bits"])):
        digits = -(-bits * manifest["lanes"] // 4)
        out[f"{manifest['name']}_tb_{key}.mem"] = "".join(f"{pack_lanes(w, bits):0{digits}x}\n" for w in words)
    return out


def _data_stream(manifest: dict, beats: int) -> dict:
    """The Verilog every smoke testbench shares: the data ports' declarations and connections, and the
    always-block statements of the reset, the source (``beats`` per token) and the sink (always ready)."""
    w_in, w_out = manifest["s_axis_tdata_width"], manifest["m_axis_tdata_width"]
    handshake = "(s_axis_tvalid && s_axis_tready)"
    name, total = manifest["name"], beats * SMOKE_TOKENS
    return {
        "decl": f"""    reg aclk = 0, aresetn = 0;
    reg [{w_in - 1}:0] s_axis_tdata = 0;
    reg s_axis_tvalid = 0, s_axis_tlast = 0;
    wire s_axis_tready, m_axis_tvalid, m_axis_tlast;
    wire [{w_out - 1}:0] m_axis_tdata;
    reg [{w_in - 1}:0] xmem [0:{total}];
    reg [{w_out - 1}:0] ymem [0:{total - 1}];
    integer wrong = 0;
    initial begin
        $readmemh("{name}_tb_x.mem", xmem, 0, {total - 1});
        $readmemh("{name}_tb_y.mem", ymem);
        xmem[{total}] = 0;
    end""",
        "ports": """.aclk(aclk), .aresetn(aresetn),
        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .s_axis_tlast(s_axis_tlast), .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(1'b1), .m_axis_tlast(m_axis_tlast)""",
        "always": f"""        cycle <= cycle + 1;
        if (cycle == 4) aresetn <= 1;
        if (m_axis_tvalid) received <= received + 1;
        // Every beat out against the golden model's, tlast included (the sink is always ready).
        if (m_axis_tvalid && (received >= {total} || m_axis_tdata !== ymem[received]
                              || m_axis_tlast !== (received % {beats} == {beats - 1}))) wrong <= wrong + 1;
        if {handshake} sent <= sent + 1;
        s_axis_tvalid <= aresetn && (sent + {handshake} < {total});
        s_axis_tdata <= xmem[sent + {handshake}];
        s_axis_tlast <= (sent + {handshake}) % {beats} == {beats - 1};""",
    }


def smoke_testbench(manifest: dict) -> str:
    """``NAME_tb.v``: reset, stream ``SMOKE_TOKENS`` tokens, compare every beat out with the golden model's;
    ``$fatal`` if one is lost or differs."""
    name = manifest["name"]
    beats = manifest["channels"] // manifest["lanes"]
    total = beats * SMOKE_TOKENS
    v = _data_stream(manifest, beats)
    return f"""// Smoke test of {name} (written by hardyt rtl): beats in = beats out, each equal to the golden
// model's (NAME_tb_y.mem). Every input code, backpressure, reset: `hardyt sim`.
`timescale 1ns/1ps
module {name}_tb;
{v["decl"]}
    integer sent = 0, received = 0, cycle = 0;
    {name} dut ({v["ports"]});
    always #5 aclk = ~aclk;
    always @(posedge aclk) begin
{v["always"]}
    end
    initial begin
        #({(total + 64) * 10});
        if (sent != {total} || received != {total} || wrong != 0)
            $fatal(1, "{name} smoke: sent %0d, received %0d beats, %0d differ from the golden model", sent,
                   received, wrong);
        $display("{name} smoke: %0d beats in, %0d beats out, every one as the golden model", sent, received);
        $finish;
    end
endmodule
"""


def engine_smoke_testbench(manifest: dict) -> str:
    """An engine's ``NAME_tb.v``: load layer 0's image (``$readmemh``), then stream ``SMOKE_TOKENS`` of its
    tokens with ``layer_select`` 0; ``$fatal`` unless the frame loaded and every beat came out."""
    name, layer = manifest["name"], manifest["layers"][0]
    words, beats = layer["frame_beats"], layer["beats_per_token"]
    total = beats * SMOKE_TOKENS
    v = _data_stream(manifest, beats)
    taken = "(s_axis_coef_tvalid && s_axis_coef_tready)"
    return f"""// Smoke test of the DyT engine {name} (written by hardyt rtl): layer 0's coefficient image loads, then
// beats in = beats out, each equal to the golden model's (tokens wait, s_axis_tready low, until the image
// has loaded). Every layer, every input code: `hardyt sim`.
`timescale 1ns/1ps
module {name}_tb;
{v["decl"]}
    reg [31:0] image [0:{words - 1}];
    reg [31:0] s_axis_coef_tdata = 0;
    reg s_axis_coef_tvalid = 0, s_axis_coef_tlast = 0;
    wire s_axis_coef_tready, coef_done;
    wire [{manifest["extra_ports"]["out"]["coef_status"] - 1}:0] coef_status;
    integer sent = 0, received = 0, cycle = 0, taken = 0, loaded = 0;
    initial $readmemh("{layer["image_mem"]}", image);
    {name} dut ({v["ports"]},
        .s_axis_coef_tdata(s_axis_coef_tdata), .s_axis_coef_tvalid(s_axis_coef_tvalid),
        .s_axis_coef_tready(s_axis_coef_tready), .s_axis_coef_tlast(s_axis_coef_tlast),
        .layer_select({manifest["layer_select_width"]}'d0), .coef_status(coef_status), .coef_done(coef_done));
    always #5 aclk = ~aclk;
    always @(posedge aclk) begin
{v["always"]}
        if (coef_done && coef_status == 1) loaded <= 1;
        if {taken} taken <= taken + 1;
        s_axis_coef_tvalid <= aresetn && (taken + {taken} < {words});
        s_axis_coef_tdata <= image[taken + {taken}];
        s_axis_coef_tlast <= taken + {taken} == {words - 1};
    end
    initial begin
        #({(total + layer["load_cycles"] + 64) * 10});
        if (!loaded || sent != {total} || received != {total} || wrong != 0)
            $fatal(1, "{name} smoke: image loaded %0d, sent %0d, received %0d beats, %0d differ from the golden model",
                   loaded, sent, received, wrong);
        $display("{name} smoke: image loaded, %0d beats in, %0d beats out, every one as the golden model", sent,
                 received);
        $finish;
    end
endmodule
"""
