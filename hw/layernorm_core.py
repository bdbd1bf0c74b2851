"""The LayerNorm baseline core: ``hardyt.quant.layernorm.golden`` on a stream of P-lane beats.

Three parts, decoupled so that the core takes one beat per cycle while it
still outputs the previous token (II = 1 in steady state)::

   i ─┬─► token buffer (RAM, N beats, circular) ───────────────────────┐
      │                                                                │ read when the head token's
      └─► [x] ─► [x, x^2] ─► adder trees ─► [S1, S2 accumulators]      │ statistics are ready
                                      │ token end                      ▼
                                      ▼                    [x, S1, r1, s] ─► [D = C*x - S1]
          [S1^2, C*S2] ─► [W = C*S2 - S1^2 + eps_q] ─► [e, lead]        ─► [p = D * r1] ─► [p >>> (s - 1)]
           ─► [u = leading bits of W] ─► [r0 = rsqrt ROM(u)]            ─► [z = sat((q + 1) >>> 1)]
           ─► [a = r0^2] ─► [b = u*a] ─► [r1 = r0 (3 - b) / 2]          ─► [acc = gamma*z + beta]
           ─► stats FIFO (S1, r1, s - 1) ─────────────────────────────► y = sat(round(acc, A)) ─► output buffer ─► o

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
two of ``C/P + d_r + 1``), so a stream of back-to-back tokens never stalls;
``i.ready`` is "buffer not full", a register compare, and every output stage
enable is a register (the buffer's count), so no combinational path runs
from ``o.ready`` to ``i.ready``.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hardyt.quant.errors import SpecError
from hardyt.quant.fixed import bits_for_signed, bits_for_unsigned, signed_range
from hardyt.quant.layernorm import LayerNormSpec

from .dyt_core import OutputBuffer, lane_stream, pack_lanes, rom

__all__ = ["LayerNormCore", "tree_registers"]

# Registers between a token's last sums and its statistics in the FIFO:
# [S1^2, C*S2], [W], [e, lead], [u], [r0 ROM], [a], [b], [r1].
_STATS_STAGES = 8
# Output-side registers from the buffer read to the output buffer push:
# [x (RAM)], [D], [p], [q], [z], [acc].
_OUT_STAGES = 6


def tree_registers(lanes: int) -> int:
    """Register levels of a lane adder tree: one after every two adder levels, and one at the root.

    >>> [tree_registers(p) for p in (1, 2, 4, 8, 16, 32)]
    [1, 1, 1, 2, 2, 3]
    """
    levels = (lanes - 1).bit_length()
    return 1 + max(0, levels - 1) // 2


class LayerNormCore(wiring.Component):
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
        output handshake of its first beat, sink always ready:
        ``C/P + 18 + tree_registers(P)``.
    depth : int
        Token buffer depth in beats.
    """

    def __init__(self, spec: LayerNormSpec):
        if not isinstance(spec, LayerNormSpec):
            raise SpecError("spec", f"LayerNormCore needs a LayerNormSpec, got {type(spec).__name__}")
        self.spec = spec
        B, tree = spec.beats, tree_registers(spec.lanes)
        # From the last beat's handshake: [x^2], tree, [S], stats, FIFO write, then the first read.
        read_delay = 1 + tree + 1 + _STATS_STAGES + 1 + 1
        self.depth = 1 << (B + read_delay).bit_length()      # > B + read_delay beats: never full at full rate
        self.latency = (B - 1) + read_delay + (_OUT_STAGES - 1) + 1 + 1
        super().__init__({
            "i": In(lane_stream(spec.in_bits, spec.lanes)),
            "o": Out(lane_stream(spec.out_bits, spec.lanes)),
        })

    def elaborate(self, platform):
        spec = self.spec
        P, B, C, N = spec.lanes, spec.beats, spec.channels, self.depth
        R, Z, T = spec.rsqrt_frac, spec.norm_frac, spec.rsqrt_index_bits
        xlo, xhi = signed_range(spec.in_bits)
        s1_shape = signed(bits_for_signed(C * xlo, C * xhi))
        s2_shape = unsigned(bits_for_unsigned(C * xlo * xlo))
        wbits = bits_for_unsigned(spec.bounds["w"])
        nw = max(wbits, R + 2) + max(wbits, R + 2) % 2         # even field for the normalization
        m = Module()

        # -- local signals -----------------------------------------------------------
        count = Signal(range(N + 1))             # beats in the token buffer
        wptr, rptr = Signal(range(N)), Signal(range(N))
        in_beat = Signal(range(max(2, B)))       # beat index of the next input / output beat
        out_beat = Signal(range(max(2, B)))
        accept, rd = Signal(), Signal()
        acc1, acc2 = Signal(s1_shape), Signal(s2_shape)
        lead, e = Signal(range(nw // 2)), Signal(range(nw // 2))

        def sreg(value, name, shape=None):
            """``value`` one cycle later (input side and statistics: never stalled)."""
            r = Signal(shape if shape is not None else value.shape(), name=name)
            m.d.sync += r.eq(value)
            return r

        def creg(value, name, shape=None):
            """``value`` one output stage later (enabled by ``ce``)."""
            r = Signal(shape if shape is not None else value.shape(), name=name)
            with m.If(ce):
                m.d.sync += r.eq(value)
            return r

        def round_shift(v, s):
            return (v + (1 << (s - 1))) >> s if s else v

        def clamp(v, bits):
            lo, hi = signed_range(bits)
            return Mux(v > hi, hi, Mux(v < lo, lo, v))

        def lanes_of(word, bits):
            return [word[j * bits:(j + 1) * bits].as_signed() for j in range(P)]

        # -- submodules ---------------------------------------------------------------
        m.submodules.obuf = obuf = OutputBuffer(self.o.payload.shape())
        ce = obuf.ce
        m.submodules.buffer = buf = Memory(shape=unsigned(P * spec.in_bits + 1), depth=N, init=[])
        wport, rport = buf.write_port(), buf.read_port(domain="sync")
        m.submodules.rsqrt_rom = rsqrt_rom = rom("rsqrt", R + 1, spec.rsqrt_table)
        seed_port = rsqrt_rom.read_port(domain="sync")
        g_words = [pack_lanes(spec.gamma[b * P:(b + 1) * P], spec.gamma_bits) for b in range(B)]
        b_words = [pack_lanes(spec.beta[b * P:(b + 1) * P], spec.beta_bits) for b in range(B)]
        m.submodules.gamma_rom = g_rom = rom("gamma", P * spec.gamma_bits, g_words)
        m.submodules.beta_rom = b_rom = rom("beta", P * spec.beta_bits, b_words)
        g_port, b_port = g_rom.read_port(domain="sync"), b_rom.read_port(domain="sync")
        # Tokens whose statistics wait for the output side all sit in the buffer (at least one beat each).
        r1_bits = bits_for_unsigned(spec.bounds["r1"])
        sh_bits = bits_for_unsigned(R - Z - 1 + nw // 2)
        m.submodules.stats = stats = SyncFIFO(width=len(acc1) + r1_bits + sh_bits, depth=(N - 1) // B + 1)

        # -- input side: buffer write, lane sums, per-token accumulation ----------------
        m.d.comb += [
            self.i.ready.eq(count != N),
            accept.eq(self.i.valid & self.i.ready),
            wport.addr.eq(wptr),
            wport.data.eq(Cat(self.i.payload.data, self.i.payload.last)),
            wport.en.eq(accept),
        ]
        with m.If(accept):
            m.d.sync += [wptr.eq(wptr + 1), in_beat.eq(Mux(in_beat == B - 1, 0, in_beat + 1))]
        m.d.sync += count.eq(count + accept - rd)

        ctrl = (sreg(accept, "in_valid"), sreg(in_beat == 0, "in_first"), sreg(in_beat == B - 1, "in_end"))
        x = [sreg(self.i.payload.data[j], f"in_x{j}") for j in range(P)]
        sq = [sreg(v * v, f"in_sq{j}", unsigned(2 * spec.in_bits)) for j, v in enumerate(x)]
        x = [sreg(v, f"in_x_b{j}") for j, v in enumerate(x)]
        ctrl = tuple(sreg(c, f"{c.name}_b") for c in ctrl)
        def pair_sums(values):
            return [values[k] + values[k + 1] if k + 1 < len(values) else values[k]
                    for k in range(0, len(values), 2)]

        level = 0
        while len(x) > 1:                        # a register after every two adder levels ...
            x, sq, level = pair_sums(x), pair_sums(sq), level + 1
            if level % 2 == 0 and len(x) > 1:
                x = [sreg(v, f"sum_l{level}_{k}") for k, v in enumerate(x)]
                sq = [sreg(v, f"sumsq_l{level}_{k}") for k, v in enumerate(sq)]
                ctrl = tuple(sreg(c, f"{c.name}_l{level}") for c in ctrl)
        x, sq = sreg(x[0], "lane_sum"), sreg(sq[0], "lane_sumsq")     # ... and one at the root
        ctrl = tuple(sreg(c, f"{c.name}_root") for c in ctrl)
        valid, first, end = ctrl
        with m.If(valid):
            m.d.sync += [acc1.eq(Mux(first, 0, acc1) + x), acc2.eq(Mux(first, 0, acc2) + sq)]
        done = sreg(valid & end, "token_done")

        # -- statistics: W, normalization, rsqrt seed and Newton step -------------------
        v, s1 = sreg(done, "st_valid1"), sreg(acc1, "st_s1_1")
        s1_sq, c_s2 = sreg(acc1 * acc1, "st_s1_sq"), sreg(acc2 * C, "st_c_s2")
        w = sreg((c_s2 - s1_sq + spec.eps_q)[:wbits], "st_w", unsigned(nw))
        v, s1 = sreg(v, "st_valid2"), sreg(s1, "st_s1_2")
        # e = index of the highest non-zero bit pair (W / 4^e in [1, 4)); lead = pairs above it.
        for k in range(nw // 2):
            with m.If(w[2 * k:2 * k + 2] != 0):
                m.d.comb += [e.eq(k), lead.eq(nw // 2 - 1 - k)]
        e_r, lead_r, w = sreg(e, "st_e"), sreg(lead, "st_lead"), sreg(w, "st_w_b")
        v, s1 = sreg(v, "st_valid3"), sreg(s1, "st_s1_3")
        u = sreg((w << (2 * lead_r))[nw - R - 2:nw], "st_u")        # R fractional bits, in [2^R, 4*2^R)
        shift_m1 = sreg(R - Z - 1 + e_r, "st_shift_m1", unsigned(sh_bits))
        v, s1 = sreg(v, "st_valid4"), sreg(s1, "st_s1_4")
        m.d.comb += seed_port.addr.eq(u[R + 2 - T:R + 2] - (1 << (T - 2)))
        r0 = seed_port.data                                           # the ROM's register is this stage
        u, shift_m1 = sreg(u, "st_u_b"), sreg(shift_m1, "st_shift_m1_b")
        v, s1 = sreg(v, "st_valid5"), sreg(s1, "st_s1_5")
        a = sreg(round_shift(r0 * r0, R), "st_a")
        u, r0, shift_m1 = sreg(u, "st_u_c"), sreg(r0, "st_r0_c"), sreg(shift_m1, "st_shift_m1_c")
        v, s1 = sreg(v, "st_valid6"), sreg(s1, "st_s1_6")
        b = sreg(round_shift(u * a, R), "st_b")
        r0, shift_m1 = sreg(r0, "st_r0_d"), sreg(shift_m1, "st_shift_m1_d")
        v, s1 = sreg(v, "st_valid7"), sreg(s1, "st_s1_7")
        r1 = sreg(round_shift(r0 * ((3 << R) - b), R + 1), "st_r1", unsigned(r1_bits))
        shift_m1 = sreg(shift_m1, "st_shift_m1_e")
        v, s1 = sreg(v, "st_valid8"), sreg(s1, "st_s1_8")
        m.d.comb += [stats.w_en.eq(v), stats.w_data.eq(Cat(s1, r1, shift_m1))]

        # -- output side: read a ready token, normalize, gamma/beta ----------------------
        m.d.comb += [
            rd.eq(ce & stats.r_rdy),
            stats.r_en.eq(rd & (out_beat == B - 1)),
            rport.addr.eq(rptr), rport.en.eq(ce),
        ]
        with m.If(rd):
            m.d.sync += [rptr.eq(rptr + 1), out_beat.eq(Mux(out_beat == B - 1, 0, out_beat + 1))]
        head = stats.r_data
        s1 = creg(head[:len(acc1)].as_signed(), "o_s1")
        r1 = creg(head[len(acc1):len(acc1) + r1_bits], "o_r1")
        shift_m1 = creg(head[len(acc1) + r1_bits:], "o_shift_m1")
        valid, beat = creg(rd, "o_valid1"), creg(out_beat, "o_beat1")
        x = lanes_of(rport.data, spec.in_bits)
        last = rport.data[-1]
        d = [creg(C * x[j] - s1, f"o_d{j}") for j in range(P)]
        r1, shift_m1, valid, last, beat = (creg(r1, "o_r1_b"), creg(shift_m1, "o_shift_m1_b"),
                                           creg(valid, "o_valid2"), creg(last, "o_last2"), creg(beat, "o_beat2"))
        p = [creg(d[j] * r1, f"o_p{j}") for j in range(P)]
        shift_m1, valid, last, beat = (creg(shift_m1, "o_shift_m1_c"), creg(valid, "o_valid3"),
                                       creg(last, "o_last3"), creg(beat, "o_beat3"))
        # gamma/beta ROMs read here (data one stage later) and registered once more: the RAM
        # output then never feeds the multiplier directly.
        m.d.comb += [g_port.addr.eq(beat), b_port.addr.eq(beat), g_port.en.eq(ce), b_port.en.eq(ce)]
        q = [creg(p[j] >> shift_m1, f"o_q{j}") for j in range(P)]
        valid, last = creg(valid, "o_valid4"), creg(last, "o_last4")
        z = [creg(clamp((q[j] + 1) >> 1, spec.z_bits), f"o_z{j}", signed(spec.z_bits)) for j in range(P)]
        g_word, b_word = creg(g_port.data, "o_gamma_w"), creg(b_port.data, "o_beta_w")
        valid, last = creg(valid, "o_valid5"), creg(last, "o_last5")
        gamma, beta = lanes_of(g_word, spec.gamma_bits), lanes_of(b_word, spec.beta_bits)
        acc = [creg(gamma[j] * z[j] + beta[j], f"o_acc{j}") for j in range(P)]
        valid, last = creg(valid, "o_valid6"), creg(last, "o_last6")
        y = [clamp(round_shift(acc[j], spec.affine_shift), spec.out_bits) for j in range(P)]

        # -- connections: output buffer ---------------------------------------------------
        wiring.connect(m, wiring.flipped(self.o), obuf.o)
        m.d.comb += [obuf.push_valid.eq(valid), obuf.push_payload.last.eq(last)]
        m.d.comb += [obuf.push_payload.data[j].eq(y[j]) for j in range(P)]
        return m
