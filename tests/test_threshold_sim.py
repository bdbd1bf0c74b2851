"""Threshold cores, emitted and simulated: every input code bit-exact on Icarus and Verilator.

- 8-bit input, channel affine, P = 4: every cocotb test on Icarus;
- 12-bit input, per-channel alpha shifts, P = 4: every code on every channel
  (cocotb's exhaustive test, as ``vectors`` covers it) on both simulators;
- 16-bit input, P = 4: every code on every channel in Verilator bulk mode.
"""
from __future__ import annotations

import pytest

from hardyt.hw.cores import random_dyt_spec
from hardyt.hw.emit import emit
from hardyt.sim.runner import run_sim


@pytest.fixture(scope="module")
def sim_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sim-cache")


def _emitted(tmp_path, in_bits, affine, alpha_shift=False):
    spec = random_dyt_spec(4, 4, in_bits, 8, tanh="threshold", affine=affine, seed=in_bits, alpha_shift=alpha_shift)
    return emit(spec, tmp_path / "core", "dyt").parent


def _assert_exact(r):
    assert r["ok"], "\n".join(r["failures"] + r["report"][:10])
    assert r["mismatches"] == 0 and r["beats_per_cycle"] == 1.0 and r["latency"] == r["manifest_latency"]


@pytest.mark.parametrize("simulator,in_bits,affine,alpha_shift", [
    ("icarus", 8, "channel", False), ("icarus", 12, "folded", True), ("verilator", 12, "folded", True)])
def test_cocotb_every_code(tmp_path, sim_cache, simulator, in_bits, affine, alpha_shift):
    r = run_sim(_emitted(tmp_path, in_bits, affine, alpha_shift), simulator=simulator, vectors=4 << in_bits,
                cache=sim_cache)
    _assert_exact(r)
    assert r["tests"]["exhaustive"]["elements"] == 4 << in_bits       # every code on every channel
    assert r["tests"]["saturation"]["elements"] > 0


def test_verilator_bulk_16bit_every_code(tmp_path, sim_cache):
    r = run_sim(_emitted(tmp_path, 16, "folded"), simulator="verilator", mode="bulk", vectors=4 << 16,
                cache=sim_cache)
    _assert_exact(r)
    assert r["tests"]["bulk"]["elements"] >= (4 << 16) + 4 * 9        # exhaustive + corners
