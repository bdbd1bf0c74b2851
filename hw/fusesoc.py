"""A FuseSoC CAPI2 core file for an emitted core, and the smoke testbench its ``sim`` target runs.

``NAME.core`` lists ``NAME.v`` and the ``.mem`` ROM files; the ``.mem`` files
are ``copyto`` entries, so FuseSoC copies them into the tool's work directory,
where the ``$readmemh`` paths (relative) find them. Targets (through Edalize):

- ``default``: the files, top ``NAME`` (what an including project uses);
- ``lint``: Verilator ``--lint-only``;
- ``sim``: Icarus Verilog on ``NAME_tb.v``, which resets the core, streams
  every channel of a few tokens with the sink always ready and checks that as
  many beats come out as went in (values are proven by ``hardyt sim``).

``fusesoc --cores-root DIR run --target lint hardyt:dyt:NAME`` from any directory.
"""
from __future__ import annotations

__all__ = ["core_name", "core_file", "smoke_testbench", "SMOKE_TOKENS"]

SMOKE_TOKENS = 3


def core_name(manifest: dict) -> str:
    """The core's VLNV: ``hardyt:<dyt|layernorm>:NAME:<version>``."""
    version = manifest["hardyt_version"].split("+")[0]
    return f"hardyt:{manifest['core']}:{manifest['name']}:{version}"


def core_file(manifest: dict) -> str:
    """The CAPI2 ``NAME.core`` text of an emitted core's manifest."""
    name = manifest["name"]
    mems = "".join(f"      - {m}: {{file_type: user, copyto: {m}}}\n" for m in manifest["mems"])
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
    file_type: verilogSource

targets:
  default:
    filesets: [rtl]
    toplevel: {name}
  lint:
    flow: lint
    flow_options:
      tool: verilator
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


def smoke_testbench(manifest: dict) -> str:
    """``NAME_tb.v``: reset, stream ``SMOKE_TOKENS`` tokens, count the beats out; ``$fatal`` if any is lost."""
    name, w_in, w_out = manifest["name"], manifest["s_axis_tdata_width"], manifest["m_axis_tdata_width"]
    beats = manifest["channels"] // manifest["lanes"]
    total = beats * SMOKE_TOKENS
    return f"""// Smoke test of {name} (written by hardyt rtl): beats in = beats out. Values: `hardyt sim`.
`timescale 1ns/1ps
module {name}_tb;
    reg aclk = 0, aresetn = 0;
    reg [{w_in - 1}:0] s_axis_tdata = 0;
    reg s_axis_tvalid = 0, s_axis_tlast = 0;
    wire s_axis_tready, m_axis_tvalid, m_axis_tlast;
    wire [{w_out - 1}:0] m_axis_tdata;
    integer sent = 0, received = 0, cycle = 0;
    {name} dut (.aclk(aclk), .aresetn(aresetn),
        .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
        .s_axis_tlast(s_axis_tlast), .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid),
        .m_axis_tready(1'b1), .m_axis_tlast(m_axis_tlast));
    always #5 aclk = ~aclk;
    always @(posedge aclk) begin
        cycle <= cycle + 1;
        if (cycle == 4) aresetn <= 1;
        if (m_axis_tvalid) received <= received + 1;
        if (s_axis_tvalid && s_axis_tready) sent <= sent + 1;
        s_axis_tvalid <= aresetn && (sent + (s_axis_tvalid && s_axis_tready) < {total});
        s_axis_tdata <= {{{max(1, w_in // 16 + 1)}{{$random}}}};
        s_axis_tlast <= (sent + (s_axis_tvalid && s_axis_tready)) % {beats} == {beats - 1};
    end
    initial begin
        #({(total + 64) * 10});
        if (sent != {total} || received != {total}) $fatal(1, "{name} smoke: sent %0d, received %0d beats", sent,
                                                            received);
        $display("{name} smoke: %0d beats in, %0d beats out", sent, received);
        $finish;
    end
endmodule
"""
