# amaranth: UnusedElaboratable=no
"""The LayerNorm baseline: spec, golden model (vs plain Python ints and vs float), core in
Amaranth's simulator (random valid/ready, full rate, latency), emission, lint, cocotb on Icarus."""
import dataclasses
import doctest
import json
import subprocess

import numpy as np
import pytest

from hardyt.hw.datapath.cores import build_core
from hardyt.hw.emission.emit import emit, load_manifest
from hardyt.hw.datapath.layernorm_core import LayerNormCore, tree_registers
from hardyt.hw.tools.toolchain import verilator_cmd, verilator_env
from hardyt.quant.contract import layernorm
from hardyt.quant.errors import HardytError, SpecError
from hardyt.quant.contract.layernorm import (LayerNormSpec, build_rsqrt_table, layernorm_golden as golden, layernorm_float, random_layernorm_spec,
                                    rsqrt_error)
from hardyt.quant.contract.spec_io import load_spec, spec_from_dict
from hardyt.scripts.cli import main
from hardyt.sim.stimulus import extreme_tokens, tokens_to_beats


def test_doctests():
    for module in (layernorm, __import__("hardyt.hw.datapath.layernorm_parts", fromlist=["x"])):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# -- spec -------------------------------------------------------------------------------------

def test_spec_json_round_trip_and_dispatch(tmp_path):
    spec = random_layernorm_spec(12, 3, 7, 9, seed=4, name="blocks.0.norm1")
    assert LayerNormSpec.from_json(spec.to_json()) == spec
    assert spec_from_dict(json.loads(spec.to_json())) == spec
    spec.save(tmp_path / "ln.spec.json")
    assert load_spec(tmp_path / "ln.spec.json") == spec


@pytest.mark.parametrize("change,field", [
    (dict(version=2), "version"),
    (dict(lanes=3), "lanes"),
    (dict(eps_q=0), "eps_q"),
    (dict(norm_frac=14), "norm_frac"),               # Z must be below R
    (dict(in_bits=17), "in_bits"),
])
def test_spec_rejects(change, field, tmp_path):
    d = random_layernorm_spec(10, 2, 8, 8).to_dict() | change
    (tmp_path / "s.json").write_text(json.dumps(d))
    with pytest.raises(SpecError) as e:
        load_spec(tmp_path / "s.json")
    assert e.value.field == field and "s.json" in str(e.value)


def test_spec_rejects_bad_tables_and_affine():
    spec = random_layernorm_spec(4, 1, 8, 8)
    with pytest.raises(SpecError, match="rsqrt.table"):
        dataclasses.replace(spec, rsqrt_table=spec.rsqrt_table[:-1])
    with pytest.raises(SpecError, match=r"affine.gamma\[2\]"):
        dataclasses.replace(spec, gamma=(1, 1, 1 << 12, 1))
    with pytest.raises(SpecError, match="affine.beta"):
        dataclasses.replace(spec, beta=(0, 0, 0))
    big = 1 << 14
    with pytest.raises(SpecError, match="affine.gamma_bits: too wide"):   # gamma * z would not fit int64
        dataclasses.replace(spec, rsqrt_frac=30, rsqrt_table=build_rsqrt_table(spec.rsqrt_index_bits, 30),
                            norm_frac=29, gamma_bits=32, channels=big, gamma=(1,) * big, beta=(0,) * big)


# -- golden model ---------------------------------------------------------------------------

def slow_layernorm(x, spec):
    """The integer contract in plain Python ints, one token and one channel at a time."""
    R, T, Z, A = spec.rsqrt_frac, spec.rsqrt_index_bits, spec.norm_frac, spec.affine_shift

    def rnd(v, s):                       # round half up (Python's >> floors, as the hardware's >>>)
        return (v + (1 << (s - 1))) >> s if s else v

    def sat(v, bits):
        return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, v))

    out = []
    for row in x.tolist():
        C = len(row)
        s1, s2 = sum(row), sum(v * v for v in row)
        w = C * s2 - s1 * s1 + spec.eps_q
        e = (w.bit_length() - 1) // 2
        u = (w << R) >> (2 * e)
        assert 1 << R <= u < 4 << R
        r0 = spec.rsqrt_table[(u >> (R + 2 - T)) - (1 << (T - 2))]
        a = rnd(r0 * r0, R)
        b = rnd(u * a, R)
        r1 = rnd(r0 * (3 * (1 << R) - b), R + 1)
        out.append([sat(rnd(spec.gamma[c] * sat(rnd((C * v - s1) * r1, R + e - Z), spec.z_bits) + spec.beta[c], A),
                         spec.out_bits) for c, v in enumerate(row)])
    return np.array(out, dtype=np.int64)


