"""Faults survived, nothing lost (the fast cases; ``bench/faults.py`` runs the many and the long ones).

Outputs written whole or not at all while writers are killed and readers
read; a second writer of the same output refused; a rank killed under
torchrun, a Dask worker or scheduler lost, a hung tool; cache entries that
fail their check. Every process and cluster is started here, on 127.0.0.1,
bounded in time.
"""
from __future__ import annotations

import signal
import socket
import subprocess
import time

import numpy as np
import pytest
import fuzz_coef
import fuzz_parsers
from faults_harness import (ENV, Reader, convert_argv, converted_problems, kill_during, kill_rank,
                            kill_worker_during_sweep, lose_scheduler_during_sweep, temporaries, tiny_inputs,
                            torchrun_argv)

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir
from hardyt.quant.outdir import MARKER


def test_output_directory_is_replaced_whole_and_locked(tmp_path):
    out = tmp_path / "D"
    with atomic_output_dir(out) as tmp:
        (tmp / "old-only.txt").write_text("1")
        (tmp / "both.txt").write_text("old")
        with pytest.raises(HardytError, match="another hardyt run is writing"):
            with atomic_output_dir(out):
                pass
        assert not out.exists()  # nothing until the swap
    with atomic_output_dir(out) as tmp:
        (tmp / "both.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "both.txt"]  # no file of the old run kept
    assert (out / "both.txt").read_text() == "new"
    with pytest.raises(RuntimeError), atomic_output_dir(out) as tmp:
        (tmp / "both.txt").write_text("failed run")
        raise RuntimeError
    assert (out / "both.txt").read_text() == "new" and temporaries(out) == []


def test_a_directory_of_other_files_is_never_replaced(tmp_path):
    (tmp_path / "mine.txt").write_text("the user's")
    with pytest.raises(HardytError, match="not written by hardyt"):
        with atomic_output_dir(tmp_path):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_killed_convert_never_shows_a_mixed_directory(tmp_path):
    """SIGKILL a ``hardyt convert --out D`` at a random moment, then SIGTERM one while it writes, while another
    process reads D: every snapshot is one complete run's directory; the SIGTERM leaves no temporary behind
    (``bench/faults.py``: 20 kills, half of them while writing)."""
    checkpoint, data = tiny_inputs(tmp_path)
    out = tmp_path / "D"
    first = subprocess.run(convert_argv(checkpoint, data, out, seed=1), env=ENV, capture_output=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert converted_problems(out) == ([], 1)
    seed = time.time_ns() % 2**32
    rng = np.random.default_rng(seed)
    reader = Reader(out, tmp_path)
    try:
        kills = [kill_during(convert_argv(checkpoint, data, out, seed=2), out, rng, when="any")]
        term = kill_during(convert_argv(checkpoint, data, out, seed=9), out, rng, sig=signal.SIGTERM, when="write")
    finally:
        seen = reader.finish()
    assert seen["mixed"] == [], (seed, seen["mixed"][:3])
    assert seen["snapshots"] > 50 and seen["absent"] == 0 and 1 in seen["seeds"], seen
    problems, last = converted_problems(out)
    assert problems == [] and last in {1, 2, 9}, (seed, problems)
    assert all(k["rc"] in (0, -signal.SIGKILL) for k in kills), kills
    assert term["rc"] in (0, 128 + signal.SIGTERM), term
    assert temporaries(out) == [], temporaries(out)  # SIGTERM unwinds: the killed runs' leftovers too


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rank_killed_under_torchrun_stops_the_other_named_nothing_written(tmp_path):
    """SIGKILL rank 1 of a 2-process ``torchrun hardyt convert``: rank 0 exits (torchrun's teardown, or the
    collective timeout) with one line naming rank 1; no output, no temporary."""
    checkpoint, data = tiny_inputs(tmp_path)
    out = tmp_path / "D"
    argv = torchrun_argv(_free_port(), convert_argv(checkpoint, data, out, seed=1))
    r = kill_rank(argv, 1, np.random.default_rng(time.time_ns() % 2**32))
    assert r["sent"] and r["rc"] != 0, r
    assert r["exit_seconds"] < 40, r                  # torchrun: SIGTERM, then SIGKILL after 30 s
    assert len(r["errors"]) == 1 and "rank 0 of 2" in r["errors"][0] and "lost rank 1" in r["errors"][0], r
    assert not out.exists() and temporaries(out) == []


def test_worker_killed_mid_sweep_changes_no_result(tmp_path):
    r = kill_worker_during_sweep(np.random.default_rng(time.time_ns() % 2**32), tmp_path)
    assert r["ok"] and r["lost"] == 0 and r["recomputed"] >= 1, r


@pytest.mark.parametrize("after", [0, 2], ids=["random moment", "after 2 jobs finished"])
def test_scheduler_lost_mid_sweep_is_one_error_and_finished_results_stay_cached(tmp_path, after):
    r = lose_scheduler_during_sweep(np.random.default_rng(time.time_ns() % 2**32), tmp_path, _free_port(), after=after)
    assert r["error"] and "lost the Dask scheduler" in r["error"] and "\n" not in r["error"], r
    assert r["lost"] == 0 and r["cached"] >= after and r["seconds"] < 30, r


def test_hung_tool_is_killed_and_named_by_its_job(tmp_path, monkeypatch):
    from hardyt.hw.tools import synth
    from hardyt.hw.tools.sweep import dask_client, run_jobs

    monkeypatch.setenv("HARDYT_JOB_TIMEOUT", "1")
    t0 = time.monotonic()
    with dask_client(workers=1) as client:
        _, failures = run_jobs(client, {"blocks.0.norm1 lut8": (synth._run, (["sleep", "60"], tmp_path, "yosys.log",
                                                                              "yosys", None))}, progress=False)
    assert time.monotonic() - t0 < 20
    assert "yosys hung: killed after the 1 s timeout" in failures["blocks.0.norm1 lut8"], failures
    monkeypatch.setenv("HARDYT_JOB_TIMEOUT", "-3")
    with pytest.raises(HardytError, match="HARDYT_JOB_TIMEOUT"):
        synth._run(["true"], tmp_path, "x.log", "yosys", None)


def test_corrupted_object_cache_entry_is_discarded_and_recompiled(tmp_path, capsys):
    from hardyt.sim.objcache import read_entry, write_entry

    entry = tmp_path / "k.o"
    write_entry(entry, "k", b"\x7fELF object")
    assert read_entry(entry, "k") == b"\x7fELF object"
    for damage in (lambda b: b[:-3], lambda b: b[:-1] + b"\x00", lambda b: b.replace(b" k ", b" j "), lambda b: b"junk"):
        write_entry(entry, "k", b"\x7fELF object")
        entry.write_bytes(damage(entry.read_bytes()))
        assert read_entry(entry, "k") is None and not entry.exists()
        assert "entry discarded, compiling again" in capsys.readouterr().err


def test_build_directory_without_a_finished_build_is_rebuilt(tmp_path):
    from hardyt.sim import buildcache

    build = tmp_path / "b"
    build.mkdir()
    (build / "sim.vvp").write_text("half a simulator")       # a build that was killed: no stamp
    with pytest.warns(UserWarning, match="interrupted"):
        assert not buildcache.check(build, "icarus")
    assert not build.exists()
    build.mkdir()
    (build / "sim.vvp").write_text("a simulator")
    buildcache.stamp(build, "icarus")
    assert buildcache.check(build, "icarus")
    (build / "sim.vvp").write_text("a simulator, corrupted")
    with pytest.warns(UserWarning, match="changed"):
        assert not buildcache.check(build, "icarus")
    # Verilator's executable is named after the toplevel: a finished build of it is kept.
    build.mkdir()
    (build / "hardyt_bulk").write_text("an executable")
    buildcache.stamp(build, "verilator", "hardyt_bulk")
    assert buildcache.check(build, "verilator", "hardyt_bulk")


def test_builds_of_another_environment_are_not_reused(tmp_path, monkeypatch):
    """A build's make files name the cocotb install that made it: another checkout's (since deleted) is never
    reused — CI's clone once left builds whose `make` then failed on its vanished `verilator.cpp`."""
    import cocotb

    from hardyt.sim import buildcache

    here = buildcache.build_root(tmp_path)
    assert here.parent == tmp_path / "build" and buildcache.build_root(tmp_path) == here
    monkeypatch.setattr(cocotb, "__file__", "/elsewhere/.venv/lib/python3.11/site-packages/cocotb/__init__.py")
    assert buildcache.build_root(tmp_path) != here


@pytest.mark.parametrize("target", fuzz_parsers.TARGETS, ids=lambda t: t.name)
def test_parser_fed_mutated_bytes_answers_with_one_line_naming_the_file(target, tmp_path):
    """40 mutations of a valid file per parser (derandomized; ``bench/faults.py`` runs thousands)."""
    r = fuzz_parsers.fuzz(target, tmp_path, 40)
    assert r["inputs"] == 40 and r["findings"] == [], r["findings"][:5]


def test_coefficient_port_fuzzed_while_streaming():
    """150 fuzzed frames of every kind against random tokens (``bench/faults.py``: 100,000): each frame's
    status is the model's, tokens start only on banks a good frame loaded, every output is bit-exact."""
    seed = time.time_ns() % 2**32
    r = fuzz_coef.fuzz_engine(150, seed=seed)
    assert r["frames"] >= 150 and r["violations"] == 0 and r["mismatches"] == 0, (seed, r)
    assert r["elements"] > 0 and all(r["by_kind"][k] for k in fuzz_coef.KINDS), r
    assert set(r["by_kind"]["truncated"]) == {3} and set(r["by_kind"]["oversized"]) == {3}, r


@pytest.mark.slow
def test_coefficient_port_fuzzed_in_verilator(tmp_path):
    """The emitted engine's Verilog in Verilator: 300 fuzzed frames, tokens of the loaded layers between them
    (``hardyt.sim.cocotb_engine.test_fuzzed_frames``); statuses as the model's, outputs bit-exact."""
    r = fuzz_coef.verilator_run(tmp_path, 300)
    assert r["ok"] and r["frames"] >= 300 and r["mismatches"] == 0 and r["elements"] > 0, r
