"""cocotb verification of emitted cores on Icarus and Verilator, bit-exact against the golden model.

What runs where, and why (Verilator builds cost ~6 s of CPU per design plus
~19 s once for its runtime library; Icarus builds cost well under a second):

- cocotb mode on both simulators: the full matrix, tanh {lut, pwl} x
  affine {folded, channel} x P {1, 4} (C=16, 8-bit in/out). Every cocotb
  test runs on each: random, exhaustive (every code on every channel),
  saturation, reset mid-stream, mixed-length tokens, throughput (1
  beat/cycle, latency as in the manifest).
- Bulk mode on both simulators: Verilator on lut/folded/P=1, Icarus on
  pwl/channel/P=4.
- Mutations (Icarus, both modes): one tanh ROM entry that every stimulus set
  reaches (|x| = 1) changed in the ``.mem``; the rounding constant (half an
  LSB) of lane 0's affine accumulator changed in the Verilog. Each must fail
  with mismatches reported.
- AXI4-Stream checks (Icarus, both modes): a wrapper that changes ``tdata``
  while the sink stalls (correct again at the handshake) must fail the run.
- ``hardyt sim``: exit 0 on a good layer tree (activations picked up from
  ``<layer>.inputs.npz``), exit 1 on a mutated core.

Every run uses a build cache in this module's temporary directory (a clean
start each session; the CLI test gets it through ``HARDYT_SIM_CACHE``).
"""
from __future__ import annotations

import doctest
import importlib
import itertools
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.emission.emit import emit, load_manifest
from hardyt.sim.runner import run_sim

C, IN_BITS, OUT_BITS = 16, 8, 8
MATRIX = list(itertools.product(("lut", "pwl"), ("folded", "channel"), (1, 4)))
COCOTB_TESTS = 7  # random, exhaustive, saturation, reset_mid_stream, mixed_tokens, activations, throughput


@pytest.fixture(scope="module")
def sim_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("sim-cache")


@pytest.fixture(scope="module")
def core(tmp_path_factory):
    """``core(tanh, affine, lanes)``: an emitted directory, made once per module."""
    root = tmp_path_factory.mktemp("cores")
    made = {}

    def get(tanh: str, affine: str, lanes: int) -> Path:
        key = (tanh, affine, lanes)
        if key not in made:
            spec = random_dyt_spec(C, lanes, IN_BITS, OUT_BITS, tanh=tanh, affine=affine, seed=5)
            made[key] = emit(spec, root / f"{tanh}_{affine}_p{lanes}", "dyt").parent
        return made[key]

    return get


@pytest.mark.parametrize("name", ["hardyt.sim.scoreboard", "hardyt.sim.stimulus"])
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


def _assert_exact(r: dict, mode: str) -> None:
    detail = "\n".join(r["failures"] + r["report"][:10])
    assert r["ok"], f"{r['dir']} ({r['simulator']}, {mode}) not bit-exact:\n{detail}"
    assert r["mismatches"] == 0 and r["failed"] == 0
    assert r["beats_per_cycle"] == 1.0
    assert r["latency"] == r["manifest_latency"]


def _assert_cocotb_complete(r: dict) -> None:
    # Without an activations file that test does not apply: skipped, with its reason, not passed.
    assert r["tests_run"] == COCOTB_TESTS - 1
    assert r["skipped"] == ["test_activations: no activations file given"], r["skipped"]
    assert r["tests"]["exhaustive"]["elements"] == C << IN_BITS  # every code on every channel
    for name in ("random", "saturation", "reset_mid_stream", "mixed_tokens", "throughput"):
        assert r["tests"][name]["elements"] > 0, name


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@pytest.mark.parametrize("tanh,affine,lanes", MATRIX, ids=lambda v: str(v))
def test_cocotb_matrix(core, sim_cache, simulator, tanh, affine, lanes):
    r = run_sim(core(tanh, affine, lanes), simulator=simulator, vectors=256, cache=sim_cache)
    _assert_exact(r, "cocotb")
    _assert_cocotb_complete(r)


def test_icarus_bulk(core, sim_cache):
    r = run_sim(core("pwl", "channel", 4), simulator="icarus", mode="bulk", vectors=8192, cache=sim_cache)
    _assert_exact(r, "bulk")
    # corners + exhaustive (4096) + random up to 8192, all under pauses, then the full-rate prefix
    assert r["tests"]["bulk"]["elements"] >= 8192 and r["tests"]["bulk"]["pause"]
    assert r["tests"]["bulk"]["protocol_errors"] == 0


