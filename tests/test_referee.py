"""The referee (held-out check against the model given), the guard (adapted weights kept only if they beat
frozen ones on it), outputs that are not logits, and --strict on a conversion that lost the model's function."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hardyt.quant import HardytError, convert
from hardyt.quant.conversion.calibration import Calibration, referee_size
from hardyt.scripts.cli import main

torch.set_num_threads(1)


class PostLNEncoder(nn.Module):
    """A small post-LN text encoder (BERT's layout): returns ``(hidden states, pooled embedding)``."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.embed = nn.Embedding(40, 16)
        self.norm = nn.LayerNorm(16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, input_ids):
        h = self.encoder(self.norm(self.embed(input_ids)))
        return h, h.mean(1)


def _tokens(n_batches=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(0, 40, (8, 6), generator=g)} for _ in range(n_batches)]


def test_referee_is_held_out_of_every_fit_and_step():
    batches = [torch.full((16, 3), float(i)) + torch.arange(3.0) for i in range(12)]  # batch i holds value i
    data = Calibration(batches, fit_samples=32)
    assert referee_size(192) == 64 and data.holdout_samples == 64
    held = {float(b[0, 0]) for b in data.holdout}
    assert held == {0.0, 1.0, 2.0, 3.0}
    seen = {float(b[0, 0]) for b in data.fit} | {float(b[0, 0]) for b in data.shards()}
    assert not held & seen and seen == {float(i) for i in range(4, 12)}
    one = Calibration([torch.randn(200, 3)], fit_samples=1024)  # a single batch: its first rows
    assert one.holdout_samples == 64 and next(one.shards()).shape[0] == 136


def test_guard_falls_back_to_frozen_when_adapting_hurts():
    """A learning rate high enough to wreck the weights: the default returns the frozen-weight conversion."""
    model, calib = PostLNEncoder().eval(), _tokens()
    opts = {"eval_every": 5, "rows_per_batch": 64, "output": lambda out: out[1]}
    conv, report = convert(model, calib, steps=40, self_distill_lr=0.3, **opts)
    choice = report["teacher"]["weights"]
    assert choice["kept"] == "frozen" and "never beat the frozen-weight conversion" in choice["reason"]
    assert report["weights"]["adapted"] == "frozen" and report["weights"]["kept"] == "frozen"
    assert report["objective"] == "cosine" and report["teacher"]["float"]["kl"] is None
    # What was returned is the frozen-weight conversion itself: its 10 frozen steps, then its 30 more.
    assert [p["phase"] for p in report["teacher"]["phases"]] == ["frozen", "adapted", "frozen, continued"]
    frozen, frozen_report = convert(model, calib, steps=40, freeze_weights=True, **opts)
    assert [p["phase"] for p in frozen_report["teacher"]["phases"]] == ["frozen", "frozen, continued"]
    a, b = conv.state_dict(), frozen.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert report["teacher"]["float"]["cosine"] == frozen_report["teacher"]["float"]["cosine"]
    # Adapting measurably hurt: every check of the adapted phase is worse than where it started.
    (start, at_start), *adapted = report["teacher"]["phases"][1]["history"]
    assert start == 0 and adapted and min(s for _, s in adapted) > at_start
    assert max(s for _, s in adapted) > at_start + 0.01  # 1 - cosine
    # It stopped as soon as 4 checks in a row were worse than its start, leaving the steps to the frozen phase.
    from hardyt.quant.conversion.reconstruct import STOPPED_WORSE
    assert report["teacher"]["phases"][1]["stopped"] == STOPPED_WORSE and len(adapted) == 4


