"""cocotb tests for an emitted core (DyT or LayerNorm): every output beat vs the golden model.

Run through :func:`hardyt.sim.runner.run_sim` (or ``hardyt sim DIR``); each
test writes its numbers to the results JSON before asserting, so the runner
reports counts even when a test fails. A test that does not apply to the core
or the run (``pytest.skip``, which cocotb 2 records as skipped) is reported as
skipped, with its reason, not as passed.
"""
from __future__ import annotations

import cocotb
import numpy as np
import pytest

from .stimulus import exhaustive_tokens, extreme_tokens, mixed_length_stream, random_tokens, tokens_to_beats
from .testbench import SimConfig, Testbench, record_result

EXHAUSTIVE_MAX_BITS = 10


async def _check(name: str, tb: Testbench, beats, last, **extra):
    result = await tb.run_stream(beats, last)
    record_result(tb.cfg, name, elements=result.checked, mismatches=result.mismatches + result.missing
                  + result.extra, cycles=tb.monitor.cycle, report=result.mismatch_lines[:20], **extra)
    assert result.ok, f"{name}: {result.summary()}"


def _skip(cfg: SimConfig, name: str, reason: str):
    """The test does not apply: recorded with its reason, then reported as skipped (not passed)."""
    record_result(cfg, name, skipped=reason)
    pytest.skip(reason)


async def _bench(dut, pause=True, salt=0, cfg: SimConfig | None = None) -> Testbench:
    tb = Testbench(dut, cfg or SimConfig(), pause=pause, salt=salt)
    await tb.start()
    return tb


@cocotb.test()
async def test_random(dut):
    """Uniform random codes under random idle/backpressure."""
    tb = await _bench(dut, salt=1)
    x = random_tokens(tb.cfg.rng(1), tb.cfg.vectors, tb.spec.channels, tb.in_bits)
    await _check("random", tb, *tokens_to_beats(x, tb.lanes))


@cocotb.test()
async def test_exhaustive(dut):
    """Every input code on every channel (inputs of at most 10 bits, or as many elements as ``vectors`` asks)."""
    cfg = SimConfig()
    if cfg.manifest["in_bits"] > EXHAUSTIVE_MAX_BITS and cfg.spec.channels << cfg.manifest["in_bits"] > cfg.vectors:
        _skip(cfg, "exhaustive", f"in_bits={cfg.manifest['in_bits']} > {EXHAUSTIVE_MAX_BITS}: too many codes "
                                 f"(give --vectors {cfg.spec.channels << cfg.manifest['in_bits']} or more)")
    tb = await _bench(dut, salt=2, cfg=cfg)
    await _check("exhaustive", tb, *tokens_to_beats(exhaustive_tokens(tb.in_bits, tb.spec.channels), tb.lanes))


@cocotb.test()
async def test_saturation(dut):
    """Extreme codes: the tanh saturates and the affine/narrowing clamps."""
    tb = await _bench(dut, salt=3)
    await _check("saturation", tb, *tokens_to_beats(extreme_tokens(tb.in_bits, tb.spec.channels), tb.lanes))


@cocotb.test()
async def test_reset_mid_stream(dut):
    """Reset while beats are in flight, then a clean stream must come out exact."""
    tb = await _bench(dut, salt=4)
    rng = tb.cfg.rng(4)
    x = random_tokens(rng, 8 * tb.spec.channels, tb.spec.channels, tb.in_bits)
    tb.source.send(*tokens_to_beats(x, tb.lanes))
    for _ in range(int(rng.integers(3, 20))):
        await cocotb.triggers.RisingEdge(dut.aclk)
    await tb.reset()
    x = random_tokens(rng, 4 * tb.spec.channels, tb.spec.channels, tb.in_bits)
    await _check("reset_mid_stream", tb, *tokens_to_beats(x, tb.lanes))


@cocotb.test()
async def test_mixed_tokens(dut):
    """Tokens of random length ending with tlast restart the channel counter (DyT only:
    LayerNorm needs whole tokens)."""
    cfg = SimConfig()
    if cfg.manifest["core"] != "dyt":
        _skip(cfg, "mixed_tokens", f"{cfg.manifest['core']} core: needs whole tokens (DyT only)")
    tb = await _bench(dut, salt=5, cfg=cfg)
    beats, last = mixed_length_stream(tb.cfg.rng(5), 24, tb.spec.channels, tb.lanes, tb.in_bits)
    await _check("mixed_tokens", tb, beats, last)


@cocotb.test()
async def test_activations(dut):
    """Real activations: the inputs a LayerNorm saw in the converted model (HARDYT_SIM_NPZ)."""
    cfg = SimConfig()
    if cfg.npz is None:
        _skip(cfg, "activations", "no activations file given")
    tb = await _bench(dut, salt=6, cfg=cfg)
    with np.load(tb.cfg.npz) as f:
        x = np.asarray(f["x"], dtype=np.int64)
    x = x.reshape(-1, x.shape[-1])[: max(1, -(-tb.cfg.vectors // tb.spec.channels))]
    await _check("activations", tb, *tokens_to_beats(x, tb.lanes), npz=str(tb.cfg.npz))


@cocotb.test()
async def test_throughput(dut):
    """Source always valid, sink always ready: one beat per cycle after the pipeline fills."""
    tb = await _bench(dut, pause=False, salt=7)
    x = random_tokens(tb.cfg.rng(7), 64 * tb.spec.channels, tb.spec.channels, tb.in_bits)
    beats, last = tokens_to_beats(x, tb.lanes)
    result = await tb.run_stream(beats, last)
    mon = tb.monitor
    span = mon.last_cycle - mon.first_cycle + 1 if mon.first_cycle is not None else 0
    rate = len(beats) / span if span else 0.0
    latency = mon.first_cycle - tb.source.first_cycle if mon.first_cycle is not None else None
    record_result(tb.cfg, "throughput", elements=result.checked, mismatches=result.mismatches + result.missing
                  + result.extra, cycles=mon.cycle, beats=len(beats), beats_per_cycle=rate, latency=latency,
                  manifest_latency=tb.cfg.manifest["latency"], report=result.mismatch_lines[:20])
    assert result.ok, f"throughput: {result.summary()}"
    assert rate == 1.0, f"throughput {rate:.3f} beats/cycle, expected 1"
    assert latency == tb.cfg.manifest["latency"], f"latency {latency} cycles, manifest says {tb.cfg.manifest['latency']}"
