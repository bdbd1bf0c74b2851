"""The DyT engine: one streaming DyT unit for every layer, its tables loaded at run time.

Datapath (one lane; ``[...]`` is a register enabled by the pipeline's ``ce``)::

    s_axis_coef ─► CoefLoader ─► write port of every lane's table RAM (the bank not in use)
                       │ banks: usable, layer, last beat
                       ▼
    i.payload ─► token start? pick the bank whose layer == layer_select (stall if none)
       │
       └─► [t = RAM{bank, x}]   512 words for 8-bit inputs: two banks of one entry per signed code
              └─► 2-entry output buffer ─► o

Double buffering: the loader writes the bank the current token does not use
while the other one streams (before the first token, frames alternate between
the banks, so two layers can be loaded ahead); ``layer_select`` is sampled with the first beat
of each token (beat counter at 0) and picks the bank that holds that layer. If
neither bank holds it, ``i.ready`` stays low until a frame for it has loaded:
tokens never see a half-loaded set, and a switch to a loaded layer costs no
cycle. The table is read on the cycle a beat is accepted, so the beats of the
previous token have all read their bank before the loader may claim it.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .coef_frame import COEF_BITS
from .coef_loader import CoefLoader, Status
from .engine_set import EngineShape
from .pipeline import CountedLatency, OutputBuffer, Stages, lane_stream

__all__ = ["DyTEngine"]


class DyTEngine(CountedLatency, wiring.Component):
    """Folded-LUT DyT for any layer of a set, bit-exact with each layer's ``reference_stream``.

    Parameters
    ----------
    shape : EngineShape
        Layers, most channels, lanes and the widest input/output formats.

    Members
    -------
    i : In(lane_stream(in_bits, P))
        Input beats as :class:`hardyt.hw.dyt_core.DyTCore`'s; a narrower layer's codes sign-extended.
    o : Out(lane_stream(out_bits, P))
        Output beats; a narrower layer's codes sign-extended.
    coef : In(stream.Signature(StructLayout({"data": 32, "last": 1})))
        Coefficient frames (:mod:`hardyt.hw.coef_frame`).
    layer_select : In(range(layers))
        The layer of the token whose first beat is on ``i``.
    coef_status : Out(Status)
        The outcome of the last frame.
    coef_done : Out(1)
        High for one cycle when a frame ends.

    Attributes
    ----------
    latency : int
        Cycles from an input handshake to its ``o.valid``, sink always ready (2).
    """

    def __init__(self, shape: EngineShape):
        self.shape = shape
        self.ctrl_layout = data.StructLayout({"valid": 1, "last": 1})
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
        m.submodules.loader = loader = CoefLoader(s.layers, s.beats, s.in_bits, s.out_bits)
        m.submodules.obuf = obuf = OutputBuffer(self.o.payload.shape())
        wiring.connect(m, wiring.flipped(self.coef), loader.coef)
        wiring.connect(m, wiring.flipped(self.o), obuf.o)
        m.d.comb += [self.coef_status.eq(loader.status), self.coef_done.eq(loader.done)]
        ce = obuf.i.ready
        stages = Stages(m, enable=ce)

        bank, go = self._token_bank(m, loader)
        m.d.comb += self.i.ready.eq(ce & go)
        ctrl = Signal(self.ctrl_layout)
        m.d.comb += [ctrl.valid.eq(self.i.valid & go), ctrl.last.eq(self.i.payload.last)]

        y = [self._table_read(m, loader, ce, bank, x, j) for j, x in enumerate(self.i.payload.data)]
        ctrl = stages.step(ctrl, "t")

        m.d.comb += [obuf.i.valid.eq(ctrl.valid), obuf.i.payload.last.eq(ctrl.last)]
        m.d.comb += [obuf.i.payload.data[j].eq(v) for j, v in enumerate(y)]
        self.count_latency(stages.count + obuf.latency)
        return m

    def _token_bank(self, m, loader):
        """The bank the beat on ``i`` uses, and whether it may go: at a token's first beat, the
        bank holding ``layer_select`` (none: wait); later beats, the token's bank.

        The beat counter wraps after ``last`` or the bank's tokens' last beat. The loader writes
        the bank the last accepted token used (a register: no loop through ``layer_select``).
        """
        beat = Signal(range(max(2, self.shape.beats)))
        cur_bank = Signal()
        cur_last = Signal.like(loader.banks[0].last_beat)
        started = Signal()
        m.d.comb += [loader.active.eq(cur_bank), loader.started.eq(started)]
        hit = [loader.banks[b].usable & (loader.banks[b].layer == self.layer_select) for b in range(2)]
        start = beat == 0
        sel = Signal()
        m.d.comb += sel.eq(~hit[0])
        bank = Mux(start, sel, cur_bank)
        last_beat = Mux(start, Mux(sel, loader.banks[1].last_beat, loader.banks[0].last_beat), cur_last)
        go = ~start | hit[0] | hit[1]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [cur_bank.eq(bank), cur_last.eq(last_beat), started.eq(1),
                         beat.eq(Mux(self.i.payload.last | (beat == last_beat), 0, beat + 1))]
        return bank, go

    def _table_read(self, m, loader, ce, bank, x, lane: int):
        """Lane ``lane``'s table RAM (both banks; written by the loader), read at ``{bank, x}``."""
        s = self.shape
        m.submodules[f"table{lane}"] = ram = Memory(shape=unsigned(s.out_bits), depth=2 << s.in_bits, init=[])
        wr = ram.write_port()
        m.d.comb += [wr.en.eq(loader.we), wr.addr.eq(loader.waddr), wr.data.eq(loader.wdata)]
        rd = ram.read_port(domain="sync")
        m.d.comb += [rd.addr.eq(Cat(x.as_unsigned(), bank)), rd.en.eq(ce)]
        return rd.data.as_signed()
