"""The explore step: the smallest normalization hardware within an accuracy budget.

Runs the conversions a user gets from ``hardyt convert`` (weights adapting,
some LayerNorms kept: :mod:`hardyt.quant.conversion.families`) as Dask jobs,
derives each converted layer's candidate formats from them, measures each
core's resources by synthesis (cached by content; one core of each
structure by default, a cost model fitted to the runs covers the other
cores), measures configurations' top-1 on a validation split in the
hardware's arithmetic (:mod:`hardyt.flow.explore_search`), and writes into
``out``: ``explore.json`` (an :class:`ExploreResult`), ``explore.md`` +
``front.png`` and ``pick/``, a converted directory the emit, simulate and
synthesize steps take as it is, which ``hardyt convert --keep ...
--layer-formats pick/layer_formats.json`` reproduces (``pick.convert``,
:mod:`hardyt.flow.explore_pick`).

:func:`explore` (calibrate, cost, search) is separate from :func:`finish`
(the pick within one budget) so that one search serves several budgets.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir, atomic_write_text, load_json_object, save_json_atomic

from .explore_pick import convert_record, write_pick
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
    for name, lo in (("val_size", 1), ("beam", 1), ("workers", 1), ("conversions", 1), ("measure", 1)):
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


def _point(p: dict, e: dict) -> dict:
    """A search point with its summed resources, the slowest Fmax, the throughput it allows and the
    ``hardyt convert`` options that reproduce it."""
    from hardyt.hw.costmodel.objective import throughput

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


def _bound(points: list[dict], baselines: dict, costs: dict, names: list[str], max_drop: float) -> dict:
    """Whether families keeping LayerNorms can change the pick within ``max_drop``: each has a LayerNorm core,
    so none costs less than the cheapest one; when the default conversion's own pick (``points`` of family 0,
    already within the Fmax floor) costs less, they cannot, and are not converted."""
    from .explore_search import core_label, lut_ff

    cheapest = min(lut_ff(costs, core_label(n, "layernorm", 0)) for n in names)
    reference = baselines["all_layernorm"]["accuracy"]
    within = [p["cost"] for p in points if p["family"] == 0 and 100 * (reference - p["accuracy"]) <= max_drop + 1e-9]
    pick = min(within, default=None)
    return {"max_drop": max_drop, "default_pick_lut_ff": pick, "cheapest_layernorm_lut_ff": cheapest,
            "pruned": pick is not None and pick < cheapest}


class _Exploration:
    """The families converted so far, their cores' costs and the points measured on them, and the seconds
    each part took: the ends (nothing kept, everything kept) first, the others when :func:`_bound` says they
    could be picked (or at once with ``every_family``)."""

    def __init__(self, client, args: ExploreConfig, convert: tuple, names: list[str], validation: tuple):
        self.client, self.args, self.convert, self.names, self.validation = client, args, convert, names, validation
        self.seconds = {"conversions": 0.0, "synthesis": 0.0, "search": 0.0}
        self.families, self.order, self.points, self.search, self.floor = [], None, [], None, None

    def _timed(self, what: str, f, *a, **k):
        t = time.perf_counter()
        out = f(*a, **k)
        self.seconds[what] += time.perf_counter() - t
        return out

    def _cost(self) -> None:
        from hardyt.hw.costmodel.costs import layer_costs

        from .explore_search import family_specs

        self.dicts, self.specs, self.choices, self.formats = family_specs(self.families, _layernorm_spec)
        a = self.args
        self.hw = self._timed("synthesis", layer_costs, self.client, self.dicts, a.target, a.cache or DEFAULT_CACHE,
                              budget=a.synth_budget, reuse=a.synth_budget == "all")

    def allowed(self, lab: str) -> bool:
        """The Fmax floor (the slowest LayerNorm core's unless ``--min-fmax``)."""
        c = self.hw["costs"][lab]
        return self.floor is None or c.get("fmax_mhz") is None or c["fmax_mhz"] >= self.floor

    def _search(self, which=None):
        from .explore_search import search_families

        return self._timed("search", search_families, self.families, self.names, self.specs, self.hw["costs"],
                           self.allowed, *self.validation, beam=self.args.beam, measure=self.args.measure,
                           which=which, delta=self.search and self.search["delta"])

    def ends(self) -> None:
        """Convert (every family with ``every_family``, else the two ends), cost, search."""
        from hardyt.hw.costmodel.objective import fmax_floor

        from .explore_search import convert_families, core_label

        self.families, self.order = convert_families(self.client, *self.convert, between=self.args.every_family)
        self._cost()
        self.floor = fmax_floor(self.args.min_fmax, {(n, "layernorm"): self.hw["costs"][core_label(
            n, "layernorm", 0)].get("fmax_mhz") for n in self.names}, self.names)
        self.points, self.search = self._search()

    def between(self) -> None:
        """Convert the families keeping some LayerNorms (placed between the ends), cost them, search them."""
        from .explore_search import convert_families, point_cost

        middle, self.order = self._timed("conversions", convert_families, self.client, *self.convert, ends=False)
        self.families = self.families[:1] + middle + self.families[1:]
        baselines = list(self.search["baselines"].values())
        for p in self.points + baselines:    # the model as given moves from index 1 to the end
            p["family"] = len(self.families) - 1 if p["family"] == 1 else p["family"]
        self._cost()
        more, record = self._search(which=range(1, len(middle) + 1))
        self.points += more
        self.search["families"][1:1] = record["families"]
        self.search["measured"] += record["measured"]
        for p in self.points + baselines:     # the costs of the final synthesis
            p["cost"] = point_cost(p, self.hw["costs"])


def explore(args: ExploreConfig) -> dict:
    """Convert the families, cost every candidate core, search: what :func:`finish` needs for any budget of
    at least ``args.max_drop`` (families keeping LayerNorms are converted only when they can be cheaper than
    the default conversion's pick, unless ``args.every_family``: :func:`_bound`)."""
    import copy

    from hardyt.hw.tools.sweep import dask_client
    from hardyt.quant.conversion.explore import pareto
    from hardyt.quant.runtime.graph import layer_norm_names

    from .explore_search import core_label

    _check(args)
    t0 = time.perf_counter()
    args, from_dir = _source(args)
    options = {"seed": args.source.seed, "progress": True} | from_dir
    if args.steps is not None:
        options["steps"] = args.steps
    model, fmt, path = load_model(args.source)
    pre, _ = resolve_input(args.source, model, fmt, path)
    batches, x_val, y_val, x_test, y_test = _splits(args, pre)
    names = layer_norm_names(copy.deepcopy(model).eval(), batches[0])
    if not names:
        raise HardytError("explore: the model has no LayerNorm to replace")
    with dask_client(args.scheduler, args.workers) as client:
        run = _Exploration(client, args, (model, batches, names, options, args.conversions, args.lanes), names,
                           (x_val, y_val))
        run.ends()
        run.seconds["conversions"] += time.perf_counter() - t0 - sum(run.seconds.values())   # with the loading
        bound = None if args.every_family else _bound(run.points, run.search["baselines"], run.hw["costs"], names,
                                                      args.max_drop)
        if bound is not None and not bound["pruned"] and args.conversions > 1:
            run.between()
    search = run.search
    search.pop("delta")
    search["bound"] = bound
    baselines = search.pop("baselines")
    feasible = [p for p in run.points
                if all(run.allowed(core_label(n, lab, p["family"])) for n, lab in p["layers"].items())]
    return {"args": args, "config": args, "model": model, "families": run.families, "order": run.order,
            "batches": batches, "validation": (x_val, y_val), "test": (x_test, y_test), "options": options,
            "specs": run.specs, "dicts": run.dicts, "choices": run.choices, "formats": run.formats, "hw": run.hw,
            "baselines": baselines, "fmax_floor": run.floor, "front": pareto(feasible), "search": search,
            "seconds": {k: round(v, 1) for k, v in run.seconds.items()}}


def finish(e: dict, max_drop: float) -> ExploreResult:
    """The pick within ``max_drop`` points on validation, written as ``hardyt convert`` writes it and measured
    from that directory (validation again, then the test split, once): the ``explore.json`` content.

    ``e["picks"][max_drop]`` holds the written directory (temporary) for :func:`write`, which moves it.
    """
    from hardyt.quant.conversion.explore import pick_within
    from hardyt.quant.runtime.evaluate import accuracy

    args, hw = e["args"], e["hw"]
    bound = e["search"].get("bound")
    if bound and bound["pruned"] and max_drop < bound["max_drop"]:
        raise HardytError(f"explore: the search was bounded for picks within {bound['max_drop']} points or more; "
                          f"for {max_drop}, explore with --max-drop {max_drop} (or --every-family)")
    reference = e["baselines"]["all_layernorm"]["accuracy"]
    pick = pick_within(e["front"], reference, max_drop)
    directory, measured = write_pick(e, pick, max_drop)
    e.setdefault("picks", {})[max_drop] = directory
    x_test, y_test = e["test"]
    ln_test = accuracy(e["model"].eval(), x_test, y_test, progress=True, desc="LayerNorm (test)")
    syn = {k: hw[k] for k in ("runs", "synthesized", "cached", "reused", "estimated", "structures",
                              "structures_synthesized", "model_error")}
    return ExploreResult.from_dict({
        "command": args.command,
        "checkpoint": str(args.source.checkpoint or "bundled"), "data": args.source.data, "target": args.target,
        "lanes": args.lanes, "max_drop": max_drop,
        "splits": {"calibration": sum(len(b) for b in e["batches"]), "validation": len(e["validation"][1]), "test": len(x_test),
                   "decided_on": "validation", "reported_on": "test"},
        "reference": {"validation_accuracy": reference, "test_accuracy": ln_test},
        "fmax_floor_mhz": e["fmax_floor"], "min_fmax": args.min_fmax,
        "front": [_point(p, e) for p in e["front"]],
        "pick": _point(pick, e) | measured,
        "baselines": {k: _point(p, e) for k, p in e["baselines"].items()},
        "search": e["search"] | {"conversions": args.conversions, "beam": args.beam, "measure": args.measure,
                                 "ranking": e["order"]},
        "synthesis": syn | {"cores": len(e["dicts"]),
                            "scheduler": args.scheduler or f"local ({args.workers} worker(s))"},
        "cost_model_error": {k: hw["model_error"][k] for k in ("lut_ff", "fmax_mhz")}
        | {"method": "leave-one-out over this run's synthesized DyT cores (mean / max absolute %)"},
        "candidates": dict(hw["costs"]),
        "seconds": e["seconds"],
    })


def run_explore(config: ExploreConfig) -> tuple[dict, ExploreResult]:
    """The explore step for one budget: search, pick within ``config.max_drop``, write ``config.out``."""
    e = explore(config)
    result = finish(e, config.max_drop)
    write(Path(config.out), e, result)
    return e, result


def write(out: Path, e: dict, result: ExploreResult) -> None:
    """explore.json, explore.md, front.png and the pick's converted directory, all or none."""
    import shutil

    as_dict = result.to_dict()
    pick = Path(e["picks"].pop(result.max_drop))     # finish's temporary directory: moved into out
    try:
        with atomic_output_dir(out) as tmp:
            shutil.copytree(pick, tmp / "pick")
            save_json_atomic(tmp / "explore.json", as_dict)
            plot_front(as_dict, tmp / "front.png")
            atomic_write_text(tmp / "explore.md", render_markdown(as_dict))
    finally:
        shutil.rmtree(pick.parent, ignore_errors=True)
