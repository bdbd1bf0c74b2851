"""``hardyt explore``: the smallest normalization hardware within an accuracy budget.

::

    hardyt explore [CHECKPOINT|CONVERTED_DIR] --max-drop PT [--target ecp5|xilinx] [--lanes P]
                   [--scheduler tcp://HOST:PORT] [--synth-budget N|all] [--beam B] [--out DIR]

Converts once, derives every layer's candidates (DyT at several formats, or
LayerNorm) from that calibration, measures each core's resources by
synthesis (cached by spec content; one core of each structure by default, a
cost model fitted to the runs covers the other cores), measures
configurations' top-1 on a validation split in the hardware's arithmetic,
and writes into ``--out``:
``explore.json`` (``front``, ``pick``), ``explore.md`` + ``front.png`` and
``pick/``, a converted directory that ``hardyt rtl``, ``sim`` and ``synth``
take as it is. See :mod:`hardyt.quant.conversion.explore` for the search.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir, atomic_write_text, load_json_object, save_json_atomic

from . import cmd_convert, model_input
from .explore_report import plot_front, render_markdown
from .flags import add_sweep_flags

DEFAULT_CACHE = Path(os.environ.get("HARDYT_SYNTH_CACHE", Path.home() / ".cache" / "hardyt" / "synth"))


def add_parser(sub):
    from hardyt.hw.synth import TARGETS
    p = sub.add_parser("explore", help="the smallest normalization hardware within an accuracy budget",
                       description="Search per-layer choices (DyT at 6/8/10-bit LUT or 12-bit PWL tanh, or "
                                   "LayerNorm) for the Pareto front of accuracy against LUT+FF, with resources "
                                   "from synthesis runs (on Dask) and accuracy from the fixed-point emulation on "
                                   "a validation split; pick the smallest configuration within --max-drop.")
    p.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT|CONVERTED_DIR",
                   help="a checkpoint as for `hardyt convert`, or a `hardyt convert` output (its source checkpoint "
                        "and conversion options are used); default: the bundled ViT")
    p.add_argument("--config", help="JSON of timm VisionTransformer arguments (default: <checkpoint stem>.json)")
    p.add_argument("--format", choices=("timm", "hf"), help="checkpoint format (default: detected)")
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist, an ImageFolder DIR or FILE.npz")
    p.add_argument("--max-drop", type=float, required=True, metavar="PT",
                   help="accuracy budget: top-1 points below the LayerNorm model on the validation split")
    p.add_argument("--target", choices=TARGETS, default="ecp5", help="synthesis target (default ecp5)")
    p.add_argument("--lanes", type=int, help="channels per beat P of every core (default: largest of 8, 4, 2, 1 "
                                             "dividing C)")
    add_sweep_flags(p)
    model_input.add_arguments(p)
    p.add_argument("--synth-budget", type=synth_budget, metavar="N|all",
                   help="synthesize at most N cores (one of each structure first, then a second of each, ...) or "
                        "all of them; the cost model predicts the rest (default: one core of each structure, so "
                        "every other core differs from a synthesized one in ROM contents only)")
    p.add_argument("--min-fmax", type=float, metavar="MHZ",
                   help="every core of the pick at least this fast (ECP5; default: the slowest LayerNorm core of "
                        "the all-LayerNorm design, so a replacement never slows the system; 0: no floor)")
    p.add_argument("--beam", type=int, default=3, help="beam width of the search (default 3)")
    p.add_argument("--calib-size", type=int, default=1024, help="calibration images (default 1024)")
    p.add_argument("--val-size", type=int, default=2000,
                   help="validation images, drawn from the test split; the rest of it is the test set (default 2000)")
    p.add_argument("--eval-size", type=int, help="test images the pick is measured on (default: all the rest)")
    p.add_argument("--steps", type=int, help="reconstruction steps (default: the library's)")
    p.add_argument("--seed", type=int, default=0, help="calibration sample and optimizer seed (default 0)")
    p.add_argument("--cache", default=str(DEFAULT_CACHE),
                   help="synthesis cache directory (default $HARDYT_SYNTH_CACHE or ~/.cache/hardyt/synth)")
    p.add_argument("--out", default="out/explore", help="output directory (default out/explore)")
    p.set_defaults(func=run)


def synth_budget(text: str):
    """``--synth-budget``: a count or ``all``.

    >>> synth_budget("all"), synth_budget("12")
    ('all', 12)
    """
    return text if text == "all" else int(text)


def _source(args):
    """``args`` with a CONVERTED_DIR replaced by its source checkpoint; its conversion options."""
    path = Path(args.checkpoint) if args.checkpoint else None
    if path is None or not path.is_dir() or not (path / "report.json").is_file():
        return {}
    report = load_json_object(path / "report.json", "conversion report")
    source, options = report.get("checkpoint"), report.get("options", {})
    if not (source is None or isinstance(source, str)) or not isinstance(options, dict):
        raise HardytError(f"{path / 'report.json'}: 'checkpoint' must be a path and 'options' an object")
    args.checkpoint = None if source in (None, "bundled") else source
    return {k: options[k] for k in ("method", "steps", "alpha_shift", "augment") if k in options}


def _check(args):
    for name, lo in (("calib_size", 1), ("val_size", 1), ("beam", 1), ("workers", 1)):
        if getattr(args, name) < lo:
            raise HardytError(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(args, name)}")
    if not args.max_drop >= 0:
        raise HardytError(f"--max-drop must be >= 0 points, got {args.max_drop}")
    if args.scheduler is not None and "://" not in args.scheduler:
        raise HardytError(f"--scheduler: expected tcp://HOST:PORT, got {args.scheduler!r}")
    if args.min_fmax is not None and not args.min_fmax >= 0:
        raise HardytError(f"--min-fmax must be >= 0 MHz, got {args.min_fmax}")
    if args.lanes is not None and args.lanes < 1:
        raise HardytError(f"--lanes must be >= 1, got {args.lanes}")
    if args.synth_budget not in (None, "all") and args.synth_budget < 2:
        raise HardytError(f"--synth-budget must be >= 2 or all (the cost model needs runs to fit), "
                          f"got {args.synth_budget}")


def _splits(args, pre):
    """Calibration batches (training images, labels unused), validation and test sets.

    Validation and test are disjoint halves of the test split (``--val-size``
    images drawn with ``--seed``, the rest is the test set): both are images
    the model never trained on, so the budget is judged on accuracy that the
    training set would inflate.
    """
    import torch

    from hardyt.quant.zoo.data import load_dataset

    x_train, _ = load_dataset(args.data, "train", None, pre=pre)
    x_all, y_all = load_dataset(args.data, "test", None, pre=pre)
    if len(x_train) < args.calib_size:
        raise HardytError(f"{args.data}: {len(x_train)} training images, fewer than --calib-size {args.calib_size}")
    if len(x_all) <= args.val_size:
        raise HardytError(f"{args.data}: {len(x_all)} test images: --val-size {args.val_size} leaves none to test on")
    calib = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(args.seed))[:args.calib_size]
    order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(args.seed + 1))
    val, test = order[:args.val_size], order[args.val_size:]
    if args.eval_size is not None:
        test = test[:args.eval_size]
    return list(x_train[calib].split(64)), x_all[val], y_all[val], x_all[test], y_all[test]


def _layernorm_spec(channels: int, lanes: int, name: str):
    from hardyt.quant.contract.layernorm import random_layernorm_spec
    return random_layernorm_spec(channels, lanes, 8, 8, name=name)


def _candidates(cal, lanes):
    """``(options, specs, spec_dicts)``: labels per layer, DyT specs and every core's spec dict by job label."""
    from hardyt.quant.conversion.explore import candidates, label

    options, specs, dicts, choices = {}, {}, {}, {}
    for name, cands in candidates(cal, lanes).items():
        options[name] = ["layernorm"]
        for choice, spec in cands:
            lab = label(choice)
            options[name].append(lab)
            specs[(name, lab)] = spec
            choices[(name, lab)] = choice
            dicts[f"{name} / {lab}"] = spec.to_dict()
        c, p = cands[0][1].channels, cands[0][1].lanes
        dicts[f"{name} / layernorm"] = _layernorm_spec(c, p, name.replace(".", "_")).to_dict()
    return options, specs, dicts, choices


