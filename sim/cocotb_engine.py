"""cocotb tests of an emitted DyT engine: the model's layers in order, full rate across a switch, bad frames.

Run through :func:`hardyt.sim.engine_runner.run_engine_sim` (or ``hardyt sim
DIR`` on an engine directory). Every output beat is compared with the golden
model of the layer its token selected; a failure names the layer.
"""
from __future__ import annotations

import dataclasses

import cocotb
import numpy as np

from hardyt.hw.datapath.coef_frame import checksum, section_beats

from .engine_testbench import STATUS_LOADED, STATUS_NAMES, EngineConfig, EngineTestbench, LayerRun
from .testbench import record_result


async def _started(tb: EngineTestbench, run: LayerRun, beat: int, frame: int, limit: int) -> str | None:
    """Wait until input beat ``beat`` (``run``'s first) was accepted; why not, if frame ``frame`` (its
    coefficients) was rejected or nothing moved for ``limit`` cycles."""
    for _ in range(limit):
        if tb.source.sent > beat:
            return None
        outcomes = tb.status.outcomes
        if len(outcomes) > frame and outcomes[frame] != STATUS_LOADED:
            return (f"layer {run.name}: coefficient image {run.step['image'].rsplit('/', 1)[-1]} rejected by the "
                    f"engine ({STATUS_NAMES.get(outcomes[frame], outcomes[frame])})")
        await cocotb.triggers.RisingEdge(tb.dut.aclk)
    return f"layer {run.name}: its first token was not accepted within {limit} cycles"


def _score(name: str, tb: EngineTestbench, runs: list[LayerRun], start: int = 0, **extra) -> list[str]:
    """Every output beat against the golden model of its token's layer; the results recorded."""
    got, got_last = tb.monitor.beats()
    got, got_last = got[start:], got_last[start:]
    lines, elements, bad, per_layer = [], 0, 0, {}
    at = 0
    for run in runs:
        n = len(run.x)
        r = run.board.check(got[at:at + n], got_last[at:at + n])
        at += n
        elements += r.checked
        errors = r.mismatches + r.missing + r.extra
        bad += errors
        per_layer[run.name] = {"elements": r.checked, "mismatches": errors}
        lines += [f"layer {run.name}: {line}" for line in r.mismatch_lines[:10]]
    if len(got) > at:
        bad += len(got) - at
        lines.append(f"{len(got) - at} output beats after the last layer's")
    record_result(tb.cfg, name, elements=elements, mismatches=bad, cycles=tb.monitor.cycle, report=lines[:20],
                  layers=per_layer, **extra)
    return lines


@cocotb.test()
async def test_layer_order(dut):
    """Layer 0 loads; each layer streams while the next one loads; random idle and backpressure."""
    cfg = EngineConfig()
    tb = EngineTestbench(dut, cfg, salt=1)
    await tb.start()
    runs = [LayerRun.from_plan(cfg, k, cfg.vectors) for k in range(len(cfg.plan))]
    tb.send_frame(runs[0].frame)
    beat, error = 0, None
    limit = 40 * (max(len(r.x) for r in runs) + len(runs[0].frame)) + 1000
    for k, run in enumerate(runs):
        tb.source.send(run.x, run.last, user=run.index)
        error = await _started(tb, run, beat, k, limit)
        if error:
            break
        if k + 1 < len(runs):  # the host protocol: the next set once this layer's first token is in
            tb.send_frame(runs[k + 1].frame)
        beat += len(run.x)
    if not error:
        await tb.wait_outputs(beat, limit * len(runs))
    lines = _score("layer_order", tb, runs, layer_order=[r.name for r in runs])
    assert error is None, error
    assert not lines, "\n".join(lines[:10])


