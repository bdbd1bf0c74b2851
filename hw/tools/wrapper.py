"""The timing wrapper synthesis places around a core: every port registered, few pins whatever the width.

nextpnr does not time input-to-register paths, so Fmax is read on this
wrapper. It is written as its own Verilog module beside the core's (the
core's emitted Verilog is never edited).
"""
from __future__ import annotations

__all__ = ["wrapper_verilog"]


def wrapper_verilog(top: str, in_width: int, out_width: int, extra_ports: dict | None = None) -> tuple[str, str]:
    """``(module name, Verilog)`` of a wrapper registering every port of ``top``.

    Few pins whatever the width: ``s_axis_tdata`` comes from a shift register
    fed by one pin, ``m_axis_tdata`` leaves through a registered 4-input XOR
    tree (so no output bit can be optimized away). ``extra_ports`` (a
    manifest's: ``{"in": {port: width}, "out": {port: width}}``, e.g. the
    engine's coefficient port) are driven from a second shift register and
    fold into the same XOR tree.
    """
    name = f"{top}_synth_wrap"
    extra_in, extra_out = (extra_ports or {}).get("in", {}), (extra_ports or {}).get("out", {})
    xin_width, xout_width = sum(extra_in.values()), sum(extra_out.values())
    core_out_width = out_width
    out_width += xout_width
    shift = "din" if in_width == 1 else f"{{tdata_i[{in_width - 2}:0], din}}"
    lines = [
        f"// Timing wrapper for {top}: every core port is driven by or lands in a register.",
        f"module {name} (input wire aclk, input wire aresetn_pin, input wire din,"
        + (" input wire xdin," if xin_width else "") + " input wire tvalid_pin,",
        "    input wire tlast_pin, input wire tready_pin, output reg dout, output reg tvalid_out,",
        "    output reg tlast_out, output reg tready_out);",
        "    reg [1:0] rst_sync = 2'b00;",
        f"    reg [{in_width - 1}:0] tdata_i = 0;",
        "    reg tvalid_i = 0, tlast_i = 0, tready_i = 0;",
        f"    wire [{core_out_width - 1}:0] tdata_o;",
        "    wire tvalid_o, tlast_o, tready_o;",
        f"    reg [{out_width - 1}:0] x0 = 0;",
    ]
    body = [
        "    always @(posedge aclk) begin",
        "        rst_sync <= {rst_sync[0], aresetn_pin};",
        f"        tdata_i <= {shift};",
        "        tvalid_i <= tvalid_pin; tlast_i <= tlast_pin; tready_i <= tready_pin;",
        "        x0 <= " + (f"{{xout, tdata_o}};" if xout_width else "tdata_o;"),
        "        tvalid_out <= tvalid_o; tlast_out <= tlast_o; tready_out <= tready_o;",
    ]
    width, level = out_width, 0
    while width > 1:
        nxt = (width + 3) // 4
        lines.append(f"    reg [{nxt - 1}:0] x{level + 1} = 0;")
        for i in range(nxt):
            hi = min(width, 4 * i + 4) - 1
            body.append(f"        x{level + 1}[{i}] <= ^x{level}[{hi}:{4 * i}];")
        width, level = nxt, level + 1
    body.append(f"        dout <= x{level}[0];")
    body.append("    end")
    conns = []
    if xin_width:
        lines.append(f"    reg [{xin_width - 1}:0] xin = 0;")
        body.insert(1, "        xin <= " + ("xdin;" if xin_width == 1 else f"{{xin[{xin_width - 2}:0], xdin}};"))
        at = 0
        for port, w in extra_in.items():
            conns.append(f".{port}(xin[{at + w - 1}:{at}])")
            at += w
    if xout_width:
        lines.append(f"    wire [{xout_width - 1}:0] xout;")
        at = 0
        for port, w in extra_out.items():
            conns.append(f".{port}(xout[{at + w - 1}:{at}])")
            at += w
    inst = [
        f"    {top} core (.aclk(aclk), .aresetn(rst_sync[1]),",
        "        .s_axis_tdata(tdata_i), .s_axis_tvalid(tvalid_i), .s_axis_tlast(tlast_i), .s_axis_tready(tready_o),",
        "        .m_axis_tdata(tdata_o), .m_axis_tvalid(tvalid_o), .m_axis_tlast(tlast_o), .m_axis_tready(tready_i)"
        + "".join(f",\n        {c}" for c in conns) + ");",
        "endmodule",
    ]
    return name, "\n".join(lines + body + inst) + "\n"
