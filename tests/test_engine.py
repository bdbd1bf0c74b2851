# amaranth: UnusedElaboratable=no
"""DyTEngine in Amaranth's simulator: layer switches, loading while streaming, bad frames."""
import dataclasses
import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from conftest import stream_get, stream_put
from hardyt.hw.datapath.coef_frame import STATUS, frame_beats, load_cycles
from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.datapath.engine import DyTEngine
from hardyt.hw.emission.engine_emit import emit_engine
from hardyt.hw.datapath.engine_set import engine_shape, layer_frame
from hardyt.quant.contract.spec import ChannelAffine
from hardyt.quant.errors import HardytError


def channel_spec(channels, lanes, in_bits, tanh_bits, *, shift, out_bits, gamma_bits=8, alpha=None, seed=0,
                 name="dyt"):
    """A channel affine layer with its own shift, output and gamma widths (random gamma/beta from ``seed``;
    beta up to twice the output range, so that about half the channels saturate)."""
    spec = random_dyt_spec(channels, lanes, in_bits, tanh_bits, affine="channel", alpha=alpha, seed=seed, name=name)
    rng = np.random.default_rng(seed + 100)
    g_hi = (1 << (gamma_bits - 1)) - 1
    top = (1 << (out_bits - 1)) << shift
    aff = ChannelAffine(tuple(int(v) for v in rng.integers(-g_hi, g_hi + 1, channels)),
                        tuple(int(v) for v in rng.integers(-2 * top, 2 * top, channels)), gamma_bits,
                        out_bits + shift + 2, shift, out_bits, 1.0)
    return dataclasses.replace(spec, affine=aff)


def layer_set(lanes=2, kind="folded"):
    """Three layers of different channels, widths and alphas (the engine is sized for the widest).

    ``kind="mixed"``: the first and last have channel affine with different shifts and output widths.
    """
    if kind == "mixed":
        return [channel_spec(8, lanes, 8, 8, shift=6, out_bits=8, alpha=0.03, name="a"),
                random_dyt_spec(4, lanes, 6, 6, alpha=0.2, name="b"),
                channel_spec(8, lanes, 8, 6, shift=3, out_bits=10, gamma_bits=6, alpha=0.005, seed=1, name="c")]
    return [random_dyt_spec(8, lanes, 8, 8, alpha=0.03, name="a"),
            random_dyt_spec(4, lanes, 6, 6, alpha=0.2, name="b"),
            random_dyt_spec(8, lanes, 8, 8, alpha=0.005, name="c")]


def run_engine(engine, frames, tokens, *, valid_p=1.0, ready_p=1.0, coef_p=1.0, seed=0, wait_frames=0,
               max_cycles=20000, coef_taken=None):
    """Send coefficient ``frames`` (lists of words) and ``tokens`` ((layer, x beats, last)) at once.

    Returns output beats, last flags, input/output handshake cycles and the status after each frame.
    ``wait_frames``: the data stream starts after this many frames ended. ``coef_taken``: a list that
    receives the cycle of every coefficient beat's handshake.
    """
    rng = np.random.default_rng(seed)
    P = engine.shape.lanes
    got, got_last, t_in, t_out, statuses = [], [], [], [], []
    n = sum(len(x) for _, x, _ in tokens)

    async def coef_source(ctx):
        cycle = 0
        for words in frames:
            for k, w in enumerate(words):
                cycle += await stream_put(ctx, engine.coef, {"data": int(w), "last": int(k == len(words) - 1)},
                                          idle=lambda: rng.random() > coef_p)
                if coef_taken is not None:
                    coef_taken.append(cycle)

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
                cycle += await stream_put(ctx, engine.i, {"data": [int(v) for v in x[k]], "last": int(last[k])},
                                          idle=lambda: rng.random() > valid_p, also=[(engine.layer_select, layer)])
                t_in.append(cycle)

    async def consumer(ctx):
        cycle = 0
        while len(got) < n and cycle < max_cycles:
            payload = await stream_get(ctx, engine.o, rng.random() < ready_p)
            cycle += 1
            if payload is not None:
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


