# amaranth: UnusedElaboratable=no
"""The threshold engine (its RAMs hold per-stage thresholds): Amaranth simulation, emission, both simulators."""
import dataclasses

import numpy as np
import pytest

from amaranth.sim import Simulator

from conftest import stream_get, stream_put
from test_engine import channel_spec, check_full_rate, run_engine, tokens_for
from hardyt.hw.datapath.coef_frame import MAGIC_THRESHOLD, STATUS, frame_beats, load_cycles
from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.datapath.engine import DyTEngine
from hardyt.hw.datapath.engine_set import engine_shape, layer_frame, layer_thresholds
from hardyt.quant.contract.tanh import tanh_int
from hardyt.quant.errors import HardytError


def threshold_set(lanes=2, kind="folded"):
    """A 12-bit threshold layer, a narrower threshold layer (6-bit in and out), and a LUT and a PWL layer
    the engine serves through their thresholds. ``mixed``: the first and the LUT one with channel affine."""
    a = random_dyt_spec(8, lanes, 12, 8, tanh="threshold", alpha=0.002, name="a")
    if kind == "mixed":
        ch = channel_spec(8, lanes, 12, 8, shift=6, out_bits=8, alpha=0.002, name="a")
        a = dataclasses.replace(a, affine=ch.affine)
    c = channel_spec(8, lanes, 8, 6, shift=3, out_bits=10, gamma_bits=6, alpha=0.01, seed=1, name="c") \
        if kind == "mixed" else random_dyt_spec(8, lanes, 8, 8, alpha=0.01, name="c")
    return [a, random_dyt_spec(4, lanes, 6, 6, tanh="threshold", alpha=0.2, name="b"), c,
            random_dyt_spec(4, lanes, 10, 8, tanh="pwl", alpha=0.004, segments=8, name="d")]


@pytest.mark.parametrize("kind", ["folded", "mixed"])
def test_thresholds_give_every_layer_its_own_codes(kind):
    """The golden side: the engine's search over each layer's thresholds, on every input code of the layer,
    equals that layer's tanh (threshold, LUT or PWL, narrower or as wide as the engine)."""
    specs = threshold_set(kind=kind)
    shape = engine_shape(specs)
    assert (shape.tanh, shape.in_bits, shape.table_bits, shape.entries, shape.entry_bits) == \
        ("threshold", 12, 8, 255, 13)
    for s in specs:
        m = 1 << (s.tanh.in_bits - 1)
        x = np.arange(-m, m)
        thr = np.asarray(layer_thresholds(s, shape))
        y = np.searchsorted(thr, x, side="right") - (1 << (shape.table_bits - 1))
        np.testing.assert_array_equal(y, tanh_int(x, s.tanh), err_msg=s.name)
    assert layer_thresholds(specs[0], shape) == specs[0].tanh.thresholds


@pytest.mark.parametrize("kind,seed", [("folded", 1), ("folded", 2), ("mixed", 1)])
def test_switches_under_backpressure_never_mix_layers(kind, seed):
    """Every layer loads while the one before streams; random idle on all three streams: bit-exact."""
    specs = threshold_set(kind=kind)
    shape = engine_shape(specs)
    order = [0, 1, 2, 3, 1, 0, 2]
    frames = [layer_frame(specs[i], i, shape) for i in order]
    tokens, expect = tokens_for(specs, order, np.random.default_rng(seed))
    got, got_last, _, _, statuses = run_engine(DyTEngine(shape), frames, tokens, valid_p=0.7, ready_p=0.6,
                                               coef_p=0.8, seed=seed, max_cycles=60000)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(got_last, np.concatenate([t[2] for t in tokens]))
    assert statuses == [1] * len(frames)


