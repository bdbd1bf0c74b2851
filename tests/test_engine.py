# amaranth: UnusedElaboratable=no
"""DyTEngine in Amaranth's simulator: layer switches, loading while streaming, bad frames."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hardyt.hw.coef_frame import STATUS, frame_beats, load_cycles
from hardyt.hw.cores import random_dyt_spec
from hardyt.hw.engine import DyTEngine
from hardyt.hw.engine_set import engine_shape, layer_frame
from hardyt.quant.errors import HardytError


def layer_set(lanes=2):
    """Three layers of different channels, widths and alphas (the engine is sized for the widest)."""
    return [random_dyt_spec(8, lanes, 8, 8, alpha=0.03, name="a"),
            random_dyt_spec(4, lanes, 6, 6, alpha=0.2, name="b"),
            random_dyt_spec(8, lanes, 8, 8, alpha=0.005, name="c")]


def run_engine(engine, frames, tokens, *, valid_p=1.0, ready_p=1.0, coef_p=1.0, seed=0, wait_frames=0,
               max_cycles=20000):
    """Send coefficient ``frames`` (lists of words) and ``tokens`` ((layer, x beats, last)) at once.

    Returns output beats, last flags, input/output handshake cycles and the status after each frame.
    ``wait_frames``: the data stream starts after this many frames ended.
    """
    rng = np.random.default_rng(seed)
    P = engine.shape.lanes
    got, got_last, t_in, t_out, statuses = [], [], [], [], []
    n = sum(len(x) for _, x, _ in tokens)

    async def coef_source(ctx):
        for words in frames:
            for k, w in enumerate(words):
                while rng.random() > coef_p:
                    await ctx.tick()
                ctx.set(engine.coef.valid, 1)
                ctx.set(engine.coef.payload, {"data": int(w), "last": int(k == len(words) - 1)})
                ready = 0
                while not ready:
                    _, _, ready = await ctx.tick().sample(engine.coef.ready)
                ctx.set(engine.coef.valid, 0)

    async def status_watch(ctx):
        async for _, _, done, status in ctx.tick().sample(engine.coef_done, engine.coef_status):
            if done:
                statuses.append(int(status.value))

    async def producer(ctx):
        cycle = 0
        while len(statuses) < wait_frames:
            await ctx.tick()
            cycle += 1
        for layer, x, last in tokens:
            for k in range(len(x)):
                while rng.random() > valid_p:
                    await ctx.tick()
                    cycle += 1
                ctx.set(engine.i.valid, 1)
                ctx.set(engine.layer_select, layer)
                ctx.set(engine.i.payload, {"data": [int(v) for v in x[k]], "last": int(last[k])})
                ready = 0
                while not ready:
                    _, _, ready = await ctx.tick().sample(engine.i.ready)
                    cycle += 1
                t_in.append(cycle)
                ctx.set(engine.i.valid, 0)

    async def consumer(ctx):
        cycle = 0
        while len(got) < n and cycle < max_cycles:
            ready = rng.random() < ready_p
            ctx.set(engine.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(engine.o.valid, engine.o.payload)
            cycle += 1
            if ready and valid:
                got.append([payload.data[j] for j in range(P)])
                got_last.append(payload.last)
                t_out.append(cycle)
        for _ in range(20):  # anything after the expected beats would be an extra beat
            _, _, valid = await ctx.tick().sample(engine.o.valid)
            assert not valid, "extra output beat"

    sim = Simulator(engine)
    sim.add_clock(1e-8)
    sim.add_testbench(coef_source, background=True)
    sim.add_testbench(status_watch, background=True)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return np.array(got, dtype=np.int64).reshape(-1, P), np.array(got_last), t_in, t_out, statuses


def tokens_for(specs, order, rng, per_layer=3, lanes=2):
    """``per_layer`` random tokens of each layer in ``order``, with their expected outputs."""
    tokens, expect = [], []
    for idx in order:
        s = specs[idx]
        lo, hi = -(1 << (s.in_bits - 1)), 1 << (s.in_bits - 1)
        x = rng.integers(lo, hi, (per_layer * s.channels // lanes, lanes))
        last = np.zeros(len(x), dtype=bool)
        last[s.channels // lanes - 1::s.channels // lanes] = True
        tokens.append((idx, x, last))
        expect.append(s.reference_stream(x, last))
    return tokens, np.concatenate(expect)


@pytest.mark.parametrize("seed", [1, 2])
def test_switches_under_backpressure_never_mix_layers(seed):
    """Every layer loads while the one before streams; random idle on all three streams."""
    specs = layer_set()
    shape = engine_shape(specs)
    engine = DyTEngine(shape)
    order = [0, 1, 2, 1, 0]
    # Frames in layer order, each sent as soon as the loader can take it: it writes the bank not in use.
    frames = [layer_frame(specs[i], i, shape) for i in order]
    tokens, expect = tokens_for(specs, order, np.random.default_rng(seed))
    got, got_last, _, _, statuses = run_engine(engine, frames, tokens, valid_p=0.7, ready_p=0.6, coef_p=0.8,
                                               seed=seed)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(got_last, np.concatenate([t[2] for t in tokens]))
    assert statuses == [1] * len(frames)


def test_layer_switch_costs_no_cycle_at_full_rate():
    """Both sets loaded first, then tokens of layer 0, 1, 0 back to back: one beat per cycle throughout."""
    specs = layer_set()
    shape = engine_shape(specs)
    engine = DyTEngine(shape)
    assert engine.latency == 2
    frames = [layer_frame(specs[i], i, shape) for i in (0, 1)]
    tokens, expect = tokens_for(specs, [0, 1, 0, 1], np.random.default_rng(3))
    # Bank use: 0 -> bank 1? The first token takes whichever bank holds layer 0; later ones alternate.
    got, _, t_in, t_out, _ = run_engine(engine, frames, tokens[:2], wait_frames=2)
    np.testing.assert_array_equal(got, np.concatenate([specs[i].reference_stream(x, last)
                                                       for i, x, last in tokens[:2]]))
    assert np.all(np.diff(t_in) == 1) and np.all(np.diff(t_out) == 1), "a bubble in the stream"
    assert t_out[0] - t_in[0] == engine.latency


def test_loading_does_not_disturb_the_streaming_layer():
    """Layer 0 streams while a frame for layer 1 (then 2) is written at full speed: layer 0 stays exact."""
    specs = layer_set()
    shape = engine_shape(specs)
    frames = [layer_frame(specs[i], i, shape) for i in (0, 1, 2, 1)]
    tokens, expect = tokens_for(specs, [0], np.random.default_rng(4), per_layer=300)
    got, _, _, _, statuses = run_engine(DyTEngine(shape), frames, tokens, ready_p=0.9, wait_frames=1)
    np.testing.assert_array_equal(got, expect)
    assert statuses == [1] * 4, "the frames did not all load while layer 0 streamed"


def _bad(frame, what):
    f = list(frame)
    if what == "short":
        return f[:-2] + [f[-1]]
    if what == "long":
        return f[:-1] + [f[-1], 0]
    if what == "layer":
        f[0] = (f[0] & ~0xFF00) | (7 << 8)
    elif what == "magic":
        f[0] ^= 1
    elif what == "checksum":
        f[5] ^= 1 << 3
    elif what == "beats":
        f[0] = (f[0] & 0xFFFF) | (99 << 16)
    f[-1] = (sum(f[:-1]) & 0xFFFFFFFF) if what != "checksum" else f[-1]
    return f


@pytest.mark.parametrize("what,status", [("short", 3), ("long", 3), ("layer", 2), ("magic", 2), ("beats", 2),
                                         ("checksum", 4)])
def test_bad_frame_is_rejected_and_the_next_one_loads(what, status):
    """A bad frame leaves no set behind (status says why); the good frame after it loads and streams."""
    specs = layer_set()
    shape = engine_shape(specs)
    frames = [_bad(layer_frame(specs[1], 1, shape), what), layer_frame(specs[1], 1, shape)]
    tokens, expect = tokens_for(specs, [1], np.random.default_rng(5))
    got, _, _, _, statuses = run_engine(DyTEngine(shape), frames, tokens, coef_p=0.7, valid_p=0.8, seed=5)
    assert statuses == [status, 1], STATUS[statuses[0]]
    np.testing.assert_array_equal(got, expect)


def test_unloaded_layer_stalls_instead_of_using_another_set():
    """A token of a layer no bank holds waits: nothing comes out."""
    specs = layer_set()
    shape = engine_shape(specs)
    tokens, _ = tokens_for(specs, [2], np.random.default_rng(6), per_layer=1)
    got, _, _, _, _ = run_engine(DyTEngine(shape), [layer_frame(specs[0], 0, shape)], tokens, max_cycles=600)
    assert len(got) == 0


def test_load_time_is_what_the_manifest_says():
    specs = layer_set()
    shape = engine_shape(specs)
    assert frame_beats(8, 8) == 66 and load_cycles(8, 8) == 259
    assert len(layer_frame(specs[0], 0, shape)) == frame_beats(shape.in_bits, shape.out_bits)


@pytest.mark.parametrize("kw,message", [
    (dict(tanh="pwl"), "tanh pwl"),
    (dict(affine="channel"), "channel affine"),
    (dict(alpha_shift=True), "alpha shifts"),
])
def test_unsupported_layers_are_refused_by_name(kw, message):
    specs = [random_dyt_spec(4, 1, 8, 8, name="ok"), random_dyt_spec(4, 1, 8, 8, name="odd", **kw)]
    with pytest.raises(HardytError, match=f"layer odd: .*{message}"):
        engine_shape(specs)


# -- emission, the command line, and the emitted Verilog on both simulators ---------------------------

def converted_dir(tmp_path, lanes=2):
    """A converted-model directory: three layer specs, a config giving their model order, activations."""
    conv = tmp_path / "conv"
    conv.mkdir()
    specs = layer_set(lanes)
    names = ["blocks_1_norm1", "blocks_0_norm1", "norm"]   # file order differs from the model order
    rng = np.random.default_rng(0)
    for s, n in zip(specs, names):
        s = random_dyt_spec(s.channels, lanes, s.in_bits, s.out_bits, alpha=s.alpha, name=n)
        s.save(conv / f"{n}.spec.json")
        np.savez(conv / f"{n}.inputs.npz", x=rng.integers(-(1 << (s.in_bits - 1)), 1 << (s.in_bits - 1),
                                                         (40, s.channels)))
    (conv / "config.json").write_text('{"dyt_layers": {"blocks.0.norm1": {}, "blocks.1.norm1": {}, "norm": {}}}')
    return conv


def test_rtl_engine_cli_writes_images_and_manifest(tmp_path, capsys):
    from hardyt.hw.emit import load_manifest
    from hardyt.scripts.cli import main

    conv = converted_dir(tmp_path)
    assert main(["rtl", str(conv), "--engine", "--out", str(tmp_path / "eng")]) == 0
    assert "259 cycles to load a layer" in capsys.readouterr().out
    m = load_manifest(tmp_path / "eng")
    assert [lay["name"] for lay in m["layers"]] == ["blocks_0_norm1", "blocks_1_norm1", "norm"]
    assert m["core"] == "dyt-engine" and m["latency"] == 2 and m["frame"]["beat_bits"] == 32
    for lay in m["layers"]:
        words = np.fromfile(tmp_path / "eng" / lay["image"], dtype="<u4")
        mem = (tmp_path / "eng" / lay["image_mem"]).read_text().split()
        assert len(words) == lay["frame_beats"] == 66 and [int(w, 16) for w in mem] == words.tolist()
        assert (words[0] >> 8) & 0xFF == lay["index"] and lay["load_cycles"] == 259
    assert main(["rtl", str(conv), "--engine", "--tanh", "pwl", "--out", str(tmp_path / "x")]) == 1
    assert "does not apply" in capsys.readouterr().err


def test_rtl_engine_refuses_unsupported_layer_by_name(tmp_path, capsys):
    from hardyt.scripts.cli import main

    conv = converted_dir(tmp_path)
    random_dyt_spec(4, 2, 8, 8, affine="channel", name="head_norm").save(conv / "head_norm.spec.json")
    assert main(["rtl", str(conv), "--engine", "--out", str(tmp_path / "eng")]) == 1
    err = capsys.readouterr().err
    assert "layer head_norm" in err and "channel affine" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "eng").exists()


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_sim_engine_bit_exact_and_corrupted_image_named(simulator, tmp_path, capsys):
    """`hardyt sim` on the engine: every layer's real activations exact, full rate across switches, bad frames
    handled; then a corrupted image fails the run naming its layer."""
    import shutil

    from hardyt.scripts.cli import main

    conv = converted_dir(tmp_path)
    eng = tmp_path / "eng"
    assert main(["rtl", str(conv), "--engine", "--out", str(eng)]) == 0
    capsys.readouterr()
    assert main(["sim", str(eng), "--simulator", simulator, "--vectors", "64", "--activations", str(conv)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "real activations for 3 of 3" in out and "1.000 beats/cycle" in out, out
    bad = tmp_path / "bad"
    shutil.copytree(eng, bad)
    image = bytearray((bad / "blocks_1_norm1.coef.bin").read_bytes())
    image[4 * 7] ^= 0x10
    (bad / "blocks_1_norm1.coef.bin").write_bytes(bytes(image))
    assert main(["sim", str(bad), "--simulator", simulator, "--vectors", "32"]) == 1
    out = capsys.readouterr().out
    assert "layer blocks_1_norm1: coefficient image blocks_1_norm1.coef.bin rejected by the engine (bad checksum)" \
        in out, out
