"""``hardyt convert``: LayerNorm → calibrated fixed-point DyT for a trained ViT.

Writes into ``--out`` (atomically): ``model.safetensors`` + ``config.json``
(the converted float model), one ``<layer>.spec.json`` per DyT layer (what
``hardyt rtl`` reads), ``<layer>.inputs.npz`` (``x``: the integer input codes
the layer saw, for simulation), ``report.json``, ``report.md`` and
``alpha.png``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir, atomic_write_text, save_json_atomic

from .flags import flag_errors
from .plots import save_figure, subplots

RECORD_IMAGES = 8  # images whose DyT input codes are saved per layer (a few hundred tokens)


def add_parser(sub):
    p = sub.add_parser("convert", help="replace every LayerNorm of a trained ViT by calibrated fixed-point DyT",
                       description="Calibrate DyT layers in place of a trained ViT's LayerNorms (labels unused), "
                                   "fold gamma/beta into the next Linear, quantize to the hardware's fixed point, "
                                   "evaluate LayerNorm / DyT float / DyT fixed on the test set and write the "
                                   "converted checkpoint, one DyT spec per layer and a report.")
    add_model_flags(p, "timm-format .safetensors/.pth or a Hugging Face directory (default: the bundled "
                       "Fashion-MNIST ViT)")
    p.add_argument("--calib-size", type=int, default=1024, help="calibration images (default: 1024)")
    p.add_argument("--max-drop", type=float, metavar="PT",
                   help="keep the fewest LayerNorms such that top-1 drops by at most PT points")
    p.add_argument("--in-bits", type=int, default=8, help="DyT input code width (default: 8)")
    p.add_argument("--out-bits", type=int, default=8, help="tanh output width (default: 8)")
    p.add_argument("--tanh", choices=("lut", "pwl"), default="lut", help="fixed-point tanh kind (default: lut)")
    p.add_argument("--lanes", type=int, help="channels per beat P (default: largest of 8, 4, 2, 1 dividing C)")
    p.add_argument("--method", default="reconstruct",
                   choices=("naive", "lstsq", "sequential", "reconstruct"), help="calibration (default: reconstruct)")
    p.add_argument("--steps", type=int, help="reconstruction steps (default: the library's)")
    p.add_argument("--alpha-shift", type=int, default=0, metavar="K",
                   help="per-channel alpha as shifts 0..K (default 0: one alpha per layer)")
    p.add_argument("--self-distill-lr", type=float, default=0.0, metavar="LR",
                   help="> 0: also tune every other weight toward the LayerNorm model (label-free "
                        "self-distillation; changes weights besides DyT, default 0: off)")
    p.add_argument("--augment", metavar="KINDS",
                   help="reconstruction batches varied by flip, shift, mixup ('+'-joined) or '' for none "
                        "(default: the library's, shift)")
    p.add_argument("--eval-size", type=int, help="test images to evaluate on (default: all)")
    p.add_argument("--seed", type=int, default=0, help="calibration sample and optimizer seed (default: 0)")
    p.add_argument("--out", default="out/convert", help="output directory (default: out/convert)")
    p.set_defaults(func=run)


def add_model_flags(p, checkpoint_help: str, metavar: str | None = None) -> None:
    """CHECKPOINT, ``--config``, ``--format`` and ``--data``: the model and data flags (shared with ``explore``)."""
    p.add_argument("checkpoint", nargs="?", metavar=metavar, help=checkpoint_help)
    p.add_argument("--config", help="JSON of timm VisionTransformer arguments (default: <checkpoint stem>.json)")
    p.add_argument("--format", choices=("timm", "hf"), default="timm", help="checkpoint format (default: timm)")
    p.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist, an ImageFolder DIR or FILE.npz (default: fashion-mnist)")


def _read_config(path):
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except OSError as e:
        raise HardytError(f"{path}: cannot read config: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise HardytError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise HardytError(f"{path}: config must be a JSON object, got {type(config).__name__}")
    return config


def _load_model(args):
    from hardyt.quant.zoo import load
    if args.format == "hf":
        if not args.checkpoint:
            raise HardytError("--format hf needs a CHECKPOINT directory")
        return load.load_hf(args.checkpoint)
    path = args.checkpoint or load.default_model_path()
    return load.load_vit(path, _read_config(args.config) if args.config else None)


def _check_args(args):
    for name in ("calib_size", "in_bits", "out_bits"):
        v = getattr(args, name)
        if v < (1 if name == "calib_size" else 2):
            raise HardytError(f"--{name.replace('_', '-')} must be {'>= 1' if name == 'calib_size' else '>= 2'}, "
                              f"got {v}")
    if args.max_drop is not None and not args.max_drop >= 0:
        raise HardytError(f"--max-drop must be >= 0 points, got {args.max_drop}")


def _options(args) -> dict:
    """The library's conversion options for these flags, checked now (before any model is loaded)."""
    from hardyt.quant.conversion.options import ConvertOptions

    options = {"method": args.method, "alpha_shift": args.alpha_shift, "self_distill_lr": args.self_distill_lr,
               "seed": args.seed, "progress": True}
    if args.steps is not None:
        options["steps"] = args.steps
    if args.augment is not None:
        options["augment"] = args.augment
    with flag_errors():
        ConvertOptions(**options)
    return options