def _point(p: dict, costs: dict, choices: dict, dicts: dict) -> dict:
    """A search point with its summed resources, the slowest Fmax and the throughput it allows."""
    from hardyt.quant.conversion.explore import throughput

    labels = [f"{n} / {lab}" for n, lab in p["layers"].items()]
    rows = [costs[lab] for lab in labels]
    out = {"accuracy": p["accuracy"]}
    for k in ("lut", "ff", "dsp", "bram"):
        out[k] = sum(r[k] for r in rows)
    out["fmax_mhz"] = min(r["fmax_mhz"] for r in rows) if all("fmax_mhz" in r for r in rows) else None
    out["throughput_eps"] = min((throughput(r.get("fmax_mhz"), dicts[lab]["lanes"]) or 0 for r, lab in
                                 zip(rows, labels)), default=0) or None
    out["lut_ff"] = out["lut"] + out["ff"]
    out["estimated_layers"] = sum(not r["synthesized"] for r in rows)
    out["layers"] = {n: choices.get((n, lab), {"core": "layernorm"}) for n, lab in p["layers"].items()}
    return out


def explore(args) -> dict:
    """Calibrate, cost every candidate core, search: what :func:`finish` needs for any budget."""
    from hardyt.hw.costs import layer_costs
    from hardyt.hw.sweep import dask_client
    from hardyt.quant.conversion.explore import (Evaluator, calibrate, feasible_options, fmax_floor, pareto,
                                                 search)

    _check(args)
    t0 = time.perf_counter()
    options = {"seed": args.seed, "progress": True} | _source(args)
    if args.steps is not None:
        options["steps"] = args.steps
    model, fmt, path = model_input.load_model(args)
    pre, _ = model_input.resolve_input(args, model, fmt, path)
    batches, x_val, y_val, x_test, y_test = _splits(args, pre)
    cal = calibrate(model, batches, **options)
    options_by_layer, specs, dicts, choices = _candidates(cal, args.lanes)
    t_cal = time.perf_counter() - t0

    t1 = time.perf_counter()
    with dask_client(args.scheduler, args.workers) as client:
        hw = layer_costs(client, dicts, args.target, args.cache, budget=args.synth_budget)
    t_synth = time.perf_counter() - t1
    lut_ff = {tuple(lab.split(" / ")): c["lut"] + c["ff"] for lab, c in hw["costs"].items()}
    fmax = {tuple(lab.split(" / ")): c.get("fmax_mhz") for lab, c in hw["costs"].items()}
    floor = fmax_floor(args.min_fmax, fmax, cal.names)
    allowed = feasible_options(options_by_layer, fmax, floor)

    t2 = time.perf_counter()
    evaluate = Evaluator(cal, specs, x_val, y_val)
    points, method = search(cal.names, allowed, lut_ff, evaluate, beam=args.beam)
    eight = {n: next(lab for lab in options_by_layer[n] if lab.startswith("dyt lut8 out8")) for n in cal.names}
    base = {"all_layernorm": {n: "layernorm" for n in cal.names}, "all_dyt_8bit": eight}
    baselines = {k: {"layers": v, "accuracy": evaluate(v), "cost": sum(lut_ff[(n, lab)] for n, lab in v.items())}
                 for k, v in base.items()}
    return {"args": args, "model": model, "cal": cal, "batches": batches, "test": (x_test, y_test),
            "validation_size": len(x_val), "specs": specs, "dicts": dicts, "choices": choices, "hw": hw,
            "evaluate": evaluate, "baselines": baselines, "fmax_floor": floor,
            "front": pareto([p for p in points + list(baselines.values()) if _allowed(p, allowed)]),
            "space": _space(allowed), "method": method,
            "seconds": {"calibration": round(t_cal, 1), "synthesis": round(t_synth, 1),
                        "search": round(time.perf_counter() - t2, 1)}}


