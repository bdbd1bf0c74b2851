"""`hardyt --version` and `hardyt tanh` as a user runs them."""
import json
import subprocess
import sys

import pytest


def hardyt(*args):
    return subprocess.run([sys.executable, "-m", "hardyt.scripts.cli", *args], capture_output=True, text=True)


def test_version():
    r = hardyt("--version")
    assert r.returncode == 0 and r.stdout.startswith("hardyt ")


@pytest.mark.parametrize("args,kind", [
    (["--kind", "lut", "--in-bits", "8", "--out-bits", "8", "--alpha-scale", "0.03"], "lut"),
    (["--kind", "pwl", "--in-bits", "16", "--out-bits", "8", "--alpha-scale", "0.00012", "--segments", "32"], "pwl"),
])
def test_tanh_json(args, kind, tmp_path):
    png = tmp_path / "t.png"
    r = hardyt("tanh", *args, "--json", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["kind"] == kind
    assert d["worst_ulp"] <= (0.5 if kind == "lut" else 1.0)
    assert 0 < d["mean_ulp"] <= d["worst_ulp"]
    assert d["rom_bits"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tanh_bad_width_is_one_line():
    r = hardyt("tanh", "--kind", "lut", "--in-bits", "1", "--out-bits", "8", "--alpha-scale", "0.1")
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "tanh.in_bits" in r.stderr and "Traceback" not in r.stderr
