"""The train step (how the bundled model was made): a seeded timm-layout ViT on Fashion-MNIST, and its record."""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.zoo.train import AUGMENTATIONS, BUNDLED_CONFIG, TrainOptions

__all__ = ["AUGMENTATIONS", "BUNDLED_CONFIG", "TrainOptions", "train_model"]


def train_model(options: TrainOptions, out, command: str | None = None) -> tuple[Path, Path, dict]:
    """Train, write ``out`` (``.safetensors``) and its sidecar JSON: ``(weights, sidecar, record)``."""
    from hardyt.quant.zoo.train import save_model, train
    from hardyt.quant.zoo.vit import VisionTransformer

    out = Path(out)
    if out.suffix != ".safetensors":
        raise HardytError(f"--out {out}: must end in .safetensors")
    if not out.parent.is_dir():
        raise HardytError(f"--out {out}: directory {out.parent} does not exist")
    VisionTransformer(**options.config)  # bad architecture arguments fail here, before loading data
    model, record = train(options)
    path, meta = save_model(model, out, options.config, {"command": command, **record})
    return path, meta, record
