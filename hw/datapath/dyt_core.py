"""The DyT streaming core: ``y = affine(tanh(x << alpha_shift[c]))`` on P lanes.

Datapath (one lane; every register is enabled by the pipeline's ``ce``)::

    i.payload ─► [A: x, alpha_shift ROM]* ─► |x|, sign ─► tanh ROM(s) ─┐
                                                                       │
      lut: t = sign(sat ? T : rom)                                     │
      threshold: p = [x >= thr0] ─► [p = 2p + (x >= thr_i[p])] x (out_bits - 1) ─► t = p - 2**(out_bits-1)
                 (a stage whose ROM is in block RAM registers the word once more: two cycles)
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
file on emission (:mod:`hardyt.hw.emission.emit`).
"""
from __future__ import annotations

import numpy as np

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hardyt.quant.errors import SpecError
from hardyt.quant.contract.fixed import bits_for_signed, bits_for_unsigned
from hardyt.quant.contract.spec import ChannelAffine, DyTSpec
from hardyt.quant.contract.tanh import full_scale, tanh_int
from hardyt.quant.contract.threshold import radix_stages

from .arith import hdl_product, hdl_saturate
from .stages import CountedLatency, OutputBuffer, Stages, lane_stream, lane_words, lanes_layout, rom

__all__ = ["DyTCore", "SIGNED_ROM_MAX_BITS", "ADDER_MULTIPLY_MAX_BITS", "THRESHOLD_BLOCK_MIN_WORDS", "THRESHOLD_RADIX"]

#: A LUT tanh of at most this many input bits is one ROM over every signed
#: code, read with x itself: no |x|, saturation or negation logic. A 256-word
#: ROM is 32 LUT6s on Xilinx, fewer than that logic.
SIGNED_ROM_MAX_BITS = 8

#: Threshold stages of at least this many words are ROMs in block RAM (the last
#: four at 8-bit output): one 18-Kbit block per lane pair and stage. As logic a
#: 16- to 128-word stage costs 1-3 LUT6 or 4-32 LUT4 per bit per read port;
#: ECP5, C = 768, P = 4, 16-bit input: 1418 LUT with stages 6-7 in blocks.
THRESHOLD_BLOCK_MIN_WORDS = 16

#: The threshold search's default radix. Radix 4 halves the stages but compares three times per stage
#: (1.5x the compares): Xilinx, C = 8, P = 8, 16-bit input, 1163 LUT, 1839 FF, 24 RAMB18 against radix 2's
#: 938 LUT, 2683 FF, 16 RAMB18 (bench/results/hardware_width.md); LUT is what the hls4ml comparison counts.
THRESHOLD_RADIX = 2

#: PWL offsets of at most this many bits are multiplied by a tree of adders
#: rather than a DSP block: a 4-bit factor costs three adders, less than a
#: multiplier and faster than a DSP's output path.
ADDER_MULTIPLY_MAX_BITS = 4


def _count_reached(reached: list):
    """How many of the increasing thresholds ``x`` reached (``reached[k]``: ``x >= thr_k``, a thermometer
    code) as ``log2(len + 1)`` bits: bit ``k`` of a count ``m`` is the parity of ``m // 2**k``, the
    number of flags ``(1 << k) - 1``, ``(2 << k) - 1``, ... that are set."""
    bits = (len(reached) + 1).bit_length() - 1
    return Cat(*[_xor(reached[(1 << k) - 1::1 << k]) for k in range(bits)]) if bits > 1 else reached[0]


def _xor(values):
    out = values[0]
    for v in values[1:]:
        out = out ^ v
    return out


