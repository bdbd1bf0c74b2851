"""The DyT streaming core: ``y = affine(tanh(x << alpha_shift[c]))`` on P lanes.

Datapath (one lane; every register is enabled by the pipeline's ``ce``)::

    i.payload ─► [A: x, alpha_shift ROM]* ─► |x|, sign ─► tanh ROM(s) ─┐
                                                                       │
      lut: t = sign(sat ? T : rom)                                     │
      pwl: acc = (intercept + half) + slope*off ─► [reg] ─► t = sign(min(T, acc >> frac))
           (slope*off by adders when off has <= 4 bits: no DSP block)   │
      folded:  y = t                                                   │
      channel: [t, gamma] ─► [prod = gamma*t, beta'] ─► y = sat((prod + beta') >> shift)
               (gamma ROM read with the tanh ROMs, beta' = beta + half one stage later)
                                                                       ▼
                                                       output buffer (2 entries) ─► o

    * stage A exists only when the spec has per-channel ``alpha_shift``.

The pipeline advances as a whole (``ce``) whenever the 2-entry output buffer
has room; ``ce`` is a function of the buffer's count register alone, so
``i.ready`` and every stage enable are registered signals: the ready path
does not grow with P or with the depth of the pipeline. With the sink always
ready the buffer holds at most one beat and the core accepts a beat every
cycle (II = 1).

ROMs are :class:`amaranth.lib.memory.Memory` read ports (synchronous, enabled
by ``ce``) tagged with a ``hardyt_rom`` attribute that names their ``.mem``
file on emission (:mod:`hardyt.hw.emit`).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hardyt.quant.errors import SpecError
from hardyt.quant.contract.fixed import bits_for_signed, bits_for_unsigned, signed_range
from hardyt.quant.contract.spec import ChannelAffine, DyTSpec
from hardyt.quant.contract.tanh import full_scale, tanh_int

__all__ = ["DyTCore", "lane_stream", "OutputBuffer", "rom", "pack_lanes", "pipeline_reg", "pwl_product",
           "SIGNED_ROM_MAX_BITS", "ADDER_MULTIPLY_MAX_BITS"]


def lane_stream(width: int, lanes: int) -> stream.Signature:
    """A stream of beats of ``lanes`` signed ``width``-bit lanes plus ``last``."""
    return stream.Signature(data.StructLayout({
        "data": data.ArrayLayout(signed(width), lanes),
        "last": unsigned(1),
    }))


def pack_lanes(values, bits: int) -> int:
    """One ROM word holding ``values`` as ``bits``-wide two's complement fields, lane 0 lowest.

    >>> hex(pack_lanes([1, -1], 4))
    '0xf1'
    """
    word = 0
    for j, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (j * bits)
    return word


def rom(name: str, width: int, words) -> Memory:
    """A ROM whose contents are emitted as ``NAME_<name>.mem`` (see :mod:`hardyt.hw.emit`)."""
    words = [int(w) for w in words]
    # A one-word memory has a 0-bit address, which Verilog cannot declare: pad to two words.
    words += [0] * (2 - len(words))
    return Memory(shape=unsigned(width), depth=len(words), init=words, attrs={"hardyt_rom": name})


def pipeline_reg(m: Module, value, name: str, shape=None, *, enable=None) -> Signal:
    """``value`` registered in ``m`` (one pipeline stage), loaded only when ``enable`` is high if given."""
    r = Signal(shape if shape is not None else value.shape(), name=name)
    if enable is None:
        m.d.sync += r.eq(value)
    else:
        with m.If(enable):
            m.d.sync += r.eq(value)
    return r


#: A LUT tanh of at most this many input bits is one ROM over every signed
#: code, read with x itself: no |x|, saturation or negation logic. A 256-word
#: ROM is 32 LUT6s on Xilinx, fewer than that logic.
SIGNED_ROM_MAX_BITS = 8

#: PWL offsets of at most this many bits are multiplied by a tree of adders
#: rather than a DSP block: a 4-bit factor costs three adders, less than a
#: multiplier and faster than a DSP's output path.
ADDER_MULTIPLY_MAX_BITS = 4


def pwl_product(slope, off):
    """``slope * off``: a balanced tree of shifted, gated ``slope`` copies when
    ``off`` is narrow (see :data:`ADDER_MULTIPLY_MAX_BITS`), else a multiplier."""
    if len(off) > ADDER_MULTIPLY_MAX_BITS:
        return slope * off
    terms = [Mux(off[k], slope << k, 0) for k in range(len(off))]
    while len(terms) > 1:
        terms = [sum(terms[i:i + 2]) for i in range(0, len(terms), 2)]
    return terms[0]


class OutputBuffer(wiring.Component):
    """Two-entry output buffer whose upstream ``ce`` depends on registers only.

    The pipeline feeding it advances (``ce``) only when the buffer has room,
    and pushes its last stage (``push_valid``/``push_payload``) on that edge.

    Parameters
    ----------
    payload_shape : ShapeLike
        Shape of one beat.

    Members
    -------
    ce : Out(1)
        The pipeline may advance this cycle (buffer not full).
    push_valid : In(1)
        The pipeline's last stage holds a beat.
    push_payload : In(payload_shape)
        That beat.
    o : Out(stream.Signature(payload_shape))
        The output stream.
    """

    def __init__(self, payload_shape):
        super().__init__({
            "ce": Out(1),
            "push_valid": In(1),
            "push_payload": In(payload_shape),
            "o": Out(stream.Signature(payload_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(3))
        head = Signal.like(self.push_payload)
        tail = Signal.like(self.push_payload)
        push = Signal()
        pop = Signal()

        m.d.comb += [
            self.ce.eq(count != 2),
            push.eq(self.ce & self.push_valid),
            self.o.valid.eq(count != 0),
            self.o.payload.eq(head),
            pop.eq(self.o.valid & self.o.ready),
        ]
        with m.If(push & ~pop):
            m.d.sync += count.eq(count + 1)
            with m.If(count == 0):
                m.d.sync += head.eq(self.push_payload)
            with m.Else():
                m.d.sync += tail.eq(self.push_payload)
        with m.Elif(pop & ~push):
            m.d.sync += [count.eq(count - 1), head.eq(tail)]
        with m.Elif(pop & push):
            # count is 1 here: count == 2 means ce (and so push) is low.
            m.d.sync += head.eq(self.push_payload)
        return m


class DyTCore(wiring.Component):
    """DyT on a stream of P-lane beats, bit-exact with ``spec.reference_stream``.

    Parameters
    ----------
    spec : DyTSpec
        The layer: widths, tanh table or segments, alpha shifts, affine.

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": ArrayLayout(signed(in_bits), P), "last": 1})))
        Input beats; lane ``j`` of beat ``k`` of a token is channel ``k*P + j``;
        ``last`` ends a token (the channel counter also wraps after ``C/P`` beats).
    o : Out(stream.Signature(StructLayout({"data": ArrayLayout(signed(out_bits), P), "last": 1})))
        Output beats in the same order, ``last`` carried through.

    Attributes
    ----------
    latency : int
        Cycles from an input handshake to the corresponding ``o.valid`` when
        the sink is always ready.
    """

    def __init__(self, spec: DyTSpec):
        if not isinstance(spec, DyTSpec):
            raise SpecError("spec", f"DyTCore needs a DyTSpec, got {type(spec).__name__}")
        self.spec = spec
        t = spec.tanh
        channel = isinstance(spec.affine, ChannelAffine)
        self.latency = ((spec.alpha_shift is not None) + (1 if t.kind == "lut" else 2)
                        + (2 if channel else 0) + 1)
        super().__init__({
            "i": In(lane_stream(spec.in_bits, spec.lanes)),
            "o": Out(lane_stream(spec.out_bits, spec.lanes)),
        })

    def elaborate(self, platform):
        spec, t = self.spec, self.spec.tanh
        P, beats = spec.lanes, spec.channels // spec.lanes
        T = full_scale(t.out_bits)
        m = Module()

        # -- local signals: channel counter and the pipeline's control ----------
        beat = Signal(range(max(2, beats)))     # beat index of the next input beat (>= 1 bit for Verilog)
        accept = Signal()
        m.submodules.obuf = obuf = OutputBuffer(self.o.payload.shape())
        ce = obuf.ce
        wiring.connect(m, wiring.flipped(self.o), obuf.o)
        m.d.comb += [self.i.ready.eq(ce), accept.eq(self.i.valid & ce)]
        with m.If(accept):
            m.d.sync += beat.eq(Mux(self.i.payload.last | (beat == beats - 1), 0, beat + 1))

        reg = partial(pipeline_reg, m, enable=ce)      # one pipeline stage later

        def read(memory, addr):
            """A synchronous read of ``memory`` at ``addr`` (data one stage later)."""
            port = memory.read_port(domain="sync")
            m.d.comb += [port.addr.eq(addr), port.en.eq(ce)]
            return port.data

        def lane_roms(name, width, words):
            """Lane ``j``'s copy of a ROM every lane reads: one dual-port ROM per lane pair."""
            # Two read ports is what block RAM has; Yosys 0.70 fails on ROMs with more
            # (memory_libmap or, built as logic, ABC9 at P = 16).
            copies = [rom(name, width, words) for _ in range((P + 1) // 2)]
            for k, copy in enumerate(copies):
                m.submodules[f"{name}_rom{k}"] = copy
            return [copies[j // 2] for j in range(P)]

        def lanes_of(word, bits, sign):
            return [word[j * bits:(j + 1) * bits].as_signed() if sign else word[j * bits:(j + 1) * bits]
                    for j in range(P)]

        # Control travels with the data: (valid, last, beat).
        ctrl = (self.i.valid, self.i.payload.last, beat)
        x = [self.i.payload.data[j] for j in range(P)]

        def advance(ctrl, tag):
            v, last, b = ctrl
            return (reg(v, f"valid_{tag}"), reg(last, f"last_{tag}"), reg(b, f"beat_{tag}"))

        # -- stage A: per-channel alpha shift (x << k_c) -------------------------
        if spec.alpha_shift is not None:
            sbits = bits_for_unsigned(max(spec.alpha_shift))
            words = [pack_lanes(spec.alpha_shift[b * P:(b + 1) * P], sbits) for b in range(beats)]
            m.submodules.alpha_shift_rom = shift_rom = rom("alpha_shift", P * sbits, words)
            shifts = lanes_of(read(shift_rom, beat), sbits, False)
            x = [reg(x[j], f"x_a{j}") for j in range(P)]
            ctrl = advance(ctrl, "a")
            x = [(x[j] << shifts[j])[:t.in_bits].as_signed() for j in range(P)]

        # -- tanh -----------------------------------------------------------------
        tanh_src = ctrl
        mags = [abs(v) for v in x]
        neg = [v < 0 for v in x]
        tcode = []
        if t.kind == "lut" and t.in_bits <= SIGNED_ROM_MAX_BITS:
            codes = np.arange(1 << t.in_bits, dtype=np.int64)
            codes[codes >= 1 << (t.in_bits - 1)] -= 1 << t.in_bits     # address = x's two's complement bits
            words = tanh_int(codes, t) & ((1 << t.out_bits) - 1)
            table = lane_roms("tanh", t.out_bits, words)
            tcode = [read(table[j], x[j].as_unsigned()).as_signed() for j in range(P)]
            ctrl = advance(ctrl, "t")
        elif t.kind == "lut":
            n = len(t.table)
            table = lane_roms("tanh", t.out_bits - 1, t.table)
            for j in range(P):
                idx = mags[j] >> t.drop_bits
                sat = reg(idx >= n, f"sat{j}")
                entry = read(table[j], Mux(idx >= n, 0, idx))
                tmag = Mux(sat, T, entry)
                tcode.append(Mux(reg(neg[j], f"neg{j}"), -tmag, tmag))
            ctrl = advance(ctrl, "t")
        else:
            s = t.segments
            slopes = lane_roms("slope", t.slope_bits, t.slope)
            icpt_r = [c + ((1 << t.frac) >> 1) for c in t.intercept]
            icpts = lane_roms("intercept", bits_for_unsigned(max(icpt_r)), icpt_r)
            for j in range(P):
                seg = mags[j] >> t.seg_shift
                inside = reg(seg < s, f"inside{j}")
                addr = Mux(seg < s, seg, 0)
                slope, icpt = read(slopes[j], addr), read(icpts[j], addr)
                # One-code segments have no offset bits (a 0-bit signal would emit as [-1:0]).
                off = reg(mags[j][:t.seg_shift], f"off{j}") if t.seg_shift else Const(0, 1)
                sgn = reg(neg[j], f"neg{j}")
                acc = reg(icpt + pwl_product(slope, off), f"pwl_acc{j}")
                inside, sgn = reg(inside, f"inside_b{j}"), reg(sgn, f"neg_b{j}")
                # The intercepts hold the rounding half, so round(acc) < T is acc < T << frac.
                mag = Mux(inside & (acc < (T << t.frac)), acc >> t.frac, T)
                tcode.append(Mux(sgn, -mag, mag))
            ctrl = advance(advance(ctrl, "t"), "pwl")

        # -- affine ---------------------------------------------------------------
        if isinstance(spec.affine, ChannelAffine):
            a = spec.affine
            # The ROM holds beta plus the rounding half, so the last stage is one add:
            # round_shift(g*t + beta) = (g*t + (beta + half)) >> shift.
            half = (1 << (a.shift - 1)) if a.shift else 0
            beta_r = [b + half for b in a.beta]
            bbits = bits_for_signed(min(beta_r), max(beta_r))
            g_words = [pack_lanes(a.gamma[b * P:(b + 1) * P], a.gamma_bits) for b in range(beats)]
            b_words = [pack_lanes(beta_r[b * P:(b + 1) * P], bbits) for b in range(beats)]
            m.submodules.gamma_rom = g_rom = rom("gamma", P * a.gamma_bits, g_words)
            m.submodules.beta_rom = b_rom = rom("beta", P * bbits, b_words)
            # gamma is read alongside the tanh ROMs and beta one stage before it is used;
            # both words are registered once more: block RAM outputs are slow.
            g_word = read(g_rom, tanh_src[2])
            for k in range(1 if t.kind == "lut" else 2):
                g_word = reg(g_word, f"gamma_w{k}")
            b_word = reg(read(b_rom, ctrl[2]), "beta_w")
            gamma, beta = lanes_of(g_word, a.gamma_bits, True), lanes_of(b_word, bbits, True)
            tcode = [reg(tcode[j], f"tcode{j}", signed(t.out_bits)) for j in range(P)]
            ctrl = advance(ctrl, "g")
            # The product is registered alone: a DSP's output is slow, and adding
            # beta behind it would put a carry chain on the same path.
            prods = [reg(gamma[j] * tcode[j], f"aff_prod{j}") for j in range(P)]
            ctrl = advance(ctrl, "acc")
            lo, hi = signed_range(a.out_bits)
            out = []
            for j in range(P):
                r = (prods[j] + beta[j]) >> a.shift
                out.append(Mux(r > hi, hi, Mux(r < lo, lo, r)))
        else:
            out = tcode

        # -- output buffer --------------------------------------------------------
        m.d.comb += [obuf.push_valid.eq(ctrl[0]), obuf.push_payload.last.eq(ctrl[1])]
        m.d.comb += [obuf.push_payload.data[j].eq(out[j]) for j in range(P)]
        return m
