"""The threshold tanh: equal to the correctly rounded LUT on every input code, its stages, spec and CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest

from hardyt.quant import DyTSpec, SpecError, golden, load_spec
from hardyt.quant.contract.spec import SPEC_VERSION
from hardyt.quant.contract.tanh import TanhThreshold, build_lut, build_threshold, error_report, range_out_scale, tanh_int
from hardyt.quant.contract.threshold import stage_search, threshold_stages


def _codes(in_bits):
    return np.arange(-(1 << (in_bits - 1)), 1 << (in_bits - 1), dtype=np.int64)


# alpha * 2**(in_bits-1): deep in the linear region, saturating inside, at and far past the range.
@pytest.mark.parametrize("in_bits,out_bits", [(2, 2), (4, 3), (6, 4), (8, 8), (9, 6), (12, 8), (8, 12)])
@pytest.mark.parametrize("reach", [0.01, 1.0, 3.0, 40.0])
@pytest.mark.parametrize("out_range", ["full", "layer"])
def test_equals_lut_and_stage_search_on_every_code(in_bits, out_bits, reach, out_range):
    a = reach / (1 << (in_bits - 1))
    scale = range_out_scale(in_bits, out_bits, a) if out_range == "layer" else None
    t, lut = build_threshold(in_bits, out_bits, a, scale), build_lut(in_bits, out_bits, a, 0, scale)
    x = _codes(in_bits)
    y = tanh_int(x, t)
    assert np.array_equal(y, tanh_int(x, lut))
    assert np.array_equal(stage_search(x, threshold_stages(t)) - (1 << (out_bits - 1)), y)
    assert [len(s) for s in threshold_stages(t)] == [1 << i for i in range(out_bits)]


def test_ties_round_as_the_lut():
    """tanh(a*x)/s exactly k + 1/2 at x = +-1 (s = 1): +1 -> k + 1, -1 -> -(k + 1), as the LUT's magnitude."""
    a = float(np.arctanh(2.5 / 127))        # out_scale 1/127: tanh(a)*127 = 2.5 up to float rounding
    for scale in (None, float(np.tanh(a)) / 2.5):
        t, lut = build_threshold(4, 8, a, scale), build_lut(4, 8, a, 0, scale)
        assert tanh_int(np.array([-1, 1]), t).tolist() == tanh_int(np.array([-1, 1]), lut).tolist()
    assert tanh_int(np.array([-1, 1]), build_threshold(4, 8, a, float(np.tanh(a)) / 2.5)).tolist() == [-3, 3]


@pytest.mark.parametrize("in_bits", [8, 10, 12, 16])
def test_error_report_half_ulp_and_255_words(in_bits):
    r = error_report(build_threshold(in_bits, 8, 3.0 / (1 << (in_bits - 1))))
    assert r.worst_ulp <= 0.5 and r.rom_entries == 255 and r.kind == "threshold"


def test_never_reached_levels_take_one_more_bit():
    t = build_threshold(6, 4, 0.01)
    assert t.thresholds[-1] == 32 and t.word_bits == 7 and t.rom_bits == 15 * 7
    assert tanh_int(np.array([31]), t)[0] < 7


@pytest.mark.parametrize("thresholds,match", [
    ((-8, -2, -1, 0, 1, 2), "7 entries"),
    ((-8, -2, -1, 0, 1, 3, 2), "non-decreasing"),
    ((-7, -2, -1, 0, 1, 2, 3), "entry 0"),
    ((-8, -2, -1, 0, 1, 2, 9), "tanh.thresholds"),
])
def test_bad_thresholds_named(thresholds, match):
    with pytest.raises(SpecError, match=match):
        TanhThreshold(4, 3, 0.5, thresholds)


def test_spec_roundtrip_version_3_and_alpha_shift(tmp_path):
    t = build_threshold(8, 8, 0.02, range_out_scale(8, 8, 0.02))
    spec = DyTSpec(4, 2, 6, 0.01, 2.0, t, alpha_shift=(0, 1, 2, 0))
    spec.save(tmp_path / "s.json")
    d = json.loads((tmp_path / "s.json").read_text())
    assert d["version"] == 3 == SPEC_VERSION and d["tanh"]["kind"] == "threshold"
    assert load_spec(tmp_path / "s.json") == spec
    x = _codes(6)[:, None].repeat(4, axis=1)
    lut_spec = DyTSpec(4, 2, 6, 0.01, 2.0, build_lut(8, 8, 0.02, 0, t.out_scale), alpha_shift=(0, 1, 2, 0))
    assert np.array_equal(golden(x, spec), golden(x, lut_spec))
    d["version"] = 2                             # a threshold tanh is not a version-2 kind
    with pytest.raises(SpecError, match="threshold"):
        DyTSpec.from_dict(d)


