"""The formal harness: SystemVerilog properties bound to an emitted core's Verilog, as it is.

:func:`harness` writes a module ``hardyt_formal`` that instantiates the
emitted top (``NAME.v``, unchanged) and states, with Yosys's formal
``assume``/``assert`` (``read_verilog -formal``):

* **environment** (assumed): ``aresetn`` low in the first cycle; every input
  stream (``s_axis``, and the engine's ``s_axis_coef``) follows AXI4-Stream:
  no ``tvalid`` during reset or in the cycle after it, ``tvalid`` held until
  ``tready``, ``tdata``/``tlast`` (and ``layer_select``) stable while stalled;
* ``axis``: the same rules asserted on ``m_axis``;
* ``conservation``: nothing leaves that did not enter (``out <= in``) and one
  arbitrary beat (picked by the solver, as in Amaranth's FIFO contract) leaves
  exactly once, after exactly the beats that entered before it, with its
  ``tlast``;
* ``drain``: with no input and the sink ready for long enough (whole tokens
  for LayerNorm), every beat that entered has left: a dropped beat fails;
* ``latency`` (under ``FULL_RATE``: source always valid, sink always ready):
  ``m_axis_tvalid``/``tlast`` equal the input handshake/``tlast`` of exactly
  ``latency`` cycles before, and ``s_axis_tready`` never drops (no bubble;
  the engine, which waits for a loaded layer, is exempt);
* engine only: ``token_bank`` (every beat reads the usable bank holding the
  layer selected at its token's first beat), ``load_isolation`` (the loader
  writes only a bank that is not usable, not the current token's, and — a
  threshold engine, whose beats read their bank in each compare stage —
  read by no beat in those stages), and
  ``bad_frame`` (a bank becomes usable only with a ``loaded`` status; a usable
  bank's layer, length and affine fields never change).

``invariant`` assertions link the harness's counters to the core's registers
(the pipeline's control registers, the output buffer's count and second
entry; the engine's loader state): they are proven like the others and make
the properties k-inductive. The core's registers are reached as *probes*:
wires of the harness left undriven and connected after ``flatten`` by
``connect -set`` (:func:`probe_commands`), so the emitted file is not edited.
"""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Probe", "CoreFacts", "harness", "module_head", "ports", "probe_commands"]


@dataclass(frozen=True)
class Probe:
    """Harness wire ``name`` (``width`` bits) = the flattened core's ``path`` (a list of paths: their
    concatenation, first one most significant)."""
    name: str
    path: str | tuple
    width: int


@dataclass
class CoreFacts:
    """What the harness needs of a core: its top, widths, latency, token length and probes.

    ``controls`` are probes of the pipeline's control registers, first stage
    first (bit 0 ``valid``, bit 1 ``last``); ``obuf`` the output buffer's
    ``count`` and ``tail`` probes; ``engine`` the engine's probes and layouts.
    ``ln``: the LayerNorm core's own invariants and probes (``LayerNormCore.formal_facts``).
    """
    top: str
    kind: str                      # "dyt", "layernorm" or "dyt-engine"
    s_width: int
    m_width: int
    latency: int
    beats: int                     # beats per (longest) token
    controls: list = field(default_factory=list)
    obuf: dict = field(default_factory=dict)
    engine: dict = field(default_factory=dict)
    ln: dict = field(default_factory=dict)         # LayerNormCore.formal_facts(), probes as Probe
    memories: list = field(default_factory=list)   # paths of memories mapped to words (``memory_map``)

    @property
    def probes(self) -> list[Probe]:
        return [*self.controls, *self.obuf.values(), *self.engine.get("probes", {}).values(),
                *self.ln.get("probes", [])]

    @property
    def drain_cycles(self) -> int:
        """Quiet cycles (sink ready, no input) after which nothing may be inside."""
        if self.kind == "layernorm":
            return self.latency + self.beats + 2
        return self.latency + 2


def probe_commands(facts: CoreFacts) -> list[str]:
    """Yosys commands (after ``flatten``) that map the memories the probes read to words and drive
    each probe wire from the core's register."""
    out = [f"memory_map hardyt_formal/{m}" for m in facts.memories]
    for p in facts.probes:
        if isinstance(p.path, str):
            out.append(f"connect -set {p.name} {_escape(p.path)}")
            continue
        w = p.width // len(p.path)                   # one slice per path, the last one lowest
        out += [f"connect -set {p.name}[{(k + 1) * w - 1}:{k * w}] {_escape(x)}"
                for k, x in enumerate(reversed(p.path))]
    return out


def _escape(path: str) -> str:
    return "\\" + path if any(c in path for c in ".$[") else path


