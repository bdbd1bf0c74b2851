"""The explore step: the smallest normalization hardware within an accuracy budget.

Converts once, derives every layer's candidates (DyT at several formats, or
LayerNorm) from that calibration, measures each core's resources by
synthesis (cached by spec content; one core of each structure by default, a
cost model fitted to the runs covers the other cores), measures
configurations' top-1 on a validation split in the hardware's arithmetic,
and writes into ``out``: ``explore.json`` (an :class:`ExploreResult`),
``explore.md`` + ``front.png`` and ``pick/``, a converted directory the emit,
simulate and synthesize steps take as it is. See
:mod:`hardyt.quant.conversion.explore` for the search.

:func:`explore` (calibrate, cost, search) is separate from :func:`finish`
(the pick within one budget) so that one search serves several budgets.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from hardyt.quant.contract.names import layer_stem
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir, atomic_write_text, load_json_object, save_json_atomic

from .converted import RECORD_IMAGES, write_converted
from .explore_report import plot_front, render_markdown
from .explore_result import ExploreResult
from .model_source import load_model, resolve_input
from .options import ExploreConfig

__all__ = ["DEFAULT_CACHE", "explore", "finish", "write", "run_explore"]

DEFAULT_CACHE = Path(os.environ.get("HARDYT_SYNTH_CACHE", Path.home() / ".cache" / "hardyt" / "synth"))


def _source(config: ExploreConfig):
    """``(config, options)``: a CONVERTED_DIR replaced by its source checkpoint; its conversion options."""
    path = Path(config.source.checkpoint) if config.source.checkpoint else None
    if path is None or not path.is_dir() or not (path / "report.json").is_file():
        return config, {}
    report = load_json_object(path / "report.json", "conversion report")
    source, options = report.get("checkpoint"), report.get("options", {})
    if not (source is None or isinstance(source, str)) or not isinstance(options, dict):
        raise HardytError(f"{path / 'report.json'}: 'checkpoint' must be a path and 'options' an object")
    config = replace(config, source=replace(config.source, checkpoint=None if source in (None, "bundled") else source))
    return config, {k: options[k] for k in ("method", "steps", "alpha_shift", "augment") if k in options}


def _check(args: ExploreConfig):
    for name, lo in (("val_size", 1), ("beam", 1), ("workers", 1)):
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


def _splits(config: ExploreConfig, pre):
    """Calibration batches (training images, labels unused), validation and test sets.

    Validation and test are disjoint halves of the test split (``--val-size``
    images drawn with ``--seed``, the rest is the test set): both are images
    the model never trained on, so the budget is judged on accuracy that the
    training set would inflate.
    """
    import torch

    from hardyt.quant.zoo.data import load_dataset

    args = config.source
    x_train, _ = load_dataset(args.data, "train", None, pre=pre)
    x_all, y_all = load_dataset(args.data, "test", None, pre=pre)
    size = len(x_train) if args.calib_size == "all" else args.calib_size
    if len(x_train) < size:
        raise HardytError(f"{args.data}: {len(x_train)} training images, fewer than --calib-size {size}")
    if len(x_all) <= config.val_size:
        raise HardytError(f"{args.data}: {len(x_all)} test images: --val-size {config.val_size} leaves none to test on")
    calib = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(args.seed))[:size]
    order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(args.seed + 1))
    val, test = order[:config.val_size], order[config.val_size:]
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
        dicts[f"{name} / layernorm"] = _layernorm_spec(c, p, layer_stem(name)).to_dict()
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


def explore(args: ExploreConfig) -> dict:
    """Calibrate, cost every candidate core, search: what :func:`finish` needs for any budget."""
    from hardyt.hw.costmodel.costs import layer_costs
    from hardyt.hw.tools.sweep import dask_client
    from hardyt.quant.conversion.explore import (Evaluator, calibrate, feasible_options, fmax_floor, pareto,
                                                 search)

    _check(args)
    t0 = time.perf_counter()
    args, from_dir = _source(args)
    options = {"seed": args.source.seed, "progress": True} | from_dir
    if args.steps is not None:
        options["steps"] = args.steps
    model, fmt, path = load_model(args.source)
    pre, _ = resolve_input(args.source, model, fmt, path)
    batches, x_val, y_val, x_test, y_test = _splits(args, pre)
    cal = calibrate(model, batches, **options)
    options_by_layer, specs, dicts, choices = _candidates(cal, args.lanes)
    t_cal = time.perf_counter() - t0

    t1 = time.perf_counter()
    with dask_client(args.scheduler, args.workers) as client:
        hw = layer_costs(client, dicts, args.target, args.cache or DEFAULT_CACHE, budget=args.synth_budget)
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
    return {"args": args, "config": args, "model": model, "cal": cal, "batches": batches, "test": (x_test, y_test),
            "validation_size": len(x_val), "calibration_size": sum(len(b) for b in batches), "specs": specs,
            "dicts": dicts, "choices": choices, "hw": hw,
            "evaluate": evaluate, "baselines": baselines, "fmax_floor": floor,
            "front": pareto([p for p in points + list(baselines.values()) if _allowed(p, allowed)]),
            "space": _space(allowed), "method": method,
            "seconds": {"calibration": round(t_cal, 1), "synthesis": round(t_synth, 1),
                        "search": round(time.perf_counter() - t2, 1)}}


def finish(e: dict, max_drop: float) -> ExploreResult:
    """The pick within ``max_drop`` points (measured once on the test split): the ``explore.json`` content."""
    from hardyt.quant.runtime.evaluate import accuracy
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
    return ExploreResult.from_dict({
        "command": args.command,
        "checkpoint": str(args.source.checkpoint or "bundled"), "data": args.source.data, "target": args.target,
        "lanes": args.lanes, "max_drop": max_drop,
        "splits": {"calibration": e["calibration_size"], "validation": e["validation_size"], "test": len(x_test)},
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
    })


def run_explore(config: ExploreConfig) -> tuple[dict, ExploreResult]:
    """The explore step for one budget: search, pick within ``config.max_drop``, write ``config.out``."""
    e = explore(config)
    result = finish(e, config.max_drop)
    write(Path(config.out), e, result)
    return e, result


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


def write(out: Path, e: dict, result: ExploreResult) -> None:
    """explore.json, explore.md, front.png and the pick's converted directory, all or none."""
    cal, model, batches = e["cal"], e["model"], e["batches"]
    chosen, float_model, fixed_model, folded = _pick_models(e, result.pick["layers"])
    by_name = {layer["name"]: layer for layer in cal.report["layers"]}
    layers = [by_name[n] | {"spec_name": s.name, "in_scale": s.in_scale, "clip": s.in_scale * 2 ** (s.in_bits - 1),
                            "folded": bool(folded.get(n, {}).get("into")),
                            "folded_into": folded.get(n, {}).get("into", []),
                            "fold_change": folded.get(n, {}).get("change"), "spec": s.to_dict()}
              for n, s in chosen.items()]
    report = cal.report | {"checkpoint": result.checkpoint, "data": result.data, "layers": layers,
                           "kept_layernorms": [n for n in cal.names if n not in chosen],
                           "folded": sum(layer["folded"] for layer in layers), "explore": result.pick}
    as_dict = result.to_dict()
    with atomic_output_dir(out) as tmp:
        write_converted(tmp / "pick", model, float_model, fixed_model, report, batches[0][:RECORD_IMAGES],
                        markdown=render_pick(report, as_dict))
        save_json_atomic(tmp / "explore.json", as_dict)
        plot_front(as_dict, tmp / "front.png")
        atomic_write_text(tmp / "explore.md", render_markdown(as_dict))


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