@pytest.mark.parametrize("kind,seed", [("folded", 1), ("folded", 2), ("mixed", 1), ("mixed", 2)])
def test_switches_under_backpressure_never_mix_layers(kind, seed):
    """Every layer loads while the one before streams; random idle on all three streams. ``mixed``: two
    channel affine layers of different shifts and output widths around a folded one."""
    specs = layer_set(kind=kind)
    shape = engine_shape(specs)
    engine = DyTEngine(shape)
    order = [0, 1, 2, 1, 0, 2]
    # Frames in layer order, each sent as soon as the loader can take it: it writes the bank not in use.
    frames = [layer_frame(specs[i], i, shape) for i in order]
    tokens, expect = tokens_for(specs, order, np.random.default_rng(seed))
    got, got_last, _, _, statuses = run_engine(engine, frames, tokens, valid_p=0.7, ready_p=0.6, coef_p=0.8,
                                               seed=seed)
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(got_last, np.concatenate([t[2] for t in tokens]))
    assert statuses == [1] * len(frames)
    if kind == "mixed":   # the layers' own saturation bounds were exercised, not only the engine's widest
        for idx, top in ((0, 127), (2, 511)):
            at = np.concatenate([np.full(len(x), i == idx) for i, x, _ in tokens])
            assert {-top - 1, top} <= set(expect[at].ravel().tolist())


@pytest.mark.parametrize("kind,latency", [("folded", 3), ("mixed", 5)])
def test_layer_switch_costs_no_cycle_at_full_rate(kind, latency):
    """Both sets loaded first, then tokens of layer 0, 1 back to back: one beat per cycle throughout."""
    check_full_rate(layer_set(kind=kind), latency)


def check_full_rate(specs, latency):
    """The engine of ``specs`` has ``latency``; layers 0 and 1 loaded, their tokens back to back stream at one
    beat per cycle, exact."""
    shape = engine_shape(specs)
    engine = DyTEngine(shape)
    assert engine.latency == latency
    frames = [layer_frame(specs[i], i, shape) for i in (0, 1)]
    tokens, expect = tokens_for(specs, [0, 1], np.random.default_rng(3))
    got, _, t_in, t_out, _ = run_engine(engine, frames, tokens, wait_frames=2)
    np.testing.assert_array_equal(got, expect)
    assert np.all(np.diff(t_in) == 1) and np.all(np.diff(t_out) == 1), "a bubble in the stream"
    assert t_out[0] - t_in[0] == engine.latency


@pytest.mark.parametrize("kind", ["folded", "mixed"])
def test_loading_does_not_disturb_the_streaming_layer(kind):
    """Layer 0 streams while frames for layers 1, 2, 1 are written at full speed: layer 0 stays exact."""
    specs = layer_set(kind=kind)
    shape = engine_shape(specs)
    frames = [layer_frame(specs[i], i, shape) for i in (0, 1, 2, 1)]
    tokens, expect = tokens_for(specs, [0], np.random.default_rng(4), per_layer=300)
    got, _, _, _, statuses = run_engine(DyTEngine(shape), frames, tokens, ready_p=0.9, wait_frames=1)
    np.testing.assert_array_equal(got, expect)
    assert statuses == [1] * 4, "the frames did not all load while layer 0 streamed"


def _bad(frame, what, table_beats=64):
    """``frame`` broken as ``what`` says (checksum resealed unless the checksum is the point)."""
    f = list(frame)
    affine = 1 + table_beats           # the affine section's first beat
    if what == "short":
        return f[:-2] + [f[-1]]
    if what == "short in gamma":
        return f[:affine + 2] + [f[-1]]
    if what == "long":
        return f[:-1] + [f[-1], 0]
    if what == "layer":
        f[0] = (f[0] & ~0xFF00) | (7 << 8)
    elif what == "magic":
        f[0] ^= 1
    elif what == "checksum":
        f[5] ^= 1 << 3
    elif what == "checksum in beta":
        f[-2] ^= 1 << 3
    elif what == "beats":
        f[0] = (f[0] & 0xFFFF) | (99 << 16)
    elif what == "shift":              # above the engine's largest
        f[affine] = (f[affine] & ~0xFF) | 9
    elif what == "out bits":           # wider than the engine's output
        f[affine] = (f[affine] & ~0xFF00) | (11 << 8)
    if not what.startswith("checksum"):
        f[-1] = sum(f[:-1]) & 0xFFFFFFFF
    return f


