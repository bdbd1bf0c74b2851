"""cocotb entry point of the coefficient-port fuzz harness (``sim/coef_fuzz_harness.v``).

Clock (in the GPI), reset, the run's counts, then wait for ``done`` and read the
harness's counters: nothing runs in Python per cycle, every check is in HDL.
:func:`hardyt.sim.coef_fuzz_run.run_coef_fuzz` writes the files and reads the counters back.
"""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer

from hardyt.quant.files import save_json_atomic

from .testbench import CLOCK_NS

COUNTERS = ("done", "frames", "status_bad", "table_bad", "start_bad", "switch_bad", "checked", "out_bad",
            "cycles", "first_bad_cycle")


@cocotb.test()
async def test_coef_fuzz(dut):
    """Every frame and token of the run's files; the counters into ``HARDYT_COEF_FUZZ_RESULTS``."""
    run = json.loads(os.environ["HARDYT_COEF_FUZZ_RUN"])
    for name in ("nwords", "keep_word", "nplan", "ntok", "seed"):
        getattr(dut, name).value = run[name]
    Clock(dut.aclk, CLOCK_NS, unit="ns", impl="gpi").start()
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 3)
    dut.aresetn.value = 1
    await First(RisingEdge(dut.done), Timer(run["max_cycles"] * CLOCK_NS, unit="ns"))
    await ClockCycles(dut.aclk, 8)   # a beat after the last expected one would count as a mismatch
    save_json_atomic(os.environ["HARDYT_COEF_FUZZ_RESULTS"], {k: int(getattr(dut, k).value) for k in COUNTERS})