_ENV = """\
    reg past_ok = 1'b0;
    always @(posedge clk) past_ok <= 1'b1;
    wire in_hs = s_tvalid & s_tready;
    wire out_hs = m_tvalid & m_tready;
    // environment: aresetn low first; every input stream follows AXI4-Stream
    always @(*) if (!past_ok) assume(!aresetn);
    always @(posedge clk) if (past_ok) begin
        if (!aresetn || !$past(aresetn)) assume(!s_tvalid);
        else if ($past(s_tvalid && !s_tready)) assume(s_tvalid && $stable(s_tdata) && $stable(s_tlast)@SIDEBAND@);
    end
`ifdef FULL_RATE
    always @(*) if (past_ok) assume(m_tready);
    always @(posedge clk) if (past_ok && aresetn && $past(aresetn)) assume(s_tvalid);
`endif
"""

_AXIS = """\
`ifdef AXIS
    always @(posedge clk) if (past_ok) begin
        if (!$past(aresetn)) assert(!m_tvalid);                               // axis: reset
        else if (aresetn && $past(m_tvalid && !m_tready))
            assert(m_tvalid && $stable(m_tdata) && $stable(m_tlast));         // axis: hold, stable
    end
`endif
"""

_COUNT = """\
    // beats inside the core (entered, not yet left) and one tracked beat
    reg [@CW@-1:0] inflight = 0;
    always @(posedge clk)
        if (!aresetn) inflight <= 0;
        else inflight <= inflight + in_hs - out_hs;
    (* anyseq *) wire pick;
    reg tracking = 1'b0, tl = 1'b0;
    reg [@CW@-1:0] ahead = 0;
    always @(posedge clk)
        if (!aresetn) tracking <= 1'b0;
        else begin
            if (tracking && out_hs) begin
                if (ahead == 0) tracking <= 1'b0;
                else ahead <= ahead - 1'b1;
            end
            if (!tracking && in_hs && pick) begin
                tracking <= 1'b1;
                tl <= s_tlast;
                ahead <= inflight - out_hs;
            end
        end
`ifdef CONSERVATION
    always @(*) if (past_ok && aresetn) begin
        if (out_hs) assert(inflight != 0);                         // nothing leaves that did not enter
        if (tracking) assert(ahead < inflight);                    // the tracked beat is still inside
        if (tracking && out_hs && ahead == 0) assert(m_tlast == tl);   // it leaves in its place, with its tlast
    end
`endif
    // quiet: cycles with the sink ready and no input (and, LayerNorm, whole tokens in)
    reg [@QW@-1:0] quiet = 0;
    reg [@PW@-1:0] inpos = 0;
    always @(posedge clk)
        if (!aresetn) inpos <= 0;
        else if (in_hs) inpos <= (inpos == @BEATS@ - 1) ? 0 : inpos + 1'b1;
    always @(posedge clk)
        if (!aresetn || in_hs || !m_tready || (@WHOLE@ && inpos != 0)) quiet <= 0;
        else if (quiet != @DRAIN@ + 1) quiet <= quiet + 1'b1;
`ifdef DRAIN_CHECK
    always @(*) if (past_ok && aresetn && quiet > @DRAIN@) assert(inflight == 0);   // drain: nothing lost
`endif
"""

_LATENCY = """\
`ifdef LATENCY
    reg [@L@-1:0] sr_v = 0, sr_l = 0;
    always @(posedge clk)
        if (!aresetn) sr_v <= 0;
        else begin
            sr_v <= {sr_v, in_hs};
            sr_l <= {sr_l, s_tlast};
        end
    always @(*) if (past_ok && aresetn) begin
        assert(m_tvalid == sr_v[@L@-1]);                            // latency: exactly @L@ cycles
        if (m_tvalid) assert(m_tlast == sr_l[@L@-1]);
    end
    always @(posedge clk) if (past_ok && aresetn && $past(aresetn) && @NO_BUBBLE@) assert(s_tready);  // no bubble
`endif
"""


