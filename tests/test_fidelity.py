"""The fidelity check of every conversion: per-layer SQNR, widths, agreement, warnings, --strict."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from hardyt.quant import HardytError, convert
from hardyt.quant.conversion.fidelity import SQNR_FLOOR_DB, sqnr_db
from hardyt.scripts.cli import main

FAST = {"steps": 10, "rows_per_batch": 64, "holdout": 64}


class OutlierPostLN(nn.Module):
    """A post-LN encoder whose embedding has one outlier channel (~100x the median).

    The outlier fixes each token's LayerNorm statistics, so LayerNorm is linear in
    its input and the calibrated DyT works in its linear region (alpha*clip ~ 0.02).
    """

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.embed = nn.Embedding(50, 16)
        with torch.no_grad():
            self.embed.weight[:, 3] += 60.0
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, input_ids):
        return self.head(self.encoder(self.embed(input_ids))[:, 0])


def _calib():
    g, h = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    fit = [{"input_ids": torch.randint(0, 50, (8, 10), generator=g)} for _ in range(3)]
    # The first 64 samples are the referee, held out of every fit (holdout=64 in FAST); the fits see 24.
    return [{"input_ids": torch.randint(0, 50, (8, 10), generator=h)} for _ in range(8)] + fit


@pytest.fixture(scope="module")
def outlier_model():
    torch.set_num_threads(1)
    return OutlierPostLN().eval(), _calib()


def test_sqnr_db():
    ref = torch.tensor([3.0, -4.0])
    assert sqnr_db(ref, ref) == 300.0
    assert sqnr_db(ref, ref + torch.tensor([0.5, 0.0])) == pytest.approx(20.0)
    assert sqnr_db(torch.zeros(2), torch.ones(2)) == -300.0


def test_linear_region_layers_keep_their_resolution(outlier_model):
    model, calib = outlier_model
    conv, report = convert(model, calib, fixed_point=True, **FAST)
    assert report["warnings"] == []
    for layer in report["layers"]:
        assert layer["alpha_clip"] < 0.1                      # the linear region this test is about
        assert layer["sqnr_db"] >= SQNR_FLOOR_DB
        assert 2 <= layer["min_in_bits"] <= 8 and 2 <= layer["min_out_bits"] <= 8
        spec = layer["spec"]
        assert spec["tanh"]["out_scale"] * 127 == pytest.approx(math.tanh(layer["alpha_clip"]), rel=1e-6)  # the range
        assert layer["alpha_clip"] - spec["tanh"]["out_scale"] * 127 < 0.01 * layer["alpha_clip"]  # tanh(x)~x
        if spec["affine"]["mode"] == "channel":  # formats from the data, not fixed defaults
            assert spec["affine"]["out_bits"] >= 8
    fid = report["fidelity"]
    assert fid["cosine"] >= 0.99 and fid["top1_agreement"] >= 0.99 and fid["kl"] >= 0
    assert fid["min_sqnr_db"] == min(layer["sqnr_db"] for layer in report["layers"])


def test_forced_full_scale_format_collapses_and_warns(outlier_model):
    """The old +-1 tanh output format on linear-region layers: every layer named, strict fails."""
    model, calib = outlier_model
    _, report = convert(model, calib, fixed_point={"tanh_range": "full"}, **FAST)
    names = [layer["name"] for layer in report["layers"]]
    assert all(layer["sqnr_db"] < SQNR_FLOOR_DB for layer in report["layers"])
    for name in names:
        hit = [w for w in report["warnings"] if w.startswith(f"{name}: ")]
        assert len(hit) == 1 and "keep this LayerNorm" in hit[0] and "dB" in hit[0]
    with pytest.raises(HardytError, match=r"(?s)strict.*encoder\.layers\.0\.norm1: fixed-point DyT SQNR"):
        convert(model, calib, fixed_point={"tanh_range": "full"}, strict=True, **FAST)


def test_float_conversion_is_checked_too(outlier_model):
    model, calib = outlier_model
    _, report = convert(model, calib, **FAST)
    assert report["fixed_point"] is False and "sqnr_db" in report["layers"][0]
    assert report["fidelity"]["samples"] == 24 and report["teacher"]["samples"] == 64


def test_bad_tanh_range_is_rejected(outlier_model):
    model, calib = outlier_model
    with pytest.raises(HardytError, match="tanh_range"):
        convert(model, calib, fixed_point={"tanh_range": "pm1"}, **FAST)


def test_cli_strict_exits_1_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from conftest import tiny_vit_files
    from test_convert_cli import _npz
    monkeypatch.setenv("TQDM_DISABLE", "1")
    args = ["convert", str(tiny_vit_files(tmp_path)), "--data", str(_npz(tmp_path)), "--calib-size", "32",
            "--steps", "2", "--in-bits", "2", "--out-bits", "2"]
    assert main(args + ["--strict", "--out", str(tmp_path / "strict")]) == 1
    err = capsys.readouterr().err
    assert "strict" in err and "below the 20 dB floor" in err
    assert not (tmp_path / "strict").exists()
    assert main(args + ["--out", str(tmp_path / "lenient")]) == 0
    out = capsys.readouterr().out
    assert "warning: blocks.0.norm1: fixed-point DyT SQNR" in out
    report = json.loads((tmp_path / "lenient" / "report.json").read_text())
    assert report["warnings"] and (tmp_path / "lenient" / "sqnr.png").stat().st_size > 0
    assert "## Fixed point vs float DyT" in (tmp_path / "lenient" / "report.md").read_text()
