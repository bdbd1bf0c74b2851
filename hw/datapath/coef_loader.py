"""The DyT engine's coefficient loader: frames from ``s_axis_coef`` into one of two coefficient banks.

The loader receives frames (:mod:`hardyt.hw.datapath.coef_frame`), writes the table
(and a channel affine frame's gamma and beta) of a good frame into the bank
the engine is *not* using (``active``) — or, before the engine's first token
(``started`` low), into the bank the previous frame did not go to, so that two
layers can be loaded ahead — and keeps for each bank whether it holds a
usable set, which layer, that layer's beats per token and, on an engine with
channel affine, whether the set has it, its shift and its largest output code.
A bank is invalid from the cycle the loader claims it until its frame's
checksum has been checked, so the engine never reads a set that is being
written; a rejected frame leaves the bank invalid.

States::

    HEADER ─► (bad header) DRAIN ─► HEADER
       │
       └─► CLAIM (bank = ~active, invalidated)* ─► TABLE ─┬──────────────────────────► CHECK ─► HEADER
                                                           └─► AFFINE ─► GAMMA ─► BETA ─┘   │ no tlast
                                                      (magic 0xDA)                          └─► DRAIN
    tlast too early in TABLE, AFFINE, GAMMA or BETA: ─► HEADER (bad length)
    * before the first token: the bank the previous frame did not claim

A threshold engine's frames (:data:`MAGIC_THRESHOLD`, ``_AFFINE``) have the
thresholds where the table is (``2**table_bits - 1`` entries; ``waddr``'s
entry counts ``1 .. 2**table_bits - 1``: the entry's stage is its highest set
bit, its word in the stage the bits below). Its pipeline reads a bank for
several cycles after a beat was accepted, so CLAIM also waits until no beat
still inside reads the bank it would claim (``inflight``, from the engine).

An affine beat whose shift or output bits the engine was not built for is
reported at the checksum beat (bad header, unless the length is bad): its
check is registered, off the path from ``s_axis_coef`` to the FSM.

TABLE, GAMMA and BETA write one entry per cycle (``coef.ready`` is high on
the cycle that writes a beat's last entry: the beat is held on the bus while
its entries are written); ``coef.ready`` is high in HEADER, AFFINE, CHECK and
DRAIN. While the loader claims a bank (one cycle), that bank is not
``usable``: the engine cannot switch to the bank being claimed.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from .coef_frame import COEF_BITS, MAGIC, MAGIC_AFFINE, MAGIC_THRESHOLD, MAGIC_THRESHOLD_AFFINE, entries_per_beat

__all__ = ["CoefLoader", "bank_layout", "Status"]


class Status(enum.Enum, shape=3):
    """``coef_status``: the outcome of the last frame (see :data:`hardyt.hw.datapath.coef_frame.STATUS`)."""
    NONE = 0
    LOADED = 1
    BAD_HEADER = 2
    BAD_LENGTH = 3
    BAD_CHECKSUM = 4


def bank_layout(shape) -> data.StructLayout:
    """What the engine knows of a bank: usable, which layer, the last beat index of its tokens; with
    channel affine, whether the set has it, its shift less the engine's smallest, its largest output code."""
    fields = {"usable": 1, "layer": range(max(2, shape.layers)), "last_beat": range(max(2, shape.beats))}
    if shape.affine is not None:
        a = shape.affine
        fields |= {"affine": 1, "shift": range(max(2, a.shift_hi - a.shift_lo + 1)), "top": signed(shape.out_bits)}
    return data.StructLayout(fields)