def _ln_invariants(f: CoreFacts) -> str:
    """LayerNorm: the core's own invariants, and ``inflight`` and the tracked beat tied to its output
    buffer, its output side's stages and its token buffer (``LayerNormCore.formal_facts``)."""
    ln, buf = f.ln, f.ln["buffer"]
    entries = [("p_count != 0", "m_tlast"), ("p_count == 2", f"p_tail[{f.obuf['tail'].width - 1}]"),
               *ln["pipeline"]]
    lines = ["    always @(*) if (past_ok && aresetn) assert(p_count <= 2);   // invariant: the output buffer's",
             "`ifdef LN_INVARIANTS", "    // invariant: the core's (LayerNormCore.formal_facts)"]
    lines += [f"    always @(*) if (past_ok && aresetn) assert({e});" for e in ln["invariants"]]
    lines += ["    // invariant: the harness's count and tracked beat are the core's: output buffer, output",
              "    // side, then the token buffer's words from its read pointer",
              "    wire [@CW@-1:0] pos0 = 0;"]
    for k, (valid, _) in enumerate(entries):
        lines.append(f"    wire [@CW@-1:0] pos{k + 1} = pos{k} + ({valid} ? 1 : 0);")
    lines += [f"    wire [{buf['addr_bits'] - 1}:0] trk_addr = {buf['rptr']} + (ahead - pos{len(entries)});",
              "    always @(*) if (past_ok && aresetn) begin",
              "        assert(p_count <= 2);",
              "        if (tracking) assert(ahead < inflight);",
              f"        assert(inflight == pos{len(entries)} + {buf['count']});",
              f"        assert(inpos == {ln['in_beat']});                      // the token being received",
              f"        if (tracking && ahead >= pos{len(entries)}) assert({buf['lasts']}[trk_addr] == tl);"]
    for k, (valid, last) in enumerate(entries):
        lines.append(f"        if (tracking && ({valid}) && pos{k} == ahead) assert({last} == tl);")
    lines += ["    end", "`endif"]
    return "\n".join(lines) + "\n"


def _invariants(f: CoreFacts) -> str:
    """Assertions tying ``inflight`` and the tracked beat to the pipeline's registers."""
    if f.ln:
        return _ln_invariants(f)
    if not f.controls:
        return ""
    # In-flight entries, oldest first: output buffer head (its last is m_tlast), tail, then the stages, last first.
    entries = [("p_count != 0", "m_tlast"), ("p_count == 2", f"p_tail[{f.obuf['tail'].width - 1}]")]
    entries += [(f"{p.name}[0]", f"{p.name}[1]") for p in reversed(f.controls)]
    lines = ["    // invariant: the harness's count and tracked beat are the pipeline's",
             "    wire [@CW@-1:0] pos0 = 0;"]
    for k, (valid, _) in enumerate(entries):
        lines.append(f"    wire [@CW@-1:0] pos{k + 1} = pos{k} + ({valid} ? 1 : 0);")
    lines.append("    always @(*) if (past_ok && aresetn) begin")
    lines.append("        assert(p_count <= 2);")
    lines.append("        if (tracking) assert(ahead < inflight);")
    lines.append(f"        assert(inflight == pos{len(entries)});")
    for k, (valid, last) in enumerate(entries):
        lines.append(f"        if (tracking && ({valid}) && pos{k} == ahead) assert({last} == tl);")
    lines.append("    end")
    return "\n".join(lines) + "\n"


def _engine(f: CoreFacts) -> str:
    """The engine's bank properties, over probes of its loader and token registers."""
    e = f.engine
    bank_w, fields = e["bank_width"], e["fields"]      # fields: name -> (offset, width) inside a bank

    def field_of(b, name):
        off, w = fields[name]
        return f"p_banks[{b * bank_w + off + w - 1}:{b * bank_w + off}]"

    usable = [field_of(b, "usable") for b in range(2)]
    tag = [f"p_banks[{b * bank_w + bank_w - 1}:{b * bank_w + 1}]" for b in range(2)]
    writing = " || ".join(f"p_fsm == {c}" for c in e["write_states"])
    lines = [
        "    wire we_any = " + " | ".join(f"(|{p})" for p in e["write_enables"]) + ";",
        f"    wire [{fields['layer'][1] - 1}:0] layer_of_active = p_active ? {field_of(1, 'layer')} : {field_of(0, 'layer')};",
        f"    wire usable_active = p_active ? {usable[1]} : {usable[0]};",
        f"    wire usable_target = p_target ? {usable[1]} : {usable[0]};",
        f"    wire valid_target = p_valid[p_target];",
        f"    reg [{e['layer_select_width'] - 1}:0] tok_layer = 0;",
        "    always @(posedge clk) if (in_hs && p_beat == 0) tok_layer <= layer_select;",
        "    // invariants: the loader writes only an invalid bank, never the current token's; the current",
        "    // token's bank stays usable and holds the layer chosen at its first beat",
        "    always @(*) if (past_ok && aresetn) begin",
        f"        if ({writing}) assert(!valid_target && (!p_started || p_target != p_active));",
        "        if (!p_started) assert(p_beat == 0);",
        "        if (p_started) assert(usable_active);",
        "`ifdef TOKEN_BANK",
        "        if (p_started) assert(layer_of_active == tok_layer);      // token_bank",
        "`endif",
        "`ifdef LOAD_ISOLATION",
        "        if (we_any) assert(!usable_target);                        // load_isolation: not pickable",
        "        if (we_any && p_started) assert(p_target != p_active);     // load_isolation: not in use",
        # A beat in a compare stage never holds the bank the loader claimed (writes or will write).
        *[f"        if (({writing}) && {r}[0]) assert({r}[{bank}] != p_target);   // load_isolation: not read in flight"
          for r, bank in e.get("readers", [])],
        "`endif",
        "    end",
        "`ifdef BAD_FRAME",
        "    always @(posedge clk) if (past_ok && aresetn && $past(aresetn)) begin",
    ]
    for b in range(2):
        lines += [f"        if (!$past({usable[b]}) && {usable[b]}) assert(coef_done && coef_status == 1);",
                  f"        if ($past({usable[b]}) && {usable[b]}) assert($stable({tag[b]}));"]
    lines += ["    end", "`endif"]
    return "\n".join(lines) + "\n"