def test_cli_tanh_threshold(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hardyt.scripts.cli", "tanh", "--kind", "threshold", "--in-bits", "16",
                        "--out-bits", "8", "--alpha-scale", "0.0001", "--json", "--plot", str(tmp_path / "t.png")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["worst_ulp"] <= 0.5 and d["rom_entries"] == 255 and d["stages"] == 8 and d["word_bits"] == 16   # T reached in range


@pytest.mark.parametrize("in_bits,affine,shift", [(12, "folded", False), (10, "channel", False), (8, "folded", True)])
def test_qonnx_multithreshold_bit_exact(tmp_path, in_bits, affine, shift):
    """QONNX export: the threshold tanh's own thresholds are the MultiThreshold (alpha shifts: via the table)."""
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    from hardyt.hw.cores import random_dyt_spec
    from hardyt.quant.export import layer_qonnx, save_model

    spec = random_dyt_spec(4, 2, in_bits, 8, tanh="threshold", affine=affine, seed=2, alpha_shift=shift,
                           alpha=0.3 / (1 << (in_bits - 1)), out_range="full")     # levels past tanh(0.3): NEVER
    codes = _codes(in_bits)[:, None].repeat(4, axis=1)
    save_model(layer_qonnx(spec, rows=len(codes)), tmp_path / "l.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "l.onnx"))
    got = execute_onnx(ModelWrapper(str(tmp_path / "l.onnx")), {"codes": codes.astype(np.float32)})["y"]
    assert np.array_equal(got, golden(codes, spec))


def test_convert_spec_threshold_equals_lut():
    """What ``hardyt convert --tanh threshold`` builds per layer computes what ``--tanh lut`` does, element for element."""
    import torch

    from hardyt.quant.conversion.fixed_dyt import FixedDyT, make_spec

    gamma, beta = np.linspace(-1.0, 2.0, 6), np.linspace(0.5, -0.5, 6)
    x = torch.randn(64, 6) * 3
    for kw in ({}, {"gamma": gamma, "beta": beta}, {"alpha_shift": [0, 1, 0, 2, 0, 1]}):
        specs = [make_spec("blocks.0.norm1", 0.7, 0.02, {"tanh": k, "in_bits": 12}, channels=6, **kw)
                 for k in ("threshold", "lut")]
        assert specs[0].tanh.kind == "threshold"
        assert torch.equal(FixedDyT(specs[0])(x), FixedDyT(specs[1])(x))


def test_cli_rtl_threshold(tmp_path):
    """``hardyt rtl --tanh threshold``: one .mem per stage ROM, the 16+-word stages asking for block RAM."""
    from hardyt.hw.emit import load_manifest
    from hardyt.scripts.cli import main

    assert main(["rtl", "--channels", "4", "--lanes", "2", "--in-bits", "10", "--tanh", "threshold",
                 "--out", str(tmp_path)]) == 0
    m = load_manifest(tmp_path)
    assert sorted(m["mems"]) == [f"dyt_thr{i}.mem" for i in range(1, 8)] and m["latency"] == 12
    assert (tmp_path / "dyt_thr7.mem").read_text().count("\n") == 128
    assert '(* rom_style = "block" *)' in (tmp_path / "dyt.v").read_text()


@pytest.mark.parametrize("in_bits,out_bits,affine,lanes",
                         [(8, 8, "folded", 2), (10, 7, "channel", 3), (12, 8, "folded", 1)])
def test_radix4_core_every_code(in_bits, out_bits, affine, lanes, run_stream):
    """The radix-4 search (half the stages, three compares each; an odd output width starts with a radix-2
    stage) in Amaranth's simulator: every input code on every lane equals the golden model, II = 1."""
    from hardyt.hw.datapath.cores import random_dyt_spec
    from hardyt.hw.datapath.dyt_core import DyTCore
    from hardyt.quant.contract.threshold import radix_search, radix_stages

    spec = random_dyt_spec(2 * lanes, lanes, in_bits, out_bits, tanh="threshold", affine=affine, seed=4)
    t, x = spec.tanh, _codes(in_bits)
    assert [b for b, _ in radix_stages(t.thresholds, out_bits, 4)] == [1] * (out_bits % 2) + [2] * (out_bits // 2)
    assert np.array_equal(radix_search(x, radix_stages(t.thresholds, out_bits, 4)),
                          tanh_int(x, t) + (1 << (out_bits - 1)))
    beats = np.stack([np.roll(x, 37 * j) for j in range(lanes)], axis=1)
    last = np.zeros(len(beats), dtype=np.int64)
    core, radix2 = DyTCore(spec, radix=4), DyTCore(spec)
    got, _, t_in, t_out = run_stream(core, beats, last)
    np.testing.assert_array_equal(got, spec.reference_stream(beats, last))
    assert t_out[0] - t_in[0] == core.latency < radix2.latency
    assert np.all(np.diff(t_out) == 1)
