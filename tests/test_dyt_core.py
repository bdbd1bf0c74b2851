# amaranth: UnusedElaboratable=no
"""DyTCore in Amaranth's simulator: bit-exact with the golden model under random valid/ready."""
import numpy as np
import pytest

from hardyt.hw.datapath.cores import build_core, random_dyt_spec
from hardyt.hw.datapath.dyt_core import DyTCore
from hardyt.quant.errors import SpecError


def random_stream(spec, beats, seed):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (spec.in_bits - 1)), (1 << (spec.in_bits - 1))
    x = rng.integers(lo, hi, (beats, spec.lanes))
    # Mostly whole tokens, plus some short ones ending early with last.
    last = (rng.random(beats) < 0.15).astype(np.int64)
    return x, last


CONFIGS = [(tanh, affine, lanes) for tanh in ("lut", "pwl", "threshold") for affine in ("folded", "channel") for lanes in (1, 2, 8)]


@pytest.mark.parametrize("tanh,affine,lanes", CONFIGS)
def test_random_stream_matches_golden(tanh, affine, lanes, run_stream):
    channels = 16 if lanes == 8 else 4 * lanes
    spec = random_dyt_spec(channels, lanes, 8, 8, tanh=tanh, affine=affine, seed=lanes,
                           alpha_shift=(lanes == 2), segments=8, drop_bits=int(lanes == 1))
    x, last = random_stream(spec, 80, seed=lanes)
    got, got_last, _, _ = run_stream(DyTCore(spec), x, last, valid_p=0.7, ready_p=0.6, seed=lanes)
    np.testing.assert_array_equal(got, spec.reference_stream(x, last))
    np.testing.assert_array_equal(got_last, last)


@pytest.mark.parametrize("lanes,in_bits,out_bits,tanh,affine", [
    (3, 5, 11, "lut", "channel"),      # odd lane count, output wider than input
    (2, 12, 4, "pwl", "folded"),       # wide input, 4-bit output
    (1, 10, 6, "lut", "folded"),       # drop_bits on a 10-bit index
    (3, 12, 5, "threshold", "channel"),  # 31 thresholds, alpha shifts widen the compared code
    (2, 4, 2, "threshold", "folded"),  # two stages, 3 thresholds
])
def test_odd_shapes(lanes, in_bits, out_bits, tanh, affine, run_stream):
    spec = random_dyt_spec(2 * lanes, lanes, in_bits, out_bits, tanh=tanh, affine=affine, seed=9,
                           drop_bits=2 if tanh == "lut" else 0, segments=32, alpha_shift=True)
    x, last = random_stream(spec, 40, seed=9)
    got, _, _, _ = run_stream(DyTCore(spec), x, last, valid_p=0.5, ready_p=0.5, seed=9)
    np.testing.assert_array_equal(got, spec.reference_stream(x, last))


@pytest.mark.parametrize("tanh,affine", [(t, a) for t in ("lut", "pwl", "threshold") for a in ("folded", "channel")])
def test_exhaustive_8bit_every_lane(tanh, affine, run_stream):
    """Every 8-bit code on every lane; sink always ready: also latency and II = 1."""
    spec = random_dyt_spec(16, 8, 8, 8, tanh=tanh, affine=affine, seed=3, segments=16)
    codes = np.arange(-128, 128)
    # Beat k carries codes k, k+32, ... rotated over lanes: every code meets every channel.
    x = np.stack([np.roll(codes, 32 * j) for j in range(8)], axis=1)
    x = np.concatenate([x, np.roll(x, 1, axis=1)])
    last = np.zeros(len(x), dtype=np.int64)
    core = DyTCore(spec)
    got, _, t_in, t_out = run_stream(core, x, last)
    np.testing.assert_array_equal(got, spec.reference_stream(x, last))
    assert t_out[0] - t_in[0] == core.latency
    assert np.all(np.diff(t_in) == 1) and np.all(np.diff(t_out) == 1), "not one beat per cycle"


@pytest.mark.parametrize("tanh,affine,shift,expect", [
    ("lut", "folded", False, 2), ("pwl", "folded", False, 3),
    ("lut", "channel", False, 4), ("pwl", "channel", True, 6),
])
def test_latency(tanh, affine, shift, expect, run_stream):
    spec = random_dyt_spec(4, 2, 6, 6, tanh=tanh, affine=affine, alpha_shift=shift, segments=4)
    core = DyTCore(spec)
    assert core.latency == expect
    x, last = random_stream(spec, 8, seed=1)
    got, _, t_in, t_out = run_stream(core, x, last)
    assert [o - i for i, o in zip(t_in, t_out)] == [expect] * 8
    np.testing.assert_array_equal(got, spec.reference_stream(x, last))


def test_ready_is_not_combinational_from_sink(ready_while_sink_toggles):
    """i.ready must not follow o.ready within a cycle (it comes from a register)."""
    spec = random_dyt_spec(4, 4, 6, 6, tanh="pwl", affine="channel", segments=4)
    assert ready_while_sink_toggles(DyTCore(spec), fill_cycles=10) == [0, 0, 0, 0]


def test_rejects_non_dyt_spec():
    with pytest.raises(SpecError, match="spec"):
        DyTCore({"channels": 4})
    with pytest.raises(SpecError):
        build_core(object())