@cocotb.test()
async def test_throughput(dut):
    """Two sets loaded, then tokens of both layers back to back at full rate: one beat per cycle across the
    switch, and the manifest's latency."""
    cfg = EngineConfig()
    tb = EngineTestbench(dut, cfg, pause=False, salt=2)
    await tb.start()
    picks = list(range(min(2, len(cfg.plan))))
    runs = [LayerRun.from_plan(cfg, k, 4 * cfg.specs[k].channels, salt=2) for k in picks]
    for run in runs:
        error = await tb.load(run)
        assert error is None, error
        # The next frame goes to the other bank only once a token has used this one.
        if run is not runs[-1]:
            tb.source.send(run.x[:1], [False], user=run.index)
            await tb.wait_accepted(1, 1000)
    tb.monitor.clear()
    tb.source.first_cycle = None
    sent = tb.source.sent
    rest = [(runs[0].x[1:], runs[0].last[1:])] if len(runs) > 1 else [(runs[0].x, runs[0].last)]
    # Layer 0's first token continues, then whole tokens of layer 1, then of layer 0 again.
    streams = rest + [(r.x, r.last) for r in runs[1:]] + ([(runs[0].x, runs[0].last)] if len(runs) > 1 else [])
    layers = [runs[0].index] + [r.index for r in runs[1:]] + ([runs[0].index] if len(runs) > 1 else [])
    for (x, last), layer in zip(streams, layers):
        tb.source.send(x, last, user=layer)
    total = sum(len(x) for x, _ in streams)
    await tb.wait_outputs(total, 20 * total + 100)
    mon = tb.monitor
    span = mon.last_cycle - mon.first_cycle + 1 if mon.first_cycle is not None else 0
    rate = total / span if span else 0.0
    latency = mon.first_cycle - tb.source.first_cycle if mon.first_cycle is not None else None
    got, got_last = mon.beats()
    # Each run's tokens as a whole (the channel counter runs on from the beat sent before the switches).
    whole = [r.spec.reference_stream(r.x, r.last) for r in runs]
    parts = [whole[0][1:], *whole[1:], whole[0]] if len(runs) > 1 else whole
    expect = np.concatenate(parts)
    bad = int((got != expect).sum()) if got.shape == expect.shape else total
    record_result(cfg, "throughput", elements=int(expect.size), mismatches=bad, cycles=mon.cycle, beats=total,
                  beats_per_cycle=rate, latency=latency, manifest_latency=cfg.manifest["latency"],
                  switches=len(streams) - 1, sent=tb.source.sent - sent)
    assert bad == 0, f"throughput: {bad} mismatches across the layer switches"
    assert rate == 1.0, f"throughput {rate:.3f} beats/cycle across layer switches, expected 1 (a bubble)"
    assert latency == cfg.manifest["latency"], f"latency {latency} cycles, manifest says {cfg.manifest['latency']}"


def _bad_frames(frame: list[int], layers: int) -> dict[str, tuple[list[int], int]]:
    """The documented bad frames, each with the status the engine must give it."""
    def sealed(words):
        return words[:-1] + [checksum(words[:-1])]
    unknown = list(frame)
    unknown[0] = (unknown[0] & ~0xFF00) | (min(layers, 255) << 8)
    corrupt = list(frame)
    corrupt[-3] ^= 1
    return {"short": (frame[:-2] + frame[-1:], 3), "long": (frame + [0], 3),
            "unknown layer": (sealed(unknown), 2), "checksum": (corrupt, 4)}


@cocotb.test()
async def test_bad_frames(dut):
    """Frames too short, too long, for an unknown layer or with a wrong checksum are rejected with their
    status; nothing of them is used; the good frame after them loads and streams exactly. The layer is a
    channel affine one when the set has one (its corrupted word is then in the beta section)."""
    cfg = EngineConfig()
    tb = EngineTestbench(dut, cfg, salt=3)
    await tb.start()
    # The layer with the longest frame: a channel affine one when the set has one.
    k = max(range(len(cfg.plan)), key=lambda i: (cfg.specs[i].affine.mode == "channel", cfg.specs[i].channels))
    run = LayerRun.from_plan(cfg, k, 2 * cfg.specs[k].channels, salt=3)
    frame = [int(w) for w in run.frame]
    got = {}
    for what, (words, status) in _bad_frames(frame, len(cfg.plan)).items():
        before = len(tb.status.outcomes)
        tb.send_frame(words)
        await tb.status.wait(before + 1, 20 * len(words) + 100)
        got[what] = (tb.status.outcomes[before] if len(tb.status.outcomes) > before else None, status)
    error = await tb.load(run)
    tb.source.send(run.x, run.last, user=run.index)
    await tb.wait_outputs(len(run.x), 40 * len(run.x) + 200)
    wrong = [f"{w}: status {g} (expected {e})" for w, (g, e) in got.items() if g != e]
    lines = _score("bad_frames", tb, [run], statuses={w: g for w, (g, _) in got.items()})
    assert not wrong, "; ".join(wrong)
    assert error is None, error
    assert not lines, "\n".join(lines[:10])


def _affine_beat(frame: list[int], manifest: dict, channels: int) -> int:
    """Index of a channel affine frame's affine beat: before its gamma and beta sections and the checksum."""
    f = manifest["frame"]
    return len(frame) - 2 - section_beats(channels, f["gamma_bits"]) - section_beats(channels, f["beta_bits"])


def _with_out_bits(frame: list[int], at: int, out_bits: int) -> list[int]:
    """``frame`` with its affine beat's output bits set to ``out_bits``, resealed (a valid checksum)."""
    words = list(frame)
    words[at] = (words[at] & ~0xFF00) | (out_bits << 8)
    return words[:-1] + [checksum(words[:-1])]


