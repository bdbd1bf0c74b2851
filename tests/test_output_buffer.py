"""``OutputBuffer`` alone (it sits under every core): every valid/ready pattern over a few cycles against a
two-entry FIFO model, backpressure, ``i.ready`` from registers only, and reset mid-stream."""
from __future__ import annotations

import itertools

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.sim import Simulator

from hardyt.hw.datapath.stages import OutputBuffer

CYCLES = 4  # every one of the 4**CYCLES (valid, ready) sequences


def _model(pattern):
    """What a two-entry FIFO does: per cycle (i.ready, o.valid, o.payload), then the beats it holds."""
    fifo, seen, nxt = [], [], 0
    for valid, ready in pattern:
        i_ready, o_valid = len(fifo) < 2, bool(fifo)
        seen.append((i_ready, o_valid, fifo[0] if fifo else None))
        pop, push = o_valid and ready, i_ready and valid
        if pop:
            fifo.pop(0)
        if push:
            fifo.append(nxt)
            nxt += 1
    return seen, fifo


def test_every_valid_ready_pattern_matches_a_two_entry_fifo():
    buf = OutputBuffer(8)
    rst = Signal()
    top = Module()
    top.submodules.buf = ResetInserter(rst)(buf)
    patterns = list(itertools.product(itertools.product((0, 1), repeat=2), repeat=CYCLES))
    bad = []

    async def bench(ctx):
        for pattern in patterns:
            want, left = _model(pattern)
            nxt = 0
            for cycle, (valid, ready) in enumerate(pattern):
                ctx.set(buf.i.valid, valid)
                ctx.set(buf.i.payload, nxt)
                ctx.set(buf.o.ready, ready)
                await ctx.delay(1e-9)
                got = (bool(ctx.get(buf.i.ready)), bool(ctx.get(buf.o.valid)),
                       ctx.get(buf.o.payload) if ctx.get(buf.o.valid) else None)
                if got != want[cycle]:
                    bad.append((pattern, cycle, got, want[cycle]))
                nxt += bool(valid and got[0])
                await ctx.tick()
            # drain: what is left comes out in order, then nothing
            ctx.set(buf.i.valid, 0)
            ctx.set(buf.o.ready, 1)
            for beat in left + [None]:
                await ctx.delay(1e-9)
                out = ctx.get(buf.o.payload) if ctx.get(buf.o.valid) else None
                if out != beat:
                    bad.append((pattern, "drain", out, beat))
                await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, f"{len(bad)} mismatches of {len(patterns)} patterns, first: {bad[:3]}"


def test_backpressure_holds_two_beats_and_ready_ignores_the_sink():
    """Sink stalled: two beats taken, then i.ready low whatever o.ready does within the cycle (registers
    only); released: both come out in order, one per cycle."""
    buf = OutputBuffer(8)
    log = []

    async def bench(ctx):
        ctx.set(buf.o.ready, 0)
        ctx.set(buf.i.valid, 1)
        for k in range(4):
            ctx.set(buf.i.payload, 10 + k)
            await ctx.delay(1e-9)
            log.append(("in", k, ctx.get(buf.i.ready)))
            await ctx.tick()
        for ready in (1, 0, 1):
            ctx.set(buf.o.ready, ready)
            await ctx.delay(1e-9)
            log.append(("ready-while-sink", ready, ctx.get(buf.i.ready)))
        ctx.set(buf.i.valid, 0)
        ctx.set(buf.o.ready, 1)
        for _ in range(3):
            await ctx.delay(1e-9)
            log.append(("out", ctx.get(buf.o.valid), ctx.get(buf.o.payload)))
            await ctx.tick()

    sim = Simulator(buf)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert [e[2] for e in log[:4]] == [1, 1, 0, 0]                     # full after two beats
    assert [e[2] for e in log[4:7]] == [0, 0, 0]                        # o.ready does not reach i.ready
    assert [(e[1], e[2]) for e in log[7:]] == [(1, 10), (1, 11), (0, 11)]


def test_reset_mid_stream_empties_the_buffer():
    buf = OutputBuffer(8)
    rst = Signal()
    top = Module()
    top.submodules.buf = ResetInserter(rst)(buf)
    seen = []

    async def bench(ctx):
        ctx.set(buf.o.ready, 0)
        ctx.set(buf.i.valid, 1)
        ctx.set(buf.i.payload, 7)
        await ctx.tick().repeat(2)                                      # full
        ctx.set(rst, 1)
        ctx.set(buf.i.valid, 0)
        await ctx.tick()
        ctx.set(rst, 0)
        await ctx.delay(1e-9)
        seen.append((ctx.get(buf.o.valid), ctx.get(buf.i.ready)))
        ctx.set(buf.i.valid, 1)
        ctx.set(buf.i.payload, 42)
        await ctx.tick()
        ctx.set(buf.i.valid, 0)
        ctx.set(buf.o.ready, 1)
        await ctx.delay(1e-9)
        seen.append((ctx.get(buf.o.valid), ctx.get(buf.o.payload)))
        await ctx.tick()
        await ctx.delay(1e-9)
        seen.append((ctx.get(buf.o.valid),))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(0, 1), (1, 42), (0,)]                              # empty, then only the new beat
