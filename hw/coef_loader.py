"""The DyT engine's coefficient loader: frames from ``s_axis_coef`` into one of two table banks.

The loader receives frames (:mod:`hardyt.hw.coef_frame`), writes the table of
a good frame into the bank the engine is *not* using (``active``) — or,
before the engine's first token (``started`` low), into the bank the previous
frame did not go to, so that two layers can be loaded ahead — and keeps
for each bank whether it holds a usable set, which layer, and that layer's
beats per token. A bank is invalid from the cycle the loader claims it until
its frame's checksum has been checked, so the engine never reads a set that
is being written; a rejected frame leaves the bank invalid.

States::

    HEADER ─► (bad header) DRAIN ─► HEADER
       │
       └─► CLAIM (bank = ~active, invalidated)* ─► TABLE (one entry per cycle) ─► CHECK ─► HEADER
                                                     │ tlast too early                  │ no tlast
                                                     └──────► HEADER                    └─► DRAIN

    * before the first token: the bank the previous frame did not claim

``coef.ready`` is high in HEADER, DRAIN and CHECK, and in TABLE on the
cycle that writes a beat's last entry (the beat is held on the bus while its
entries are written). While the loader claims a bank (one cycle), that bank
is not ``usable``: the engine cannot switch to the bank being claimed.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .coef_frame import COEF_BITS, MAGIC, entries_per_beat

__all__ = ["CoefLoader", "bank_layout", "Status"]


class Status(enum.Enum, shape=3):
    """``coef_status``: the outcome of the last frame (see :data:`hardyt.hw.coef_frame.STATUS`)."""
    NONE = 0
    LOADED = 1
    BAD_HEADER = 2
    BAD_LENGTH = 3
    BAD_CHECKSUM = 4


def bank_layout(layers: int, beats: int) -> data.StructLayout:
    """What the engine knows of a bank: usable, which layer, the last beat index of its tokens."""
    return data.StructLayout({"usable": 1, "layer": range(max(2, layers)), "last_beat": range(max(2, beats))})


class CoefLoader(wiring.Component):
    """Writes coefficient frames into the inactive one of two table banks.

    Parameters
    ----------
    layers : int
        Layer indices the engine accepts (``0 .. layers-1``).
    beats : int
        Most beats per token (``C/P`` of the widest layer).
    in_bits, out_bits : int
        The engine's input and output widths: a table has ``2**in_bits``
        entries of ``out_bits``.

    Members
    -------
    coef : In(stream.Signature(StructLayout({"data": COEF_BITS, "last": 1})))
        The frames.
    active : In(1)
        The bank the engine's current token uses.
    started : In(1)
        The engine has started a token since reset (``active`` means something).
    banks : Out(ArrayLayout(bank_layout(layers, beats), 2))
        Per bank: usable, its layer, its last beat index.
    we, waddr, wdata : Out
        The table write: ``waddr`` = bank (top bit) and entry.
    status : Out(Status)
        The outcome of the last frame.
    done : Out(1)
        High for one cycle when a frame ends (``status`` is updated with it).
    """

    def __init__(self, layers: int, beats: int, in_bits: int, out_bits: int):
        self.layers, self.beats, self.in_bits, self.out_bits = layers, beats, in_bits, out_bits
        super().__init__({
            "coef": In(stream.Signature(data.StructLayout({"data": COEF_BITS, "last": 1}))),
            "active": In(1),
            "started": In(1),
            "banks": Out(data.ArrayLayout(bank_layout(layers, beats), 2)),
            "we": Out(1),
            "waddr": Out(in_bits + 1),
            "wdata": Out(out_bits),
            "status": Out(Status),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        k = entries_per_beat(self.out_bits)
        coef, word = self.coef, self.coef.payload.data
        take = coef.valid & coef.ready
        valid = Signal(2)
        target = Signal()
        claiming = Signal()
        previous = Signal()        # the bank the last frame claimed
        claim = Signal()           # the bank a frame would claim now
        m.d.comb += claim.eq(Mux(self.started, ~self.active, ~previous))
        layer = Signal.like(self.banks[0].layer)
        last_beat = Signal.like(self.banks[0].last_beat)
        tags = [Signal(bank_layout(self.layers, self.beats), name=f"tag{b}") for b in range(2)]
        entry = Signal(self.in_bits)
        sub = Signal(range(max(2, k)))
        total = Signal(COEF_BITS)

        for b in range(2):
            m.d.comb += [self.banks[b].eq(tags[b]),
                         self.banks[b].usable.eq(valid[b] & ~(claiming & (claim == b)))]
        m.d.comb += [self.waddr.eq(entry | (target << self.in_bits)),
                     self.wdata.eq(word.word_select(sub, self.out_bits)) if k > 1 else self.wdata.eq(word)]

        def finish(status):
            m.d.sync += [self.status.eq(status), self.done.eq(1)]

        m.d.sync += self.done.eq(0)
        with m.FSM():
            with m.State("HEADER"):
                m.d.comb += coef.ready.eq(1)
                good = ((word[:8] == MAGIC) & (word[8:16] < self.layers)
                        & (word[16:] < self.beats))
                with m.If(take):
                    m.d.sync += [layer.eq(word[8:16]), last_beat.eq(word[16:]), total.eq(word),
                                 entry.eq(0), sub.eq(0)]
                    with m.If(~good):
                        with m.If(coef.payload.last):
                            finish(Status.BAD_HEADER)
                        with m.Else():
                            m.d.sync += self.status.eq(Status.BAD_HEADER)
                            m.next = "DRAIN"
                    with m.Elif(coef.payload.last):
                        finish(Status.BAD_LENGTH)
                    with m.Else():
                        m.next = "CLAIM"
            with m.State("CLAIM"):
                # One cycle in which the bank to write is not usable, then it is invalid until CHECK.
                m.d.comb += claiming.eq(1)
                m.d.sync += [target.eq(claim), previous.eq(claim), valid.bit_select(claim, 1).eq(0)]
                m.next = "TABLE"
            with m.State("TABLE"):
                end_of_beat = (sub == k - 1) | (entry == (1 << self.in_bits) - 1)
                m.d.comb += [self.we.eq(coef.valid), coef.ready.eq(end_of_beat)]
                with m.If(coef.valid):
                    m.d.sync += [entry.eq(entry + 1), sub.eq(0 if k == 1 else (sub + 1) % k)]
                    with m.If(end_of_beat):
                        m.d.sync += [sub.eq(0), total.eq(total + word)]
                        with m.If(coef.payload.last):
                            finish(Status.BAD_LENGTH)
                            m.next = "HEADER"
                        with m.Elif(entry == (1 << self.in_bits) - 1):
                            m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += coef.ready.eq(1)
                with m.If(take):
                    with m.If(~coef.payload.last):
                        m.d.sync += self.status.eq(Status.BAD_LENGTH)
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "HEADER"
                        with m.If(word == total):
                            finish(Status.LOADED)
                            m.d.sync += valid.bit_select(target, 1).eq(1)
                            for b in range(2):
                                with m.If(target == b):
                                    m.d.sync += [tags[b].layer.eq(layer), tags[b].last_beat.eq(last_beat)]
                        with m.Else():
                            finish(Status.BAD_CHECKSUM)
            with m.State("DRAIN"):
                m.d.comb += coef.ready.eq(1)
                with m.If(take & coef.payload.last):
                    m.d.sync += self.done.eq(1)
                    m.next = "HEADER"
        return m