@pytest.mark.parametrize("kind,layer,what,status", [
    ("folded", 1, "short", 3), ("folded", 1, "long", 3), ("folded", 1, "layer", 2), ("folded", 1, "magic", 2),
    ("folded", 1, "beats", 2), ("folded", 1, "checksum", 4),
    ("mixed", 2, "short in gamma", 3), ("mixed", 2, "long", 3), ("mixed", 2, "shift", 2),
    ("mixed", 2, "out bits", 2), ("mixed", 2, "checksum in beta", 4), ("mixed", 1, "checksum", 4)])
def test_bad_frame_is_rejected_and_the_next_one_loads(kind, layer, what, status):
    """A bad frame leaves no set behind (status says why); the good frame after it loads and streams."""
    specs = layer_set(kind=kind)
    shape = engine_shape(specs)
    frames = [_bad(layer_frame(specs[layer], layer, shape), what), layer_frame(specs[layer], layer, shape)]
    tokens, expect = tokens_for(specs, [layer], np.random.default_rng(5))
    got, _, _, _, statuses = run_engine(DyTEngine(shape), frames, tokens, coef_p=0.7, valid_p=0.8, seed=5)
    assert statuses == [status, 1], STATUS[statuses[0]]
    np.testing.assert_array_equal(got, expect)


def test_channel_frame_is_refused_by_an_engine_without_affine():
    """A channel affine frame (magic 0xDA) sent to a folded-only engine: bad header, nothing loaded."""
    mixed = layer_set(kind="mixed")
    folded = layer_set()
    shape = engine_shape(folded)
    frames = [layer_frame(mixed[0], 0, engine_shape(mixed)), layer_frame(folded[1], 1, shape)]
    tokens, expect = tokens_for(folded, [1, 0], np.random.default_rng(7), per_layer=1)
    got, _, _, _, statuses = run_engine(DyTEngine(shape), frames, tokens, max_cycles=1500)
    assert statuses == [2, 1]
    np.testing.assert_array_equal(got, expect[:len(got)])
    assert len(got) == len(tokens[0][1]), "layer 0 ran without a loaded set"


def test_unloaded_layer_stalls_instead_of_using_another_set():
    """A token of a layer no bank holds waits: nothing comes out."""
    specs = layer_set()
    shape = engine_shape(specs)
    tokens, _ = tokens_for(specs, [2], np.random.default_rng(6), per_layer=1)
    got, _, _, _, _ = run_engine(DyTEngine(shape), [layer_frame(specs[0], 0, shape)], tokens, max_cycles=600)
    assert len(got) == 0


@pytest.mark.parametrize("kind,layer", [("folded", 0), ("mixed", 0), ("mixed", 1)])
def test_load_time_is_what_the_manifest_says(kind, layer):
    """With the source always valid, a frame takes ``load_cycles`` cycles from its header to its checksum."""
    specs = layer_set(kind=kind)
    shape = engine_shape(specs)
    engine = DyTEngine(shape)
    words = layer_frame(specs[layer], layer, shape)
    affine = specs[layer].affine.mode == "channel"
    assert len(words) == frame_beats(shape.in_bits, shape.table_bits, *(
        (specs[layer].channels, shape.affine.gamma_bits, shape.affine.beta_bits) if affine else ()))
    taken = []
    tokens, expect = tokens_for(specs, [layer], np.random.default_rng(8), per_layer=1)
    got, _, _, _, statuses = run_engine(engine, [words], tokens, wait_frames=1, coef_taken=taken)
    assert statuses == [1] and np.array_equal(got, expect)
    assert taken[-1] - taken[0] + 1 == load_cycles(shape.in_bits, specs[layer].channels if affine else 0)
    assert load_cycles(8) == 259 and load_cycles(8, 96) == 452


