"""``hardyt convert`` end to end on a tiny timm-layout ViT and an .npz data set."""
from __future__ import annotations

import json

import numpy as np
import torch

from hardyt.quant import golden
from hardyt.quant.contract.spec_io import load_spec
from hardyt.scripts.cli import main


def _tiny_vit(tmp):
    from safetensors.torch import save_file

    from hardyt.quant.zoo.vit import VisionTransformer
    cfg = dict(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=16, depth=1, num_heads=2,
               mlp_ratio=2.0)
    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in VisionTransformer(**cfg).state_dict().items()}
    path = tmp / "vit.safetensors"
    save_file(sd, str(path))
    (tmp / "vit.json").write_text(json.dumps({"config": cfg, "normalization": {"mean": [0.5], "std": [0.25]}}))
    return path


def _npz(tmp, n=96):
    rng = np.random.default_rng(0)
    path = tmp / "data.npz"
    np.savez(path, x=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, n))
    return path


def test_convert_writes_every_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    out = tmp_path / "out"
    rc = main(["convert", str(_tiny_vit(tmp_path)), "--data", str(_npz(tmp_path)), "--calib-size", "32",
               "--steps", "5", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["accuracy"]) == {"ln_float", "dyt_float", "dyt_fixed"}
    assert all(0 <= v <= 1 for v in report["accuracy"].values())
    names = [layer["spec_name"] for layer in report["layers"]]
    assert names == ["blocks_0_norm1", "blocks_0_norm2", "norm"]
    for layer in report["layers"]:
        spec = load_spec(out / f"{layer['spec_name']}.spec.json")
        assert spec.name == layer["spec_name"] and spec.in_bits == 8
        x = np.load(out / f"{layer['spec_name']}.inputs.npz")["x"]
        assert x.dtype == np.int64 and x.shape[1] == spec.channels and 100 <= x.shape[0] <= 1000
        golden(x, spec)  # in range for the spec
    for f in ("model.safetensors", "config.json", "report.md", "alpha.png"):
        assert (out / f).stat().st_size > 0, f
    from safetensors.torch import load_file
    state = load_file(str(out / "model.safetensors"))
    assert "blocks.0.norm1.alpha" in state and "blocks.0.norm1.weight" not in state  # folded
    assert "| DyT, fixed point" in (out / "report.md").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