def _data(args):
    """``(x_train, pick, x_test, y_test)``: ``pick`` is the calibration sample, ``--calib-size`` images drawn
    with ``--seed``."""
    import torch

    from hardyt.quant.zoo.data import load_dataset

    x_train, _ = load_dataset(args.data, "train", None)
    x_test, y_test = load_dataset(args.data, "test", args.eval_size)
    if len(x_train) == 0:
        raise HardytError(f"{args.data}: the calibration split is empty (no images)")
    pick = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(args.seed))[:args.calib_size]
    return x_train, pick, x_test, y_test


def run(args) -> int:
    from hardyt.quant.conversion.evaluate import accuracy
    from hardyt.quant.conversion.partial import partial_convert
    from hardyt.quant.conversion.pipeline import convert, to_float

    _check_args(args)
    options = _options(args)
    t0 = time.perf_counter()
    model = _load_model(args).eval()
    x_train, pick, x_test, y_test = _data(args)
    batches = list(x_train[pick].split(64))
    formats = {"in_bits": args.in_bits, "out_bits": args.out_bits, "tanh": args.tanh, "lanes": args.lanes}
    if args.max_drop is not None:
        converted, report = partial_convert(model, batches, x_test, y_test, max_drop=args.max_drop,
                                            fixed_point=formats, **options)
    else:
        converted, report = convert(model, batches, fixed_point=formats, **options)
    t_convert = time.perf_counter() - t0
    float_model = to_float(converted)
    acc = {"ln_float": accuracy(model, x_test, y_test, progress=True, desc="LayerNorm"),
           "dyt_float": accuracy(float_model, x_test, y_test, progress=True, desc="DyT float"),
           "dyt_fixed": accuracy(converted, x_test, y_test, progress=True, desc="DyT fixed")}
    report = {"command": "hardyt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("hardyt") else None,
              "checkpoint": str(args.checkpoint or "bundled"), "data": args.data, "test_samples": len(x_test),
              "accuracy": acc, **report, "convert_seconds": t_convert,
              "total_seconds": time.perf_counter() - t0}
    write_converted(Path(args.out), model, float_model, converted, report, x_train[pick[:RECORD_IMAGES]])
    print(f"LayerNorm {100 * acc['ln_float']:.2f} %  DyT float {100 * acc['dyt_float']:.2f} %  "
          f"DyT fixed {100 * acc['dyt_fixed']:.2f} %  ({len(report['layers'])} DyT layers, "
          f"{report['folded']} folded, {len(report['kept_layernorms'])} LayerNorm kept, "
          f"{report['total_seconds']:.0f} s) -> {Path(args.out)}")
    return 0


