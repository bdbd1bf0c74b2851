"""``hardyt rtl`` writes a FuseSoC CAPI2 core: Verilator lint is clean and the Icarus smoke simulation runs."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hardyt.hw.emission.emit import emit, load_manifest
from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.emission.fusesoc import SMOKE_TOKENS, core_name
from hardyt.hw.tools.toolchain import verilator_env

FUSESOC = Path(sys.executable).with_name("fusesoc")


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("rtl") / "core"
    spec = random_dyt_spec(16, 4, 8, 8, tanh="pwl", affine="channel", seed=3)
    emit(spec, out, name="dyt16")
    return out


def _fusesoc(emitted, target, work):
    vlnv = core_name(load_manifest(emitted))
    return subprocess.run([str(FUSESOC), "--cores-root", str(emitted), "run", "--target", target, vlnv],
                          cwd=work, env=verilator_env(), capture_output=True, text=True, timeout=300)


def test_core_lists_every_file(emitted):
    m = load_manifest(emitted)
    text = (emitted / m["fusesoc_core"]).read_text()
    assert text.startswith("CAPI=2:")
    for f in [m["verilog"], *m["mems"]]:
        assert f in text
    assert len(m["mems"]) == 4


def test_lint_clean(emitted, tmp_path):
    r = _fusesoc(emitted, "lint", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--lint-only" in next((tmp_path / "build").rglob("*.vc")).read_text()
    assert "%Warning" not in r.stdout + r.stderr and "%Error" not in r.stdout + r.stderr


def test_icarus_sim_runs_with_the_roms(emitted, tmp_path):
    r = _fusesoc(emitted, "sim", tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    beats = SMOKE_TOKENS * 16 // 4
    assert f"dyt16 smoke: {beats} beats in, {beats} beats out" in out
    assert "Unable to open" not in out and "could not open" not in out.lower()   # the .mem files were found


@pytest.fixture(scope="module", params=["lut", "threshold"])
def engine(tmp_path_factory, request):
    """A DyT engine for a folded and a channel affine layer (a table engine; a threshold engine at 12 bits)."""
    from hardyt.hw.emission.engine_emit import emit_engine

    out = tmp_path_factory.mktemp("rtl") / "engine"
    bits = 12 if request.param == "threshold" else 8
    specs = [random_dyt_spec(8, 2, bits, 8, affine="channel", tanh=request.param, name="a"),
             random_dyt_spec(4, 2, 6, 6, name="b")]
    emit_engine(specs, out, "eng")
    return out


def test_engine_core_lints_clean_and_its_smoke_sim_loads_a_layer(engine, tmp_path):
    m = load_manifest(engine)
    text = (engine / m["fusesoc_core"]).read_text()
    assert all(lay["image_mem"] in text for lay in m["layers"])
    (tmp_path / "lint").mkdir()
    (tmp_path / "sim").mkdir()
    r = _fusesoc(engine, "lint", tmp_path / "lint")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "%Warning" not in r.stdout + r.stderr and "%Error" not in r.stdout + r.stderr
    r = _fusesoc(engine, "sim", tmp_path / "sim")
    assert r.returncode == 0, r.stdout + r.stderr
    beats = SMOKE_TOKENS * 8 // 2
    assert f"eng smoke: image loaded, {beats} beats in, {beats} beats out" in r.stdout + r.stderr


def test_smoke_sim_compares_values(emitted, tmp_path):
    # The same core with its gamma ROM zeroed: every beat still comes out, but the values are wrong.
    import shutil
    core = tmp_path / "core"
    shutil.copytree(emitted, core)
    gamma = core / "dyt16_gamma.mem"
    gamma.write_text("".join("0" * len(w) + "\n" for w in gamma.read_text().split()))
    (tmp_path / "sim").mkdir()
    r = _fusesoc(core, "sim", tmp_path / "sim")
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    beats = SMOKE_TOKENS * 16 // 4
    assert f"sent {beats}, received {beats} beats" in out and "differ from the golden model" in out
