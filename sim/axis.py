"""AXI4-Stream drivers and monitor for cocotb 2: source, sink, protocol-checking monitor.

Pause generators follow cocotbext-axi's ``AxiStreamPause``: an iterator of
booleans, one per clock cycle, ``True`` meaning "idle this cycle" (the source
holds ``tvalid`` low, the sink holds ``tready`` low). Both are random by
default and seeded, so a failing run can be replayed.

Lane ``i`` of a beat lives at ``tdata[i*W +: W]`` (two's complement), lane 0
in the least significant bits.
"""
from __future__ import annotations

import itertools
import random
from collections import deque
from collections.abc import Iterator

import numpy as np
from cocotb.triggers import RisingEdge

from hardyt.quant.contract.stream import pack_lanes, unpack_lanes

__all__ = ["random_pause", "no_pause", "AxisPorts", "AxisSource", "AxisSink",
           "AxisMonitor", "AxisProtocolError"]


class AxisProtocolError(AssertionError):
    """The core's output broke an AXI4-Stream rule."""


def random_pause(seed: int, idle: float = 0.3) -> Iterator[bool]:
    """Idle on a random ``idle`` fraction of cycles, in bursts (runs of 1..4 cycles)."""
    rng = random.Random(seed)
    while True:
        run = rng.randint(1, 4)
        yield from itertools.repeat(rng.random() < idle, run)


def no_pause() -> Iterator[bool]:
    """Never idle: always valid / always ready."""
    return itertools.repeat(False)


class AxisPorts:
    """The clock, reset and one AXI4-Stream port (``<prefix>_tdata/tvalid/tready/tlast``) of the DUT."""

    def __init__(self, dut, prefix: str):
        self.clk = dut.aclk
        self.resetn = dut.aresetn
        self.tdata = getattr(dut, f"{prefix}_tdata")
        self.tvalid = getattr(dut, f"{prefix}_tvalid")
        self.tready = getattr(dut, f"{prefix}_tready")
        self.tlast = getattr(dut, f"{prefix}_tlast")


class AxisSource(AxisPorts):
    """Drives ``s_axis_*``: beats queued with :meth:`send`, ``tvalid`` paused by ``pause``."""

    def __init__(self, dut, width: int, pause: Iterator[bool], prefix: str = "s_axis", user=None):
        super().__init__(dut, prefix)
        self.width = width
        self.pause = pause
        self.user = user         # optional sideband signal set with every beat (e.g. the engine's layer_select)
        self.queue: deque[tuple[list[int], bool, int]] = deque()
        self.sent = 0            # beats accepted by the core
        self.cycle = 0
        self.first_cycle = None  # cycle of the first input handshake
        self._busy = False
        self.tvalid.value = 0
        self.tlast.value = 0
        self.tdata.value = 0

    def send(self, beats, last, user: int = 0) -> None:
        """Queue ``beats`` (each a list of lanes) with their ``last`` flags; ``user`` rides with each."""
        for beat, lst in zip(beats, last):
            self.queue.append((list(beat), bool(lst), int(user)))

    def clear(self) -> None:
        self.queue.clear()
        self._busy = False
        self.first_cycle = None
        self.tvalid.value = 0

    @property
    def idle(self) -> bool:
        return not self.queue and not self._busy

    async def run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
            if not int(self.resetn.value):
                self._busy = False
                self.tvalid.value = 0
                continue
            if self._busy and int(self.tready.value):
                self._busy = False
                self.sent += 1
                if self.first_cycle is None:
                    self.first_cycle = self.cycle
            # AXI: once tvalid is high it stays high until the handshake, so pause only when idle.
            if not self._busy and self.queue and not next(self.pause):
                beat, lst, user = self.queue.popleft()
                if self.user is not None:
                    self.user.value = user
                self.tdata.value = pack_lanes(beat, self.width)
                self.tlast.value = int(lst)
                self.tvalid.value = 1
                self._busy = True
            elif not self._busy:
                self.tvalid.value = 0


class AxisSink:
    """Drives ``m_axis_tready``: low on the cycles ``pause`` says (backpressure)."""

    def __init__(self, dut, pause: Iterator[bool], prefix: str = "m_axis"):
        self.clk = dut.aclk
        self.tready = getattr(dut, f"{prefix}_tready")
        self.pause = pause
        self.tready.value = 0

    async def run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            self.tready.value = int(not next(self.pause))


class AxisMonitor(AxisPorts):
    """Records every ``m_axis`` handshake and asserts the AXI4-Stream rules.

    Rules checked on every cycle out of reset: while ``tvalid`` is high and
    ``tready`` low, ``tvalid`` stays high next cycle and ``tdata``/``tlast``
    do not change. A violation raises :class:`AxisProtocolError` in the
    monitor's task, which fails the cocotb test.
    """

    def __init__(self, dut, lanes: int, width: int, prefix: str = "m_axis"):
        super().__init__(dut, prefix)
        self.lanes, self.width = lanes, width
        self.words: list[int] = []
        self.lasts: list[bool] = []
        self.cycle = 0
        self.first_cycle = None  # cycle of the first output handshake
        self.last_cycle = None   # cycle of the latest output handshake
        self._stalled = None     # (tdata, tlast) offered but not taken last cycle

    def clear(self) -> None:
        self.words.clear()
        self.lasts.clear()
        self.first_cycle = self.last_cycle = None
        self._stalled = None

    def __len__(self) -> int:
        return len(self.words)

    def beats(self) -> tuple[np.ndarray, np.ndarray]:
        """Recorded beats as ``(n, P)`` int64 lanes and ``(n,)`` bool tlast."""
        data = np.array([unpack_lanes(w, self.lanes, self.width) for w in self.words],
                        dtype=np.int64).reshape(-1, self.lanes)
        return data, np.array(self.lasts, dtype=bool)

    async def run(self) -> None:
        while True:
            await RisingEdge(self.clk)
            self.cycle += 1
            if not int(self.resetn.value):
                self._stalled = None
                continue
            valid = int(self.tvalid.value)
            word = int(self.tdata.value) if valid else None
            last = int(self.tlast.value) if valid else None
            if self._stalled is not None:
                if not valid:
                    raise AxisProtocolError(f"cycle {self.cycle}: m_axis_tvalid withdrawn before the handshake")
                if (word, last) != self._stalled:
                    raise AxisProtocolError(f"cycle {self.cycle}: m_axis_tdata/tlast changed while stalled: "
                                            f"{self._stalled} -> {(word, last)}")
            if valid and int(self.tready.value):
                self.words.append(word)
                self.lasts.append(bool(last))
                if self.first_cycle is None:
                    self.first_cycle = self.cycle
                self.last_cycle = self.cycle
                self._stalled = None
            else:
                self._stalled = (word, last) if valid else None