def finish(e: dict, max_drop: float) -> dict:
    """The pick within ``max_drop`` points (measured once on the test split) and the ``explore.json`` content."""
    from hardyt.quant.conversion.evaluate import accuracy
    from hardyt.quant.conversion.explore import LAYERNORM, pick_within

    args, hw, choices, dicts = e["args"], e["hw"], e["choices"], e["dicts"]
    costs = hw["costs"]
    reference = e["baselines"]["all_layernorm"]["accuracy"]
    pick = pick_within(e["front"], reference, max_drop)
    x_test, y_test = e["test"]
    # Measured on the model written to pick/ (gamma/beta folded into the Linear layers), not on the emulation.
    fixed_model = _pick_models(e, {n: choices.get((n, lab), LAYERNORM) for n, lab in pick["layers"].items()})[2]
    pick_test = accuracy(fixed_model, x_test, y_test, progress=True, desc="pick (test)")
    ln_test = accuracy(e["cal"].teacher, x_test, y_test, progress=True, desc="LayerNorm (test)")
    return {
        "command": "hardyt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("hardyt") else None,
        "checkpoint": str(args.checkpoint or "bundled"), "data": args.data, "target": args.target,
        "lanes": args.lanes, "max_drop": max_drop,
        "splits": {"calibration": args.calib_size, "validation": e["validation_size"], "test": len(x_test)},
        "reference": {"validation_accuracy": reference, "test_accuracy": ln_test},
        "fmax_floor_mhz": e["fmax_floor"], "min_fmax": args.min_fmax,
        "front": [_point(p, costs, choices, dicts) for p in e["front"]],
        "pick": _point(pick, costs, choices, dicts) | {"test_accuracy": pick_test},
        "baselines": {k: _point(p, costs, choices, dicts) for k, p in e["baselines"].items()},
        "search": {"method": e["method"], "beam": args.beam, "measured": len(e["evaluate"].seen), "space": e["space"]},
        "synthesis": {k: hw[k] for k in ("runs", "synthesized", "cached", "reused", "estimated", "structures",
                                         "structures_synthesized", "model_error")}
        | {"cores": len(e["dicts"]), "scheduler": args.scheduler or f"local ({args.workers} worker(s))"},
        "cost_model_error": {k: hw["model_error"][k] for k in ("lut_ff", "fmax_mhz")}
        | {"method": "leave-one-out over this run's synthesized DyT cores (mean / max absolute %)"},
        "candidates": dict(costs),
        "seconds": e["seconds"],
    }