def test_unsupported_layers_are_refused_by_name():
    wide = channel_spec(4, 1, 8, 8, shift=30, out_bits=8, name="odd")
    for odd, message in ((random_dyt_spec(4, 1, 8, 8, name="odd", tanh="pwl"), "tanh pwl"),
                         (random_dyt_spec(4, 1, 8, 8, name="odd", alpha_shift=True), "alpha shifts"),
                         (wide, "3[89]-bit beta")):
        with pytest.raises(HardytError, match=f"layer odd: .*{message}"):
            engine_shape([random_dyt_spec(4, 1, 8, 8, name="ok"), odd])


# -- emission, the command line, and the emitted Verilog on both simulators ---------------------------

def converted_dir(tmp_path, lanes=2, kind="folded"):
    """A converted-model directory: three layer specs, a config giving their model order, activations.

    ``kind="mixed"``: blocks.0.norm1 and blocks.1.norm1 channel affine (different shifts and output widths, as
    ``--no-fold`` writes them), norm folded.
    """
    conv = tmp_path / "conv"
    conv.mkdir()
    specs = layer_set(lanes, kind)
    # Folded: the file order differs from the model order.
    names = ["blocks_1_norm1", "blocks_0_norm1", "norm"] if kind == "folded" else ["blocks_0_norm1", "norm",
                                                                                   "blocks_1_norm1"]
    rng = np.random.default_rng(0)
    for s, n in zip(specs, names):
        s = dataclasses.replace(s, name=n)
        s.save(conv / f"{n}.spec.json")
        np.savez(conv / f"{n}.inputs.npz", x=rng.integers(-(1 << (s.in_bits - 1)), 1 << (s.in_bits - 1),
                                                         (40, s.channels)))
    (conv / "config.json").write_text('{"dyt_layers": {"blocks.0.norm1": {}, "blocks.1.norm1": {}, "norm": {}}}')
    return conv


def test_rtl_engine_cli_writes_images_and_manifest(tmp_path, capsys):
    from hardyt.hw.emission.emit import load_manifest
    from hardyt.scripts.cli import main

    conv = converted_dir(tmp_path)
    assert main(["rtl", str(conv), "--engine", "--out", str(tmp_path / "eng")]) == 0
    assert "259 cycles to load a layer" in capsys.readouterr().out
    m = load_manifest(tmp_path / "eng")
    assert [lay["name"] for lay in m["layers"]] == ["blocks_0_norm1", "blocks_1_norm1", "norm"]
    assert m["core"] == "dyt-engine" and m["latency"] == 3 and m["frame"]["beat_bits"] == 32
    for lay in m["layers"]:
        words = np.fromfile(tmp_path / "eng" / lay["image"], dtype="<u4")
        mem = (tmp_path / "eng" / lay["image_mem"]).read_text().split()
        assert len(words) == lay["frame_beats"] == 66 and [int(w, 16) for w in mem] == words.tolist()
        assert (words[0] >> 8) & 0xFF == lay["index"] and lay["load_cycles"] == 259
    assert main(["rtl", str(conv), "--engine", "--tanh", "pwl", "--out", str(tmp_path / "x")]) == 1
    assert "does not apply" in capsys.readouterr().err


def test_rtl_engine_mixed_set_manifest(tmp_path, capsys):
    """A set with channel affine layers: their frames carry the affine section, the manifest says which
    layers have it, its widths and shifts, each layer's load time, and the stages the latency counts."""
    from hardyt.hw.emission.emit import load_manifest
    from hardyt.scripts.cli import main

    conv = converted_dir(tmp_path, kind="mixed")
    assert main(["rtl", str(conv), "--engine", "--out", str(tmp_path / "eng")]) == 0
    out = capsys.readouterr().out
    assert "2 with channel affine" in out and "66-73 x 32-bit beats" in out and "259-276 cycles" in out, out
    m = load_manifest(tmp_path / "eng")
    assert m["latency"] == 5 == len(m["stages"]) and m["out_bits"] == 10
    assert m["frame"]["shifts"] == [3, 6] and m["frame"]["gamma_bits"] == 8
    lays = {lay["name"]: lay for lay in m["layers"]}
    assert lays["norm"]["affine"] == "folded" and lays["norm"]["load_cycles"] == 259
    c = lays["blocks_1_norm1"]
    assert c["affine"] == "channel" and c["load_cycles"] == 259 + 1 + 2 * 8
    words = np.fromfile(tmp_path / "eng" / c["image"], dtype="<u4")
    assert words[0] & 0xFF == 0xDA and words[65] == 3 | (10 << 8) and len(words) == c["frame_beats"]