def test_a_bank_is_reloaded_only_once_its_beats_have_left():
    """Layers 0 and 1 loaded; the sink stalls while three tokens of layer 0 and one of layer 1 enter, so
    layer 0's beats sit in the compare stages when layer 2's frame claims layer 0's bank: the loader waits
    until the sink moves and those beats have left (they come out exact), then loads."""
    specs = threshold_set()
    shape = engine_shape(specs)
    engine = DyTEngine(shape)
    rng = np.random.default_rng(9)
    (t0, e0), (t1, e1) = tokens_for(specs, [0], rng, per_layer=3), tokens_for(specs, [1], rng, per_layer=1)
    tokens, expect = t0 + t1, np.concatenate([e0, e1])
    n, stall = sum(len(x) for _, x, _ in tokens), 400
    got, done, state = [], [], {"cycle": 0, "second_layer": False}

    async def clock(ctx):
        async for _, _, is_done, status in ctx.tick().sample(engine.coef_done, engine.coef_status):
            state["cycle"] += 1
            if is_done:
                done.append((state["cycle"], int(status.value)))

    async def coef(ctx):
        for k, words in enumerate([layer_frame(specs[i], i, shape) for i in (0, 1, 2)]):
            while k == 2 and not state["second_layer"]:
                await ctx.tick()
            for j, w in enumerate(words):
                await stream_put(ctx, engine.coef, {"data": int(w), "last": int(j == len(words) - 1)})

    async def producer(ctx):
        while len(done) < 2:
            await ctx.tick()
        state["start"] = state["cycle"]
        for layer, x, last in tokens:
            for k in range(len(x)):
                await stream_put(ctx, engine.i, {"data": [int(v) for v in x[k]], "last": int(last[k])},
                                 also=[(engine.layer_select, layer)])
                state["second_layer"] |= layer == 1

    async def consumer(ctx):
        while len(got) < n and state["cycle"] < 3000:
            payload = await stream_get(ctx, engine.o, state["cycle"] > state.get("start", 5000) + stall)
            if payload is not None:
                got.append([payload.data[j] for j in range(shape.lanes)])
        while len(done) < 3 and state["cycle"] < 3000:
            await ctx.tick()

    sim = Simulator(engine)
    sim.add_clock(1e-8)
    for bench in (clock, coef, producer):
        sim.add_testbench(bench, background=True)
    sim.add_testbench(consumer)
    sim.run()
    assert [status for _, status in done] == [1, 1, 1]
    assert done[2][0] > state["start"] + stall + 258, "layer 2 loaded while layer 0's beats still read its bank"
    np.testing.assert_array_equal(np.array(got, dtype=np.int64).reshape(-1, shape.lanes), expect)


@pytest.mark.parametrize("kind,latency", [("folded", 13), ("mixed", 17)])
def test_layer_switch_costs_no_cycle_at_full_rate(kind, latency):
    """Both sets loaded first, then tokens of layer 0, 1 back to back: one beat per cycle, the latency the
    stages count (1 + 7 compare stages + 4 block-RAM word registers + the output buffer; +4 affine)."""
    check_full_rate(threshold_set(kind=kind), latency)


def test_loading_does_not_disturb_the_streaming_layer():
    specs = threshold_set()
    shape = engine_shape(specs)
    frames = [layer_frame(specs[i], i, shape) for i in (0, 1, 2, 3)]
    tokens, expect = tokens_for(specs, [0], np.random.default_rng(4), per_layer=300)
    got, _, _, _, statuses = run_engine(DyTEngine(shape), frames, tokens, ready_p=0.9, wait_frames=1,
                                        max_cycles=60000)
    np.testing.assert_array_equal(got, expect)
    assert statuses == [1] * 4


@pytest.mark.parametrize("what,status", [("table frame", 2), ("short", 3), ("checksum", 4)])
def test_bad_frame_is_rejected_and_the_next_one_loads(what, status):
    """A table engine's frame (magic 0xD7) on a threshold engine is a bad header; a short frame, a flipped
    threshold bit: rejected; the good frame after it loads and streams."""
    specs = threshold_set()
    shape = engine_shape(specs)
    good = layer_frame(specs[2], 2, shape)
    bad = {"table frame": layer_frame(specs[2], 2, engine_shape(specs[2:3])),
           "short": good[:-2] + good[-1:], "checksum": good[:5] + [good[5] ^ 8] + good[6:]}[what]
    tokens, expect = tokens_for(specs, [2], np.random.default_rng(5))
    got, _, _, _, statuses = run_engine(DyTEngine(shape), [bad, good], tokens, coef_p=0.7, valid_p=0.8, seed=5)
    assert statuses == [status, 1], STATUS[statuses[0]]
    np.testing.assert_array_equal(got, expect)