@cocotb.test()
async def test_affine_bounds(dut):
    """The affine beat's output bits at the bounds the engine checks, each frame resealed: one more than
    the engine's is a bad header, and the frame after it loads; 2, the fewest it takes, loads and every
    output saturates as that narrower layer's golden model says. (Each layer's own frame has the engine's
    width: the saturation bound ``top`` of a narrower layer and the state after a bad affine beat are
    exercised here only.)"""
    cfg = EngineConfig()
    channel = [k for k, s in enumerate(cfg.specs) if s.affine.mode == "channel"]
    if not channel:
        cocotb.pass_test("affine_bounds: no channel affine layer in the set")
    k = channel[0]
    spec = cfg.specs[k]
    narrow = dataclasses.replace(spec, affine=dataclasses.replace(spec.affine, out_bits=2))
    base = LayerRun.from_plan(cfg, k, 2 * spec.channels, salt=5)
    run = LayerRun(base.step, narrow, base.x.reshape(-1, spec.channels))
    frame = [int(w) for w in base.frame]
    at = _affine_beat(frame, cfg.manifest, spec.channels)
    run.frame = _with_out_bits(frame, at, 2)
    tb = EngineTestbench(dut, cfg, salt=5)
    await tb.start()
    tb.send_frame(_with_out_bits(frame, at, cfg.manifest["out_bits"] + 1))
    await tb.status.wait(1, 40 * len(frame) + 200)
    bad = tb.status.outcomes[0] if tb.status.outcomes else None
    error = await tb.load(run)
    if error is None:
        tb.source.send(run.x, run.last, user=run.index)
        await tb.wait_outputs(len(run.x), 40 * len(run.x) + 200)
    lines = _score("affine_bounds", tb, [run], too_wide_status=bad)
    wide = cfg.manifest["out_bits"] + 1
    assert bad == 2, f"affine_bounds: a frame with {wide} output bits got status {bad} (expected 2)"
    assert error is None, error
    assert not lines, "\n".join(lines[:10])


@cocotb.test()
async def test_fuzzed_frames(dut):
    """``vectors`` fuzzed frames (:mod:`hardyt.sim.coef_fuzz`: random, truncated, oversized, bit flips, swapped
    beats, resealed tables and headers, valid ones), a few tokens of the loaded layers after each group of
    frames: every frame's status is the loader model's, every output the table lookup of the bank the
    model says its layer is in. Folded layers of a table engine only (the model has no affine section and
    no thresholds)."""
    from types import SimpleNamespace

    from .coef_fuzz import KINDS, claims, expect, lookup, make_frame

    cfg = EngineConfig()
    if any(s.affine.mode == "channel" for s in cfg.specs):   # the loader model has no affine section
        cocotb.pass_test("fuzzed_frames: not applicable to a set with channel-affine layers (folded sets only)")
    m = cfg.manifest
    if m["spec"].get("tanh") == "threshold":                # nor thresholds
        cocotb.pass_test("fuzzed_frames: not applicable to a threshold engine (table engines only)")
    shape = SimpleNamespace(layers=len(cfg.plan), beats=m["channels"] // m["lanes"], in_bits=m["in_bits"],
                            table_bits=m["frame"]["table_bits"])
    goods = [LayerRun.from_plan(cfg, k, cfg.specs[k].channels).frame for k in range(len(cfg.plan))]
    tb = EngineTestbench(dut, cfg, salt=4)
    await tb.start()
    rng = cfg.rng(4)
    banks, active, started, previous = [None, None], 0, False, 0
    wrong, bad_out, elements, sent = [], 0, 0, 0
    while sent < cfg.vectors:
        for _ in range(int(rng.integers(1, 6))):
            words = make_frame(KINDS[int(rng.integers(len(KINDS)))], rng, goods)
            status, layer, table = expect(words, shape)
            before = len(tb.status.outcomes)
            tb.send_frame(words)
            await tb.status.wait(before + 1, 40 * len(words) + 200)
            got = tb.status.outcomes[before] if len(tb.status.outcomes) > before else None
            if got != status:
                wrong.append(f"frame {sent}: status {got}, the model says {status}")
            if claims(words, shape):
                claim = 1 - active if started else 1 - previous
                previous, banks[claim] = claim, (layer, table) if status == 1 else None
            sent += 1
        loaded = sorted({b[0] for b in banks if b is not None})
        for layer in rng.choice(loaded, min(len(loaded), 2), replace=False) if loaded else []:
            bank = 0 if banks[0] is not None and banks[0][0] == layer else 1
            active, started = bank, True
            spec = cfg.specs[int(layer)]
            beats = spec.channels // spec.lanes
            x = rng.integers(-(1 << (spec.in_bits - 1)), 1 << (spec.in_bits - 1), (beats, spec.lanes))
            last = [k == beats - 1 for k in range(beats)]
            tb.monitor.clear()
            tb.source.send(x, last, user=int(layer))
            await tb.wait_outputs(beats, 40 * beats + 200)
            got, _ = tb.monitor.beats()
            want = lookup(banks[bank][1], x, shape.in_bits)
            elements += want.size
            bad_out += int((got != want).sum()) if got.shape == want.shape else want.size
    record_result(cfg, "fuzzed_frames", elements=elements, mismatches=bad_out + len(wrong), cycles=tb.monitor.cycle,
                  frames=sent, report=wrong[:20])
    assert not wrong, "; ".join(wrong[:5])
    assert bad_out == 0, f"{bad_out} output elements differ from the loaded table"
