// hardyt bulk verification harness: drives the emitted top from memory files and checks it in HDL.
//
// cocotb stays the entry point (clock, reset, waiting for `done`, reading the
// counters), but nothing happens in Python per cycle, so a simulator runs at
// its own speed. Files, in the simulator's working directory ($readmemh hex):
//   bulk_x.mem     DEPTH*P input codes, WIN bits each (lane i of beat k at k*P+i)
//   bulk_y.mem     DEPTH*P expected output codes, WOUT bits each
//   bulk_last.mem  DEPTH tlast flags
// Inputs driven by cocotb (held while aresetn is high): `beats` (beats to send
// and check, a prefix of the files) and `pause` (1: random idle on tvalid and
// random backpressure on tready from two xorshift generators; 0: full rate).
// `HARDYT_TOP is the emitted top module's name.
`timescale 1ns/1ps
module hardyt_bulk #(
    parameter P = 1,
    parameter WIN = 8,
    parameter WOUT = 8,
    parameter DEPTH = 256
) (
    input wire aclk,
    input wire aresetn,
    input wire [31:0] beats,
    input wire pause,
    output reg done,
    output reg [63:0] checked,      // elements compared
    output reg [63:0] mismatches,   // elements (and tlast flags) that differ
    output reg [63:0] extra,        // beats after the last expected one
    output reg [63:0] protocol,     // AXI4-Stream rule violations on m_axis
    output reg [63:0] cycles,       // cycles out of reset up to and including the last output beat
    output reg [63:0] first_cycle_in,   // cycle of the first s_axis handshake
    output reg [63:0] first_cycle_out,  // cycle of the first m_axis handshake
    output reg [63:0] first_bad,    // beat index of the first mismatch (all ones: none)
    output reg [31:0] first_bad_lane,
    output reg [WOUT-1:0] first_bad_got
);
    reg [WIN-1:0] xmem [0:DEPTH*P-1];
    reg [WOUT-1:0] ymem [0:DEPTH*P-1];
    reg lastmem [0:DEPTH-1];
    initial begin
        $readmemh("bulk_x.mem", xmem);
        $readmemh("bulk_y.mem", ymem);
        $readmemh("bulk_last.mem", lastmem);
    end

    // Source: tdata/tlast come from the beat counter; tvalid held until the handshake.
    reg [31:0] in_idx, out_idx;
    reg s_valid, m_ready;
    wire s_ready, m_valid, m_last;
    wire [P*WIN-1:0] s_data;
    wire [P*WOUT-1:0] m_data;
    wire s_last = lastmem[in_idx];
    genvar g;
    generate
        for (g = 0; g < P; g = g + 1) begin : lane
            assign s_data[g*WIN +: WIN] = xmem[in_idx*P + g];
        end
    endgenerate

    `HARDYT_TOP dut (
        .aclk(aclk), .aresetn(aresetn),
        .s_axis_tdata(s_data), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready), .s_axis_tlast(s_last),
        .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready), .m_axis_tlast(m_last)
    );

    // Two xorshift32 generators: idle on about 1/4 of cycles when pause is on.
    reg [31:0] rs, rk;
    function [31:0] xorshift(input [31:0] v);
        reg [31:0] t;
        begin
            t = v ^ (v << 13);
            t = t ^ (t >> 17);
            xorshift = t ^ (t << 5);
        end
    endfunction

    wire s_fire = s_valid && s_ready;
    wire m_fire = m_valid && m_ready;
    reg stalled, stalled_last;
    reg [P*WOUT-1:0] stalled_data;
    integer i, bad;
    reg [31:0] next_in;
    always @(posedge aclk) begin
        if (!aresetn) begin
            in_idx <= 0; out_idx <= 0; s_valid <= 0; m_ready <= 0; done <= 0;
            checked <= 0; mismatches <= 0; extra <= 0; protocol <= 0; cycles <= 0;
            first_cycle_in <= 64'hFFFFFFFFFFFFFFFF; first_cycle_out <= 64'hFFFFFFFFFFFFFFFF;
            first_bad <= 64'hFFFFFFFFFFFFFFFF; first_bad_lane <= 0; first_bad_got <= 0;
            rs <= 32'h12345678; rk <= 32'h9abcdef1; stalled <= 0;
        end else begin
            rs <= xorshift(rs);
            rk <= xorshift(rk);
            if (!done) cycles <= cycles + 1;
            // source
            if (s_fire && first_cycle_in == 64'hFFFFFFFFFFFFFFFF) first_cycle_in <= cycles;
            if (!s_valid || s_fire) begin
                next_in = s_fire ? in_idx + 1 : in_idx;
                in_idx <= next_in;
                s_valid <= (next_in < beats) && !(pause && rs[1:0] == 2'b00);
            end
            // sink
            m_ready <= !(pause && rk[1:0] == 2'b00);
            // protocol: held data must not change, tvalid must not drop before the handshake
            if (stalled && (!m_valid || m_data != stalled_data || m_last != stalled_last))
                protocol <= protocol + 1;
            stalled <= m_valid && !m_ready;
            stalled_data <= m_data;
            stalled_last <= m_last;
            // checker
            if (m_fire) begin
                if (first_cycle_out == 64'hFFFFFFFFFFFFFFFF) first_cycle_out <= cycles;
                if (out_idx >= beats) begin
                    extra <= extra + 1;
                end else begin
                    bad = 0;
                    for (i = P - 1; i >= 0; i = i - 1) begin
                        if (m_data[i*WOUT +: WOUT] != ymem[out_idx*P + i]) begin
                            bad = bad + 1;
                            if (first_bad == 64'hFFFFFFFFFFFFFFFF) begin
                                first_bad_lane <= i;
                                first_bad_got <= m_data[i*WOUT +: WOUT];
                            end
                        end
                    end
                    if (m_last != lastmem[out_idx]) bad = bad + 1;
                    if (bad != 0 && first_bad == 64'hFFFFFFFFFFFFFFFF) first_bad <= out_idx;
                    mismatches <= mismatches + bad;
                    checked <= checked + P;
                    out_idx <= out_idx + 1;
                    if (out_idx + 1 == beats) done <= 1;
                end
            end
        end
    end
endmodule