def token_mix(rng, n, C, in_bits):
    """Uniform tokens, narrow-spread tokens (small variance), constant tokens and the extremes."""
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    uniform = rng.integers(lo, hi + 1, (n, C))
    spread = rng.uniform(0.3, max(0.5, hi / 4), (n, 1))
    narrow = np.clip(np.round(rng.normal(rng.integers(lo, hi + 1, (n, 1)), spread, (n, C))), lo, hi).astype(np.int64)
    const = np.repeat(rng.integers(lo, hi + 1, (4, 1)), C, axis=1)
    return np.concatenate([uniform, narrow, const, extreme_tokens(in_bits, C)])


@pytest.mark.parametrize("C,in_bits,out_bits,T,eps_q", [
    (8, 8, 8, None, None), (3, 6, 10, 3, None), (64, 12, 8, 9, 1), (1, 8, 8, None, None),
    (24, 16, 16, None, 1 << 30), (5, 2, 2, 2, 7),
])
def test_golden_matches_python_ints(C, in_bits, out_bits, T, eps_q):
    rng = np.random.default_rng(C)
    spec = random_layernorm_spec(C, 1, in_bits, out_bits, seed=C)
    change = {"gamma": tuple(int(g) for g in rng.integers(*np.array([-1, 1]) << (spec.gamma_bits - 1), C))}
    if T is not None:
        change |= {"rsqrt_index_bits": T, "rsqrt_table": build_rsqrt_table(T, spec.rsqrt_frac)}
    if eps_q is not None:
        change["eps_q"] = eps_q
    for s in (spec, dataclasses.replace(spec, **change)):
        x = token_mix(rng, 40, C, in_bits)
        np.testing.assert_array_equal(golden(x, s), slow_layernorm(x, s))


@pytest.mark.parametrize("C,in_bits,out_bits", [(192, 8, 8), (768, 8, 8), (64, 12, 12), (32, 16, 16)])
def test_golden_within_a_rounding_of_float_layernorm(C, in_bits, out_bits):
    """Measured worst error vs a float64 LayerNorm with the same gamma/beta/eps: 0.56 output LSB."""
    spec = random_layernorm_spec(C, 1, in_bits, out_bits, seed=2)
    x = token_mix(np.random.default_rng(1), 200, C, in_bits)
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    err = np.abs(golden(x, spec) - np.clip(layernorm_float(x, spec), lo, hi))
    assert err.max() <= 0.75, err.max()
    assert err.mean() <= 0.3


def test_rsqrt_error_and_constant_tokens():
    spec = random_layernorm_spec(16, 4, 8, 8, seed=1)
    assert rsqrt_error(spec)["worst_rel"] < 2e-4
    coarse = dataclasses.replace(spec, rsqrt_index_bits=3, rsqrt_table=build_rsqrt_table(3, spec.rsqrt_frac))
    assert rsqrt_error(coarse)["worst_rel"] > 4 * rsqrt_error(spec)["worst_rel"]   # the table size matters
    # A constant token has zero variance: the output is beta alone, rounded.
    y = golden(np.full((1, 16), 37), spec)
    beta = np.array(spec.beta)
    np.testing.assert_array_equal(y[0], (beta + (1 << (spec.affine_shift - 1))) >> spec.affine_shift)


def test_reference_stream_needs_whole_tokens():
    spec = random_layernorm_spec(8, 2, 8, 8)
    x = np.zeros((8, 2), dtype=np.int64)
    last = np.array([0, 0, 0, 1, 0, 0, 0, 1])
    assert spec.reference_stream(x, last).shape == (8, 2)
    assert spec.reference_stream(x, np.zeros(8)).shape == (8, 2)          # framing by count
    with pytest.raises(HardytError, match="whole number of tokens"):
        spec.reference_stream(x[:6], last[:6])
    with pytest.raises(HardytError, match="tlast on beat 1"):
        spec.reference_stream(x, np.array([0, 1, 0, 1, 0, 0, 0, 1]))
    with pytest.raises(HardytError, match="codes must lie"):
        spec.reference_stream(x + 200, last)


# -- the core in Amaranth's simulator ----------------------------------------------------

def stream_for(spec, tokens, seed):
    x = token_mix(np.random.default_rng(seed), tokens, spec.channels, spec.in_bits)
    return tokens_to_beats(x, spec.lanes)


@pytest.mark.parametrize("C,P", [(3, 1), (8, 2), (24, 8), (8, 8)])
def test_core_random_valid_ready_bit_exact(C, P, run_stream):
    spec = random_layernorm_spec(C, P, 8, 8, seed=P)
    beats, last = stream_for(spec, 4, seed=C)
    got, got_last, _, _ = run_stream(LayerNormCore(spec), beats, last, valid_p=0.7, ready_p=0.5, seed=P)
    np.testing.assert_array_equal(got, spec.reference_stream(beats, last))
    np.testing.assert_array_equal(got_last, last)