def test_load_time_is_what_the_manifest_says():
    specs = threshold_set()
    shape = engine_shape(specs)
    words = layer_frame(specs[0], 0, shape)
    assert words[0] & 0xFF == MAGIC_THRESHOLD
    assert len(words) == frame_beats(shape.in_bits, shape.entry_bits, entries=255) == 2 + 128
    taken = []
    tokens, expect = tokens_for(specs, [0], np.random.default_rng(8), per_layer=1)
    got, _, _, _, statuses = run_engine(DyTEngine(shape), [words], tokens, wait_frames=1, coef_taken=taken)
    assert statuses == [1] and np.array_equal(got, expect)
    assert taken[-1] - taken[0] + 1 == load_cycles(shape.in_bits, entries=255) == 258


def test_unsupported_layers_are_refused_by_name():
    ok = random_dyt_spec(4, 1, 8, 8, tanh="threshold", name="ok")
    for odd, message in ((random_dyt_spec(4, 1, 20, 8, tanh="threshold", name="odd"), "20-bit tanh input"),
                         (random_dyt_spec(4, 1, 8, 8, tanh="threshold", alpha_shift=True, name="odd"), "alpha shifts")):
        with pytest.raises(HardytError, match=f"layer odd: .*{message}"):
            engine_shape([ok, odd])
    with pytest.raises(HardytError, match="layer ok: .*tanh threshold on a table engine"):
        engine_shape([ok], tanh="lut")
    bent = random_dyt_spec(4, 1, 6, 6, name="bent")            # a LUT whose codes decrease once
    table = list(bent.tanh.table)
    table[3], table[4] = table[4], table[3]
    bent = dataclasses.replace(bent, tanh=dataclasses.replace(bent.tanh, table=tuple(table)))
    with pytest.raises(HardytError, match="layer bent: .*decreases .*monotone"):
        engine_shape([ok, bent])


# -- emission and the emitted Verilog on both simulators ----------------------------------------------------

def test_emitted_manifest(tmp_path):
    from hardyt.hw.emission.emit import load_manifest
    from hardyt.hw.emission.engine_emit import emit_engine

    m = load_manifest(emit_engine(threshold_set(kind="mixed"), tmp_path / "eng").parent)
    assert m["spec"]["tanh"] == "threshold" and m["latency"] == 17 == len(m["stages"])
    assert m["stages"][0] == "stage 0 threshold RAM read" and m["frame"]["threshold_bits"] == 13
    assert m["frame"]["entries_per_beat"] == 2 and [lay["tanh"] for lay in m["layers"]] == \
        ["threshold", "threshold", "lut", "pwl"]
    assert {lay["load_cycles"] for lay in m["layers"]} == {258, 258 + 1 + 2 * 8}


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_sim_threshold_engine_bit_exact(simulator, tmp_path, capsys):
    """`hardyt rtl --engine` on a converted directory of threshold layers (and a channel affine one), then
    `hardyt sim`: every code of every layer exact, full rate across switches, bad frames handled."""
    from hardyt.scripts.cli import main

    conv = tmp_path / "conv"
    conv.mkdir()
    names = ["blocks_0_norm1", "blocks_1_norm1", "norm", "head"]
    for s, n in zip(threshold_set(kind="mixed"), names):
        dataclasses.replace(s, name=n).save(conv / f"{n}.spec.json")
    (conv / "config.json").write_text('{"dyt_layers": {"blocks.0.norm1": {}, "blocks.1.norm1": {}, "norm": {}, '
                                      '"head": {}}}')
    eng = tmp_path / "eng"
    assert main(["rtl", str(conv), "--engine", "--out", str(eng)]) == 0
    assert "DyT threshold engine for 4 layers" in capsys.readouterr().out
    assert main(["sim", str(eng), "--simulator", simulator, "--vectors", "16"]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "1.000 beats/cycle" in out, out
