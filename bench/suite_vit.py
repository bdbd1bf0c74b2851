"""Train the model suite's Hugging Face ViT here (a recipe and layout unlike the two bench ViTs).

    .venv/bin/python bench/suite_vit.py          # writes bench/models/hf_vit_fmnist_p7/

A ``transformers`` ``ViTForImageClassification`` (patch 7, 4 layers, 64 wide,
4 heads, MLP 128: 16 patches + [CLS], pre-LN, 9 LayerNorms) trained on
Fashion-MNIST (Debian's dataset-fashion-mnist): AdamW (weight decay 0.05),
one-cycle schedule, batch 128, no augmentation, no label smoothing, seeded.
The bench ViTs are timm-layout models of ``hardyt train`` (patch 4, warm-up +
cosine, flip augmentation, label smoothing). The directory holds
``config.json``, ``model.safetensors``, ``preprocessor_config.json`` (what
``hardyt convert`` reads the normalization from) and ``training.json`` (the
command, seed, steps, test accuracy, time).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from hardyt.quant.runtime.evaluate import accuracy
from hardyt.quant.files import atomic_write_text
from hardyt.quant.zoo.data import NORMALIZATION, load_dataset

OUT = Path(__file__).parent / "models" / "hf_vit_fmnist_p7"


class Logits(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(pixel_values=x).logits


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, y_train = load_dataset("fashion-mnist", "train")
    x_test, y_test = load_dataset("fashion-mnist", "test")
    cfg = ViTConfig(image_size=28, patch_size=7, num_channels=1, hidden_size=64, num_hidden_layers=4,
                    num_attention_heads=4, intermediate_size=128, num_labels=10, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)
    model = ViTForImageClassification(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.steps)
    g = torch.Generator().manual_seed(args.seed + 1)
    t0 = time.perf_counter()
    model.train()
    for step in range(args.steps):
        idx = torch.randint(0, len(x_train), (128,), generator=g)
        loss = nn.functional.cross_entropy(model(pixel_values=x_train[idx]).logits, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0:
            print(f"step {step} loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    model.eval()
    seconds = time.perf_counter() - t0
    acc = accuracy(Logits(model), x_test, y_test)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out))
    mean, std = NORMALIZATION["mean"], NORMALIZATION["std"]
    ViTImageProcessor(do_resize=False, size={"height": 28, "width": 28}, do_rescale=True, rescale_factor=1 / 255,
                      do_normalize=True, image_mean=list(mean), image_std=list(std)).save_pretrained(str(args.out))
    record = {"command": " ".join(["python bench/suite_vit.py", *(argv if argv is not None else sys.argv[1:])]),
              "steps": args.steps, "lr": args.lr, "seed": args.seed, "batch_size": 128,
              "test_accuracy": acc, "train_seconds": seconds, "torch": torch.__version__}
    atomic_write_text(args.out / "training.json", json.dumps(record, indent=1) + "\n")
    print(f"test accuracy {100 * acc:.2f} % ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
