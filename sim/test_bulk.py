"""cocotb entry point of bulk mode: clock and reset from Python, checking in HDL.

The harness (``sim/bulk_harness.v``) reads stimulus and expected outputs that
:func:`hardyt.sim.runner.run_sim` wrote as memory files; this test only waits
for ``done`` and reads the counters, so Python costs nothing per cycle.
"""
from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer

from .testbench import CLOCK_NS, SimConfig, record_result

NONE = (1 << 64) - 1


@cocotb.test()
async def test_bulk(dut):
    cfg = SimConfig()
    beats = int(os.environ["HARDYT_BULK_BEATS"])
    pause = os.environ.get("HARDYT_BULK_PAUSE", "1") != "0"
    Clock(dut.aclk, CLOCK_NS, unit="ns").start()
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 3)
    dut.aresetn.value = 1
    # With pauses each side idles ~1/4 of cycles; 8x the beats is a generous bound.
    limit = (8 * beats + 20 * cfg.manifest["latency"] + 1000) * CLOCK_NS
    await First(RisingEdge(dut.done), Timer(limit, unit="ns"))
    finished = bool(int(dut.done.value))
    # Let any duplicated beat drain out so `extra` sees it.
    await ClockCycles(dut.aclk, cfg.manifest["latency"] + 4)
    n = {k: int(getattr(dut, k).value) for k in ("checked", "mismatches", "extra", "protocol", "cycles",
                                                  "first_cycle_in", "first_cycle_out", "first_bad")}
    report = []
    if n["first_bad"] != NONE:
        with np.load("bulk_stream.npz") as f:
            x, y, ch = f["x"], f["y"], f["channels"]
        k, lane = n["first_bad"], int(dut.first_bad_lane.value)
        got = int(dut.first_bad_got.value)
        w = cfg.manifest["out_bits"]
        got = got - (1 << w) if got >> (w - 1) else got
        report.append(f"beat {k} lane {lane} channel {ch[k, lane]}: input {x[k, lane]} "
                      f"expected {y[k, lane]} got {got} (first mismatch)")
    rate = None if pause or not finished else beats / (n["cycles"] - n["first_cycle_out"])
    latency = None if n["first_cycle_out"] == NONE else n["first_cycle_out"] - n["first_cycle_in"]
    mismatches = n["mismatches"] + n["extra"] + (beats - n["checked"] // cfg.manifest["lanes"])
    record_result(cfg, "bulk", elements=n["checked"], mismatches=mismatches, cycles=n["cycles"],
                  protocol_errors=n["protocol"], beats=beats, finished=finished, pause=pause,
                  beats_per_cycle=rate, latency=latency, report=report)
    assert finished, f"bulk: timed out after {n['checked']} of {beats * cfg.manifest['lanes']} elements"
    assert n["protocol"] == 0, f"bulk: {n['protocol']} AXI4-Stream rule violations on m_axis"
    assert mismatches == 0, f"bulk: {mismatches} mismatches; " + "; ".join(report)