@pytest.mark.parametrize("C,P,in_bits,out_bits", [(6, 1, 8, 8), (16, 2, 10, 6), (16, 8, 8, 8), (4, 4, 5, 12)])
def test_core_full_rate_and_latency(C, P, in_bits, out_bits, run_stream):
    """Source always valid, sink always ready, tokens back to back: one beat per cycle in and
    out, and every token's first output comes ``latency`` cycles after its first input."""
    spec = random_layernorm_spec(C, P, in_bits, out_bits, seed=3)
    beats, last = stream_for(spec, 3, seed=P)
    core = build_core(spec)
    got, _, t_in, t_out = run_stream(core, beats, last)
    np.testing.assert_array_equal(got, spec.reference_stream(beats, last))
    assert np.all(np.diff(t_in) == 1) and np.all(np.diff(t_out) == 1), "not one beat per cycle"
    assert core.latency == spec.beats + 27 + tree_registers(P)
    assert {o - i for i, o in zip(t_in[::spec.beats], t_out[::spec.beats])} == {core.latency}


def test_core_buffer_fills_under_backpressure(run_stream):
    """A slow sink fills the token buffer; the source must stall, nothing lost or reordered."""
    spec = random_layernorm_spec(4, 1, 8, 8, seed=5)
    beats, last = stream_for(spec, 12, seed=5)
    core = LayerNormCore(spec)
    assert len(beats) > 2 * core.depth
    got, got_last, t_in, _ = run_stream(core, beats, last, ready_p=0.15, seed=5)
    assert max(np.diff(t_in)) > 1, "the source was never stalled: the buffer did not fill"
    np.testing.assert_array_equal(got, spec.reference_stream(beats, last))
    np.testing.assert_array_equal(got_last, last)


def test_ready_is_not_combinational_from_sink(ready_while_sink_toggles):
    core = LayerNormCore(random_layernorm_spec(4, 2, 6, 6))
    # enough cycles to fill the buffer, the statistics and the output buffer
    assert ready_while_sink_toggles(core, fill_cycles=core.depth + 40) == [0, 0, 0, 0]


def test_core_rejects_other_specs():
    with pytest.raises(SpecError, match="LayerNormSpec"):
        LayerNormCore(object())


# -- emission, lint, the CLI and cocotb on Icarus ---------------------------------------------

def lint(directory, name):
    r = subprocess.run([*verilator_cmd(), "--lint-only", "-Wall", f"{name}.v"], cwd=directory,
                       env=verilator_env(), capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


@pytest.mark.parametrize("C,P,in_bits,out_bits", [(3, 1, 8, 8), (8, 8, 4, 12), (48, 16, 16, 16)])
def test_emission_manifest_and_lint(C, P, in_bits, out_bits, tmp_path):
    spec = random_layernorm_spec(C, P, in_bits, out_bits, seed=1, name="ln")
    path = emit(spec, tmp_path)
    m = load_manifest(tmp_path)
    assert path == tmp_path / "ln.json" and m["core"] == "layernorm"
    assert m["latency"] == LayerNormCore(spec).latency
    assert (m["s_axis_tdata_width"], m["m_axis_tdata_width"]) == (P * in_bits, P * out_bits)
    assert sorted(m["mems"]) == ["ln_beta.mem", "ln_gamma.mem", "ln_rsqrt.mem"]
    table = [int(w, 16) for w in (tmp_path / "ln_rsqrt.mem").read_text().split()]
    assert table == list(spec.rsqrt_table)
    assert load_spec(tmp_path / "ln.spec.json") == spec
    lint(tmp_path, "ln")


def test_cli_and_cocotb_icarus_bit_exact(tmp_path, capsys):
    """`hardyt rtl --core layernorm` as documented, then the cocotb tests on Icarus: every element
    exact, one beat per cycle, latency as in the manifest."""
    from hardyt.sim.runner import run_sim

    out = tmp_path / "ln"
    assert main(["rtl", "--core", "layernorm", "--channels", "12", "--lanes", "4", "--in-bits", "6",
                 "--out-bits", "8", "--seed", "3", "--out", str(out)]) == 0
    assert "latency 31 cycles" in capsys.readouterr().out
    spec = load_spec(out / "layernorm.spec.json")
    assert spec == random_layernorm_spec(12, 4, 6, 8, 3)
    r = run_sim(out, simulator="icarus", vectors=192, cache=tmp_path / "cache")
    assert r["ok"], r["report"]
    assert r["mismatches"] == 0 and r["tests"]["exhaustive"]["elements"] == 64 * 12    # every 6-bit code
    assert r["tests"]["saturation"]["elements"] > 0 and r["tests"]["reset_mid_stream"]["elements"] > 0
    assert r["beats_per_cycle"] == 1.0 and r["latency"] == r["manifest_latency"] == 31


def test_cli_rejects_dyt_flags_for_layernorm(tmp_path, capsys):
    assert main(["rtl", "--core", "layernorm", "--channels", "8", "--tanh", "pwl", "--out", str(tmp_path)]) != 0
    assert "--core layernorm takes no --tanh" in capsys.readouterr().err
