"""The whole input space of a DyT core (every code on every channel), in parts, on Dask workers."""
from __future__ import annotations

import pytest

from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.emission.emit import emit
from hardyt.hw.tools.sweep import dask_client
from hardyt.sim.exhaustive import run_exhaustive, sweep_parts
from hardyt.sim.bulk_files import bulk_stream, exhaustive_fits
from hardyt.scripts.cli import main


@pytest.fixture(scope="module")
def pwl12(tmp_path_factory):
    """A 12-bit PWL core with channel affine: 4096 x 4 inputs (wider than the 10-bit rule of cocotb mode)."""
    d = tmp_path_factory.mktemp("exh") / "core"
    emit(random_dyt_spec(4, 2, 12, 8, tanh="pwl", affine="channel", segments=32, seed=2), d)
    return d


def test_parts_cover_every_code_on_every_channel(pwl12):
    from hardyt.quant.contract.spec_io import load_spec
    spec = load_spec(pwl12 / "dyt.spec.json")
    seen = set()
    for k in range(3):
        x, last = bulk_stream(spec, 1, 1, part=(k, 3))
        seen |= {(j, int(v)) for row in x.reshape(-1, spec.channels) for j, v in enumerate(row)}
    assert len(seen) == 4096 * spec.channels
    assert exhaustive_fits(spec) and not exhaustive_fits(random_dyt_spec(768, 1, 16, 8, tanh="pwl"))
    assert sweep_parts(random_dyt_spec(768, 1, 16, 8, tanh="pwl"), 1) == 2


def test_exhaustive_on_two_dask_workers(pwl12, tmp_path):
    with dask_client(None, 2) as client:
        r = run_exhaustive(pwl12, simulator="icarus", client=client, workers=2, cache=tmp_path)
    assert r["ok"] and r["parts"] == 2, r
    assert r["elements"] == r["space"] == 4096 * 4 and r["mismatches"] == 0


def test_exhaustive_catches_one_wrong_rom_word(pwl12, tmp_path, capsys):
    import shutil
    d = tmp_path / "core"
    shutil.copytree(pwl12, d)
    mem = d / "dyt_intercept.mem"
    words = mem.read_text().split()
    words[3] = "0" * len(words[3])                                # segment 3's intercept zeroed
    mem.write_text("\n".join(words) + "\n")
    r = run_exhaustive(d, simulator="icarus", cache=tmp_path / "cache")
    assert not r["ok"] and r["mismatches"] > 0
    assert r["report"] and "channel" in r["report"][0]
    from hardyt.flow.sim import report_lines
    assert "FAIL (verilator, exhaustive)" in report_lines("core", r)[0]
