"""Testbench of the DyT engine: data and coefficient sources, sink, monitors, per-layer scoreboards.

The runner (:mod:`hardyt.sim.engine_runner`) passes the same environment
variables as for a core (:mod:`hardyt.sim.testbench`) plus
``HARDYT_SIM_PLAN``: a JSON list, in the model's layer order, of ``{"index",
"name", "spec", "image", "npz"}`` (``image``: the layer's ``.coef.bin`` in the
emitted directory, sent as it is; ``npz``: its activations or ``null``).

The host protocol the testbench follows (and documents for users): send a
layer's frame once the previous layer's first token has been accepted; the
engine then writes the bank that layer no longer needs.
"""
from __future__ import annotations

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from hardyt.quant.contract.spec import DyTSpec
from hardyt.quant.contract.stream import lane_channels

from .axis import AxisMonitor, AxisSink, AxisSource, no_pause, random_pause
from .scoreboard import Scoreboard
from .stimulus import code_sweep_tokens, random_tokens, tokens_to_beats
from .testbench import CLOCK_NS, SimConfig

__all__ = ["EngineConfig", "StatusMonitor", "EngineTestbench", "LayerRun", "STATUS_LOADED", "STATUS_NAMES"]

STATUS_LOADED = 1
STATUS_NAMES = {0: "none", 1: "loaded", 2: "bad header", 3: "bad length", 4: "bad checksum"}


class EngineConfig(SimConfig):
    """:class:`SimConfig` of an engine: the manifest's shape, and the layers to run in order."""

    def read_spec(self, env):
        """No one spec: the plan's layers, each with its own (``specs``, in order)."""
        self.plan = json.loads(Path(env["HARDYT_SIM_PLAN"]).read_text())
        self.specs = [DyTSpec.from_dict(step["spec"]) for step in self.plan]
        return None


class LayerRun:
    """One layer's part of a run: its frame, its tokens as beats, and its expected outputs."""

    def __init__(self, step: dict, spec: DyTSpec, x_tokens: np.ndarray):
        self.step, self.spec, self.name, self.index = step, spec, step["name"], step["index"]
        self.frame = np.fromfile(step["image"], dtype="<u4").astype(np.int64)
        self.x, self.last = tokens_to_beats(x_tokens, spec.lanes)
        self.board = Scoreboard(self.x, spec.reference_stream(self.x, self.last), self.last,
                                lane_channels(self.last, spec.lanes, spec.channels))

    @classmethod
    def from_plan(cls, cfg: EngineConfig, k: int, vectors: int, salt: int = 0) -> "LayerRun":
        """Layer ``k`` of the plan: every input code once (:func:`code_sweep_tokens`), then ``vectors``
        elements of its activations' first tokens, else random."""
        step, spec = cfg.plan[k], cfg.specs[k]
        tokens = max(1, -(-vectors // spec.channels))
        if step.get("npz"):
            with np.load(step["npz"]) as f:
                x = np.asarray(f["x"], dtype=np.int64).reshape(-1, spec.channels)[:tokens]
        else:
            x = random_tokens(cfg.rng(1000 * salt + k), vectors, spec.channels, spec.in_bits)
        return cls(step, spec, np.concatenate([code_sweep_tokens(spec.in_bits, spec.channels), x]))


class StatusMonitor:
    """Records ``coef_status`` at every ``coef_done`` pulse: one outcome per frame."""

    def __init__(self, dut):
        self.dut = dut
        self.outcomes: list[int] = []

    async def run(self) -> None:
        while True:
            await RisingEdge(self.dut.aclk)
            if int(self.dut.aresetn.value) and int(self.dut.coef_done.value):
                self.outcomes.append(int(self.dut.coef_status.value))

    async def wait(self, frames: int, limit: int) -> bool:
        """Until ``frames`` outcomes were recorded or ``limit`` cycles passed; whether they were."""
        for _ in range(limit):
            if len(self.outcomes) >= frames:
                return True
            await RisingEdge(self.dut.aclk)
        return len(self.outcomes) >= frames


class EngineTestbench:
    """The engine's ports wired to a data source (``layer_select`` as its sideband), a coefficient
    source, a sink, an output monitor and a frame-status monitor."""

    def __init__(self, dut, cfg: EngineConfig, pause: bool = True, salt: int = 0):
        self.dut, self.cfg = dut, cfg
        m = cfg.manifest
        self.lanes, self.in_bits, self.out_bits = m["lanes"], m["in_bits"], m["out_bits"]

        def pauses(k):
            return random_pause(cfg.seed * 7919 + 31 * salt + k) if pause else no_pause()

        self.source = AxisSource(dut, self.in_bits, pauses(0), user=dut.layer_select)
        self.coef = AxisSource(dut, m["coef_tdata_width"], pauses(1), prefix="s_axis_coef")
        self.sink = AxisSink(dut, pauses(2))
        self.monitor = AxisMonitor(dut, self.lanes, self.out_bits)
        self.status = StatusMonitor(dut)
        dut.aresetn.value = 0
        dut.layer_select.value = 0

    async def start(self) -> None:
        Clock(self.dut.aclk, CLOCK_NS, unit="ns").start()
        for part in (self.source, self.coef, self.sink, self.monitor, self.status):
            cocotb.start_soon(part.run())
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 3)
        self.dut.aresetn.value = 1
        await RisingEdge(self.dut.aclk)

    def send_frame(self, words) -> None:
        words = [int(w) for w in words]
        self.coef.send([[w] for w in words], [k == len(words) - 1 for k in range(len(words))])

    async def load(self, run: LayerRun, limit: int = 100_000) -> str | None:
        """Send ``run``'s frame and wait for its outcome: ``None`` when loaded, else why not."""
        before = len(self.status.outcomes)
        self.send_frame(run.frame)
        if not await self.status.wait(before + 1, limit):
            return f"layer {run.name}: the engine never finished its coefficient frame"
        outcome = self.status.outcomes[before]
        if outcome != STATUS_LOADED:
            return (f"layer {run.name}: coefficient image {Path(run.step['image']).name} rejected by the engine "
                    f"({STATUS_NAMES.get(outcome, outcome)})")
        return None

    async def wait_accepted(self, beats: int, limit: int) -> bool:
        for _ in range(limit):
            if self.source.sent >= beats:
                return True
            await RisingEdge(self.dut.aclk)
        return self.source.sent >= beats

    async def wait_outputs(self, beats: int, limit: int) -> None:
        waited = 0
        while len(self.monitor) < beats and waited < limit:
            await RisingEdge(self.dut.aclk)
            waited += 1
        await ClockCycles(self.dut.aclk, self.cfg.manifest["latency"] + 2)