def ports(f: CoreFacts) -> tuple[list[str], list[str], str]:
    """The harness's input ports, the top's port connections (outputs to ``s_tready``, ``m_tdata``, ...)
    and the environment's assumptions (``_ENV``, plus the engine's coefficient stream), for core ``f``."""
    ports = [f"input wire [{f.s_width - 1}:0] s_tdata", "input wire s_tvalid", "input wire s_tlast",
             "input wire m_tready"]
    conns = [".aclk(clk)", ".aresetn(aresetn)", ".s_axis_tdata(s_tdata)", ".s_axis_tvalid(s_tvalid)",
             ".s_axis_tlast(s_tlast)", ".s_axis_tready(s_tready)", ".m_axis_tdata(m_tdata)",
             ".m_axis_tvalid(m_tvalid)", ".m_axis_tlast(m_tlast)", ".m_axis_tready(m_tready)"]
    sideband, extra_env = "", ""
    if f.kind == "dyt-engine":
        lw = f.engine["layer_select_width"]
        ports += ["input wire [31:0] c_tdata", "input wire c_tvalid", "input wire c_tlast",
                  f"input wire [{lw - 1}:0] layer_select"]
        conns += [".s_axis_coef_tdata(c_tdata)", ".s_axis_coef_tvalid(c_tvalid)", ".s_axis_coef_tlast(c_tlast)",
                  ".s_axis_coef_tready(c_tready)", ".layer_select(layer_select)", ".coef_status(coef_status)",
                  ".coef_done(coef_done)"]
        sideband = " && $stable(layer_select)"
        extra_env = ("    wire c_tready, coef_done;\n    wire [2:0] coef_status;\n"
                     "    always @(posedge clk) if (past_ok) begin\n"
                     "        if (!aresetn || !$past(aresetn)) assume(!c_tvalid);\n"
                     "        else if ($past(c_tvalid && !c_tready)) assume(c_tvalid && $stable(c_tdata) && $stable(c_tlast));\n"
                     "    end\n")
    return ports, conns, _ENV.replace("@SIDEBAND@", sideband) + extra_env


def module_head(name: str, f: CoreFacts, ports_: list[str]) -> str:
    """``module NAME (clk, aresetn, ports...);`` and the wires of the top's stream outputs."""
    return (f"module {name} (\n    input wire clk,\n    input wire aresetn,\n    " + ",\n    ".join(ports_) + "\n);\n"
            f"    wire s_tready, m_tvalid, m_tlast;\n    wire [{f.m_width - 1}:0] m_tdata;\n")


def harness(f: CoreFacts) -> str:
    """The Verilog of ``hardyt_formal`` for core ``f`` (see the module docstring)."""
    engine = f.kind == "dyt-engine"
    cw = max(4, (f.latency + 2 * f.beats + 4).bit_length() + 1)
    ports_, conns, env = ports(f)
    decl = "".join(f"    (* keep *) wire [{p.width - 1}:0] {p.name};\n" for p in f.probes)
    subst = {"CW": str(cw), "QW": str(max(2, (f.drain_cycles + 1).bit_length())),
             "PW": str(max(1, (f.beats - 1).bit_length())), "BEATS": str(f.beats),
             "WHOLE": "1" if f.kind == "layernorm" else "0", "DRAIN": str(f.drain_cycles),
             "L": str(f.latency), "NO_BUBBLE": "0" if engine else "1"}
    body = env + _AXIS + _COUNT + _invariants(f) + _LATENCY + (_engine(f) if engine else "")
    for k, v in subst.items():
        body = body.replace(f"@{k}@", v)
    return ("// hardyt formal harness (hardyt.hw.formal.harness): properties bound to the emitted top.\n"
            + module_head("hardyt_formal", f, ports_) + decl
            + f"    {f.top} dut (\n        " + ",\n        ".join(conns) + "\n    );\n"
            + body + "endmodule\n")
