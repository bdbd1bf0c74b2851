"""``hardyt synth``: Yosys + nextpnr on small emitted cores (C = 16, P = 2).

Each tool run is a few seconds: one ECP5 run (synthesis, place and route)
and two Xilinx syntheses through the command line.
"""
from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
import tempfile

import pytest

from hardyt.hw import emit, random_dyt_spec
from hardyt.hw import synth as synth_module
from hardyt.hw.tools.synth import ToolError, synth
from hardyt.quant.errors import HardytError

HARDYT = [sys.executable, "-m", "hardyt.scripts.cli"]


def _core(path, affine="folded"):
    emit(random_dyt_spec(16, 2, 8, 8, tanh="lut", affine=affine, seed=1), path)
    return path


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """Run directories go under the test's tmp, so leftovers can be checked."""
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(runs))
    return runs


def test_counting_doctests():
    assert doctest.testmod(synth_module).failed == 0


def test_ecp5_folded(tmp_path, own_tmp):
    d = _core(tmp_path / "core")
    before = sorted(p.name for p in d.iterdir())
    r = synth(d, "ecp5", progress=False, seed=1)
    for key in ("lut", "ff", "dsp", "bram", "carry"):
        assert isinstance(r[key], int), key
    assert r["lut"] > 0 and r["ff"] > 0
    assert r["dsp"] == 0 and r["bram"] == 0          # lut + folded: a table, nothing else
    assert isinstance(r["fmax_mhz"], float) and 20 < r["fmax_mhz"] < 1000
    assert r["lut"] == r["cells"]["LUT4"] + 2 * r["cells"].get("CCU2C", 0)
    assert r["latency"] == 2 and r["target"] == "ecp5" and "85k" in r["part"]
    assert any("nextpnr" in c and "--seed 1" in c for c in r["commands"])
    assert set(r["tools"]) == {"yosys", "nextpnr"}
    # The core's registers only: the wrapper's (>= 2*8 data + handshake) are not counted.
    assert r["ff"] < 2 * 16 + 2 * 16 + 16
    on_disk = json.loads((d / "synth-ecp5.json").read_text())
    assert on_disk == r
    assert "| LUT |" in (d / "synth-ecp5.md").read_text()
    assert sorted(p.name for p in d.iterdir()) == sorted(before + ["synth-ecp5.json", "synth-ecp5.md"])
    assert not any(own_tmp.iterdir()), "run directory left behind"


def test_cli_layer_dirs_xilinx(tmp_path):
    layers = tmp_path / "rtl"
    _core(layers / "a_folded")
    _core(layers / "b_channel", affine="channel")
    env = dict(os.environ, TQDM_DISABLE="1")
    r = subprocess.run(HARDYT + ["synth", str(layers), "--target", "xilinx"], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2 and all("xilinx: LUT " in ln for ln in lines), r.stdout
    folded = json.loads((layers / "a_folded" / "synth-xilinx.json").read_text())
    channel = json.loads((layers / "b_channel" / "synth-xilinx.json").read_text())
    assert folded["lut"] > 0 and folded["dsp"] == 0 and folded["bram"] == 0
    assert channel["dsp"] == 2                        # one gamma multiply per lane
    assert "fmax_mhz" not in channel                  # synthesis only
    assert any("synth_xilinx -flatten -noiopad" in line for line in channel["yosys_script"].splitlines())


def test_unknown_target(tmp_path):
    with pytest.raises(HardytError, match="ice40"):
        synth(_core(tmp_path / "core"), "ice40", progress=False)


def test_tool_failure_names_log(tmp_path, own_tmp):
    d = _core(tmp_path / "core")
    (d / "dyt.v").write_text((d / "dyt.v").read_text() + "\nmodule broken(;\nendmodule\n")
    with pytest.raises(ToolError, match=r"yosys failed: .*ERROR.*\(log: .*yosys\.log\)") as e:
        synth(d, "xilinx", progress=False)
    log = str(e.value).rsplit("(log: ", 1)[1].rstrip(")")
    assert os.path.isfile(log) and log.startswith(str(own_tmp))
    assert not list(d.glob("synth-*")), "nothing written on failure"
    assert "\n" not in str(e.value)