def run(args) -> int:
    e = explore(args)
    result = finish(e, args.max_drop)
    write(Path(args.out), e, result)
    p, hw = result["pick"], e["hw"]
    print(f"pick within {args.max_drop} pt: validation {100 * p['accuracy']:.2f} % (LayerNorm "
          f"{100 * result['reference']['validation_accuracy']:.2f} %), test {100 * p['test_accuracy']:.2f} % "
          f"(LayerNorm {100 * result['reference']['test_accuracy']:.2f} %), LUT {p['lut']} FF {p['ff']} "
          f"DSP {p['dsp']} BRAM {p['bram']} Fmax {p['fmax_mhz']} MHz; front of {len(result['front'])} points; {hw['synthesized']} "
          f"synthesized, {hw['cached']} cached, {hw['estimated']} estimated -> {args.out}")
    return 0


def _allowed(point: dict, allowed: dict) -> bool:
    """Whether every core of ``point`` passes the Fmax floor (is among ``allowed``)."""
    return all(lab in allowed[n] for n, lab in point["layers"].items())


def _space(options: dict) -> int:
    n = 1
    for labels in options.values():
        n *= len(labels)
    return n


def _pick_models(e: dict, layers: dict):
    """``(chosen specs, float model, fixed model, folds)`` of the configuration ``{layer: choice}``."""
    from hardyt.quant.conversion.explore import label, pick_model

    chosen = {n: e["specs"][(n, label(c))] for n, c in layers.items() if c["core"] != "layernorm"}
    return (chosen, *pick_model(e["cal"], chosen, e["batches"][0]))


def write(out: Path, e: dict, result: dict) -> None:
    """explore.json, explore.md, front.png and the pick's converted directory, all or none."""
    cal, model, batches = e["cal"], e["model"], e["batches"]
    chosen, float_model, fixed_model, folded = _pick_models(e, result["pick"]["layers"])
    by_name = {layer["name"]: layer for layer in cal.report["layers"]}
    layers = [by_name[n] | {"spec_name": s.name, "in_scale": s.in_scale, "clip": s.in_scale * 2 ** (s.in_bits - 1),
                            "folded": bool(folded.get(n, {}).get("into")),
                            "folded_into": folded.get(n, {}).get("into", []),
                            "fold_change": folded.get(n, {}).get("change"), "spec": s.to_dict()}
              for n, s in chosen.items()]
    report = cal.report | {"checkpoint": result["checkpoint"], "data": result["data"], "layers": layers,
                           "kept_layernorms": [n for n in cal.names if n not in chosen],
                           "folded": sum(layer["folded"] for layer in layers), "explore": result["pick"]}
    with atomic_output_dir(out) as tmp:
        cmd_convert.write_converted(tmp / "pick", model, float_model, fixed_model, report,
                                    batches[0][:cmd_convert.RECORD_IMAGES], markdown=render_pick(report, result))
        save_json_atomic(tmp / "explore.json", result)
        plot_front(result, tmp / "front.png")
        atomic_write_text(tmp / "explore.md", render_markdown(result))


def render_pick(report: dict, result: dict) -> str:
    p = result["pick"]
    lines = [f"# Converted by `hardyt explore` (--max-drop {result['max_drop']} pt)", "",
             f"Validation top-1 {100 * p['accuracy']:.2f} %, test {100 * p['test_accuracy']:.2f} % (LayerNorm: "
             f"{100 * result['reference']['test_accuracy']:.2f} % on test). See ../explore.md.", "",
             "| layer | choice |", "|---|---|"]
    lines += [f"| {n} | {c['core'] if c['core'] == 'layernorm' else _choice(c)} |" for n, c in p["layers"].items()]
    if report["kept_layernorms"]:
        lines += ["", "LayerNorms kept (served by the LayerNorm core; no spec file here): "
                  + ", ".join(f"`{n}`" for n in report["kept_layernorms"])]
    return "\n".join(lines) + "\n"


def _choice(c: dict) -> str:
    return f"DyT {c['tanh']} {c['in_bits']}-bit in, {c['out_bits']}-bit out, {c['affine']} affine"
