"""``hardyt explore``'s threshold candidates: wide inputs, outputs no wider than 8 bits, costed by their stage ROMs."""
from __future__ import annotations

from conftest import tiny_vit_files

from hardyt.hw.cores import random_dyt_spec
from hardyt.hw.cost_features import kind, roms, structure


def test_threshold_roms_are_the_stages():
    s = random_dyt_spec(16, 4, 16, 8, tanh="threshold", seed=0).to_dict()
    r = roms(s)
    assert [(n, len(w), p) for n, w, _, p in r] == [(f"thr{i}", 1 << i, 4) for i in range(1, 8)]
    assert kind(s) == "threshold" and structure(s)[0] == "threshold"


def test_threshold_candidates_keep_8bit_outputs(tmp_path, monkeypatch):
    import torch

    from hardyt.quant.conversion import explore
    from hardyt.quant.zoo.load import load_vit

    assert ("threshold", 16) in explore.TANH_CHOICES
    monkeypatch.setattr(explore, "TANH_CHOICES", (("threshold", 12),))
    model = load_vit(tiny_vit_files(tmp_path)).eval()
    x = torch.randn(32, 1, 28, 28)
    cal = explore.calibrate(model, [x], method="sequential")
    for layer in explore.candidates(cal, lanes=1).values():
        for choice, spec in layer:
            assert choice["tanh"] == spec.tanh.kind == "threshold" and spec.in_bits == 12
            assert choice["out_bits"] == spec.tanh.out_bits <= explore.THRESHOLD_MAX_OUT_BITS
            assert len(spec.tanh.thresholds) == (1 << spec.tanh.out_bits) - 1