def test_referee_warning_fires_and_strict_raises():
    model, calib = PostLNEncoder().eval(), _tokens()
    # LayerNorm's gamma/beta kept, alpha by MSE, no reconstruction: this encoder's function is lost.
    opts = {"method": "naive", "rows_per_batch": 64, "output": lambda out: out[1]}
    _, report = convert(model, calib, **opts)
    hit = [w for w in report["warnings"] if w.startswith("held-out check")]
    assert report["teacher"]["float"]["cosine"] < report["teacher"]["floors"]["cosine"]
    assert hit and "freeze_weights=True" in hit[0] and "more calibration data" in hit[0]
    assert report["warnings"] == hit  # the fixed point agrees with its float DyT: only the referee complains
    with pytest.raises(HardytError, match="(?s)strict.*held-out check"):
        convert(model, calib, strict=True, **opts)
    with pytest.raises(HardytError, match="output"):
        convert(model, calib, output="pooled")


def test_cli_referee_line_and_strict_writes_nothing(tmp_path, monkeypatch, capsys):
    import numpy as np
    from conftest import tiny_vit_files

    monkeypatch.setenv("TQDM_DISABLE", "1")
    rng = np.random.default_rng(0)
    data = tmp_path / "data.npz"
    np.savez(data, x=rng.integers(0, 256, (192, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, 192))
    args = ["convert", str(tiny_vit_files(tmp_path)), "--data", str(data), "--calib-size", "192", "--steps", "6"]
    assert main(args + ["--out", str(tmp_path / "ok")]) == 0
    out = capsys.readouterr().out
    assert "vs LayerNorm model (64 held-out calibration samples)" in out
    report = json.loads((tmp_path / "ok" / "report.json").read_text())
    assert report["teacher"]["samples"] == 64 and report["teacher"]["fixed"]["top1_agreement"] is not None
    assert "held-out check" in (tmp_path / "ok" / "report.md").read_text()
    assert report["splits"]["reported"] == {"split": "test", "source": f"{data} (test split)", "samples": 192}
    # --max-drop decides on validation images cut from the test split, disjoint from the test images reported.
    assert main(args + ["--max-drop", "100", "--val-size", "32", "--out", str(tmp_path / "part")]) == 0
    report = json.loads((tmp_path / "part" / "report.json").read_text())
    assert report["partial"]["decided_on"]["samples"] == 32 and report["test_samples"] == 160
    assert [d["split"] for d in report["splits"]["decided"]] == ["referee", "validation"]
    assert report["splits"]["reported"]["samples"] == 160
    # No reconstruction (LayerNorm's gamma/beta, alpha by MSE): the held-out check fails, --strict writes nothing.
    bad = args + ["--method", "naive", "--strict", "--out", str(tmp_path / "bad")]
    assert main(bad) == 1
    assert "held-out check" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_max_drop_decides_on_the_referee_without_a_validation_split():
    from test_convert import FAST, _calib, _model

    from hardyt.quant.conversion.partial import partial_convert

    model, calib = _model(), _calib(8)  # 128 images: the first 64 are the referee
    _, report = partial_convert(model, calib, max_drop=100.0, **FAST)
    part = report["partial"]
    assert part["decided_on"] == {"split": "referee", "samples": 64,
                                  "metric": "top-1 agreement with the LayerNorm model"}
    assert part["curve"][0] == 1.0 and part["kept"] == []


def test_a_normalized_embedding_is_not_taken_for_logits():
    """Sentence encoders return unit-length (batch, dim) embeddings: the automatic objective is cosine, not KL."""
    from hardyt.quant.runtime.graph import is_logits

    class Embedder(PostLNEncoder):
        def forward(self, input_ids):
            return nn.functional.normalize(super().forward(input_ids)[1], dim=1)

    class Raw(PostLNEncoder):
        def forward(self, input_ids):
            return super().forward(input_ids)[1]

    batch = _tokens(1)[0]
    assert not is_logits(Embedder().eval(), batch) and is_logits(Raw().eval(), batch)
    _, report = convert(Embedder().eval(), _tokens(), steps=4, rows_per_batch=64)
    assert report["objective"] == "cosine" and report["teacher"]["float"]["kl"] is None
