"""Accuracy of LayerNorm → DyT conversion, every method side by side, one run.

    .venv/bin/python bench/accuracy.py            # bundled ViT, full Fashion-MNIST test set
    .venv/bin/python bench/accuracy.py --quick    # 2000 test images, fewer rows (a smoke run)
    .venv/bin/python bench/accuracy.py --ceiling  # + rows calibrated on the whole training set (~30 min more)

Rows: the LayerNorm model, then for each calibration method (naive swap,
least squares, sequential least squares, reconstruction) with and without
folding gamma/beta, then the measured ideas (options of the default
method): DyT float and DyT fixed point (8-bit and 6-bit input, LUT tanh,
8-bit output) top-1, calibration time (the 8-bit conversion), calibration
set size. ``--ceiling`` adds rows calibrated on all 60 000 training images
(labels unused): how far more calibration data can take the DyT parameters,
and the self-distillation option. Writes bench/results/accuracy.{json,md}.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from hardyt.quant.conversion.pipeline import OPTION_DEFAULTS, convert, to_float
from hardyt.quant.zoo.data import load_dataset
from hardyt.quant.conversion.evaluate import accuracy
from hardyt.quant.files import atomic_write_text
from hardyt.quant.zoo.load import default_model_path, load_vit

OUT = Path(__file__).parent / "results"

METHOD_ROWS = [(f"{m}{'' if fold else ', no folding'}", {"method": m, "fold": fold})
               for m in ("naive", "lstsq", "sequential", "reconstruct") for fold in (False, True)]

# Ideas measured on top of the default (reconstruct, folded); see docs/conversion.md.
IDEA_ROWS = [
    ("reconstruct, logit KL only (feature_weight 0)", {"feature_weight": 0.0}),
    ("reconstruct, no augmentation", {"augment": ""}),
    ("reconstruct, no augmentation, 300 steps (the earlier default)", {"augment": "", "steps": 300}),
    ("reconstruct, flip+shift augmentation", {"augment": "flip+shift"}),
    ("reconstruct, 1.5x steps", {"steps": 3 * OPTION_DEFAULTS["steps"] // 2}),
    ("reconstruct, per-channel alpha shifts 0..3", {"alpha_shift": 3}),
    ("reconstruct, quantization-aware (STE)", {"quant_aware": True}),
    ("option: label-free self-distillation, lr 1e-4 (not post-training)", {"self_distill_lr": 1e-4}),
]

# Calibrated on the whole training set, labels unused: (label, options, epochs over it).
CEILING_ROWS = [
    ("ceiling: reconstruct on 60 000 training images, 3 epochs", {}, 3),
    ("ceiling: … per-channel alpha shifts 0..3", {"alpha_shift": 3}, 3),
    ("option: self-distillation lr 1e-4 on 60 000 training images, 3 epochs", {"self_distill_lr": 1e-4}, 3),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2000 test images and the method rows only")
    ap.add_argument("--ceiling", action="store_true", help="add the rows calibrated on the whole training set")
    ap.add_argument("--calib-size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 on a busy machine: spin-waits)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    model = load_vit(default_model_path()).eval()
    x_train, _ = load_dataset("fashion-mnist", "train", None)
    x_test, y_test = load_dataset("fashion-mnist", "test", 2000 if args.quick else None)
    g = torch.Generator().manual_seed(args.seed)
    order = torch.randperm(len(x_train), generator=g)
    calib = list(x_train[order[:args.calib_size]].split(64))
    everything = list(x_train[order].split(64))  # starts with the same 1024: same closed-form fits

    ln = accuracy(model, x_test, y_test)
    rows = [{"method": "LayerNorm (float)", "ln_float": ln}]
    print(f"LayerNorm float: {100 * ln:.2f} %", flush=True)
    runs = [(label, opts, calib, True) for label, opts in METHOD_ROWS + ([] if args.quick else IDEA_ROWS)]
    if args.ceiling:  # 8-bit only: each of these rows takes minutes
        runs += [(label, opts | {"steps": epochs * len(everything)}, everything, False)
                 for label, opts, epochs in CEILING_ROWS]
    for label, opts, batches, six_bit in runs:
        opts = opts | {"seed": args.seed}
        t0 = time.perf_counter()
        fixed8, report = convert(model, batches, fixed_point={"in_bits": 8}, **opts)
        seconds = time.perf_counter() - t0
        fixed6 = convert(model, batches, fixed_point={"in_bits": 6}, **opts)[0] if six_bit else None
        row = {"method": label, "options": opts, "dyt_float": accuracy(to_float(fixed8), x_test, y_test),
               "dyt_fixed8": accuracy(fixed8, x_test, y_test),
               "dyt_fixed6": accuracy(fixed6, x_test, y_test) if six_bit else None,
               "calib_seconds": seconds, "calib_samples": report["calib_samples"], "folded": report["folded"],
               "layers": len(report["layers"]), "kl": report["kl"]}
        rows.append(row)
        print(f"{label:48s} float {_pct(row['dyt_float'])}  fixed8 {_pct(row['dyt_fixed8'])}  "
              f"fixed6 {_pct(row['dyt_fixed6'])}  ({seconds:.1f} s)", flush=True)

    cmd = ("python bench/accuracy.py" + (" --quick" if args.quick else "") + (" --ceiling" if args.ceiling else "")
           + f" --threads {args.threads}")
    table = ["| method | DyT float | DyT fixed 8-bit in | DyT fixed 6-bit in | Δ fixed 8 vs LN | calib time (s) "
             "| calib images |", "|---|---|---|---|---|---|---|",
             f"| LayerNorm (float) | {100 * ln:.2f} % | | | | | |"]
    for r in rows[1:]:
        table.append(f"| {r['method']} | {_pct(r['dyt_float'])} | {_pct(r['dyt_fixed8'])} "
                     f"| {_pct(r['dyt_fixed6'])} | {100 * (r['dyt_fixed8'] - ln):+.2f} pt "
                     f"| {r['calib_seconds']:.1f} | {r['calib_samples']} |")
    text = "\n".join(table)
    print(text)
    meta = {"command": cmd, "model": str(default_model_path()), "test_samples": len(x_test),
            "calib_size": args.calib_size, "seed": args.seed, "defaults": OPTION_DEFAULTS,
            "torch_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": sys.version.split()[0],
            "machine": platform.machine()}
    OUT.mkdir(exist_ok=True)
    name = "accuracy_quick" if args.quick else "accuracy"
    atomic_write_text(OUT / f"{name}.json", json.dumps({"meta": meta, "rows": rows}, indent=1, default=str) + "\n")
    atomic_write_text(OUT / f"{name}.md", "# LayerNorm → DyT accuracy (bundled ViT, Fashion-MNIST test set, "
                      f"{len(x_test)} images)\n\nCommand: `{cmd}` ({torch.get_num_threads()} torch thread(s)). Top-1; fixed point = the "
                      "golden model's integer DyT (LUT tanh, 8-bit output), rest of the model float.\n\n"
                      + text + "\n")
    return 0


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


if __name__ == "__main__":
    sys.exit(main())
