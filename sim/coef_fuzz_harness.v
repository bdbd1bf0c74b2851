// hardyt coefficient-port fuzz harness: fuzzed frames into an emitted DyT engine while tokens stream,
// every check in HDL, so Verilator runs at its own speed (sim/coef_fuzz_run.py writes the files).
//
// Files ($readmemh, in the simulator's working directory):
//   fuzz_coef.mem    nwords words {tlast, data[31:0]}: the plan's frames, then NKEEP valid frames (one
//                    per layer) that are sent again and again, once the plan is sent, until every token
//                    has come out
//   fuzz_expect.mem  per frame (plan, then keep-alive): {layer[7:0], status[2:0], table} the loader
//                    model's outcome (hardyt.sim.coef_fuzz.expect); table = 2**IN_BITS entries of TB bits
//   fuzz_x.mem       ntok * NBEATS input beats {layer_select, tlast, data}
// Written: fuzz_statuses.txt, one digit per frame, the status the engine gave it.
//
// The monitor is that of tests/fuzz_coef.py, reading the engine's loader by hierarchical reference
// (`HARDYT_LOADER): each frame's status is the model's; a loaded frame's table, as written into the
// RAM, is the model's; a token starts on a bank whose tag is (usable, its layer), written by no beat
// since its frame loaded, that frame's layer being the token's; the bank in use changes only right
// after a token's first beat; every output element is the table lookup of that frame (bit-exact).
// Idle on the coefficient and token sources and backpressure on m_axis from xorshift generators.
`timescale 1ns/1ps
module hardyt_coef_fuzz #(
    parameter P = 2, parameter WIN = 5, parameter TB = 8, parameter LSW = 2, parameter NBEATS = 4,
    parameter NKEEP = 1, parameter BANK_W = 5, parameter LAYER_LSB = 1, parameter LAYER_W = 2,
    parameter DEPTH_W = 1, parameter DEPTH_F = 2, parameter DEPTH_X = 1   // memory sizes
) (
    input wire aclk,
    input wire aresetn,
    // Held while aresetn is high (set by the cocotb test, so one build serves any run that fits):
    input wire [31:0] nwords,       // words in fuzz_coef.mem
    input wire [31:0] keep_word,    // the first keep-alive word
    input wire [31:0] nplan,        // frames of the plan
    input wire [31:0] ntok,         // tokens
    input wire [31:0] seed,         // of the idle and backpressure generators
    output reg done,
    output reg [63:0] frames,        // frames the engine ended (coef_done)
    output reg [63:0] status_bad,    // ... with another status than the model's
    output reg [63:0] table_bad,     // loaded frames whose written table is not the model's
    output reg [63:0] start_bad,     // tokens started on a wrong, unloaded or rewritten bank
    output reg [63:0] switch_bad,    // bank changes inside a token
    output reg [63:0] checked,       // output elements compared
    output reg [63:0] out_bad,       // output elements (and tlast flags) that differ
    output reg [63:0] cycles,
    output reg [63:0] first_bad_cycle
);
    localparam TBL = TB << WIN;
    localparam EW = TBL + 11;
    localparam XW = LSW + 1 + P * WIN;
    localparam MASK = (1 << WIN) - 1;
    localparam [63:0] NONE = 64'hFFFFFFFFFFFFFFFF;

    reg [32:0] coefmem [0:DEPTH_W-1];
    reg [EW-1:0] expmem [0:DEPTH_F-1];
    reg [XW-1:0] xmem [0:DEPTH_X*NBEATS-1];
    reg [31:0] tok_frame [0:DEPTH_X-1];     // the expect index of the frame each token's bank holds
    integer fd;
    initial begin
        $readmemh("fuzz_coef.mem", coefmem);
        $readmemh("fuzz_expect.mem", expmem);
        $readmemh("fuzz_x.mem", xmem);
        fd = $fopen("fuzz_statuses.txt", "w");
    end

    // The engine.
    reg c_valid, s_valid, m_ready;
    reg [31:0] ci, xi;
    wire c_ready, s_ready, m_valid, m_last;
    wire [P*TB-1:0] m_data;
    wire [32:0] cword = coefmem[ci];
    wire [XW-1:0] xword = xmem[xi];
    `HARDYT_TOP dut (
        .aclk(aclk), .aresetn(aresetn),
        .s_axis_tdata(xword[P*WIN-1:0]), .s_axis_tvalid(s_valid), .s_axis_tready(s_ready),
        .s_axis_tlast(xword[P*WIN]), .layer_select(xword[XW-1 -: LSW]),
        .m_axis_tdata(m_data), .m_axis_tvalid(m_valid), .m_axis_tready(m_ready), .m_axis_tlast(m_last),
        .s_axis_coef_tdata(cword[31:0]), .s_axis_coef_tvalid(c_valid), .s_axis_coef_tready(c_ready),
        .s_axis_coef_tlast(cword[32]), .coef_status(), .coef_done()
    );
    // What the monitor reads of the loader.
    wire l_we = `HARDYT_LOADER.we;
    wire [WIN-1:0] l_entry = `HARDYT_LOADER.entry;
    wire [TB-1:0] l_wdata = `HARDYT_LOADER.wdata;
    wire l_target = `HARDYT_LOADER.target;
    wire l_active = `HARDYT_LOADER.active;
    wire [2*BANK_W-1:0] l_banks = `HARDYT_LOADER.banks;
    wire l_done = `HARDYT_LOADER.done;
    wire [2:0] l_status = `HARDYT_LOADER.status;

    function [31:0] xorshift(input [31:0] v);
        reg [31:0] t;
        begin
            t = v ^ (v << 13);
            t = t ^ (t >> 17);
            xorshift = t ^ (t << 5);
        end
    endfunction

    wire c_fire = c_valid && c_ready;
    wire s_fire = s_valid && s_ready;
    wire m_fire = m_valid && m_ready;
    reg [31:0] out_idx;
    // A frame's last word, the plan sent and every token out: the source stops after it.
    wire finishing = c_fire && cword[32] && ci + 1 >= keep_word && out_idx == ntok * NBEATS;
    reg [31:0] rc, rs, rk;
    reg [63:0] sent;                      // frames whose last word was sent
    reg stop;                             // the coefficient source is finished
    reg [31:0] e_done;                    // expect index of the next frame to end
    reg [TBL-1:0] shadow;                 // the table the frame in progress wrote
    reg [(1<<WIN)-1:0] written;
    reg wbank;                            // the bank it wrote
    reg [31:0] bank_frame [0:1];          // expect index of each bank's last loaded frame
    reg [1:0] has_frame, clean;
    reg pending, prev_first, prev_active, seen_active;
    reg [31:0] start_tok, start_layer, in_beat, tok_in, out_beat, tok_out;
    reg [2*BANK_W-1:0] snap;
    reg [EW-1:0] e;
    reg [BANK_W-1:0] tag;
    reg [TB-1:0] want;
    integer i, bad, lane_x;

    task violation;
        if (first_bad_cycle == NONE) first_bad_cycle <= cycles;
    endtask

    always @(posedge aclk) begin
        if (!aresetn) begin
            done <= 0; frames <= 0; status_bad <= 0; table_bad <= 0; start_bad <= 0; switch_bad <= 0;
            checked <= 0; out_bad <= 0; cycles <= 0; first_bad_cycle <= NONE;
            ci <= 0; xi <= 0; c_valid <= 0; s_valid <= 0; m_ready <= 0; sent <= 0; stop <= 0; e_done <= 0;
            rc <= 32'h2545F491 ^ seed; rs <= 32'h9E3779B9 ^ (seed << 1); rk <= 32'h7F4A7C15 ^ (seed << 2);
            written <= 0; wbank <= 0; has_frame <= 0; clean <= 0; pending <= 0; prev_first <= 0;
            seen_active <= 0; in_beat <= 0; tok_in <= 0; out_beat <= 0; tok_out <= 0; out_idx <= 0;
        end else begin
            rc <= xorshift(rc); rs <= xorshift(rs); rk <= xorshift(rk);
            cycles <= cycles + 1;
            // Coefficient source: the plan, then the keep-alive frames until every token is out.
            if (c_fire) begin
                if (cword[32]) sent <= sent + 1;
                if (finishing) stop <= 1;
                ci <= ci + 1 == nwords ? keep_word : ci + 1;
            end
            if (!c_valid || c_fire) c_valid <= !stop && !finishing && rc[1:0] != 2'b00;
            // Token source and sink.
            if (s_fire) xi <= xi + 1;
            if (!s_valid || s_fire) s_valid <= (s_fire ? xi + 1 : xi) < ntok * NBEATS && rs[1:0] != 2'b00;
            m_ready <= rk[1:0] != 2'b00;

            // Monitor. A token that started on the previous edge runs on the bank now active.
            if (pending) begin
                tag = l_active ? snap[2*BANK_W-1 -: BANK_W] : snap[BANK_W-1:0];
                e = expmem[bank_frame[l_active]];
                if (!tag[0] || tag[LAYER_LSB +: LAYER_W] != start_layer || !clean[l_active]
                        || !has_frame[l_active] || e[EW-1 -: 8] != start_layer) begin
                    start_bad <= start_bad + 1;
                    violation;
                end
                tok_frame[start_tok] <= bank_frame[l_active];
            end
            if (seen_active && l_active != prev_active && !prev_first) begin
                switch_bad <= switch_bad + 1;
                violation;
            end
            prev_active <= l_active;
            seen_active <= 1;
            pending <= 0;
            prev_first <= 0;
            if (l_we) begin
                shadow[l_entry * TB +: TB] <= l_wdata;
                written[l_entry] <= 1;
                wbank <= l_target;
                clean[l_target] <= 0;
            end
            if (l_done) begin
                e = expmem[e_done];
                $fwrite(fd, "%0d", l_status);
                frames <= frames + 1;
                e_done <= e_done + 1 == nplan + NKEEP ? nplan : e_done + 1;
                if (l_status != e[TBL +: 3]) begin
                    status_bad <= status_bad + 1;
                    violation;
                end
                if (l_status == 1) begin
                    if (shadow != e[TBL-1:0] || ~written != 0) begin
                        table_bad <= table_bad + 1;
                        violation;
                    end
                    bank_frame[wbank] <= e_done;
                    has_frame[wbank] <= 1;
                    clean[wbank] <= 1;
                end
                written <= 0;
            end
            if (s_fire) begin
                if (in_beat == 0) begin
                    pending <= 1;
                    prev_first <= 1;
                    snap <= l_banks;
                    start_tok <= tok_in;
                    start_layer <= xword[XW-1 -: LSW];
                end
                in_beat <= in_beat + 1 == NBEATS ? 0 : in_beat + 1;
                if (in_beat + 1 == NBEATS) tok_in <= tok_in + 1;
            end
            // Checker: every output element is its token's frame's table lookup.
            if (m_fire && out_idx < ntok * NBEATS) begin
                e = expmem[tok_frame[tok_out]];
                bad = (m_last != (out_beat + 1 == NBEATS)) ? 1 : 0;
                for (i = 0; i < P; i = i + 1) begin
                    lane_x = xmem[out_idx][i*WIN +: WIN] & MASK;
                    want = e[lane_x * TB +: TB];
                    if (m_data[i*TB +: TB] != want) bad = bad + 1;
                end
                if (bad != 0) violation;
                out_bad <= out_bad + bad;
                checked <= checked + P;
                out_idx <= out_idx + 1;
                out_beat <= out_beat + 1 == NBEATS ? 0 : out_beat + 1;
                if (out_beat + 1 == NBEATS) tok_out <= tok_out + 1;
            end else if (m_fire) begin
                out_bad <= out_bad + 1;   // a beat after the last token
                violation;
            end
            if (stop && frames == sent && out_idx == ntok * NBEATS && !done) begin
                done <= 1;
                $fflush(fd);
            end
        end
    end
endmodule
