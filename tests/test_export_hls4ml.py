"""``hardyt export --format hls4ml``: hls4ml's own C simulation equals the golden model on every code.

The projects are opened as a user opens them (``hls4ml.converters.link_existing_project``), compiled
with g++ and run with ``predict()``; each compile takes a few seconds, so one layer set covers the
three kinds (folded LUT; channel affine with negative gamma; PWL with per-channel alpha shifts).
"""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.quant.export.hls4ml_project import csim_check, every_code, load_keras_model
from hardyt.quant.outdir import MARKER
from hardyt.scripts.cli import main

# keras's torch backend converts tensors with np.array(x), which numpy 2 flags on every call
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SPECS = [random_dyt_spec(8, 8, 8, 8, tanh="lut", affine="folded", seed=1, name="blocks.0.norm1"),
         random_dyt_spec(16, 2, 8, 8, tanh="lut", affine="channel", seed=1, name="blocks.0.norm2"),
         random_dyt_spec(8, 8, 10, 8, tanh="pwl", affine="channel", alpha_shift=True, seed=2, name="norm")]


def _converted_dir(path):
    """A directory as `hardyt convert` writes it, as far as the hls4ml export reads it (config and specs)."""
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"hardyt": "converted",
                                                  "dyt_layers": {s.name: {"folded": s.affine.mode == "folded"}
                                                                 for s in SPECS}}))
    for s in SPECS:
        (path / f"{s.name.replace('.', '_')}.spec.json").write_text(s.to_json())
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("hls4ml")
    out = root / "out"
    assert main(["export", str(_converted_dir(root / "conv")), "--format", "hls4ml", "--out", str(out)]) == 0
    return out


def test_specs_cover_the_kinds():
    assert SPECS[0].affine.mode == "folded" and SPECS[0].tanh.kind == "lut"
    assert min(SPECS[1].affine.gamma) < 0 < max(SPECS[1].affine.gamma)
    assert SPECS[2].tanh.kind == "pwl" and max(SPECS[2].alpha_shift) > 0


def test_layer_set_csim_equals_golden(exported):
    assert sorted(p.name for p in exported.iterdir()) == [MARKER, "blocks_0_norm1", "blocks_0_norm2", "dyt_layers",
                                                          "norm"]
    r = csim_check(exported / "dyt_layers", SPECS)
    assert r["mismatches"] == 0
    assert r["elements"] == 1024 * (8 + 16 + 8)          # every code of every channel (the 10-bit layer: 1024)


def test_layer_project_csim_equals_golden(exported):
    project = exported / "blocks_0_norm2"
    assert (project / "blocks_0_norm2.spec.json").is_file() and not list(project.glob("firmware/*.so"))
    assert csim_check(project, [SPECS[1]])["mismatches"] == 0


def test_a_changed_table_entry_is_caught(exported):
    """The check can fail: one entry of the table the C simulation reads (code 5) changed before it is built.
    (A project's library is loaded once per process: change it before its first compile.)"""
    project = exported / "blocks_0_norm1"
    (table,) = (project / "firmware" / "weights").glob("table*.txt")
    values = table.read_text().split(",")
    values[5] = str(int(values[5]) + 1)
    table.write_text(",".join(values))
    assert csim_check(project, [SPECS[0]])["mismatches"] == SPECS[0].channels


@pytest.mark.parametrize("case", ["layer", "not_converted", "missing_extra", "backend"])
def test_bad_input_one_line_error_writes_nothing(tmp_path, capsys, monkeypatch, case):
    conv = _converted_dir(tmp_path / "conv")
    args = ["export", str(conv), "--format", "hls4ml", "--out", str(tmp_path / "out")]
    if case == "layer":
        args += ["--layer", "blocks.9.norm1"]
    elif case == "not_converted":
        args[1] = str(tmp_path)
    elif case == "missing_extra":
        monkeypatch.setitem(sys.modules, "hls4ml", None)       # import hls4ml raises ImportError
    else:
        args[3] = "qonnx"
        args += ["--backend", "Vivado"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert {"layer": "blocks.9.norm1", "not_converted": "config.json", "missing_extra": "hardyt[hls4ml]",
            "backend": "--backend"}[case] in err
    assert not (tmp_path / "out").exists()


def test_every_code_rows():
    x = every_code(SPECS[2])
    assert x.shape == (1024, 8) and np.array_equal(x[:, 3], np.arange(-512, 512))


def test_saved_keras_model_reloads_and_equals_golden(exported):
    """The Keras model in a project (to convert again with another hls4ml config) computes the same codes."""
    model = load_keras_model(exported / "norm")
    x = every_code(SPECS[2])
    assert np.array_equal(model.predict(x.astype(np.float32), verbose=0), SPECS[2].reference(x))
