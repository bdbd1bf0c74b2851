"""The LayerNorm baseline core: ``hardyt.quant.contract.layernorm.golden`` on a stream of P-lane beats.

Three parts, decoupled so that the core takes one beat per cycle while it
still outputs the previous token (II = 1 in steady state)::

   i ─┬─► token buffer (RAM, N beats, circular) ──────────────────────┐
      │                                                               │ read when the head token's
      └─► [x] ─► [x, x^2] ─► adder trees ─► [S1, S2 accumulators]     │ statistics are ready
                                      │ token end                     ▼
                                      ▼               [x, S1, r1, s] ─► [x] ─► [C*x] ─► [D = C*x - S1]
          [S1, S2] ─► [S1^2, C*S2] ─► [W = C*S2 - S1^2 + eps_q]       ─► [D*r1 partials] ─► [p]
           ─► [e, lead] ─► [u = leading bits of W] ─► [r0 = ROM(u)]   ─► [q = p >>> (s - 1)]
           ─► [r0^2] ─► [a] ─► [u*a] ─► [c = 3 - round(u*a)]           ─► [z = sat((q + 1) >>> 1)]
           ─► [r0*c] ─► [r1 = round(r0*c / 2)]                        ─► [gamma*z partials] ─► [acc = gamma*z + beta]
           ─► stats FIFO (S1, r1, s - 1) ────────────────────────────► y = sat(round(acc, A)) ─► output buffer ─► o

Sub-components (each a ``wiring.Component`` that counts its stages):
:class:`~hardyt.hw.datapath.layernorm_parts.LayerNormInput`,
:class:`~hardyt.hw.datapath.layernorm_parts.LayerNormStatistics` (with
:class:`~hardyt.hw.datapath.rsqrt_unit.RsqrtUnit`) and
:class:`~hardyt.hw.datapath.layernorm_apply.LayerNormApply`; this module wires them to
the token buffer, the stats FIFO and the output buffer.

* **Input side** (free running, no stall inside): an accepted beat is written
  into the token buffer and, in parallel, squared and summed over the lanes
  (adder trees, a register every two levels); the per-token sums ``S1``,
  ``S2`` are complete one cycle after the token's last beat.
* **Statistics** (free running, one token per cycle at most): the variance
  ``W``, its normalization by an even shift (a leading-pair priority
  encoder and a barrel shift), the rsqrt seed ROM and one Newton step, then
  a small FIFO of per-token results.
* **Output side** (advances on the output buffer's ``ce``, as DyT's
  pipeline): reads the buffer only when the head token's statistics are in
  the FIFO, normalizes, applies per-channel gamma/beta (ROMs indexed by the
  output beat counter), rounds and saturates.

Tokens are framed by count (``C/P`` beats); ``last`` is stored with each beat
and carried through. The token buffer holds one token plus the beats that
arrive while that token's statistics are computed (``N``, the next power of
two above ``C/P + d_r``), so a stream of back-to-back tokens never stalls;
``i.ready`` is "buffer not full", a register compare, and every output stage
enable is a register (the buffer's count), so no combinational path runs
from ``o.ready`` to ``i.ready``.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Shape, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hardyt.quant.errors import SpecError
from hardyt.quant.contract.layernorm import LayerNormSpec

from .layernorm_apply import LayerNormApply
from .layernorm_parts import LayerNormInput, LayerNormStatistics, token_layout, tree_registers
from .stages import CountedLatency, OutputBuffer, lane_stream

__all__ = ["LayerNormCore", "tree_registers"]

#: Cycles from a SyncFIFOBuffered write to its r_rdy (the write, then its output register).
_FIFO_LATENCY = 2


class LayerNormCore(CountedLatency, wiring.Component):
    """LayerNorm on a stream of P-lane beats, bit-exact with ``spec.reference_stream``.

    Parameters
    ----------
    spec : LayerNormSpec
        The layer: widths, eps, rsqrt table, gamma/beta.

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": ArrayLayout(signed(in_bits), P), "last": 1})))
        Input beats; lane ``j`` of beat ``k`` of a token is channel ``k*P + j``.
        Tokens are ``C/P`` beats; ``last`` is carried through, not used for framing.
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(signed(out_bits), P), "last": 1})))
        Output beats in the same order.

    Attributes
    ----------
    latency : int
        Cycles from the input handshake of a token's *first* beat to the
        output handshake of its first beat, sink always ready: the token's
        other beats, the stages of the input side and the statistics, the
        FIFO, the first read, the output side's stages and the output buffer
        (``C/P + 27 + tree_registers(P)``).
    depth : int
        Token buffer depth in beats.
    """

    def __init__(self, spec: LayerNormSpec):
        if not isinstance(spec, LayerNormSpec):
            raise SpecError("spec", f"LayerNormCore needs a LayerNormSpec, got {type(spec).__name__}")
        self.spec = spec
        self.token = token_layout(spec)
        self.input, self.statistics = LayerNormInput(spec), LayerNormStatistics(spec)
        self.apply = LayerNormApply(spec, self.token)
        # Cycles from a token's last beat's handshake to the cycle its first beat is read.
        self.read_delay = self.input.latency + self.statistics.latency + _FIFO_LATENCY
        self.depth = 1 << (spec.beats + self.read_delay).bit_length()   # never full at full rate
        super().__init__({
            "i": In(lane_stream(spec.in_bits, spec.lanes)),
            "o": Out(lane_stream(spec.out_bits, spec.lanes)),
        })

    def elaborate(self, platform):
        spec, B, N = self.spec, self.spec.beats, self.depth
        m = Module()
        m.submodules.input = inp = self.input
        m.submodules.statistics = stats = self.statistics
        m.submodules.apply = apply = self.apply
        m.submodules.obuf = obuf = OutputBuffer(self.o.payload.shape())
        # Tokens whose statistics wait for the output side all sit in the buffer (at least one beat each).
        # Registered output (SyncFIFOBuffered): a LUT RAM read straight into the output side's
        # registers makes Yosys 0.70's ABC9 pass fail an assertion on some shapes (C=768, P=8).
        m.submodules.stats_fifo = fifo = SyncFIFOBuffered(width=Shape.cast(self.token).width,
                                                          depth=(N - 1) // B + 1)
        m.submodules.buffer = buf = Memory(shape=self.i.payload.shape(), depth=N, init=[])
        wport = buf.write_port()                 # (one statement each: they are named after the ports)
        rport = buf.read_port(domain="sync")
        count = Signal(range(N + 1))             # beats in the token buffer
        wptr, rptr = Signal(range(N)), Signal(range(N))
        out_beat = Signal(range(max(2, B)))      # beat index of the next output beat
        accept, rd = Signal(), Signal()
        ce = obuf.i.ready                        # the output side advances when the buffer has room

        # -- input side: token buffer write, sums ------------------------------------------
        m.d.comb += [
            self.i.ready.eq(count != N),
            accept.eq(self.i.valid & self.i.ready),
            wport.addr.eq(wptr), wport.data.eq(self.i.payload), wport.en.eq(accept),
            inp.accept.eq(accept), inp.x.eq(self.i.payload.data),
        ]
        with m.If(accept):
            m.d.sync += wptr.eq(wptr + 1)
        m.d.sync += count.eq(count + accept - rd)

        # -- statistics: into the FIFO -----------------------------------------------------
        m.d.comb += [stats.sums.eq(inp.sums), fifo.w_en.eq(stats.valid), fifo.w_data.eq(stats.token)]

        # -- output side: read a beat of the head token once its statistics are ready ---------
        m.d.comb += [
            rd.eq(ce & fifo.r_rdy),
            fifo.r_en.eq(rd & (out_beat == B - 1)),
            rport.addr.eq(rptr), rport.en.eq(ce),
            apply.head.valid.eq(rd), apply.head.beat.eq(out_beat),
            apply.word.eq(rport.data),
        ]
        head = data.View(self.token, fifo.r_data)
        m.d.comb += [apply.head[n].eq(head[n]) for n in self.token.members]
        with m.If(rd):
            m.d.sync += [rptr.eq(rptr + 1), out_beat.eq(Mux(out_beat == B - 1, 0, out_beat + 1))]
        wiring.connect(m, apply.o, obuf.i)
        wiring.connect(m, wiring.flipped(self.o), obuf.o)
        self.count_latency(B - 1 + self.read_delay + apply.latency + obuf.latency)
        self._fifo_depth = fifo.depth
        return m

    def formal_facts(self) -> dict:
        """After elaboration: the core's invariants, which ``hardyt prove`` proves with the stream
        properties and which make them k-inductive (:mod:`hardyt.hw.formal`).

        The formal harness binds to the emitted Verilog, so the invariants are stated here, beside
        the logic they describe, over *probes* — registers named by path below the core (as in the
        Verilog, after ``flatten``; the token buffer's words after ``memory_map``):

        * the token buffer's pointers: ``wptr == rptr + count`` (mod ``N``), ``count <= N``; the
          beat counters below ``C/P``;
        * the stats FIFO (Amaranth's own ``SyncFIFOBuffered`` invariants): pointers below the
          inner depth, ``inner_level`` their distance;
        * tokens: the beats in the buffer, plus those of the head token already read, are the
          beats of the incoming partial token plus ``C/P`` for every complete token — each of
          which has its statistics in the FIFO or on their way (a token end in the input side's
          stages, or a valid in the statistics'); a head token being read has its statistics out;
        * ``pipeline``: the output side's stages, oldest first, as (valid, last) expressions: the
          beats read from the buffer and not yet in the output buffer.

        Returns ``{"probes": [(name, path, width)], "invariants": [expr], "pipeline": [(valid,
        last)], "in_beat": name, "buffer": {"count", "rptr", "lasts", "addr_bits"}, "memories": [path]}``
        (expressions in Verilog over probe names; ``lasts``: bit k is word k's ``last``).
        """
        spec, B, N = self.spec, self.spec.beats, self.depth
        last = Shape.cast(self.i.payload.shape()).width - 1     # the payload's ``last`` bit (after the lanes)
        probes = []

        def probe(name, path, width):
            probes.append((name, path, width))
            return name

        aw = max(1, (N - 1).bit_length())
        count = probe("ln_count", "count", (N + 1).bit_length())
        wptr, rptr = probe("ln_wptr", "wport__addr", aw), probe("ln_rptr", "rport__addr", aw)
        out_beat = probe("ln_out_beat", "out_beat", max(1, (max(2, B) - 1).bit_length()))
        in_beat = probe("ln_in_beat", "input.beat", max(1, (max(2, B) - 1).bit_length()))
        inner = self._fifo_depth - 1
        if inner < 1:
            raise ValueError(f"stats FIFO depth {self._fifo_depth}: the invariants assume at least 2")
        fw = max(1, (inner - 1).bit_length())
        level = probe("ln_fifo_level", "stats_fifo.inner_level", inner.bit_length())
        produce = probe("ln_fifo_produce", "stats_fifo.w_port__addr", fw)
        consume = probe("ln_fifo_consume", "stats_fifo.r_port__addr", fw)
        r_rdy = probe("ln_fifo_r_rdy", "stats_fifo.r_rdy", 1)
        # Tokens whose statistics are on their way: a token end in the input side, the ``done`` stage,
        # a valid in the statistics.
        ends = [f"({probe('ln_' + f['valid'], 'input.' + f['valid'], 1)} & "
                f"{probe('ln_' + f['end'], 'input.' + f['end'], 1)})" for f in self.input.stages.fields]
        ends += [probe(f"ln_{c}", f"input.{c}", 1) for c in self.input.stages.controls]
        ends += [probe(f"ln_{f['valid']}", f"statistics.{f['valid']}", 1) for f in self.statistics.stages.fields]
        tokens = " + ".join(["0", f"{level} + {r_rdy}", *ends])
        wide = f"{2 * N.bit_length() + 8}'d"
        invariants = [
            f"{count} <= {N}", f"{wptr} == (({rptr} + {count}) & {N - 1})",
            f"{produce} < {inner}", f"{consume} < {inner}",
            f"{level} == ({produce} >= {consume} ? {produce} - {consume} : {inner} + {produce} - {consume}) "
            f"|| ({produce} == {consume} && {level} == {inner})",
            f"{wide}0 + {count} + {out_beat} == {wide}0 + {in_beat} + {B} * ({wide}0 + {tokens})",
            f"{out_beat} == 0 || {r_rdy}", f"{in_beat} < {B}", f"{out_beat} < {B}",
        ]
        # The output side, oldest first: stage k's valid; its last comes from the RAM's read register
        # (stage 1), its copy (stage 2), then the stages' own ``last``.
        fields = self.apply.stages.fields
        lasts = [probe("ln_word_last", f"word[{last}]", 1), probe("ln_o_word_last", f"apply.o_word[{last}]", 1)]
        pipeline = []
        for k, f in enumerate(fields):
            valid = probe(f"ln_{f['valid']}", f"apply.{f['valid']}", 1)
            where = lasts[k] if "last" not in f else probe(f"ln_{f['last']}", f"apply.{f['last']}", 1)
            pipeline.append((valid, where))
        # Word k's ``last`` bit, bit k (the memory mapped to words: ``buffer[k]``).
        words = probe("ln_buffer_last", [f"buffer[{k}][{last}]" for k in reversed(range(N))], N)
        return {"probes": probes, "invariants": invariants, "pipeline": pipeline[::-1],
                "in_beat": in_beat, "buffer": {"count": count, "rptr": rptr, "lasts": words, "addr_bits": aw},
                "memories": ["buffer"]}
