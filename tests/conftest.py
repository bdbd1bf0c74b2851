"""Helpers shared by several test modules (import them: ``from conftest import ...``)."""
from __future__ import annotations

import json
from pathlib import Path

# --- models: a tiny timm-layout ViT checkpoint ------------------------------------------------

TINY_VIT = dict(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=16, depth=1, num_heads=2,
                mlp_ratio=2.0)
# what its sidecar records as the input normalization (hardyt convert needs one)
TINY_VIT_NORMALIZATION = {"mean": [0.5], "std": [0.25]}


def tiny_vit_files(tmp: Path, corrupt: str | None = None) -> Path:
    """``tmp/vit.safetensors`` (random weights, seed 0) and its sidecar ``tmp/vit.json`` (config, normalization).

    ``corrupt``: ``"missing_key"`` drops a LayerNorm weight, ``"shape"`` gives the head a
    wrong shape, ``"nan"`` puts a NaN in an MLP weight.
    """
    import torch
    from safetensors.torch import save_file

    from hardyt.quant.zoo.vit import VisionTransformer

    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in VisionTransformer(**TINY_VIT).state_dict().items()}
    if corrupt == "missing_key":
        del sd["blocks.0.norm1.weight"]
    elif corrupt == "shape":
        sd["head.weight"] = torch.zeros(10, 17)
    elif corrupt == "nan":
        sd["blocks.0.mlp.fc1.weight"][0, 0] = float("nan")
    elif corrupt is not None:
        raise AssertionError(f"unknown corruption {corrupt!r}")
    path = tmp / "vit.safetensors"
    save_file(sd, str(path))
    (tmp / "vit.json").write_text(json.dumps({"config": TINY_VIT, "normalization": TINY_VIT_NORMALIZATION}))
    return path
