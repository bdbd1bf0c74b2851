"""Testbench: clock, reset, AXI4-Stream source/sink/monitor and scoreboard around an emitted top.

The runner (:mod:`hardyt.sim.runner`) passes everything through environment
variables, so the cocotb test modules need no arguments:

``HARDYT_SIM_DIR``      the emitted directory
``HARDYT_SIM_MANIFEST`` its manifest, as checked by :func:`hardyt.hw.emission.emit.load_manifest`
                        (a JSON copy: the simulator process need not import amaranth)
``HARDYT_SIM_SEED``     seed for stimulus and pause generators
``HARDYT_SIM_VECTORS``  elements for the random test
``HARDYT_SIM_RESULTS``  JSON file the tests write their numbers into
``HARDYT_SIM_NPZ``      optional ``<layer>.inputs.npz`` (key ``x``, shape (tokens, C))
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from hardyt.quant.files import save_json_atomic
from hardyt.quant.contract.spec_io import spec_from_dict

from .axis import AxisMonitor, AxisSink, AxisSource, no_pause, random_pause
from .scoreboard import Scoreboard, ScoreResult

__all__ = ["SimConfig", "Testbench", "record_result"]

CLOCK_NS = 10


class SimConfig:
    """What the runner asked for, read from the environment."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.dir = Path(env["HARDYT_SIM_DIR"])
        self.seed = int(env.get("HARDYT_SIM_SEED", "1"))
        self.vectors = int(env.get("HARDYT_SIM_VECTORS", "256"))
        self.results = Path(env["HARDYT_SIM_RESULTS"]) if env.get("HARDYT_SIM_RESULTS") else None
        self.npz = Path(env["HARDYT_SIM_NPZ"]) if env.get("HARDYT_SIM_NPZ") else None
        self.manifest = json.loads(Path(env["HARDYT_SIM_MANIFEST"]).read_text())
        self.spec = self.read_spec(env)

    def read_spec(self, env):
        """The spec every output is checked against (a subclass may read more from ``env``)."""
        return spec_from_dict(self.manifest["spec"])

    def rng(self, salt: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, salt])


def record_result(cfg: SimConfig, test: str, **numbers) -> None:
    """Add one test's numbers to the results JSON (read back by the runner)."""
    if cfg.results is None:
        return
    data = json.loads(cfg.results.read_text()) if cfg.results.exists() else {}
    data[test] = numbers
    save_json_atomic(cfg.results, data)


class Testbench:
    """Wires the DUT's AXI4-Stream ports to a source, a sink and a monitor.

    ``pause=True`` idles the source and back-pressures the sink at random
    (seeded); ``pause=False`` is the full-rate case (always valid, always ready).
    """

    def __init__(self, dut, cfg: SimConfig, pause: bool = True, salt: int = 0):
        self.dut, self.cfg, self.spec = dut, cfg, cfg.spec
        m = cfg.manifest
        self.lanes = m["lanes"]
        self.in_bits, self.out_bits = m["in_bits"], m["out_bits"]
        src_pause = random_pause(cfg.seed * 7919 + salt) if pause else no_pause()
        snk_pause = random_pause(cfg.seed * 104729 + salt + 1) if pause else no_pause()
        self.source = AxisSource(dut, self.in_bits, src_pause)
        self.sink = AxisSink(dut, snk_pause)
        self.monitor = AxisMonitor(dut, self.lanes, self.out_bits)
        dut.aresetn.value = 0

    async def start(self) -> None:
        Clock(self.dut.aclk, CLOCK_NS, unit="ns").start()
        for part in (self.source, self.sink, self.monitor):
            cocotb.start_soon(part.run())
        await self.reset()

    async def reset(self, cycles: int = 3) -> None:
        """Synchronous active-low reset; drops whatever was queued or recorded."""
        self.dut.aresetn.value = 0
        self.source.clear()
        await ClockCycles(self.dut.aclk, cycles)
        self.dut.aresetn.value = 1
        await RisingEdge(self.dut.aclk)
        self.monitor.clear()

    async def run_stream(self, x_beats, last, timeout_cycles: int | None = None) -> ScoreResult:
        """Send the beats, wait for as many outputs (or a timeout), score them."""
        x_beats = np.asarray(x_beats, dtype=np.int64)
        board = Scoreboard.from_spec(self.spec, x_beats, last)
        start = len(self.monitor)
        self.source.send(x_beats, last)
        n = len(x_beats)
        limit = timeout_cycles or (20 * n + 10 * self.cfg.manifest["latency"] + 100)
        waited = 0
        while len(self.monitor) - start < n and waited < limit:
            await RisingEdge(self.dut.aclk)
            waited += 1
        # A few more cycles so that any extra (duplicated) beat would show up.
        await ClockCycles(self.dut.aclk, self.cfg.manifest["latency"] + 2)
        got, got_last = self.monitor.beats()
        return board.check(got[start:], got_last[start:])
