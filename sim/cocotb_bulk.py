"""cocotb entry point of bulk mode: clock, reset and counters from Python, checking in HDL.

The harness (``sim/bulk_harness.v``) reads stimulus and expected outputs that
:func:`hardyt.sim.runner.run_sim` wrote as memory files; these tests only set
the harness's ``beats``/``pause`` inputs, wait for ``done`` and read the
counters, so Python costs nothing per cycle.

Two tests, so that bulk mode reports the same numbers as the cocotb mode:
``bulk`` checks every beat under random idle/backpressure (unless the runner
asked for ``pause=False``); ``throughput`` replays a prefix of the stream at
full rate (source always valid, sink always ready) and measures beats per
cycle and latency exactly as :func:`hardyt.sim.cocotb_dyt.test_throughput`
does: ``latency`` = cycles from the first input handshake to the first output
handshake, ``beats_per_cycle`` = beats / cycles from the first to the last
output handshake (inclusive). Under pauses those two numbers measure the
random backpressure, not the core, so ``bulk`` leaves them out.
"""
from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer

from .testbench import CLOCK_NS, SimConfig, record_result

NONE = (1 << 64) - 1
THROUGHPUT_TOKENS = 64  # beats of the full-rate run: this many tokens (or the whole stream if shorter)


async def _run(dut, cfg: SimConfig, beats: int, pause: bool) -> dict:
    """Reset, stream ``beats`` beats, wait for the last output; the harness's counters and a report."""
    dut.beats.value = beats
    dut.pause.value = int(pause)
    # The clock toggles in the GPI (C++), not in a Python task: nothing runs in Python per cycle.
    Clock(dut.aclk, CLOCK_NS, unit="ns", impl="gpi").start()
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 3)
    dut.aresetn.value = 1
    # With pauses each side idles ~1/4 of cycles; 8x the beats is a generous bound.
    limit = (8 * beats + 20 * cfg.manifest["latency"] + 1000) * CLOCK_NS
    await First(RisingEdge(dut.done), Timer(limit, unit="ns"))
    # Let any duplicated beat drain out so `extra` sees it.
    await ClockCycles(dut.aclk, cfg.manifest["latency"] + 4)
    n = {k: int(getattr(dut, k).value) for k in ("done", "checked", "mismatches", "extra", "protocol", "cycles",
                                                  "first_cycle_in", "first_cycle_out", "first_bad")}
    n["report"] = []
    if n["first_bad"] != NONE:
        with np.load("bulk_stream.npz") as f:
            x, y, ch = f["x"], f["y"], f["channels"]
        k, lane = n["first_bad"], int(dut.first_bad_lane.value)
        w = cfg.manifest["out_bits"]
        got = int(dut.first_bad_got.value)
        got = got - (1 << w) if got >> (w - 1) else got
        n["report"].append(f"beat {k} lane {lane} channel {ch[k, lane]}: input {x[k, lane]} "
                           f"expected {y[k, lane]} got {got} (first mismatch)")
    # Every expected beat that never came out counts as a mismatch too.
    n["errors"] = n["mismatches"] + n["extra"] + (beats - n["checked"] // cfg.manifest["lanes"])
    return n


def _assert_clean(name: str, n: dict, beats: int, lanes: int) -> None:
    assert n["done"], f"{name}: timed out after {n['checked']} of {beats * lanes} elements"
    assert n["protocol"] == 0, f"{name}: {n['protocol']} AXI4-Stream rule violations on m_axis"
    assert n["errors"] == 0, f"{name}: {n['errors']} mismatches; " + "; ".join(n["report"])


@cocotb.test()
async def test_bulk(dut):
    """Every beat of the bulk files, under random idle/backpressure (HARDYT_BULK_PAUSE=1, the default)."""
    cfg = SimConfig()
    beats = int(os.environ["HARDYT_BULK_BEATS"])
    pause = os.environ.get("HARDYT_BULK_PAUSE", "1") != "0"
    n = await _run(dut, cfg, beats, pause)
    record_result(cfg, "bulk", elements=n["checked"], mismatches=n["errors"], cycles=n["cycles"],
                  protocol_errors=n["protocol"], beats=beats, finished=bool(n["done"]), pause=pause,
                  report=n["report"])
    _assert_clean("bulk", n, beats, cfg.manifest["lanes"])


@cocotb.test()
async def test_throughput(dut):
    """Full rate on a prefix of the stream: 1 beat/cycle, latency as in the manifest."""
    cfg = SimConfig()
    beats = min(int(os.environ["HARDYT_BULK_BEATS"]), THROUGHPUT_TOKENS * cfg.spec.channels // cfg.spec.lanes)
    n = await _run(dut, cfg, beats, pause=False)
    found = n["first_cycle_out"] != NONE and n["done"]
    rate = beats / (n["cycles"] - n["first_cycle_out"]) if found else 0.0
    latency = n["first_cycle_out"] - n["first_cycle_in"] if found else None
    record_result(cfg, "throughput", elements=n["checked"], mismatches=n["errors"], cycles=n["cycles"],
                  protocol_errors=n["protocol"], beats=beats, beats_per_cycle=rate, latency=latency,
                  manifest_latency=cfg.manifest["latency"], report=n["report"])
    _assert_clean("throughput", n, beats, cfg.manifest["lanes"])
    assert rate == 1.0, f"throughput {rate:.3f} beats/cycle, expected 1"
    assert latency == cfg.manifest["latency"], f"latency {latency} cycles, manifest says {cfg.manifest['latency']}"