class CoefLoader(wiring.Component):
    """Writes coefficient frames into the inactive one of two coefficient banks.

    Parameters
    ----------
    shape : EngineShape
        Layer indices ``0 .. layers-1``, most beats per token, lanes, the table's
        ``2**in_bits`` entries of ``table_bits`` (a threshold engine: ``2**table_bits - 1``
        of ``in_bits + 1``), the affine widths and shifts.

    Members
    -------
    coef : In(stream.Signature(StructLayout({"data": COEF_BITS, "last": 1})))
        The frames.
    active : In(1)
        The bank the engine's current token uses.
    started : In(1)
        The engine has started a token since reset (``active`` means something).
    banks : Out(ArrayLayout(bank_layout(shape), 2))
        Per bank: usable, its layer, its last beat index (and its affine fields).
    we, waddr, wdata : Out
        The table write: ``waddr`` = bank (top bit) and entry.
    inflight : In(2)
        (Threshold engine.) Per bank: a beat inside the pipeline still reads it.
    gamma_we, beta_we : Out(lanes)
        (With channel affine.) The gamma or beta write, one enable per lane.
    caddr, cdata : Out
        (With channel affine.) Their address, bank (top bit) and beat, and the entry.
    status : Out(Status)
        The outcome of the last frame.
    done : Out(1)
        High for one cycle when a frame ends (``status`` is updated with it).
    """

    def __init__(self, shape):
        self.shape = shape
        self.beat_bits = max(1, (shape.beats - 1).bit_length())
        self.threshold = getattr(shape, "tanh", "lut") == "threshold"
        #: The entry counter's width and its first and last values.
        self.entry_bits = shape.table_bits if self.threshold else shape.in_bits
        self.first_entry, self.last_entry = (1, (1 << shape.table_bits) - 1) if self.threshold \
            else (0, (1 << shape.in_bits) - 1)
        ports = {
            "coef": In(stream.Signature(data.StructLayout({"data": COEF_BITS, "last": 1}))),
            "active": In(1),
            "started": In(1),
            "banks": Out(data.ArrayLayout(bank_layout(shape), 2)),
            "we": Out(1),
            "waddr": Out(self.entry_bits + 1),
            "wdata": Out(shape.entry_bits),
            "status": Out(Status),
            "done": Out(1),
        }
        if shape.affine is not None:
            ports |= {"gamma_we": Out(shape.lanes), "beta_we": Out(shape.lanes), "caddr": Out(self.beat_bits + 1),
                      "cdata": Out(max(shape.affine.gamma_bits, shape.affine.beta_bits))}
        if self.threshold:
            ports |= {"inflight": In(2)}
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        s = self.shape
        coef, word = self.coef, self.coef.payload.data
        take = coef.valid & coef.ready
        widths = [s.entry_bits] + ([s.affine.gamma_bits, s.affine.beta_bits] if s.affine else [])
        f = _Frame(m, self, max(entries_per_beat(w) for w in widths))
        claim = Signal()           # the bank a frame would claim now
        m.d.comb += claim.eq(Mux(self.started, ~self.active, ~f.previous))
        for b in range(2):
            m.d.comb += [self.banks[b].eq(f.tags[b]),
                         self.banks[b].usable.eq(f.valid[b] & ~(f.claiming & (claim == b)))]
        m.d.comb += [self.waddr.eq(Cat(f.entry, f.target)), self.wdata.eq(word.word_select(f.sub, s.entry_bits))]

        m.d.sync += self.done.eq(0)
        with m.FSM() as fsm:
            with m.State("HEADER"):
                m.d.comb += coef.ready.eq(1)
                plain, with_affine = (MAGIC_THRESHOLD, MAGIC_THRESHOLD_AFFINE) if self.threshold \
                    else (MAGIC, MAGIC_AFFINE)
                magic = word[:8] == plain
                if s.affine:
                    magic |= word[:8] == with_affine
                    with m.If(take):
                        m.d.sync += f.pending.affine.eq(word[:8] == with_affine)
                good = magic & (word[8:16] < s.layers) & (word[16:] < s.beats)
                with m.If(take):
                    m.d.sync += [f.layer.eq(word[8:16]), f.last_beat.eq(word[16:]), f.total.eq(word),
                                 f.entry.eq(self.first_entry), f.sub.eq(0), f.header_ok.eq(1)]
                    with m.If(~good):
                        f.bad(Status.BAD_HEADER)
                    with m.Elif(coef.payload.last):
                        f.finish(Status.BAD_LENGTH)
                    with m.Else():
                        m.next = "CLAIM"
            with m.State("CLAIM"):
                # One cycle in which the bank to write is not usable, then it is invalid until CHECK.
                # (Threshold engine: as many as it takes the beats still reading the bank to leave.)
                m.d.comb += f.claiming.eq(1)
                take_bank = [f.target.eq(claim), f.previous.eq(claim), f.valid.bit_select(claim, 1).eq(0)]
                if self.threshold:
                    with m.If(~self.inflight.bit_select(claim, 1)):
                        m.d.sync += take_bank
                        m.next = "TABLE"
                else:
                    m.d.sync += take_bank
                    m.next = "TABLE"
            with m.State("TABLE"):
                at_end = f.entry == self.last_entry
                f.section(s.entry_bits, at_end, [self.we], "AFFINE" if s.affine else "CHECK",
                          [f.entry.eq(f.entry + 1)], f.pending.affine if s.affine else None)
            if s.affine:
                self._affine_states(m, f)
            with m.State("CHECK"):
                m.d.comb += coef.ready.eq(1)
                with m.If(take):
                    with m.If(~coef.payload.last):
                        f.bad(Status.BAD_LENGTH)
                    with m.Elif(~f.header_ok):
                        f.finish(Status.BAD_HEADER)
                    with m.Elif(word == f.total):
                        f.finish(Status.LOADED)
                        m.d.sync += f.valid.bit_select(f.target, 1).eq(1)
                        for b in range(2):
                            with m.If(f.target == b):
                                m.d.sync += f.tags[b].eq(f.pending)
                    with m.Else():
                        f.finish(Status.BAD_CHECKSUM)
            with m.State("DRAIN"):
                m.d.comb += coef.ready.eq(1)
                with m.If(take & coef.payload.last):
                    m.d.sync += self.done.eq(1)
                    m.next = "HEADER"
        #: State name -> code of the Verilog's ``fsm_state`` (the formal harness's invariants).
        self.fsm_encoding = dict(fsm.encoding)
        return m

    def _affine_states(self, m, f):
        """AFFINE (the layer's shift and output bits, checked), GAMMA and BETA (one entry per cycle)."""
        s, a, coef, word = self.shape, self.shape.affine, self.coef, self.coef.payload.data
        shift, out_bits = word[:8], word[8:16]
        lane, beat = Signal(range(max(2, s.lanes))), Signal(self.beat_bits)
        at_end = (beat == f.last_beat) & (lane == s.lanes - 1)
        # Channel c = beat*P + lane; both wrap to 0 after the section's last channel.
        advance = [lane.eq(Mux(lane == s.lanes - 1, 0, lane + 1)), beat.eq(Mux(at_end, 0, beat + (lane == s.lanes - 1)))]
        m.d.comb += self.caddr.eq(Cat(beat, f.target))
        with m.State("AFFINE"):
            m.d.comb += coef.ready.eq(1)
            good = (shift >= a.shift_lo) & (shift <= a.shift_hi) & (out_bits >= 2) & (out_bits <= s.out_bits)
            with m.If(coef.valid):
                # The check is registered and decided at the checksum beat: the compares stay off the FSM's path.
                m.d.sync += [f.total.eq(f.total + word), f.sub.eq(0), lane.eq(0), beat.eq(0), f.header_ok.eq(good),
                             f.pending.shift.eq(shift - a.shift_lo),
                             # The largest code of out_bits: bit k set for k <= out_bits - 2.
                             f.pending.top.eq(Cat(out_bits > k + 1 for k in range(s.out_bits)))]
                with m.If(coef.payload.last):
                    f.finish(Status.BAD_LENGTH)
                with m.Else():
                    m.next = "GAMMA"
        for name, bits, nxt in (("GAMMA", a.gamma_bits, "BETA"), ("BETA", a.beta_bits, "CHECK")):
            with m.State(name):
                m.d.comb += self.cdata.eq(word.word_select(f.sub, bits))
                we = getattr(self, f"{name.lower()}_we")
                f.section(bits, at_end, [we.bit_select(lane, 1)], nxt, advance)


