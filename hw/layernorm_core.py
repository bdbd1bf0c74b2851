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

from functools import partial

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hardyt.quant.errors import SpecError
from hardyt.quant.contract.fixed import bits_for_signed, bits_for_unsigned, signed_range
from hardyt.quant.contract.layernorm import LayerNormSpec

from .dyt_core import OutputBuffer, lane_stream, pack_lanes, rom, pipeline_reg

__all__ = ["LayerNormCore", "tree_registers"]

# Registers between a token's last sums and its statistics in the FIFO: [S1, S2],
# [S1^2, C*S2 partial products], [W], [e, lead], [u], [r0 ROM], [r0^2 partial products], [a],
# [u*a partial products], [c = 3 - u*a], [r0*c partial products], [r1].
_STATS_STAGES = 12
# Operand bits one ECP5 MULT18X18D multiplies (17 unsigned, or signed with the sign in bit 17).
_MUL_BITS = 17
# Output-side registers from the buffer read to the output buffer push:
# [x (RAM)], [x], [C*x], [D], [D*r1 partial products], [p], [q], [z], [gamma*z], [acc].
_OUT_STAGES = 10


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
        ``C/P + 27 + tree_registers(P)``.
    depth : int
        Token buffer depth in beats.
    """

    def __init__(self, spec: LayerNormSpec):
        if not isinstance(spec, LayerNormSpec):
            raise SpecError("spec", f"LayerNormCore needs a LayerNormSpec, got {type(spec).__name__}")
        self.spec = spec
        B, tree = spec.beats, tree_registers(spec.lanes)
        # From the last beat's handshake: [x^2], tree, [S], stats, FIFO (write, output register),
        # then the first read.
        read_delay = 1 + tree + 1 + _STATS_STAGES + 2 + 1
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
        bound = spec.bounds             # exact extremes: every register as narrow as the values allow
        wbits = bits_for_unsigned(bound["w"])
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

        sreg = partial(pipeline_reg, m)                # one cycle later (input side and statistics: never stalled)

        def round_shift(v, s):
            return (v + (1 << (s - 1))) >> s if s else v

        def narrow(v, s, bits):
            """``sat(round_shift(v, s), bits)``, the saturation decided on ``v`` itself (in
            parallel with the rounding adder, not after it)."""
            lo, hi = signed_range(bits)
            half = (1 << s) >> 1
            return Mux(v >= ((hi + 1) << s) - half, hi, Mux(v < (lo << s) - half, lo, round_shift(v, s)))

        def lanes_of(word, bits):
            return [word[j * bits:(j + 1) * bits].as_signed() for j in range(P)]

        # Every product is registered as partial products of at most one 18x18 multiplier each,
        # summed (and rounded) one stage later: ECP5 multipliers are slow, and an adder behind
        # them in the same cycle would set the core's Fmax.
        def shift_add(a, b):
            """``a*b`` as a sum of shifted ``b``, one per set bit of ``a`` (a constant or a
            few-bit value): adders, not a multiplier block."""
            if isinstance(a, int):
                terms = [b << k for k in range(a.bit_length()) if a >> k & 1]
            else:
                top = len(a) - 1
                terms = [Mux(a[k], -(b << k) if a.shape().signed and k == top else b << k, 0)
                         for k in range(len(a))]
            total = terms[0]
            for t in terms[1:]:
                total = total + t
            return total

        def product(a, b):
            """``a*b``: shifted adds for a constant with at most three set bits (C = 192, 384,
            768, ...) or a factor of at most three bits, else a multiplier."""
            if isinstance(b, int) and bin(b).count("1") <= 3:
                return shift_add(b, a)
            return shift_add(a, b) if len(a) <= 3 else a * b

        def partials(name, a, b):
            """``a*b`` split at bit 17 of ``a``: ``{name_lo, name_hi}`` (see :func:`whole`)."""
            if len(a) <= _MUL_BITS:
                return {f"{name}_lo": product(a, b)}
            hi = a[_MUL_BITS:].as_signed() if a.shape().signed else a[_MUL_BITS:]
            return {f"{name}_lo": product(a[:_MUL_BITS], b), f"{name}_hi": product(hi, b)}

        def whole(tok, name):
            lo, hi = tok[f"{name}_lo"], tok.get(f"{name}_hi")
            return lo if hi is None else (hi << _MUL_BITS) + lo

        def fit(value, shape):
            return value[:shape.width].as_signed() if shape.signed else value[:shape.width]

        # -- submodules ---------------------------------------------------------------
        m.submodules.obuf = obuf = OutputBuffer(self.o.payload.shape())
        ce = obuf.ce
        creg = partial(pipeline_reg, m, enable=ce)     # one output stage later
        m.submodules.buffer = buf = Memory(shape=unsigned(P * spec.in_bits + 1), depth=N, init=[])
        wport, rport = buf.write_port(), buf.read_port(domain="sync")
        m.submodules.rsqrt_rom = rsqrt_rom = rom("rsqrt", bits_for_unsigned(max(spec.rsqrt_table)), spec.rsqrt_table)
        seed_port = rsqrt_rom.read_port(domain="sync")
        g_words = [pack_lanes(spec.gamma[b * P:(b + 1) * P], spec.gamma_bits) for b in range(B)]
        b_words = [pack_lanes(spec.beta[b * P:(b + 1) * P], spec.beta_bits) for b in range(B)]
        m.submodules.gamma_rom = g_rom = rom("gamma", P * spec.gamma_bits, g_words)
        m.submodules.beta_rom = b_rom = rom("beta", P * spec.beta_bits, b_words)
        g_port, b_port = g_rom.read_port(domain="sync"), b_rom.read_port(domain="sync")
        # Tokens whose statistics wait for the output side all sit in the buffer (at least one beat each).
        r1_bits = bits_for_unsigned(bound["r1"])
        sh_bits = bits_for_unsigned(R - Z - 1 + nw // 2)
        # Registered output (SyncFIFOBuffered): a LUT RAM read straight into the output side's
        # registers makes Yosys 0.70's ABC9 pass fail an assertion on some shapes (C=768, P=8).
        m.submodules.stats = stats = SyncFIFOBuffered(width=len(acc1) + r1_bits + sh_bits,
                                                      depth=(N - 1) // B + 1)

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
        def stage(k, tok, drop=(), **new):
            """One statistics register stage: the values still needed, and the new ones."""
            keep = {n: v for n, v in tok.items() if n not in drop} | new
            return {n: sreg(v, f"st_{n}_{k}") for n, v in keep.items()}

        ps = ("s1_sq_lo", "s1_sq_hi", "c_s2_lo", "c_s2_hi")
        tok = stage(1, {"valid": done, "s1": acc1, "s2": acc2})
        tok = stage(2, tok, drop=("s2",), **partials("s1_sq", tok["s1"], tok["s1"]), **partials("c_s2", tok["s2"], C))
        tok = stage(3, tok, drop=ps, w=fit(whole(tok, "c_s2") - whole(tok, "s1_sq") + spec.eps_q, unsigned(nw)))
        # e = index of the highest non-zero bit pair (W / 4^e in [1, 4)); lead = pairs above it.
        for k in range(nw // 2):
            with m.If(tok["w"][2 * k:2 * k + 2] != 0):
                m.d.comb += [e.eq(k), lead.eq(nw // 2 - 1 - k)]
        tok = stage(4, tok, lead=lead, shift_m1=fit(R - Z - 1 + e, unsigned(sh_bits)))
        # u = W / 4^e with R fractional bits, in [2^R, 4*2^R): the top R + 2 bits of W << 2*lead.
        tok = stage(5, tok, drop=("w", "lead"), u=(tok["w"] << (2 * tok["lead"]))[nw - R - 2:nw])
        m.d.comb += seed_port.addr.eq(tok["u"][R + 2 - T:R + 2] - (1 << (T - 2)))
        tok = stage(6, tok)                           # alongside the seed ROM's read register
        r0 = seed_port.data
        tok = stage(7, tok, r0=r0, **partials("r0_sq", r0, r0))
        a = round_shift(whole(tok, "r0_sq"), R)       # r0^2
        tok = stage(8, tok, drop=("r0_sq_lo", "r0_sq_hi"), a=fit(a, unsigned(bits_for_unsigned(bound["a"]))))
        tok = stage(9, tok, drop=("u", "a"), **partials("ua", tok["u"], tok["a"]))
        c_shape = (unsigned(bits_for_unsigned(bound["c_max"])) if bound["c_min"] >= 0
                   else signed(bits_for_signed(bound["c_min"], bound["c_max"])))
        tok = stage(10, tok, drop=("ua_lo", "ua_hi"), c=fit((3 << R) - round_shift(whole(tok, "ua"), R), c_shape))
        tok = stage(11, tok, drop=("r0", "c"), **partials("r0c", tok["c"], tok["r0"]))
        r1 = round_shift(whole(tok, "r0c"), R + 1)    # r0 * (3 - u*r0^2) / 2
        tok = stage(12, tok, drop=("r0c_lo", "r0c_hi"), r1=fit(r1, unsigned(r1_bits)))
        m.d.comb += [stats.w_en.eq(tok["valid"]), stats.w_data.eq(Cat(tok["s1"], tok["r1"], tok["shift_m1"]))]

        # -- output side: read a ready token, normalize, gamma/beta ----------------------
        m.d.comb += [
            rd.eq(ce & stats.r_rdy),
            stats.r_en.eq(rd & (out_beat == B - 1)),
            rport.addr.eq(rptr), rport.en.eq(ce),
        ]
        with m.If(rd):
            m.d.sync += [rptr.eq(rptr + 1), out_beat.eq(Mux(out_beat == B - 1, 0, out_beat + 1))]
        head = stats.r_data
        side = {"valid": rd, "beat": out_beat, "s1": head[:len(acc1)].as_signed(),
                "r1": head[len(acc1):len(acc1) + r1_bits], "shift_m1": head[len(acc1) + r1_bits:]}

        def advance(side, k, drop=()):
            """The per-beat side values one output stage later (those still needed)."""
            return {name: creg(value, f"o_{name}_{k}") for name, value in side.items() if name not in drop}

        side = advance(side, 1)                       # alongside the RAM's own read register
        word = creg(rport.data, "o_word")             # block RAM clock-to-out is slow: register it again
        side = advance(side, 2)
        x = lanes_of(word, spec.in_bits)
        side["last"] = word[-1]
        cx = [creg(product(x[j], C), f"o_cx{j}") for j in range(P)]
        side = advance(side, 3)
        d = [creg(cx[j] - side["s1"], f"o_d{j}") for j in range(P)]
        side = advance(side, 4, drop=("s1",))
        prods = [{n: creg(v, f"o_{n}") for n, v in partials(f"p{j}", d[j], side["r1"]).items()} for j in range(P)]
        side = advance(side, 5, drop=("r1",))
        p = [creg(whole(prods[j], f"p{j}"), f"o_p{j}") for j in range(P)]
        side = advance(side, 6)
        # gamma/beta ROMs read here (data one stage later) and registered once more, so that
        # neither RAM output feeds the multiplier directly.
        m.d.comb += [g_port.addr.eq(side["beat"]), b_port.addr.eq(side["beat"]), g_port.en.eq(ce), b_port.en.eq(ce)]
        q = [creg(p[j] >> side["shift_m1"], f"o_q{j}") for j in range(P)]
        side = advance(side, 7, drop=("shift_m1", "beat"))
        z = [creg(narrow(q[j], 1, spec.z_bits), f"o_z{j}", signed(spec.z_bits)) for j in range(P)]
        g_word, b_word = creg(g_port.data, "o_gamma_w"), creg(b_port.data, "o_beta_w")
        side = advance(side, 8)
        gamma, beta = lanes_of(g_word, spec.gamma_bits), lanes_of(b_word, spec.beta_bits)
        gz = [{n: creg(v, f"o_{n}") for n, v in partials(f"gz{j}", z[j], gamma[j]).items()} for j in range(P)]
        beta = [creg(v, f"o_beta{j}") for j, v in enumerate(beta)]
        side = advance(side, 9)
        acc = [creg(whole(gz[j], f"gz{j}") + beta[j], f"o_acc{j}") for j in range(P)]
        side = advance(side, 10)
        y = [narrow(acc[j], spec.affine_shift, spec.out_bits) for j in range(P)]

        # -- connections: output buffer ---------------------------------------------------
        wiring.connect(m, wiring.flipped(self.o), obuf.o)
        m.d.comb += [obuf.push_valid.eq(side["valid"]), obuf.push_payload.last.eq(side["last"])]
        m.d.comb += [obuf.push_payload.data[j].eq(y[j]) for j in range(P)]
        return m