class _Datapath:
    """What every part of DyTCore's datapath builds with: the stages (enabled by
    ``ce``), synchronous ROM reads, and per-lane ROM copies."""

    def __init__(self, m: Module, lanes: int, ce):
        self.m, self.P, self.ce = m, lanes, ce
        self.stages = Stages(m, enable=ce)
        self.reg = self.stages.reg

    def read(self, memory, addr):
        """A synchronous read of ``memory`` at ``addr`` (data one stage later)."""
        port = memory.read_port(domain="sync")
        self.m.d.comb += [port.addr.eq(addr), port.en.eq(self.ce)]
        return port.data

    def beat_rom(self, name: str, values, bits: int, sign: bool = True):
        """A ROM of per-channel ``values``, one word of P lanes per beat."""
        self.m.submodules[f"{name}_rom"] = memory = rom(name, self.P * bits, lane_words(values, self.P, bits))
        return memory, lanes_layout(bits, self.P, sign)

    def lane_roms(self, name: str, width: int, words, block: bool = False):
        """Lane ``j``'s copy of a ROM every lane reads: one dual-port ROM per lane pair (``block``: in block RAM)."""
        # Two read ports is what block RAM has; Yosys 0.70 fails on ROMs with more
        # (memory_libmap or, built as logic, ABC9 at P = 16).
        copies = [rom(name, width, words, block=block) for _ in range((self.P + 1) // 2)]
        for k, copy in enumerate(copies):
            self.m.submodules[f"{name}_rom{k}"] = copy
        return [copies[j // 2] for j in range(self.P)]


class DyTCore(CountedLatency, wiring.Component):
    """DyT on a stream of P-lane beats, bit-exact with ``spec.reference_stream``.

    Parameters
    ----------
    spec : DyTSpec
        The layer: widths, tanh table or segments, alpha shifts, affine.
    radix : int
        A threshold tanh's search: ``log2(radix)`` output bits per compare
        stage, ``radix - 1`` compares each (default :data:`THRESHOLD_RADIX`).

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
        the sink is always ready: the stages :meth:`elaborate` builds, plus
        the output buffer's register.
    control_regs : list of str
        After elaboration: the control registers (``valid``, ``last``, ...) of
        the pipeline's stages, first stage first, as named in the Verilog.
    """

    def __init__(self, spec: DyTSpec, radix: int = None):
        if not isinstance(spec, DyTSpec):
            raise SpecError("spec", f"DyTCore needs a DyTSpec, got {type(spec).__name__}")
        radix = THRESHOLD_RADIX if radix is None else radix
        if radix not in (2, 4):
            raise SpecError("radix", f"must be 2 or 4, got {radix!r}")
        self.spec, self.radix = spec, radix
        beats = spec.channels // spec.lanes
        #: Control that travels with the data (beat: >= 1 bit, for Verilog).
        self.ctrl_layout = data.StructLayout({"valid": 1, "last": 1, "beat": range(max(2, beats))})
        super().__init__({
            "i": In(lane_stream(spec.in_bits, spec.lanes)),
            "o": Out(lane_stream(spec.out_bits, spec.lanes)),
        })

    def elaborate(self, platform):
        spec = self.spec
        m = Module()
        m.submodules.obuf = obuf = OutputBuffer(self.o.payload.shape())
        wiring.connect(m, wiring.flipped(self.o), obuf.o)
        ce = obuf.i.ready                         # the whole pipeline advances when the buffer has room
        dp = _Datapath(m, spec.lanes, ce)
        m.d.comb += self.i.ready.eq(ce)

        ctrl = Signal(self.ctrl_layout)
        m.d.comb += [ctrl.valid.eq(self.i.valid), ctrl.last.eq(self.i.payload.last),
                     ctrl.beat.eq(self._beat_counter(m, self.i.valid & ce))]
        x = list(self.i.payload.data)
        if spec.alpha_shift is not None:
            x, ctrl = self._alpha_shift(dp, x, ctrl)
        tanh_src, before = ctrl, dp.stages.count
        if spec.tanh.kind == "lut" and spec.tanh.in_bits <= SIGNED_ROM_MAX_BITS:
            y, ctrl = self._tanh_signed_rom(dp, x, ctrl)
        elif spec.tanh.kind == "lut":
            y, ctrl = self._tanh_lut(dp, x, ctrl)
        elif spec.tanh.kind == "threshold":
            y, ctrl = self._tanh_threshold(dp, x, ctrl)
        else:
            y, ctrl = self._tanh_pwl(dp, x, ctrl)
        if isinstance(spec.affine, ChannelAffine):
            y, ctrl = self._channel_affine(dp, y, tanh_src.beat, dp.stages.count - before, ctrl)

        m.d.comb += [obuf.i.valid.eq(ctrl.valid), obuf.i.payload.last.eq(ctrl.last)]
        m.d.comb += [obuf.i.payload.data[j].eq(y[j]) for j in range(spec.lanes)]
        self.count_latency(dp.stages.count + obuf.latency)
        self.control_regs = dp.stages.controls
        return m

    def _beat_counter(self, m, accept):
        """The beat index of the next input beat: wraps after ``last`` or ``C/P`` beats."""
        beats = self.spec.channels // self.spec.lanes
        beat = Signal(range(max(2, beats)))
        with m.If(accept):
            m.d.sync += beat.eq(Mux(self.i.payload.last | (beat == beats - 1), 0, beat + 1))
        return beat

    def _alpha_shift(self, dp, x, ctrl):
        """One stage: ``x << k_c`` (per-channel shift ROM read alongside the x register)."""
        spec = self.spec
        sbits = bits_for_unsigned(max(spec.alpha_shift))
        shift_rom, layout = dp.beat_rom("alpha_shift", spec.alpha_shift, sbits, sign=False)
        shifts = data.View(layout, dp.read(shift_rom, ctrl.beat))
        x = [dp.reg(v, f"x_a{j}") for j, v in enumerate(x)]
        return [(v << shifts[j])[:spec.tanh.in_bits].as_signed() for j, v in enumerate(x)], dp.stages.step(ctrl, "a")

    def _tanh_signed_rom(self, dp, x, ctrl):
        """One stage: a ROM over every signed code, addressed by x's two's complement bits."""
        t = self.spec.tanh
        codes = np.arange(1 << t.in_bits, dtype=np.int64)
        codes[codes >= 1 << (t.in_bits - 1)] -= 1 << t.in_bits
        table = dp.lane_roms("tanh", t.out_bits, tanh_int(codes, t) & ((1 << t.out_bits) - 1))
        return [dp.read(table[j], v.as_unsigned()).as_signed() for j, v in enumerate(x)], dp.stages.step(ctrl, "t")

    def _tanh_lut(self, dp, x, ctrl):
        """One stage: ``sign(sat ? T : table[|x| >> drop])``."""
        t = self.spec.tanh
        T, n = full_scale(t.out_bits), len(t.table)
        table = dp.lane_roms("tanh", t.out_bits - 1, t.table)
        out = []
        for j, v in enumerate(x):
            idx = abs(v) >> t.drop_bits
            sat = dp.reg(idx >= n, f"sat{j}")
            tmag = Mux(sat, T, dp.read(table[j], Mux(idx >= n, 0, idx)))
            out.append(Mux(dp.reg(v < 0, f"neg{j}"), -tmag, tmag))
        return out, dp.stages.step(ctrl, "t")

    def _tanh_threshold(self, dp, x, ctrl):
        """A search over the thresholds in stages of ``log2(radix)`` bits: no multiplier, no table of outputs.

        Stage 0's thresholds are constant compares; stage ``i`` reads entry
        ``p`` (the bits found so far) of its ROM — the ``radix - 1`` thresholds
        between which ``x`` still lies, one word — while ``x`` is registered
        beside it, and appends the number of them ``x`` reaches to ``p``
        (radix 2: one compare, ``p = 2p + (x >= word)``). After the last stage
        ``p`` counts the thresholds ``x`` reaches; the code is
        ``p - 2**(out_bits-1)``: ``p`` with its top bit inverted, read signed.
        """
        t = self.spec.tanh
        w, p = t.word_bits, None
        for i, (bits, words) in enumerate(radix_stages(t.thresholds, t.out_bits, self.radix)):
            if p is None:
                reached = [[v >= c for c in words[0]] for v in x]
            else:
                block = len(words) >= THRESHOLD_BLOCK_MIN_WORDS
                packed = [sum((c & ((1 << w) - 1)) << (k * w) for k, c in enumerate(e)) for e in words]
                roms = dp.lane_roms(f"thr{i}", w * len(words[0]), packed, block=block)
                read = [dp.read(roms[j], pj) for j, pj in enumerate(p)]
                x = [dp.reg(v, f"x_s{i}_{j}") for j, v in enumerate(x)]
                p = [dp.reg(pj, f"p_s{i}_{j}") for j, pj in enumerate(p)]
                ctrl = dp.stages.step(ctrl, f"s{i}")
                if block:   # a block RAM's output is slow: registered before the compare, one more stage
                    read = [dp.reg(r, f"thr_w{i}_{j}") for j, r in enumerate(read)]
                    x = [dp.reg(v, f"x_b{i}_{j}") for j, v in enumerate(x)]
                    p = [dp.reg(pj, f"p_b{i}_{j}") for j, pj in enumerate(p)]
                    ctrl = dp.stages.step(ctrl, f"b{i}")
                reached = [[v >= r.word_select(k, w).as_signed() for k in range(len(words[0]))]
                           for v, r in zip(x, read)]
            q = [_count_reached(c) for c in reached]
            p = q if p is None else [Cat(qj, pj) for qj, pj in zip(q, p)]
        return [Cat(pj[:-1], ~pj[-1]).as_signed() for pj in p], ctrl

    def _tanh_pwl(self, dp, x, ctrl):
        """Two stages: [slope, intercept ROMs] ─► [acc = (intercept + half) + slope*off] ─►
        ``sign(min(T, acc >> frac))``."""
        t = self.spec.tanh
        T = full_scale(t.out_bits)
        slopes = dp.lane_roms("slope", t.slope_bits, t.slope)
        icpt_r = [c + ((1 << t.frac) >> 1) for c in t.intercept]
        icpts = dp.lane_roms("intercept", bits_for_unsigned(max(icpt_r)), icpt_r)
        out = []
        for j, v in enumerate(x):
            mag = abs(v)
            seg = mag >> t.seg_shift
            inside = dp.reg(seg < t.segments, f"inside{j}")
            addr = Mux(seg < t.segments, seg, 0)
            slope, icpt = dp.read(slopes[j], addr), dp.read(icpts[j], addr)
            # One-code segments have no offset bits (a 0-bit signal would emit as [-1:0]).
            off = dp.reg(mag[:t.seg_shift], f"off{j}") if t.seg_shift else Const(0, 1)
            sgn = dp.reg(v < 0, f"neg{j}")
            acc = dp.reg(icpt + hdl_product(off, slope, ADDER_MULTIPLY_MAX_BITS), f"pwl_acc{j}")
            inside, sgn = dp.reg(inside, f"inside_b{j}"), dp.reg(sgn, f"neg_b{j}")
            # The intercepts hold the rounding half, so round(acc) < T is acc < T << frac.
            tmag = Mux(inside & (acc < (T << t.frac)), acc >> t.frac, T)
            out.append(Mux(sgn, -tmag, tmag))
        return out, dp.stages.step(dp.stages.step(ctrl, "t"), "pwl")

    def _channel_affine(self, dp, tcode, tanh_beat, tanh_stages, ctrl):
        """Two stages: [t, gamma] ─► [prod = gamma*t, beta'] ─► ``sat((prod + beta') >> shift)``.

        gamma is read alongside the tanh ROMs (at ``tanh_beat``, ``tanh_stages`` ago), beta one stage
        before it is used; both words are registered once more: block RAM
        outputs are slow. The ROM holds beta plus the rounding half, so the
        last stage is one add: ``round_shift(g*t + beta) = (g*t + (beta + half)) >> shift``.
        """
        a, t = self.spec.affine, self.spec.tanh
        half = (1 << (a.shift - 1)) if a.shift else 0
        beta_r = [b + half for b in a.beta]
        g_rom, g_layout = dp.beat_rom("gamma", a.gamma, a.gamma_bits)
        b_rom, b_layout = dp.beat_rom("beta", beta_r, bits_for_signed(min(beta_r), max(beta_r)))
        g_word = dp.read(g_rom, tanh_beat)
        for k in range(tanh_stages):
            g_word = dp.reg(g_word, f"gamma_w{k}")
        gamma = data.View(g_layout, g_word)
        beta = data.View(b_layout, dp.reg(dp.read(b_rom, ctrl.beat), "beta_w"))
        tcode = [dp.reg(v, f"tcode{j}", signed(t.out_bits)) for j, v in enumerate(tcode)]
        ctrl = dp.stages.step(ctrl, "g")
        # The product is registered alone: a DSP's output is slow, and adding
        # beta behind it would put a carry chain on the same path.
        prods = [dp.reg(gamma[j] * v, f"aff_prod{j}") for j, v in enumerate(tcode)]
        ctrl = dp.stages.step(ctrl, "acc")
        return [hdl_saturate((p + beta[j]) >> a.shift, a.out_bits) for j, p in enumerate(prods)], ctrl
