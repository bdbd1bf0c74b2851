"""Faults survived, nothing lost (the fast cases; ``bench/faults.py`` runs the many and the long ones).

Outputs written whole or not at all while writers are killed and readers
read; a second writer of the same output refused.
"""
from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
from faults_harness import ENV, Reader, convert_argv, converted_problems, kill_during, temporaries, tiny_inputs

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
    """SIGKILL a ``hardyt convert --out D`` at random moments (one anywhere in the run, one while it writes)
    while another process reads D: every snapshot is one complete run's directory; a SIGTERM leaves no
    temporary behind."""
    checkpoint, data = tiny_inputs(tmp_path)
    out = tmp_path / "D"
    first = subprocess.run(convert_argv(checkpoint, data, out, seed=1), env=ENV, capture_output=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert converted_problems(out) == ([], 1)
    seed = time.time_ns() % 2**32
    rng = np.random.default_rng(seed)
    reader = Reader(out, tmp_path)
    try:
        kills = [kill_during(convert_argv(checkpoint, data, out, seed=2 + k), out, rng, when=when)
                 for k, when in enumerate(("any", "write"))]
        term = kill_during(convert_argv(checkpoint, data, out, seed=9), out, rng, sig=signal.SIGTERM, when="write")
    finally:
        seen = reader.finish()
    assert seen["mixed"] == [], (seed, seen["mixed"][:3])
    assert seen["snapshots"] > 50 and seen["absent"] == 0 and 1 in seen["seeds"], seen
    problems, last = converted_problems(out)
    assert problems == [] and last in {1, 2, 3, 9}, (seed, problems)
    assert all(k["rc"] in (0, -signal.SIGKILL) for k in kills), kills
    assert term["rc"] in (0, 128 + signal.SIGTERM), term
    assert temporaries(out) == [], temporaries(out)  # SIGTERM unwinds: the killed runs' leftovers too
