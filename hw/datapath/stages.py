"""Pipeline building blocks every core is made of.

* :func:`lane_stream`: the stream of P-lane beats cores take and give;
* :func:`rom` and :func:`lane_words`: ROMs (emitted as ``.mem`` files) and
  per-beat words of per-channel constants;
* :class:`Stages`: registers, and a count of the stages they make: a core's
  latency is the number of stages it built (:class:`CountedLatency`);
* :class:`OutputBuffer`: the two-entry buffer at the end of a pipeline whose
  ``i.ready`` (the pipeline's enable) depends on registers only.

The HDL arithmetic (rounding, saturation, shift-add products) is in
:mod:`hardyt.hw.datapath.arith`.
"""
from __future__ import annotations

from amaranth.hdl import Fragment, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hardyt.quant.contract.stream import pack_lanes

__all__ = ["lane_stream", "lanes_layout", "lane_words", "rom", "Stages", "carry", "CountedLatency", "OutputBuffer"]


def lanes_layout(width: int, lanes: int, sign: bool = True) -> data.ArrayLayout:
    """``lanes`` fields of ``width`` bits, lane 0 lowest: the layout of a beat's data or a ROM word."""
    return data.ArrayLayout(signed(width) if sign else unsigned(width), lanes)


def lane_stream(width: int, lanes: int) -> stream.Signature:
    """A stream of beats of ``lanes`` signed ``width``-bit lanes plus ``last``."""
    return stream.Signature(data.StructLayout({"data": lanes_layout(width, lanes), "last": unsigned(1)}))


def lane_words(values, lanes: int, bits: int) -> list[int]:
    """Per-channel ``values`` as one ROM word per beat (``lanes`` fields of ``bits``, see :func:`pack_lanes`).

    >>> [hex(w) for w in lane_words([1, -1, 2, 3], 2, 4)]
    ['0xf1', '0x32']
    """
    return [pack_lanes(values[b:b + lanes], bits) for b in range(0, len(values), lanes)]


def rom(name: str, width: int, words, *, block: bool = False) -> Memory:
    """A ROM whose contents are emitted as ``NAME_<name>.mem`` (see :mod:`hardyt.hw.emission.emit`);
    ``block``: emitted with ``rom_style = "block"``, asking synthesis for block RAM."""
    words = [int(w) for w in words]
    # A one-word memory has a 0-bit address, which Verilog cannot declare: pad to two words.
    words += [0] * (2 - len(words))
    attrs = {"hardyt_rom": name} | ({"hardyt_rom_style": "block"} if block else {})
    return Memory(shape=unsigned(width), depth=len(words), init=words, attrs=attrs)


class Stages:
    """The registers of one pipeline in ``m``, and how many stages they make.

    :meth:`reg` registers one value; :meth:`step` registers what travels with
    the data from one stage to the next (the control word, or a dict of
    values) and counts one stage. A core's latency is the stages counted.

    Parameters
    ----------
    m : Module
        Where the registers go (``sync`` domain).
    enable : Value, optional
        Every register loads only when it is high (a stalling pipeline).
    prefix : str
        Prefix of every register's name.
    """

    def __init__(self, m: Module, *, enable=None, prefix: str = ""):
        self.m, self.enable, self.prefix = m, enable, prefix
        self.count = 0
        #: Names of the control registers :meth:`step` made, first stage first (the formal
        #: harness, :mod:`hardyt.hw.formal.harness`, reads their valid and last bits).
        self.controls: list[str] = []
        #: The registers of every dict :meth:`step` made, first stage first: field name -> register name.
        self.fields: list[dict[str, str]] = []

    def reg(self, value, name: str, shape=None):
        """``value`` one cycle later (loaded when ``enable``): a Signal, or a View for a layout."""
        r = Signal(shape if shape is not None else value.shape(), name=self.prefix + name)
        if self.enable is None:
            self.m.d.sync += r.eq(value)
        else:
            with self.m.If(self.enable):
                self.m.d.sync += r.eq(value)
        return r

    def step(self, values, tag):
        """``values`` (one value, or a dict name → value) one stage later; counts the stage."""
        self.count += 1
        if isinstance(values, dict):
            self.fields.append({n: self.prefix + f"{n}_{tag}" for n in values})
            return {n: self.reg(v, f"{n}_{tag}") for n, v in values.items()}
        self.controls.append(self.prefix + f"ctrl_{tag}")
        return self.reg(values, f"ctrl_{tag}")

    def steps(self, values, n: int, tag: str):
        """``values`` ``n`` stages later (a delay line alongside a sub-pipeline)."""
        for k in range(n):
            values = self.step(values, f"{tag}{k}")
        return values


def carry(values: dict, drop=(), **new) -> dict:
    """What a stage takes on: ``values`` but ``drop`` (no later stage needs them), and ``new``.

    >>> carry({"a": 1, "b": 2}, ("a",), c=3)
    {'b': 2, 'c': 3}
    """
    return {n: v for n, v in values.items() if n not in drop} | new


class CountedLatency:
    """Mixin for components whose ``latency`` is the stages their ``elaborate`` built.

    ``elaborate`` ends with :meth:`count_latency`; reading ``latency`` before
    the core was elaborated elaborates it once (no platform) to count. Every
    later elaboration asserts it builds the same number of stages.
    """

    _latency = None

    @property
    def latency(self) -> int:
        """Cycles from an input handshake to the matching output (sink always ready)."""
        if self._latency is None:
            Fragment.get(self, None)
        return self._latency

    def count_latency(self, cycles: int) -> None:
        assert self._latency in (None, cycles), \
            f"{type(self).__name__}: elaboration built {cycles} stages, earlier {self._latency}"
        self._latency = cycles


class OutputBuffer(wiring.Component):
    """Two-entry output buffer whose ``i.ready`` depends on registers only.

    The pipeline feeding ``i`` advances when ``i.ready`` is high (its stage
    enable) and its last stage's beat is taken on that edge when ``i.valid``.
    ``i.ready`` is "not full", a compare of the count register: the ready path
    does not grow with the pipeline's depth or width.

    Parameters
    ----------
    payload_shape : ShapeLike
        Shape of one beat.

    Members
    -------
    i : In(stream.Signature(payload_shape))
        The pipeline's last stage; ``ready`` is its enable.
    o : Out(stream.Signature(payload_shape))
        The output stream.

    Attributes
    ----------
    latency : int
        1: a beat taken on ``i`` is on ``o`` the next cycle.
    """

    latency = 1

    def __init__(self, payload_shape):
        super().__init__({
            "i": In(stream.Signature(payload_shape)),
            "o": Out(stream.Signature(payload_shape)),
        })

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(3))
        head = Signal.like(self.i.payload)
        tail = Signal.like(self.i.payload)
        push = Signal()
        pop = Signal()

        m.d.comb += [
            self.i.ready.eq(count != 2),
            push.eq(self.i.ready & self.i.valid),
            self.o.valid.eq(count != 0),
            self.o.payload.eq(head),
            pop.eq(self.o.valid & self.o.ready),
        ]
        with m.If(push & ~pop):
            m.d.sync += count.eq(count + 1)
            with m.If(count == 0):
                m.d.sync += head.eq(self.i.payload)
            with m.Else():
                m.d.sync += tail.eq(self.i.payload)
        with m.Elif(pop & ~push):
            m.d.sync += [count.eq(count - 1), head.eq(tail)]
        with m.Elif(pop & push):
            # count is 1 here: count == 2 means i.ready (and so push) is low.
            m.d.sync += head.eq(self.i.payload)
        return m