def test_verilator_bulk(core, sim_cache):
    r = run_sim(core("lut", "folded", 1), simulator="verilator", mode="bulk", vectors=20_000, cache=sim_cache)
    _assert_exact(r, "bulk")
    assert r["tests"]["bulk"]["elements"] >= 20_000


def test_two_threads_at_once(core, sim_cache):
    """Two runs started together from two threads (one per simulator) both pass, and this
    process's environment is the same before, during and after (each run has its own)."""
    before = dict(os.environ)
    start = threading.Barrier(2, timeout=60)

    def one(simulator, tanh):
        start.wait()
        return run_sim(core(tanh, "folded", 1), simulator=simulator, vectors=64, cache=sim_cache,
                       testcase=["test_random", "test_throughput"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(one, "verilator", "lut"), pool.submit(one, "icarus", "pwl")]
        changed, deadline = 0, time.monotonic() + 600
        while not all(j.done() for j in jobs) and time.monotonic() < deadline:  # watch while both run
            changed += dict(os.environ) != before
            time.sleep(0.02)
        results = [j.result(timeout=1) for j in jobs]
    assert changed == 0 and dict(os.environ) == before
    for r, simulator in zip(results, ("verilator", "icarus")):
        assert r["simulator"] == simulator
        _assert_exact(r, "cocotb")
        assert r["tests_run"] == 2 and set(r["tests"]) == {"random", "throughput"}


# --- mutations: the checker must be able to fail ----------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def read_mem(path: Path) -> tuple[list[int], int]:
    """The words of a ``$readmemh`` file and its hex digits per word."""
    lines = path.read_text().split()
    return [int(w, 16) for w in lines], len(lines[0])


def write_mem(path: Path, words: list[int], digits: int) -> None:
    path.write_text("".join(f"{w:0{digits}x}\n" for w in words))


def perturb_mem(path: Path, index: int) -> tuple[int, int]:
    """Add one to entry ``index`` of a ``$readmemh`` file (wrapping in its width); old and new value."""
    words, digits = read_mem(path)
    old = words[index]
    words[index] = (old + 1) % (16 ** digits)
    write_mem(path, words, digits)
    return old, words[index]


def perturb_rounding(directory: Path) -> int:
    """Make lane 0 truncate instead of round: subtract the rounding half from its beta fields.

    The core adds ``beta + 2**(shift-1)`` from the beta ROM (the golden model
    rounds half up); the mutation leaves only beta. Returns the words changed.
    """
    m = load_manifest(directory)
    (mem,) = [f for f, rom in m["roms"].items() if rom["rom"] == "beta"]
    half = 1 << (m["spec"]["affine"]["shift"] - 1)
    mask = (1 << (m["roms"][mem]["width"] // m["lanes"])) - 1
    words, digits = read_mem(directory / mem)
    write_mem(directory / mem, [(w & ~mask) | (((w & mask) - half) & mask) for w in words], digits)
    return len(words)


@pytest.fixture(scope="module")
def mutated_rom(core, tmp_path_factory) -> Path:
    """lut/folded/P=1 with tanh ROM entry 1 (x = 1: in the exhaustive and random sets) off by one."""
    d = _copy(core("lut", "folded", 1), tmp_path_factory.mktemp("mut-rom") / "core")
    m = load_manifest(d)
    (mem,) = [f for f, rom in m["roms"].items() if rom["rom"] == "tanh"]
    assert m["spec"]["tanh"].get("drop_bits", 0) == 0  # entry 1 is |x| = 1
    perturb_mem(d / mem, 1)
    return d


@pytest.fixture(scope="module")
def mutated_rounding(core, tmp_path_factory) -> Path:
    """pwl/channel/P=4 whose lane 0 truncates instead of rounding half up (beta ROM changed)."""
    d = _copy(core("pwl", "channel", 4), tmp_path_factory.mktemp("mut-round") / "core")
    assert perturb_rounding(d) >= 1
    return d


def _assert_caught(r: dict, lanes: set[int] | None = None) -> None:
    assert not r["ok"], f"mutation not detected in {r['dir']} ({r['mode']})"
    assert r["mismatches"] > 0 and r["failed"] > 0
    lines = [ln for ln in r["report"] if " expected " in ln]
    assert lines, r["report"]
    if lanes is not None:  # the mismatches point at the mutated lane
        assert {int(re.search(r"lane (\d+)", ln).group(1)) for ln in lines} <= lanes, lines


@pytest.mark.parametrize("mode", ("cocotb", "bulk"))
def test_mutated_rom_fails(mutated_rom, sim_cache, mode):
    r = run_sim(mutated_rom, simulator="icarus", mode=mode, vectors=256, cache=sim_cache)
    _assert_caught(r)
    assert all(re.search(r"input -?1 ", ln) for ln in r["report"] if " expected " in ln), r["report"]


@pytest.mark.parametrize("mode", ("cocotb", "bulk"))
def test_mutated_rounding_fails(mutated_rounding, sim_cache, mode):
    r = run_sim(mutated_rounding, simulator="icarus", mode=mode, vectors=256, cache=sim_cache)
    _assert_caught(r, lanes={0})


# A wrapper with the top's name around the real core (renamed): lane data flipped while the
# sink stalls on every other cycle, the true value back at the handshake. The scoreboard sees only
# correct beats, so only the AXI4-Stream checks (monitor / harness) can catch it.
UNSTABLE_TOP = """
module {top}(input aclk, input aresetn,
    input [{sw}:0] s_axis_tdata, input s_axis_tvalid, output s_axis_tready, input s_axis_tlast,
    output [{mw}:0] m_axis_tdata, output m_axis_tvalid, input m_axis_tready, output m_axis_tlast);
  wire [{mw}:0] data;
  reg flip = 1'b0;
  always @(posedge aclk) flip <= !flip;
  {top}_inner core(.aclk(aclk), .aresetn(aresetn), .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid),
    .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast), .m_axis_tdata(data), .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast));
  assign m_axis_tdata = (m_axis_tvalid && !m_axis_tready && flip) ? ~data : data;
endmodule
"""


@pytest.fixture(scope="module")
def unstable_output(core, tmp_path_factory) -> Path:
    d = _copy(core("lut", "folded", 1), tmp_path_factory.mktemp("mut-axis") / "core")
    m = load_manifest(d)
    v = d / m["verilog"]
    text, n = re.subn(rf"^module {m['top']}\(", f"module {m['top']}_inner(", v.read_text(), flags=re.M)
    assert n == 1
    v.write_text(text + UNSTABLE_TOP.format(top=m["top"], sw=m["s_axis_tdata_width"] - 1,
                                            mw=m["m_axis_tdata_width"] - 1))
    return d


@pytest.mark.parametrize("mode", ("cocotb", "bulk"))
def test_unstable_output_fails_protocol_check(unstable_output, sim_cache, mode):
    r = run_sim(unstable_output, simulator="icarus", mode=mode, vectors=256, cache=sim_cache)
    assert not r["ok"] and r["failed"] > 0
    assert r["mismatches"] == 0, r["report"]  # every beat taken was right: the protocol check failed the run
    assert any(re.search(r"changed while stalled|AXI4-Stream rule", f) for f in r["failures"]), r["failures"]


# --- hardyt sim -------------------------------------------------------------------------------


def _hardyt_sim(args, cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HARDYT_SIM_CACHE=str(cache))
    env.pop("HARDYT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "hardyt.scripts.cli", "sim", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


def test_cli_good_tree_and_mutated_core(core, sim_cache, mutated_rom, tmp_path):
    tree = tmp_path / "rtl"
    layer = _copy(core("lut", "channel", 4), tree / "blocks_0_norm1")
    name = load_manifest(layer)["spec"]["name"]
    x = np.random.default_rng(0).integers(-128, 128, (8, C))
    np.savez(tree / f"{name}.inputs.npz", x=x)
    r = _hardyt_sim([tree, "--vectors", "64"], sim_cache)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"blocks_0_norm1: PASS \(icarus, cocotb\): \d+ elements checked, 0 mismatches, \d+ cycles; "
                     r"throughput 1\.000 beats/cycle \(sink always ready\), latency (\d+) cycles \(manifest \1\)",
                     r.stdout), r.stdout
    assert "activations 64" in r.stdout, r.stdout

    r = _hardyt_sim([mutated_rom, "--mode", "bulk", "--vectors", "64"], sim_cache)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL (icarus, bulk)" in r.stdout and "mismatch: beat" in r.stdout, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "not bit-exact" in lines[0], r.stderr