def write_converted(out: Path, model, float_model, converted, report: dict, record_images,
                    markdown: str | None = None) -> None:
    """Every file of a converted directory, all or none (written in a temporary directory, then renamed).

    ``markdown``: the text of ``report.md`` (default: :func:`render_markdown` of ``report``).
    """
    from safetensors.torch import save_file

    with atomic_output_dir(out) as tmp:
        state = {k: v.detach().contiguous() for k, v in float_model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        save_json_atomic(tmp / "config.json", _converted_config(model, report))
        _save_layer_files(converted, report, record_images, tmp)
        _plot_alpha(report, tmp / "alpha.png")
        save_json_atomic(tmp / "report.json", report)
        atomic_write_text(tmp / "report.md", render_markdown(report) if markdown is None else markdown)


def _converted_config(model, report) -> dict:
    vit = getattr(model, "config", None)
    vit = vit if isinstance(vit, dict) else getattr(vit, "to_dict", lambda: None)()
    return {"hardyt": "converted", "source_config": vit,
            "dyt_layers": {layer["name"]: {"alpha_shift": layer["alpha_shift"], "folded": layer["folded"],
                                           "folded_into": layer["folded_into"]} for layer in report["layers"]},
            "kept_layernorms": report["kept_layernorms"]}


def _save_layer_files(converted, report, images, tmp: Path) -> None:
    import torch

    from hardyt.quant.conversion.graph import model_logits
    from hardyt.quant.conversion.pipeline import dyt_layers
    from hardyt.quant.contract.spec import DyTSpec

    layers = dyt_layers(converted)
    for m in layers.values():
        m.record = []
    try:
        with torch.no_grad():
            model_logits(converted, images)
        for layer in report["layers"]:
            spec = DyTSpec.from_dict(layer["spec"])
            spec.save(tmp / f"{spec.name}.spec.json")
            codes = torch.cat(layers[layer["name"]].record).numpy().astype(np.int64)
            np.savez(tmp / f"{spec.name}.inputs.npz", x=codes)
    finally:
        for m in layers.values():
            m.record = None


def _plot_alpha(report, path) -> None:
    layers = report["layers"]
    fig, ax = subplots(figsize=(max(6, 0.45 * len(layers) + 2), 3.8))
    xs = np.arange(len(layers))
    ax.bar(xs, [layer["alpha"] for layer in layers], color=["C0" if layer["folded"] else "C1" for layer in layers])
    ax.set_yscale("log")
    ax.set_ylabel("alpha")
    ax.set_xticks(xs, [layer["name"] for layer in layers], rotation=60, ha="right", fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(xs, [layer["clip"] for layer in layers], "k.", label="input clip")
    ax2.set_ylabel("input clip (real units)")
    ax.set_title("per-layer alpha (blue: gamma/beta folded, orange: channel affine) and input clip")
    save_figure(fig, path)


def _pct(v) -> str:
    return f"{100 * v:.2f} %"


def render_markdown(report) -> str:
    acc = report["accuracy"]
    ln = acc["ln_float"]
    lines = ["# hardyt convert", "",
             f"Checkpoint `{report['checkpoint']}`, data `{report['data']}` ({report['test_samples']} test images), "
             f"{report['calib_samples']} calibration images (labels unused), method `{report['method']}`, "
             f"{report['formats']['in_bits']}-bit input, {report['formats']['tanh']} tanh "
             f"({report['formats']['out_bits']}-bit out). Conversion {report['convert_seconds']:.0f} s, "
             f"total {report['total_seconds']:.0f} s.", "",
             "| model | top-1 | vs LayerNorm |", "|---|---|---|"]
    for key, label in (("ln_float", "LayerNorm, float"), ("dyt_float", "DyT, float"),
                       ("dyt_fixed", "DyT, fixed point (hardware arithmetic)")):
        delta = "" if key == "ln_float" else f"{100 * (acc[key] - ln):+.2f} pt"
        lines.append(f"| {label} | {_pct(acc[key])} | {delta} |")
    lines += ["", "![per-layer alpha](alpha.png)", "",
              "| layer | C | alpha | shifts | in_scale | clip | fit error | affine | folded into |",
              "|---|---|---|---|---|---|---|---|---|"]
    for layer in report["layers"]:
        shifts = "–" if layer["alpha_shift"] is None else f"0..{max(layer['alpha_shift'])}"
        lines.append(f"| {layer['name']} | {layer['channels']} | {layer['alpha']:.4g} | {shifts} "
                     f"| {layer['in_scale']:.4g} | {layer['clip']:.3g} | {layer['fit_error']:.3g} "
                     f"| {layer['spec']['affine']['mode']} | {', '.join(layer['folded_into']) or '–'} |")
    if report["kept_layernorms"]:
        lines += ["", "LayerNorms kept (served by the LayerNorm core): "
                  + ", ".join(f"`{n}`" for n in report["kept_layernorms"])]
    part = report.get("partial")
    if part:
        lines += ["", f"## Partial replacement (--max-drop {part['max_drop']} pt)", "",
                  "| converted (cheapest first) | layer added | cost (KL, alone) | top-1 |", "|---|---|---|---|"]
        lines.append(f"| 0 | – | – | {_pct(part['curve'][0])} |")
        for k, name in enumerate(part["order"], 1):
            lines.append(f"| {k} | {name} | {part['costs'][name]:.4f} | {_pct(part['curve'][k])} |")
    return "\n".join(lines) + "\n"
