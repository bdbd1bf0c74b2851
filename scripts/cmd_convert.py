"""``hardyt convert``: LayerNorm → calibrated fixed-point DyT for a trained ViT.

Writes into ``--out`` (atomically): ``model.safetensors`` + ``config.json``
(the converted float model), one ``<layer>.spec.json`` per DyT layer (what
``hardyt rtl`` reads), ``<layer>.inputs.npz`` (``x``: the integer input codes
the layer saw, for simulation), ``report.json``, ``report.md`` and
``alpha.png``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir, atomic_write_text, save_json_atomic

from . import model_input
from .flags import flag_errors
from .plots import plot_sqnr, save_figure, subplots

RECORD_IMAGES = 8  # images whose DyT input codes are saved per layer (a few hundred tokens)


def add_parser(sub):
    p = sub.add_parser("convert", help="replace every LayerNorm of a trained ViT by calibrated fixed-point DyT",
                       description="Calibrate DyT layers in place of a trained ViT's LayerNorms (labels unused), "
                                   "fold gamma/beta into the next Linear, quantize to the hardware's fixed point, "
                                   "evaluate LayerNorm / DyT float / DyT fixed on the test set and write the "
                                   "converted checkpoint, one DyT spec per layer and a report.")
    p.add_argument("checkpoint", nargs="?", help="timm-format .safetensors/.pth or a Hugging Face directory "
                   "(default: the bundled Fashion-MNIST ViT)")
    p.add_argument("--config", help="JSON of timm VisionTransformer arguments (default: <checkpoint stem>.json)")
    p.add_argument("--format", choices=("timm", "hf"),
                   help="checkpoint format (default: hf for a directory with config.json, timm for "
                        ".safetensors/.pth)")
    p.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist, an ImageFolder DIR or FILE.npz (default: fashion-mnist)")
    p.add_argument("--calib-size", type=model_input.calib_size, default=1024, metavar="N|all",
                   help="calibration images from the training split, or 'all' of it; labels unused (default: 1024)")
    p.add_argument("--max-drop", type=float, metavar="PT",
                   help="keep the fewest LayerNorms such that top-1 drops by at most PT points")
    p.add_argument("--in-bits", type=int, default=8, help="DyT input code width (default: 8)")
    p.add_argument("--out-bits", type=int, default=8, help="tanh output width (default: 8)")
    p.add_argument("--tanh", choices=("lut", "pwl"), default="lut", help="fixed-point tanh kind (default: lut)")
    p.add_argument("--lanes", type=int, help="channels per beat P (default: largest of 8, 4, 2, 1 dividing C)")
    p.add_argument("--keep", metavar="NAME[,NAME...]",
                   help="LayerNorms to keep as LayerNorm (module names, comma-separated), e.g. what `hardyt explore` "
                        "picked (its pick/report.json, convert_options)")
    p.add_argument("--layer-formats", metavar="FILE.json",
                   help="per-layer formats overriding --in-bits/--out-bits/--tanh/--lanes: a JSON object "
                        "{layer: {tanh, in_bits, out_bits, affine_out_bits, ...}}, e.g. `hardyt explore`'s "
                        "pick/layer_formats.json")
    p.add_argument("--method", default="reconstruct",
                   choices=("naive", "lstsq", "sequential", "reconstruct"), help="calibration (default: reconstruct)")
    p.add_argument("--steps", type=int, help="reconstruction steps (default: the library's)")
    p.add_argument("--alpha-shift", type=int, default=0, metavar="K",
                   help="per-channel alpha as shifts 0..K (default 0: one alpha per layer)")
    p.add_argument("--no-fold", action="store_true",
                   help="keep gamma/beta in every DyT layer (channel affine in hardware: one multiply-add per "
                        "lane) instead of folding them into the next Linear")
    # Weights besides DyT's and where the calibration runs (docs/conversion.md, "Weights and scale").
    p.add_argument("--freeze-weights", action="store_true",
                   help="keep every weight besides DyT's as trained (default: they adapt, label-free, toward the "
                        "LayerNorm model; the report says how far each tensor moved)")
    p.add_argument("--self-distill-lr", type=float, metavar="LR",
                   help="learning rate of the weights that adapt (default: the library's; 0: none adapt)")
    p.add_argument("--feature-weight", type=float, metavar="W",
                   help="weight of the per-layer DyT-output vs LayerNorm-output term of the reconstruction "
                        "(default: 10 when weights adapt, 1 when frozen; 0: logit KL only)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present); under torchrun each rank "
                                    "takes its share of every calibration batch and rank 0 writes the outputs")
    p.add_argument("--augment", metavar="KINDS",
                   help="reconstruction batches varied by flip, shift, mixup ('+'-joined) or '' for none "
                        "(default: the library's, shift)")
    p.add_argument("--eval-size", type=int, help="test images to evaluate on (default: all)")
    p.add_argument("--seed", type=int, default=0, help="calibration sample and optimizer seed (default: 0)")
    p.add_argument("--out", default="out/convert", help="output directory (default: out/convert)")
    model_input.add_arguments(p)
    # Fidelity (fixed point vs float, docs/fixed_point.md): one block.
    p.add_argument("--tanh-range", choices=("layer", "full"), default="layer",
                   help="tanh output format: 'layer' spans tanh(alpha*clip), 'full' spans +-1 (default: layer)")
    p.add_argument("--strict", action="store_true",
                   help="a fidelity warning (layer SQNR or end-to-end agreement below its floor) is an error: "
                        "exit 1, nothing written")
    p.set_defaults(func=run)


def _check_args(args):
    for name in ("calib_size", "in_bits", "out_bits"):
        v = getattr(args, name)
        if v != "all" and v < (1 if name == "calib_size" else 2):
            raise HardytError(f"--{name.replace('_', '-')} must be {'>= 1' if name == 'calib_size' else '>= 2'}, "
                              f"got {v}")
    if args.max_drop is not None and not args.max_drop >= 0:
        raise HardytError(f"--max-drop must be >= 0 points, got {args.max_drop}")
    if args.max_drop is not None and args.keep:
        raise HardytError("--keep and --max-drop: give one (--max-drop chooses the LayerNorms to keep)")
    if args.layer_formats:
        _layer_formats(args.layer_formats)


def _layer_formats(path) -> dict:
    """``--layer-formats FILE.json``: ``{layer: {format key: value}}``, checked."""
    from hardyt.quant.conversion.fixed_dyt import formats_from
    from hardyt.quant.files import load_json_object

    layers = load_json_object(path, "layer formats")
    try:
        formats_from({"layers": layers})
    except HardytError as e:
        raise HardytError(f"{path}: {e}") from None
    return layers


def _options(args) -> dict:
    """The library's conversion options for these flags, checked now (before any model is loaded)."""
    from hardyt.quant.conversion.options import ConvertOptions

    options = {"method": args.method, "alpha_shift": args.alpha_shift, "freeze_weights": args.freeze_weights,
               "device": args.device, "seed": args.seed, "progress": True, "strict": args.strict,
               "fold": not args.no_fold}
    if args.self_distill_lr is not None:
        options["self_distill_lr"] = args.self_distill_lr
    if args.feature_weight is not None:
        options["feature_weight"] = args.feature_weight
    if args.steps is not None:
        options["steps"] = args.steps
    if args.augment is not None:
        options["augment"] = args.augment
    if args.keep:
        options["keep"] = tuple(n.strip() for n in args.keep.split(",") if n.strip())
    with flag_errors():
        ConvertOptions(**options)
    return options