def test_rtl_engine_refuses_unsupported_layer_by_name(tmp_path, capsys):
    from hardyt.scripts.cli import main

    conv = converted_dir(tmp_path)
    random_dyt_spec(4, 2, 8, 8, tanh="pwl", name="head_norm").save(conv / "head_norm.spec.json")
    assert main(["rtl", str(conv), "--engine", "--out", str(tmp_path / "eng")]) == 1
    err = capsys.readouterr().err
    assert "layer head_norm" in err and "tanh pwl" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "eng").exists()


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("kind,corrupt,beat", [("folded", "blocks_1_norm1", 7), ("mixed", "blocks_1_norm1", 67)])
def test_sim_engine_bit_exact_and_corrupted_image_named(simulator, kind, corrupt, beat, tmp_path, capsys):
    """`hardyt sim` on the engine: every layer's real activations exact, full rate across switches, bad frames
    handled; then a corrupted image fails the run naming its layer. ``mixed``: two channel affine layers of
    different shifts and output widths (the throughput test switches between them) and a folded one; the
    corrupted word is in a gamma section."""
    import shutil

    from hardyt.scripts.cli import main

    conv = converted_dir(tmp_path, kind=kind)
    eng = tmp_path / "eng"
    assert main(["rtl", str(conv), "--engine", "--out", str(eng)]) == 0
    capsys.readouterr()
    assert main(["sim", str(eng), "--simulator", simulator, "--vectors", "32", "--activations", str(conv)]) == 0
    out = capsys.readouterr().out
    assert "PASS" in out and "real activations for 3 of 3" in out and "1.000 beats/cycle" in out, out
    bad = tmp_path / "bad"
    shutil.copytree(eng, bad)
    image = bytearray((bad / f"{corrupt}.coef.bin").read_bytes())
    image[4 * beat] ^= 0x10        # a table beat (folded), the first gamma beat (channel affine)
    (bad / f"{corrupt}.coef.bin").write_bytes(bytes(image))
    assert main(["sim", str(bad), "--simulator", simulator, "--vectors", "16"]) == 1
    out = capsys.readouterr().out
    assert f"layer {corrupt}: coefficient image {corrupt}.coef.bin rejected by the engine (bad checksum)" in out, out


def test_resealed_image_fails_the_scoreboard_naming_layer_and_channel(tmp_path):
    """One table entry changed and the checksum recomputed: the frame loads, so only the scoreboard can
    notice — and it does, on the layer and the channels that read the entry (every code is streamed)."""
    import shutil

    from hardyt.hw.coef_frame import checksum
    from hardyt.sim.engine_runner import run_engine_sim

    eng = tmp_path / "eng"
    emit_engine(layer_set(2), eng)
    r = run_engine_sim(eng, vectors=8, cache=tmp_path / "cache")
    assert r["ok"], r["failures"] + r["report"]
    # Every code of every layer went through: the code sweep alone is 2**in_bits elements per layer.
    assert all(v["elements"] >= 1 << s.in_bits for v, s in zip(r["per_layer"].values(), layer_set(2)))
    bad = tmp_path / "bad"
    shutil.copytree(eng, bad)
    words = np.fromfile(bad / "b.coef.bin", dtype="<u4")
    words[1] ^= 1                          # the table's first word: entry 0 (code 0), its lowest bit
    words[-1] = checksum(words[:-1])       # re-sealed: the frame is valid
    words.tofile(bad / "b.coef.bin")
    (bad / "b.coef.mem").write_text("".join(f"{int(w):08x}\n" for w in words))
    r = run_engine_sim(bad, vectors=8, cache=tmp_path / "cache")
    assert not r["ok"] and r["mismatches"] > 0
    assert r["per_layer"]["b"]["mismatches"] > 0 and r["per_layer"]["a"]["mismatches"] == 0
    named = [line for line in r["report"] if line.startswith("layer b:")]
    assert named and all(re.search(r"channel \d+: input 0 ", line) for line in named), r["report"]
