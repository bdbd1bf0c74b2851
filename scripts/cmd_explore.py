"""``hardyt explore``: the smallest normalization hardware within an accuracy budget.

::

    hardyt explore [CHECKPOINT|CONVERTED_DIR] --max-drop PT [--target ecp5|xilinx] [--lanes P]
                   [--scheduler tcp://HOST:PORT] [--synth-budget N|all] [--min-fmax MHZ]
                   [--conversions N] [--measure M] [--beam B] [--out DIR]

Runs the conversions a user gets from ``hardyt convert`` (weights adapting,
some LayerNorms kept: :mod:`hardyt.quant.conversion.families`) as Dask jobs,
derives each converted layer's candidate formats from them, measures each
core's resources by synthesis (cached by content; one core of each
structure by default, a cost model fitted to the runs covers the other
cores), measures configurations' top-1 on a validation split in the
hardware's arithmetic (:mod:`hardyt.scripts.explore_search`), and writes into
``--out``: ``explore.json`` (``front``, ``pick``), ``explore.md`` +
``front.png`` and ``pick/``, a converted directory that ``hardyt rtl``,
``sim`` and ``synth`` take as it is, which ``hardyt convert --keep ...
--layer-formats pick/layer_formats.json`` reproduces (``pick.convert``).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir, atomic_write_text, save_json_atomic

from . import model_input
from .explore_pick import convert_record, write_pick
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
    p.add_argument("--conversions", type=int, default=3, metavar="N",
                   help="conversions with adapting weights, as `hardyt convert` makes them: none kept, then the 1, "
                        "2, ... LayerNorms costliest to replace kept (every subset when there are at most N; "
                        "default 3)")
    p.add_argument("--measure", type=int, default=12, metavar="M",
                   help="configurations measured per conversion along the front the per-layer sensitivities "
                        "predict (default 12)")
    p.add_argument("--beam", type=int, default=3,
                   help="a conversion's format choices are all measured when there are at most layers x choices x "
                        "BEAM of them (default 3)")
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
    report = json.loads((path / "report.json").read_text())
    source = report.get("checkpoint")
    args.checkpoint = None if source in (None, "bundled") else source
    options = report.get("options", {})
    return {k: options[k] for k in ("method", "steps", "alpha_shift", "augment") if k in options}


def _check(args):
    for name, lo in (("calib_size", 1), ("val_size", 1), ("beam", 1), ("workers", 1), ("conversions", 1),
                     ("measure", 1)):
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


def _point(p: dict, e: dict) -> dict:
    """A search point with its summed resources, the slowest Fmax and the throughput it allows."""
    from hardyt.hw.objective import throughput

    from .explore_search import core_label

    costs, choices, dicts = e["hw"]["costs"], e["choices"], e["dicts"]
    labels = [core_label(n, lab, p["family"]) for n, lab in p["layers"].items()]
    rows = [costs[lab] for lab in labels]
    out = {"accuracy": p["accuracy"]}
    for k in ("lut", "ff", "dsp", "bram"):
        out[k] = sum(r[k] for r in rows)
    out["fmax_mhz"] = min(r["fmax_mhz"] for r in rows) if all("fmax_mhz" in r for r in rows) else None
    out["throughput_eps"] = min((throughput(r.get("fmax_mhz"), dicts[lab]["lanes"]) or 0 for r, lab in
                                 zip(rows, labels)), default=0) or None
    out["lut_ff"] = out["lut"] + out["ff"]
    out["estimated_layers"] = sum(not r["synthesized"] for r in rows)
    out["layers"] = {n: choices.get(lab, {"core": "layernorm"}) for n, lab in zip(p["layers"], labels)}
    out["kept"] = list(e["families"][p["family"]][0])
    out["convert"] = convert_record(e, out["kept"], {n: e["formats"][lab] for n, lab in zip(p["layers"], labels)
                                                      if lab in e["formats"]})
    return out


def explore(args) -> dict:
    """Convert the families, cost every candidate core, search: what :func:`finish` needs for any budget."""
    import copy

    from hardyt.hw.costs import layer_costs
    from hardyt.hw.sweep import dask_client
    from hardyt.hw.objective import fmax_floor
    from hardyt.quant.conversion.explore import pareto
    from hardyt.quant.conversion.graph import layer_norm_names

    from .explore_search import convert_families, family_specs, search_families

    _check(args)
    t0 = time.perf_counter()
    options = {"seed": args.seed, "progress": True} | _source(args)
    if args.steps is not None:
        options["steps"] = args.steps
    model, fmt, path = model_input.load_model(args)
    pre, _ = model_input.resolve_input(args, model, fmt, path)
    batches, x_val, y_val, x_test, y_test = _splits(args, pre)
    names = layer_norm_names(copy.deepcopy(model).eval(), batches[0])
    if not names:
        raise HardytError("explore: the model has no LayerNorm to replace")
    with dask_client(args.scheduler, args.workers) as client:
        families, order = convert_families(client, model, batches, names, options, args.conversions, args.lanes)
        t_cal = time.perf_counter() - t0
        dicts, specs, choices, formats = family_specs(families, _layernorm_spec)
        t1 = time.perf_counter()
        hw = layer_costs(client, dicts, args.target, args.cache, budget=args.synth_budget,
                         reuse=args.synth_budget == "all")
    t_synth = time.perf_counter() - t1
    costs = hw["costs"]
    floor = fmax_floor(args.min_fmax, {(n, "layernorm"): costs[f"{n} / layernorm"].get("fmax_mhz") for n in names},
                       names)

    def allowed(lab):
        return floor is None or costs[lab].get("fmax_mhz") is None or costs[lab]["fmax_mhz"] >= floor

    t2 = time.perf_counter()
    points, search = search_families(families, names, specs, costs, allowed, x_val, y_val, beam=args.beam,
                                     measure=args.measure)
    baselines = search.pop("baselines")
    feasible = [p for p in points if all(allowed(lab) for lab in _labels(p))]
    return {"args": args, "model": model, "families": families, "order": order, "batches": batches,
            "validation": (x_val, y_val), "test": (x_test, y_test), "options": options,
            "specs": specs, "dicts": dicts, "choices": choices, "formats": formats, "hw": hw,
            "baselines": baselines, "fmax_floor": floor, "front": pareto(feasible), "search": search,
            "seconds": {"conversions": round(t_cal, 1), "synthesis": round(t_synth, 1),
                        "search": round(time.perf_counter() - t2, 1)}}


def _labels(p: dict) -> list[str]:
    from .explore_search import core_label
    return [core_label(n, lab, p["family"]) for n, lab in p["layers"].items()]


def finish(e: dict, max_drop: float) -> dict:
    """The pick within ``max_drop`` points on validation, written as ``hardyt convert`` writes it and measured
    from that directory (validation again, then the test split, once): the ``explore.json`` content.

    ``e["picks"][max_drop]`` holds the written directory for :func:`write`.
    """
    from hardyt.quant.conversion.explore import pick_within

    args, hw = e["args"], e["hw"]
    reference = e["baselines"]["all_layernorm"]["accuracy"]
    pick = pick_within(e["front"], reference, max_drop)
    directory, measured = write_pick(e, pick, max_drop)
    e.setdefault("picks", {})[max_drop] = directory
    x_test, y_test = e["test"]
    from hardyt.quant.conversion.evaluate import accuracy
    ln_test = accuracy(e["model"].eval(), x_test, y_test, progress=True, desc="LayerNorm (test)")
    syn = {k: hw[k] for k in ("runs", "synthesized", "cached", "reused", "estimated", "structures",
                              "structures_synthesized", "model_error")}
    return {
        "command": "hardyt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("hardyt") else None,
        "checkpoint": str(args.checkpoint or "bundled"), "data": args.data, "target": args.target,
        "lanes": args.lanes, "max_drop": max_drop,
        "splits": {"calibration": args.calib_size, "validation": len(e["validation"][1]), "test": len(x_test),
                   "decided_on": "validation", "reported_on": "test"},
        "reference": {"validation_accuracy": reference, "test_accuracy": ln_test},
        "fmax_floor_mhz": e["fmax_floor"], "min_fmax": args.min_fmax,
        "front": [_point(p, e) for p in e["front"]],
        "pick": _point(pick, e) | measured,
        "baselines": {k: _point(p, e) for k, p in e["baselines"].items()},
        "search": e["search"] | {"conversions": args.conversions, "beam": args.beam, "measure": args.measure,
                                 "ranking": e["order"]},
        "synthesis": syn | {"cores": len(e["dicts"]), "scheduler": args.scheduler or f"local ({args.workers} worker(s))"},
        "cost_model_error": {k: hw["model_error"][k] for k in ("lut_ff", "fmax_mhz")}
        | {"method": "leave-one-out over this run's synthesized DyT cores (mean / max absolute %)"},
        "candidates": dict(hw["costs"]),
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
          f"DSP {p['dsp']} BRAM {p['bram']} Fmax {p['fmax_mhz']} MHz; front of {len(result['front'])} points; "
          f"{hw['synthesized']} synthesized, {hw['cached']} cached, {hw['estimated']} estimated -> {args.out}\n"
          f"reproduce: {p['convert']['command']}")
    return 0


def write(out: Path, e: dict, result: dict) -> None:
    """explore.json, explore.md, front.png and the pick's converted directory, all or none."""
    import shutil

    with atomic_output_dir(out) as tmp:
        shutil.copytree(e["picks"][result["max_drop"]], tmp / "pick")
        save_json_atomic(tmp / "explore.json", result)
        plot_front(result, tmp / "front.png")
        atomic_write_text(tmp / "explore.md", render_markdown(result))
