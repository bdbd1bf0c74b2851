"""`hardyt rtl` in its three forms, and its one-line errors."""
import json
import subprocess
import sys

import pytest

from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.emission.emit import load_manifest
from hardyt.quant.contract.spec_io import load_spec
from hardyt.quant.outdir import MARKER
from hardyt.scripts.cli import main


def test_flags_form_as_a_user_runs_it(tmp_path):
    out = tmp_path / "core"
    r = subprocess.run([sys.executable, "-m", "hardyt.scripts.cli", "rtl", "--channels", "16", "--lanes", "4",
                        "--in-bits", "10", "--out-bits", "8", "--tanh", "pwl", "--segments", "8",
                        "--affine", "channel", "--alpha", "0.004", "--seed", "7", "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = load_manifest(out)
    assert "latency 5 cycles" in r.stdout and "s_axis_tdata 40 bits" in r.stdout
    spec = load_spec(out / "dyt.spec.json")
    assert (spec.channels, spec.lanes, spec.in_bits, spec.out_bits) == (16, 4, 10, 8)
    assert spec.tanh.kind == "pwl" and spec.tanh.segments == 8 and spec.affine.mode == "channel"
    assert spec.tanh.alpha_scale == 0.004
    assert m["latency"] == 5 and m["m_axis_tdata_width"] == 32


def test_seed_draws_gamma_beta(tmp_path, capsys):
    specs = []
    for seed in (1, 2):
        assert main(["rtl", "--channels", "4", "--affine", "channel", "--seed", str(seed),
                     "--out", str(tmp_path / str(seed))]) == 0
        specs.append(load_spec(tmp_path / str(seed) / "dyt.spec.json"))
    assert specs[0].affine.gamma != specs[1].affine.gamma


def test_spec_file_form_with_name(tmp_path, capsys):
    spec = random_dyt_spec(8, 2, 8, 8, tanh="lut", name="layer")
    spec.save(tmp_path / "layer.spec.json")
    assert main(["rtl", str(tmp_path / "layer.spec.json"), "--name", "top1", "--out", str(tmp_path / "o")]) == 0
    m = load_manifest(tmp_path / "o")
    assert m["top"] == "top1" and (tmp_path / "o" / "top1.v").is_file()
    assert load_spec(tmp_path / "o" / "top1.spec.json") == spec
    assert "top1:" in capsys.readouterr().out


def test_converted_dir_form(tmp_path, capsys):
    conv = tmp_path / "conv"
    conv.mkdir()
    for i, name in enumerate(("blocks_0_norm1", "blocks_0_norm2", "norm")):
        random_dyt_spec(8, 4, 8, 8, tanh=("lut", "pwl")[i % 2], name=name).save(conv / f"{name}.spec.json")
    (conv / "report.json").write_text("{}")
    assert main(["rtl", str(conv), "--layers", "norm", "blocks_0_norm2", "--out", str(tmp_path / "a")]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [MARKER, "blocks_0_norm2", "norm"]
    assert main(["rtl", str(conv), "--out", str(tmp_path / "b")]) == 0
    for name in ("blocks_0_norm1", "blocks_0_norm2", "norm"):
        assert load_manifest(tmp_path / "b" / name)["name"] == name
    assert len(capsys.readouterr().out.splitlines()) == 5


@pytest.mark.parametrize("args,message", [
    ([], "give a SPEC.json"),
    (["--channels", "6", "--lanes", "4"], "multiple of lanes"),
    (["--channels", "4", "--out-bits", "1"], "out_bits"),
    (["--channels", "4", "--tanh", "pwl", "--segments", "3"], "power of two"),
    (["--channels", "4", "--alpha", "-1"], "alpha"),
    (["MISSING.json"], "no such spec file"),
    (["--core", "layernorm", "--channels", "4", "--tanh", "pwl"], "takes no --tanh"),
])
def test_bad_input_one_line(args, message, tmp_path, capsys):
    assert main(["rtl", *args, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unknown_layer(tmp_path, capsys):
    random_dyt_spec(4, 1, 8, 8, name="norm").save(tmp_path / "norm.spec.json")
    assert main(["rtl", str(tmp_path), "--layers", "nope", "--out", str(tmp_path / "o")]) == 1
    assert "no layer nope; layers are: norm" in capsys.readouterr().err


def test_spec_and_flags_conflict(tmp_path, capsys):
    spec = random_dyt_spec(4, 1, 8, 8)
    spec.save(tmp_path / "s.spec.json")
    assert main(["rtl", str(tmp_path / "s.spec.json"), "--channels", "8", "--out", str(tmp_path / "o")]) == 1
    assert "cannot be combined" in capsys.readouterr().err


def test_manifest_is_json_with_spec(tmp_path, capsys):
    assert main(["rtl", "--channels", "4", "--name", "x", "--out", str(tmp_path)]) == 0
    d = json.loads((tmp_path / "x.json").read_text())
    assert d["spec"]["name"] == "x" and d["verilog"] == "x.v"
