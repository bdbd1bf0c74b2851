"""The DyT engine: one streaming DyT unit for every layer, its coefficients loaded at run time.

Datapath (one lane; ``[...]`` is a register enabled by the pipeline's ``ce``)::

    s_axis_coef ─► CoefLoader ─► write ports of the coefficient RAMs (the bank not in use)
                       │ banks: usable, layer, last beat (, affine, shift, top)
                       ▼
    i.payload ─► token start? pick the bank whose layer == layer_select (stall if none)
       │
       └─► [t = RAM{bank, x}]   512 words for 8-bit inputs: two banks of one entry per signed code
              └─► [t]           block RAM clock-to-out is slow: nothing else in its cycle
                    │ folded only: ─────────────────────────────────────────────────► 2-entry output buffer ─► o
                    │ with channel affine (gamma, beta' = RAM{bank, beat}, read and registered with t):
                    └─► [prod = gamma*t, beta'] ─► [acc = (prod + beta') >> shift] ─► y = affine ? clamp(acc, top) : t

Double buffering: the loader writes the bank the current token does not use
while the other one streams (before the first token, frames alternate between
the banks, so two layers can be loaded ahead); ``layer_select`` is sampled with the first beat
of each token (beat counter at 0) and picks the bank that holds that layer. If
neither bank holds it, ``i.ready`` stays low until a frame for it has loaded:
tokens never see a half-loaded set, and a switch to a loaded layer costs no
cycle. Every RAM is read on the cycle a beat is accepted, so the beats of the
previous token have all read their bank before the loader may claim it; the
bank's affine fields travel with the beat (``ctrl``), so a bank reloaded
while its last beats are still in the pipeline does not change them.

A threshold engine (``shape.tanh == "threshold"``) holds, per lane and per
compare stage ``i``, a RAM of ``2**i`` thresholds per bank, and finds the
output by the binary search of the threshold core
(:meth:`hardyt.hw.datapath.dyt_core.DyTCore._tanh_threshold`)::

    i.payload, bank ─► [w = RAM0{bank}, x] ─► p = (x >= w) ─► [w = RAM1{bank, p}, x, p] ─► p = 2p + (x >= w) ─► ...
                         ... ─► [w = RAM{b-1}{bank, p}, x, p] ─► t = p - 2**(b-1) ─► (affine as above) ─► o
    (a stage of 16 words or more registers its word once more, as a block RAM's output, before the compare)

The bank (and, with channel affine, the beat index: gamma and beta are read
after the last stage) travels with the beat in ``ctrl``. Since a beat reads
its bank's RAMs for ``b`` stages after it was accepted, the engine tells the
loader which banks the beats inside still read (``inflight``): the loader
claims a bank only once none does.

The affine arithmetic is the channel affine core's
(:meth:`hardyt.hw.datapath.dyt_core.DyTCore._channel_affine`): ``beta'`` holds the
rounding half, so ``round_shift(gamma*t + beta, shift)`` is one add and a
shift, then the layer's saturation. The shift and the saturation bound are
the bank's (layers differ in both); a set loaded from a table-only frame (a
folded layer) bypasses the affine and outputs ``t``.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .arith import hdl_clamp
from .coef_frame import COEF_BITS
from .coef_loader import CoefLoader, Status, bank_layout
from .dyt_core import THRESHOLD_BLOCK_MIN_WORDS
from .engine_set import EngineShape
from .stages import CountedLatency, OutputBuffer, Stages, lane_stream, lanes_layout

__all__ = ["DyTEngine", "NO_COLLISION"]

#: The coefficient RAMs' Verilog attribute: a beat never reads the bank being written (the loader
#: writes a bank no token can use), so Yosys need not build its read-during-write bypass (a register
#: and a multiplexer behind every block RAM output bit, on the engine's critical path).
NO_COLLISION = {"no_rw_check": 1}


class DyTEngine(CountedLatency, wiring.Component):
    """LUT or threshold DyT (folded or channel affine) for any layer of a set, bit-exact with each layer's
    ``reference_stream``.

    Parameters
    ----------
    shape : EngineShape
        Layers, most channels, lanes, the widest formats, the affine widths and shifts.

    Members
    -------
    i : In(lane_stream(in_bits, P))
        Input beats as :class:`hardyt.hw.datapath.dyt_core.DyTCore`'s; a narrower layer's codes sign-extended.
    o : Out(lane_stream(out_bits, P))
        Output beats; a narrower layer's codes sign-extended.
    coef : In(stream.Signature(StructLayout({"data": 32, "last": 1})))
        Coefficient frames (:mod:`hardyt.hw.datapath.coef_frame`).
    layer_select : In(range(layers))
        The layer of the token whose first beat is on ``i``.
    coef_status : Out(Status)
        The outcome of the last frame.
    coef_done : Out(1)
        High for one cycle when a frame ends.

    Attributes
    ----------
    control_regs : list of str
        After elaboration: the names of the pipeline's control registers, first stage first.
    bank_readers : list of str
        After elaboration: those of beats that still read their bank's RAMs (a threshold engine's
        compare stages; none in a table engine, whose beats read at the handshake).
    latency : int
        Cycles from an input handshake to its ``o.valid``, sink always ready:
        the stages :meth:`elaborate` builds plus the output buffer's (3; 5 with channel affine;
        a threshold engine: ``b`` + the stages of 16 words or more + 1, 4 more with channel affine).
    """

    def __init__(self, shape: EngineShape):
        self.shape = shape
        fields = {"valid": 1, "last": 1}
        if shape.tanh == "threshold":
            fields["bank"] = 1
            if shape.affine is not None:
                fields["beat"] = range(max(2, shape.beats))
        if shape.affine is not None:
            tag = bank_layout(shape)
            fields |= {"affine": tag["affine"].shape, "shift": tag["shift"].shape, "top": tag["top"].shape}
        #: Control that travels with the data: the beat's handshake and its bank's affine fields.
        self.ctrl_layout = data.StructLayout(fields)
        super().__init__({
            "i": In(lane_stream(shape.in_bits, shape.lanes)),
            "o": Out(lane_stream(shape.out_bits, shape.lanes)),
            "coef": In(stream.Signature(data.StructLayout({"data": COEF_BITS, "last": 1}))),
            "layer_select": In(range(max(2, shape.layers))),
            "coef_status": Out(Status),
            "coef_done": Out(1),
        })

    def elaborate(self, platform):
        s = self.shape
        m = Module()
        self.bank_readers = []                  # filled by a threshold engine's compare stages
        m.submodules.loader = loader = CoefLoader(s)
        m.submodules.obuf = obuf = OutputBuffer(self.o.payload.shape())
        wiring.connect(m, wiring.flipped(self.coef), loader.coef)
        wiring.connect(m, wiring.flipped(self.o), obuf.o)
        m.d.comb += [self.coef_status.eq(loader.status), self.coef_done.eq(loader.done)]
        ce = obuf.i.ready
        stages = Stages(m, enable=ce)

        bank, beat, go, tag = self._token_bank(m, loader)
        m.d.comb += self.i.ready.eq(ce & go)
        ctrl = Signal(self.ctrl_layout)
        m.d.comb += [ctrl.valid.eq(self.i.valid & go), ctrl.last.eq(self.i.payload.last)]
        if s.affine is not None:
            m.d.comb += [ctrl.affine.eq(tag.affine), ctrl.shift.eq(tag.shift), ctrl.top.eq(tag.top)]

        if s.tanh == "threshold":
            m.d.comb += ctrl.bank.eq(bank)
            if s.affine is not None:
                m.d.comb += ctrl.beat.eq(beat)
            t, coefs, ctrl = self._threshold_lookup(m, loader, stages, ce, list(self.i.payload.data), ctrl)
        else:
            t = [self._table_read(m, loader, ce, bank, x, j) for j, x in enumerate(self.i.payload.data)]
            coefs = self._channel_reads(m, loader, ce, Cat(beat, bank)) if s.affine is not None else {}
            ctrl = stages.step(ctrl, "t")
            t, coefs, ctrl = self._registered(stages, t, coefs, ctrl)
        y = t
        if s.affine is not None:
            y, ctrl = self._channel_affine(stages, t, coefs["gamma"], coefs["beta"], ctrl)

        m.d.comb += [obuf.i.valid.eq(ctrl.valid), obuf.i.payload.last.eq(ctrl.last)]
        m.d.comb += [obuf.i.payload.data[j].eq(v) for j, v in enumerate(y)]
        self.count_latency(stages.count + obuf.latency)
        self.control_regs = stages.controls     # as DyTCore's: read by the formal harness
        return m

    def _token_bank(self, m, loader):
        """The bank the beat on ``i`` uses, its beat index, whether it may go, and the bank's tag: at a
        token's first beat, the bank holding ``layer_select`` (none: wait); later beats, the token's.

        The beat counter wraps after ``last`` or the bank's tokens' last beat. The loader writes
        the bank the last accepted token used (a register: no loop through ``layer_select``).
        """
        layout = bank_layout(self.shape)
        beat = Signal(range(max(2, self.shape.beats)))
        cur_bank, started = Signal(), Signal()
        cur = Signal(layout)
        m.d.comb += [loader.active.eq(cur_bank), loader.started.eq(started)]
        hit = [loader.banks[b].usable & (loader.banks[b].layer == self.layer_select) for b in range(2)]
        start = beat == 0
        sel = Signal()
        m.d.comb += sel.eq(~hit[0])
        bank = Mux(start, sel, cur_bank)
        tag = data.View(layout, Mux(start, Mux(sel, loader.banks[1], loader.banks[0]), cur))
        go = ~start | hit[0] | hit[1]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [cur_bank.eq(bank), cur.eq(tag), started.eq(1),
                         beat.eq(Mux(self.i.payload.last | (beat == tag.last_beat), 0, beat + 1))]
        return bank, beat, go, tag

    def _table_read(self, m, loader, ce, bank, x, lane: int):
        """Lane ``lane``'s table RAM (both banks; written by the loader), read at ``{bank, x}``."""
        s = self.shape
        m.submodules[f"table{lane}"] = ram = Memory(shape=unsigned(s.table_bits), depth=2 << s.in_bits, init=[],
                                                    attrs=NO_COLLISION)
        wr = ram.write_port()
        m.d.comb += [wr.en.eq(loader.we), wr.addr.eq(loader.waddr), wr.data.eq(loader.wdata)]
        rd = ram.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(Cat(x.as_unsigned(), bank)), rd.en.eq(ce)]
        return rd.data.as_signed()

    @staticmethod
    def _registered(stages, t, coefs, ctrl):
        """``t`` and the gamma and beta words one stage later: block RAM clock-to-out is slow, the RAM
        outputs are registered before any logic."""
        t = [stages.reg(v, f"t_r{j}") for j, v in enumerate(t)]
        coefs = {n: stages.reg(w, f"{n}_r") for n, w in coefs.items()}
        return t, coefs, stages.step(ctrl, "r")

    def _threshold_lookup(self, m, loader, stages, ce, x, ctrl):
        """The ``b`` compare stages of a threshold engine: ``t`` (combinational after the last compare),
        with channel affine gamma and beta read then (at the beat's ``{bank, beat}``) and ``t``
        registered twice, as the table engine's. Drives the loader's ``inflight``."""
        s = self.shape
        b, width = s.table_bits, s.entry_bits
        entry, target = loader.waddr[:b], loader.waddr[b]
        reading = []                                   # the control registers of beats that still read RAMs

        def step(ctrl, tag):
            reading.append(stages.step(ctrl, tag))
            self.bank_readers.append(stages.controls[-1])   # their names (the formal harness's load_isolation)
            return reading[-1]

        def read(i, j, addr):
            """Lane ``j``'s RAM of stage ``i`` (``2**i`` words per bank), read at ``addr``."""
            m.submodules[f"thr{i}_{j}"] = ram = Memory(shape=unsigned(width), depth=2 << i, init=[],
                                                       attrs=NO_COLLISION)
            wr = ram.write_port()
            m.d.comb += [wr.en.eq(loader.we & (entry >> i == 1)), wr.addr.eq(Cat(entry[:i], target)),
                         wr.data.eq(loader.wdata)]
            rd = ram.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(addr), rd.en.eq(ce)]
            return rd.data.as_signed()

        lanes = range(s.lanes)
        words = [read(0, j, ctrl.bank) for j in lanes]
        x = [stages.reg(x[j], f"x_t0_{j}") for j in lanes]
        ctrl = step(ctrl, "t0")
        p = [None] * s.lanes
        for i in range(b):
            if (1 << i) >= THRESHOLD_BLOCK_MIN_WORDS:   # a block RAM's output is slow: registered before the compare
                words = [stages.reg(words[j], f"thr_w{i}_{j}") for j in lanes]
                x = [stages.reg(x[j], f"x_b{i}_{j}") for j in lanes]
                p = [stages.reg(p[j], f"p_b{i}_{j}") if i else None for j in lanes]
                ctrl = step(ctrl, f"b{i}")
            p = [Cat(x[j] >= words[j], p[j]) if i else x[j] >= words[j] for j in lanes]
            if i + 1 < b:
                words = [read(i + 1, j, Cat(p[j], ctrl.bank)) for j in lanes]
                x = [stages.reg(x[j], f"x_s{i + 1}_{j}") for j in lanes]
                p = [stages.reg(p[j], f"p_s{i + 1}_{j}") for j in lanes]
                ctrl = step(ctrl, f"s{i + 1}")
        m.d.comb += loader.inflight.eq(Cat(Cat(c.valid & (c.bank == k) for c in reading).any() for k in range(2)))
        t = [Cat(pj[:-1], ~pj[-1]).as_signed() for pj in p]
        if s.affine is None:
            return t, {}, ctrl
        coefs = self._channel_reads(m, loader, ce, Cat(ctrl.beat, ctrl.bank))
        t = [stages.reg(v, f"t_t{j}", signed(b)) for j, v in enumerate(t)]
        return self._registered(stages, t, coefs, stages.step(ctrl, "t"))

    def _channel_reads(self, m, loader, ce, addr) -> dict:
        """The gamma and ``beta'`` RAMs (a word of P lanes per beat, both banks; the loader writes one
        lane at a time), read at ``addr = {bank, beat}``."""
        a, P = self.shape.affine, self.shape.lanes
        out = {}
        for name, bits in (("gamma", a.gamma_bits), ("beta", a.beta_bits)):
            m.submodules[name] = ram = Memory(shape=unsigned(P * bits), depth=2 << loader.beat_bits, init=[],
                                              attrs=NO_COLLISION)
            wr = ram.write_port(granularity=bits)
            m.d.comb += [wr.en.eq(getattr(loader, f"{name}_we")), wr.addr.eq(loader.caddr),
                         wr.data.eq(Cat([loader.cdata[:bits]] * P))]
            rd = ram.read_port(domain="sync")
            m.d.comb += [rd.addr.eq(addr), rd.en.eq(ce)]
            out[name] = data.View(lanes_layout(bits, P), rd.data)
        return out

    def _channel_affine(self, stages, t, gamma, beta, ctrl):
        """Two stages: [prod = gamma*t, beta', t] ─► [acc = (prod + beta') >> shift, t] ─►
        ``affine ? clamp(acc, -top-1, top) : t`` (the bank's shift and top, from ``ctrl``)."""
        a = self.shape.affine
        # The product is registered alone, as in the core: a DSP's output is slow.
        prods = [stages.reg(gamma[j] * v, f"aff_prod{j}") for j, v in enumerate(t)]
        betas = [stages.reg(beta[j], f"aff_beta{j}") for j in range(len(t))]
        t = [stages.reg(v, f"t_p{j}") for j, v in enumerate(t)]
        ctrl = stages.step(ctrl, "prod")
        # The shift goes with the add, the saturation's compares get a cycle of their own.
        accs = []
        for j, (p, b) in enumerate(zip(prods, betas)):
            acc = (p + b) >> a.shift_lo
            accs.append(stages.reg(acc >> ctrl.shift if a.shift_hi > a.shift_lo else acc, f"aff_acc{j}"))
        t = [stages.reg(v, f"t_a{j}") for j, v in enumerate(t)]
        ctrl = stages.step(ctrl, "acc")
        return [Mux(ctrl.affine, hdl_clamp(acc, ~ctrl.top, ctrl.top), v) for acc, v in zip(accs, t)], ctrl
