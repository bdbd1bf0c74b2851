"""Train a small timm-layout ViT on Fashion-MNIST (the bundled model).

Seeded end to end (weights, data order, augmentation), AdamW with a linear
warm-up then cosine decay, optional label smoothing and light augmentation
(horizontal flip, optionally a random crop of the 2-pixel zero-padded image). ``save_model`` writes ``NAME.safetensors`` and the
config JSON ``NAME.json`` beside it (timm keyword arguments, input
normalization, the command, seed, accuracy, time) atomically.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..contract.check import check_options
from ..errors import HardytError, SpecError
from ..files import atomic_write_bytes, save_json_atomic

__all__ = ["AUGMENTATIONS", "TrainOptions", "BUNDLED_CONFIG", "train", "save_model", "train_augment"]

AUGMENTATIONS = ("none", "flip", "crop-flip")
# The bundled model's architecture (timm VisionTransformer keyword arguments).
BUNDLED_CONFIG = dict(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=4,
                      num_heads=4, mlp_ratio=2.0, qkv_bias=True, class_token=True, global_pool="token",
                      fc_norm=None)


@dataclass
class TrainOptions:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    augment: str = "flip"
    label_smoothing: float = 0.1
    seed: int = 0
    threads: int = 1
    config: dict = field(default_factory=lambda: dict(BUNDLED_CONFIG))

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Every field valid, else a :class:`SpecError` naming it and its value (``train`` checks again: a
        field may have been changed since)."""
        check_options(self, "train", ints={"epochs": (1, None), "batch_size": (1, None), "threads": (1, None),
                                           "seed": (0, None)},
                      positive=("lr",), non_negative=("weight_decay", "warmup_epochs", "label_smoothing"),
                      choices={"augment": AUGMENTATIONS})
        if self.label_smoothing >= 1:
            raise SpecError("label_smoothing", f"must be in [0, 1), got {self.label_smoothing!r}", source="train")


def train_augment(x, generator, fill: float = 0.0, crop: bool = True):
    """Random horizontal flip and (``crop``) a random crop of the image padded by 2 pixels of ``fill``."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    if not crop:
        return torch.where(flip[:, None, None, None], x.flip(-1), x)
    pad = 2
    padded = F.pad(x, (pad, pad, pad, pad), value=fill)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def train(options: TrainOptions, progress: bool = True):
    """Train on Fashion-MNIST's training set; return ``(model, record)`` (record: test accuracy, time, ...)."""
    import torch
    import torch.nn.functional as F
    from ..progress import progress as progress_bar

    from ..runtime.evaluate import accuracy
    from .data import NORMALIZATION, load_dataset
    from .vit import VisionTransformer

    options.check()
    torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    x_train, y_train = load_dataset("fashion-mnist", "train")
    x_test, y_test = load_dataset("fashion-mnist", "test")
    model = VisionTransformer(**options.config)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos_embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": options.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=options.lr)
    steps_per_epoch = math.ceil(len(x_train) / options.batch_size)
    total, warmup = options.epochs * steps_per_epoch, int(options.warmup_epochs * steps_per_epoch)

    def lr_factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    black = -NORMALIZATION["mean"][0] / NORMALIZATION["std"][0]  # a black pixel after normalization
    g = torch.Generator().manual_seed(options.seed)
    t0 = time.perf_counter()
    history = []
    for epoch in range(options.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=g)
        bar = progress_bar(order.split(options.batch_size), desc=f"epoch {epoch + 1}/{options.epochs}",
                   disable=not progress, leave=False)
        loss_sum = 0.0
        for idx in bar:
            xb = x_train[idx] if options.augment == "none" else train_augment(x_train[idx], g, black,
                                                                               crop=options.augment == "crop-flip")
            loss = F.cross_entropy(model(xb), y_train[idx], label_smoothing=options.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        acc = accuracy(model, x_test, y_test)
        history.append({"epoch": epoch + 1, "train_loss": round(loss_sum / len(x_train), 4),
                        "test_accuracy": acc, "seconds": round(time.perf_counter() - t0, 1)})
        if progress:
            bar.write(f"epoch {epoch + 1}/{options.epochs}: train loss {loss_sum / len(x_train):.4f}  "
                       f"test top-1 {100 * acc:.2f} %  ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    record = {"test_accuracy": history[-1]["test_accuracy"], "test_samples": len(y_test),
              "train_seconds": round(time.perf_counter() - t0, 1), "seed": options.seed,
              "normalization": NORMALIZATION, "training": {k: v for k, v in asdict(options).items() if k != "config"},
              "history": history}
    return model, record


def save_model(model, path, config: dict, record: dict) -> tuple[Path, Path]:
    """Write ``path`` (.safetensors) and ``<stem>.json`` (config + record) atomically."""
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise HardytError(f"{path}: the output must be a .safetensors file")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(path, save(state))
    meta = path.with_suffix(".json")
    save_json_atomic(meta, {"architecture": "timm VisionTransformer", "config": config, **record})
    return path, meta
