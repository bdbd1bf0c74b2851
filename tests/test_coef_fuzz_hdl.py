"""The coefficient-port fuzz checked in HDL (``sim/coef_fuzz_harness.v`` in Verilator): a clean run passes
every check, and a model that is wrong by one status, one table entry or one layer is caught.
``bench/faults.py --rows coefhdl`` runs 100,000 frames."""
from __future__ import annotations

import time
from unittest import mock

import pytest
from fuzz_coef import layer_specs

from hardyt.hw.emission.engine_emit import emit_engine
from hardyt.sim import coef_fuzz_run
from hardyt.sim.coef_fuzz import KINDS

FRAMES = 1000


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    d = tmp_path_factory.mktemp("engine") / "fuzz"
    emit_engine(layer_specs(), d, "fuzz_engine")
    return d, tmp_path_factory.mktemp("sim-cache")


def test_fuzzed_frames_while_streaming_pass_every_hdl_check(engine):
    seed = time.time_ns() % 2**31
    r = coef_fuzz_run.run_coef_fuzz(engine[0], FRAMES, seed=seed, cache=engine[1])
    assert r["ok"] and r["frames"] == FRAMES and r["lost"] == 0, (seed, r)
    assert r["elements"] == r["tokens"] * 8 > 0 and all(r["by_kind"][k] for k in KINDS), r
    assert set(r["by_kind"]["truncated"]) == {3} and set(r["by_kind"]["valid"]) == {1}, r
    # Frames that loaded without being a layer's: resealed ones, and swapped beats (the sum keeps them).
    assert set(r["disguised"]) <= {"resealed table", "resealed header", "swapped beats"}, r


def test_a_wrong_expectation_is_caught(engine):
    """One status, one table entry and one layer changed in the model's answers: the harness sees each."""
    plan = coef_fuzz_run.fuzz_plan

    def wrong(*args, **kwargs):
        p = plan(*args, **kwargs)
        want = p["want"]
        rejected = next(i for i, w in enumerate(want) if w[0] == 4)
        want[rejected] = (2, None, None)
        loaded = [i for i, (k, w) in enumerate(zip(p["kinds"], want)) if w[0] == 1 and k == "valid"]
        status, layer, table = want[loaded[0]]
        want[loaded[0]] = (status, layer, [table[0] ^ 1] + table[1:])
        status, layer, table = want[loaded[1]]
        want[loaded[1]] = (status, (layer + 1) % 3, table)
        return p

    with mock.patch.object(coef_fuzz_run, "fuzz_plan", wrong):
        r = coef_fuzz_run.run_coef_fuzz(engine[0], FRAMES, seed=5, cache=engine[1])
    n = r["counters"]
    assert not r["ok"] and n["status_bad"] == 1 and n["table_bad"] == 1, r
    assert n["start_bad"] + n["out_bad"] >= 1, r