class _Frame:
    """The loader's registers for the frame in progress, and the FSM actions every state shares."""

    def __init__(self, m, loader, k_max: int):
        s = loader.shape
        self.m, self.loader = m, loader
        self.valid = Signal(2)
        # Named: the formal harness (hardyt.hw.formal.harness) reads ``target`` in the Verilog.
        self.target, self.previous, self.claiming = Signal(name="target"), Signal(name="previous"), Signal(name="claiming")
        self.pending = Signal(bank_layout(s))       # the tag a good frame gives its bank
        self.layer, self.last_beat = self.pending.layer, self.pending.last_beat
        self.tags = [Signal(bank_layout(s), name=f"tag{b}") for b in range(2)]
        self.entry = Signal(loader.entry_bits)
        self.sub = Signal(range(max(2, k_max)))
        self.total = Signal(COEF_BITS)
        self.header_ok = Signal()                   # the affine beat's fields were in range

    def finish(self, status):
        """The frame ends here with ``status``; the next beat is a header."""
        self.m.d.sync += [self.loader.status.eq(status), self.loader.done.eq(1)]
        self.m.next = "HEADER"

    def bad(self, status):
        """The frame is rejected with ``status``: ends here on ``tlast``, else its rest is dropped."""
        coef = self.loader.coef
        with self.m.If(coef.payload.last):
            self.finish(status)
        with self.m.Else():
            self.m.d.sync += self.loader.status.eq(status)
            self.m.next = "DRAIN"

    def section(self, bits: int, at_end, writes, nxt: str, advance, branch=None):
        """Entries of ``bits``, packed ``32 // bits`` per beat, one written per cycle (``writes`` high);
        ``advance`` steps the entry counters. After the last (``at_end``): ``nxt`` (``"CHECK"`` when
        ``branch`` is low)."""
        m, coef, k = self.m, self.loader.coef, entries_per_beat(bits)
        end_of_beat = (self.sub == k - 1) | at_end
        m.d.comb += [coef.ready.eq(end_of_beat)] + [w.eq(coef.valid) for w in writes]
        with m.If(coef.valid):
            m.d.sync += [self.sub.eq(self.sub + 1), *advance]
            with m.If(end_of_beat):
                m.d.sync += [self.sub.eq(0), self.total.eq(self.total + coef.payload.data)]
                with m.If(coef.payload.last):
                    self.finish(Status.BAD_LENGTH)
                with m.Elif(at_end):
                    if branch is None:
                        m.next = nxt
                    else:
                        with m.If(branch):
                            m.next = nxt
                        with m.Else():
                            m.next = "CHECK"
