"""The flow's artifacts: records keep unknown keys, one layer-name rule (old directories still read), moved
modules are the same objects under their old names, progress bars write one line per stage in a log."""
from __future__ import annotations

import io
import json

import pytest

from hardyt.flow.convert_record import ConvertReport
from hardyt.flow.converted import ConvertedDir
from hardyt.quant.contract.names import layer_file, layer_stem
from hardyt.quant.errors import HardytError


def test_report_keeps_sections_it_does_not_know_in_place():
    d = {"method": "reconstruct", "novelty": {"held_out": 0.91}, "layers": [{"name": "a.b", "alpha": 0.5,
                                                                            "novel": [1, 2]}],
         "warnings": [], "zeta": 1}
    r = ConvertReport.from_dict(d)
    assert r.method == "reconstruct" and r.layers[0].name == "a.b" and r.layers[0].alpha == 0.5
    assert r.extra == {"novelty": {"held_out": 0.91}, "zeta": 1} and r.layers[0].extra == {"novel": [1, 2]}
    out = r.to_dict()
    assert out == d and list(out) == list(d)          # same keys, same order, nothing added
    r.folded = 3                                      # a field set later is written after the keys read
    assert list(r.to_dict())[-1] == "folded"
    with pytest.raises(HardytError, match="report.json: expected a JSON object"):
        ConvertReport.from_dict([], "report.json")


@pytest.mark.parametrize("name, stem", [("blocks.0.norm1", "blocks_0_norm1"), ("stage-1.ln", "stage_1_ln"),
                                        ("0.norm", "m_0_norm"), ("encoder.layer.3.layernorm_before",
                                                                 "encoder_layer_3_layernorm_before")])
def test_one_layer_name_rule(name, stem):
    from hardyt.hw.emission.emit import verilog_name
    assert layer_stem(name) == stem == verilog_name(name)


def test_older_directories_still_read(tmp_path):
    (tmp_path / "0_norm.inputs.npz").write_bytes(b"")   # an older hardyt: name.replace(".", "_")
    assert layer_file(tmp_path, "0.norm", ".inputs.npz").name == "0_norm.inputs.npz"
    assert layer_file(tmp_path, "1.norm", ".inputs.npz").name == "m_1_norm.inputs.npz"   # new files: the rule
    assert ConvertedDir(tmp_path).inputs("0.norm") == tmp_path / "0_norm.inputs.npz"


def test_converted_dir_specs_in_model_order(tmp_path):
    from hardyt.hw.datapath.cores import random_dyt_spec
    for i, name in enumerate(["blocks.1.norm", "blocks.0.norm", "norm"]):
        random_dyt_spec(8, 1, 8, 8, seed=i, name=layer_stem(name)).save(tmp_path / f"{layer_stem(name)}.spec.json")
    (tmp_path / "config.json").write_text(json.dumps({"dyt_layers": {"blocks.0.norm": {}, "blocks.1.norm": {},
                                                                     "norm": {}}}))
    d = ConvertedDir(tmp_path)
    assert [s.name for s in d.specs()] == ["blocks_0_norm", "blocks_1_norm", "norm"]
    assert [s.name for s in d.specs(["norm", "blocks.0.norm"])] == ["blocks_0_norm", "norm"]
    with pytest.raises(HardytError, match="no layer nope"):
        d.specs(["nope"])


def test_moved_modules_are_the_same_objects():
    import hardyt.flow.model_source as new
    import hardyt.quant.conversion.evaluate as old_eval
    import hardyt.quant.runtime.evaluate as new_eval
    import hardyt.scripts.model_input as old
    assert old is new and old_eval is new_eval and old.__name__ == "hardyt.flow.model_source"
    assert new.__spec__.name == "hardyt.flow.model_source"


@pytest.mark.parametrize("old, new", [("dyt_core", "datapath.dyt_core"), ("pipeline", "datapath.stages"),
                                      ("synth", "tools.synth"), ("sweep", "tools.sweep"), ("costs", "costmodel.costs"),
                                      ("emit", "emission.emit"), ("engine_emit", "emission.engine_emit")])
def test_old_hw_paths_are_the_same_modules(old, new):
    import importlib

    import hardyt.hw
    assert importlib.import_module(f"hardyt.hw.{old}") is importlib.import_module(f"hardyt.hw.{new}")
    assert callable(hardyt.hw.emit) and hardyt.hw.emit.__name__ == "emit"   # the function, not the module
    exec(f"from hardyt.hw.{old} import *")                                  # the old star-import works too


def test_progress_is_one_line_per_stage_in_a_log(monkeypatch):
    from hardyt.quant.progress import LineBar, progress
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    log = io.StringIO()                                # not a terminal
    bar = progress(range(1000), desc="convert", unit="step", file=log)
    assert isinstance(bar, LineBar)
    assert sum(1 for _ in bar) == 1000
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert: 1000/1000 step in ") and "\r" not in log.getvalue()
    with progress(total=3, desc="synth", unit="job", file=log, disable=True) as b:
        b.update(3)
    assert len(log.getvalue().splitlines()) == 1       # disabled: nothing more