def run(args) -> int:
    from hardyt.quant.conversion.distributed import init_from_env, is_main
    from hardyt.quant.conversion.partial import partial_convert
    from hardyt.quant.conversion.pipeline import convert, to_float

    _check_args(args)
    options = _options(args)
    options["device"] = str(init_from_env(args.device))  # joins the process group under torchrun
    t0 = time.perf_counter()
    model, fmt, path = model_input.load_model(args)
    pre, expected = model_input.resolve_input(args, model, fmt, path)
    print(f"preprocessing: {model_input.describe(pre)}", flush=True)
    batches = model_input.calibration_loader(args, pre)
    test, test_idx = model_input.test_set(args, pre)
    formats = {"in_bits": args.in_bits, "out_bits": args.out_bits, "tanh": args.tanh, "lanes": args.lanes,
               "tanh_range": args.tanh_range}
    if args.layer_formats:
        formats["layers"] = _layer_formats(args.layer_formats)
    if args.max_drop is not None:
        x_test, y_test = test.batch(test_idx)
        converted, report = partial_convert(model, batches, x_test, y_test, max_drop=args.max_drop,
                                            fixed_point=formats, **options)
    else:
        converted, report = convert(model, batches, fixed_point=formats, **options)
    t_convert = time.perf_counter() - t0
    if not is_main():  # rank 0 alone evaluates and writes
        return 0
    float_model = to_float(converted)
    acc = model_input.evaluate({"ln_float": model, "dyt_float": float_model, "dyt_fixed": converted}, test, test_idx)
    check, warning = model_input.accuracy_check(acc["ln_float"], expected, len(test_idx))
    if warning:
        print(f"hardyt convert: warning: {warning}", file=sys.stderr, flush=True)
    report = {"command": "hardyt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("hardyt") else None,
              "checkpoint": str(args.checkpoint or "bundled"), "format": fmt, "data": args.data,
              "test_samples": len(test_idx), "preprocessing": pre.to_dict(), "accuracy": acc,
              "accuracy_check": check, **report, "warnings": report["warnings"] + ([warning] if warning else []),
              "convert_seconds": t_convert, "total_seconds": time.perf_counter() - t0}
    write_converted(Path(args.out), model, float_model, converted, report, next(iter(batches))[:RECORD_IMAGES])
    print(f"LayerNorm {100 * acc['ln_float']:.2f} %  DyT float {100 * acc['dyt_float']:.2f} %  "
          f"DyT fixed {100 * acc['dyt_fixed']:.2f} %  ({len(report['layers'])} DyT layers, "
          f"{report['folded']} folded, {len(report['kept_layernorms'])} LayerNorm kept, "
          f"{report['total_seconds']:.0f} s) -> {Path(args.out)}")
    print(fidelity_summary(report, warnings=True))
    return 0


