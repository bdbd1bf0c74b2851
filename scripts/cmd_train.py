"""``hardyt train``: train the small timm-layout ViT on Fashion-MNIST (the bundled model)."""
from __future__ import annotations

import shlex


from .flags import command_parser, flag_errors


def add_parser(sub):
    from hardyt.flow.train import AUGMENTATIONS, BUNDLED_CONFIG, TrainOptions

    d = TrainOptions()
    p = command_parser(sub, "train", help="train a small timm-layout ViT on Fashion-MNIST (how the bundled model was made)",
                       description="Train a timm-layout VisionTransformer on Fashion-MNIST (Debian's "
                                   "dataset-fashion-mnist), seeded, with AdamW and a cosine schedule; write "
                                   "FILE.safetensors and FILE.json (config, normalization, command, accuracy).",
                       examples=["hardyt train --out vit_fmnist.safetensors      # the bundled model's recipe",
                                 "hardyt train --depth 6 --embed-dim 32 --epochs 5 --out vit_small.safetensors"])
    p.add_argument("--out", default="vit_fmnist.safetensors", help="output .safetensors (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay, help="default: %(default)s")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs, help="default: %(default)s")
    p.add_argument("--augment", choices=AUGMENTATIONS, default=d.augment,
                   help="horizontal flip, plus random 2-pixel shifts with crop-flip (default: %(default)s)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing, help="default: %(default)s")
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    p.add_argument("--threads", type=int, default=d.threads,
                   help="torch threads (default: %(default)s; more threads slow down on a shared, busy CPU)")
    for key in ("patch_size", "embed_dim", "depth", "num_heads"):
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=BUNDLED_CONFIG[key], help="default: %(default)s")
    p.add_argument("--mlp-ratio", type=float, default=BUNDLED_CONFIG["mlp_ratio"], help="default: %(default)s")
    p.add_argument("--global-pool", choices=("token", "avg"), default=BUNDLED_CONFIG["global_pool"],
                   help="default: %(default)s")
    p.set_defaults(func=run)


OPTIONS = ("epochs", "batch_size", "lr", "weight_decay", "warmup_epochs", "augment", "label_smoothing", "seed",
           "threads", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "global_pool")


def command(args) -> str:
    """The command with every option explicit, so the record does not depend on today's defaults."""
    parts = ["hardyt", "train", "--out", str(args.out)]
    for name in OPTIONS:
        parts += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return shlex.join(parts)


def run(args) -> int:
    from hardyt.flow.train import BUNDLED_CONFIG, TrainOptions, train_model

    config = dict(BUNDLED_CONFIG, patch_size=args.patch_size, embed_dim=args.embed_dim, depth=args.depth,
                  num_heads=args.num_heads, mlp_ratio=args.mlp_ratio, global_pool=args.global_pool,
                  class_token=True)
    with flag_errors():
        options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs, augment=args.augment,
                               label_smoothing=args.label_smoothing, seed=args.seed, threads=args.threads,
                               config=config)
    path, meta, record = train_model(options, args.out, command(args))
    print(f"test top-1 {100 * record['test_accuracy']:.2f} % on {record['test_samples']} images, "
          f"{record['train_seconds']:.0f} s; wrote {path} and {meta}")
    return 0