def fidelity_summary(report, *, warnings: bool = False) -> str:
    """The lines on fixed point vs float: worst layer SQNR, agreement (and every warning)."""
    fid = report["fidelity"]
    worst = min(report["layers"], key=lambda r: r["sqnr_db"], default=None)
    top1 = "" if fid["top1_agreement"] is None else f", top-1 agreement {100 * fid['top1_agreement']:.2f} %"
    lines = [f"fixed vs float DyT: lowest layer SQNR {worst['sqnr_db']:.1f} dB ({worst['name']}, floor "
             f"{fid['sqnr_floor_db']:g} dB), output cosine {fid['cosine']:.5f}{top1}" if worst else
             "fixed vs float DyT: no DyT layer"]
    return "\n".join(lines + ([f"warning: {w}" for w in report["warnings"]] if warnings else []))


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
        plot_sqnr(report["layers"], report["fidelity"]["sqnr_floor_db"], tmp / "sqnr.png")
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


def _weights_line(report) -> str:
    w = report["weights"]
    where = f"Calibrated on {report['device']}, {report['world_size']} process(es)."
    if w["adapted"] in ("frozen", "none"):
        return f"Weights besides DyT's: kept as trained ({w['adapted']}). {where}"
    top = sorted(w["relative_change"].items(), key=lambda kv: -kv[1])[:3]
    return (f"Weights besides DyT's: {w['tensors']} tensors adapted ({w['adapted']}, lr {w['lr']:g}); largest "
            "relative changes ||W - W0|| / ||W0||: " + ", ".join(f"`{n}` {c:.3g}" for n, c in top)
            + f" (every tensor in report.json). {where}")


def render_markdown(report) -> str:
    acc = report["accuracy"]
    ln = acc["ln_float"]
    lines = ["# hardyt convert", "",
             f"Checkpoint `{report['checkpoint']}`, data `{report['data']}` ({report['test_samples']} test images), "
             f"{report['calib_samples']} calibration images (labels unused), method `{report['method']}`, "
             f"{report['formats']['in_bits']}-bit input, {report['formats']['tanh']} tanh "
             f"({report['formats']['out_bits']}-bit out). Conversion {report['convert_seconds']:.0f} s, "
             f"total {report['total_seconds']:.0f} s.", "",
             f"Preprocessing: {model_input.describe_dict(report['preprocessing'])}.", "",
             "| model | top-1 | vs LayerNorm |", "|---|---|---|"]
    for key, label in (("ln_float", "LayerNorm, float"), ("dyt_float", "DyT, float"),
                       ("dyt_fixed", "DyT, fixed point (hardware arithmetic)")):
        delta = "" if key == "ln_float" else f"{100 * (acc[key] - ln):+.2f} pt"
        lines.append(f"| {label} | {_pct(acc[key])} | {delta} |")
    check = report.get("accuracy_check")
    if check:
        lines += ["", f"The checkpoint records {_pct(check['expected'])} ({check['source']}); measured LayerNorm "
                      f"{_pct(check['measured'])}: {check['gap_pt']:+.2f} pt."]
    for w in report.get("warnings", []):
        lines += ["", f"**Warning:** {w}"]
    lines += ["", _weights_line(report), "", "![per-layer alpha](alpha.png)", "",
              "| layer | C | alpha | shifts | in_scale | clip | alpha·clip | fit error | SQNR dB | min in/out bits "
              "| affine | folded into |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for layer in report["layers"]:
        shifts = "–" if layer["alpha_shift"] is None else f"0..{max(layer['alpha_shift'])}"
        lines.append(f"| {layer['name']} | {layer['channels']} | {layer['alpha']:.4g} | {shifts} "
                     f"| {layer['in_scale']:.4g} | {layer['clip']:.3g} | {layer['alpha_clip']:.3g} "
                     f"| {layer['fit_error']:.3g} | {layer['sqnr_db']:.1f} "
                     f"| {layer['min_in_bits'] or '>16'}/{layer['min_out_bits'] or '>16'} "
                     f"| {layer['spec']['affine']['mode']} | {', '.join(layer['folded_into']) or '–'} |")
    lines += ["", "## Fixed point vs float DyT", "", "![per-layer SQNR](sqnr.png)", "",
              "```", fidelity_summary(report), "```"]
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
        if any(t["accuracy"] is not None for t in part.get("tried", [])):
            lines += ["", "Full conversions tried (weights adapt; the curve above is on the trained weights):", "",
                      "| converted | top-1 |", "|---|---|"]
            lines += [f"| {t['converted']} | {_pct(t['accuracy'])} |" for t in part["tried"]]
    return "\n".join(lines) + "\n"
