"""``hardyt explore`` on the bundled ViT: the front, the picks within 0.3 and 1.0 points, 1 vs 2 Dask workers,
and the cost model against real synthesis of every core it predicted.

    .venv/bin/python bench/explore.py          # the explore defaults; prints the table, writes
                                               # bench/results/explore.{json,md,png}
    .venv/bin/python bench/explore.py --steps 50 --calib-size 256 --val-size 1000
                                               # quicker (a shorter calibration, a smaller validation split)

1. One run of the search (``hardyt.flow.explore.explore``: convert
   once, every candidate core costed — one synthesis run per core structure
   by default, the cost model for the rest —, beam search on the validation
   split), then each budget's pick measured once on the test split. Synthesis
   runs with a fresh cache on one local Dask worker; then the same runs
   again, fresh cache, on two workers: the two wall times.
2. The cost model checked: every core it predicted is synthesized too (into
   ``--check-cache``, a persistent cache: a later run of the same
   calibration synthesizes nothing; ``--check-synth N`` bounds the new runs)
   and its prediction compared with the real run; and the leave-one-out
   error of the model over all those runs.

The picks' converted directories go to ``--work`` (default ``out/bench-explore``).
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hardyt.hw.costmodel.cost_features import kind
from hardyt.hw.costmodel.cost_model import holdout_error, prediction_error
from hardyt.hw.costmodel.costs import cached_report, layer_costs, spec_key, synth_cached, synthesis_plan
from hardyt.hw.tools.sweep import dask_client, failure_error, run_jobs
from hardyt.quant.conversion.explore import label
from hardyt.quant.files import atomic_write_text, save_json_atomic
from hardyt.flow import explore as explore_step
from hardyt.flow.explore_report import model_error_text
from hardyt.flow.options import ExploreConfig, ModelSource

OUT = Path(__file__).parent / "results"
BUDGETS = (0.3, 1.0)


def _explore_config(a) -> ExploreConfig:
    return ExploreConfig(source=ModelSource(calib_size=a.calib_size), max_drop=BUDGETS[-1], target="ecp5",
                         val_size=a.val_size, beam=a.beam, cache=str(a.cache), workers=1, out=str(a.work),
                         synth_budget=a.synth_budget, steps=a.steps)


def _synth_budget(text: str):
    return text if text == "all" else int(text)


def check_costs(e: dict, cache, budget) -> dict:
    """The explore's predicted cores against their real synthesis (from ``cache`` or run now, at most
    ``budget`` new runs, spread over the structures); the leave-one-out error over every real run
    (explore's own and these)."""
    dicts, costs = e["dicts"], e["hw"]["costs"]
    first = {}
    for lab in sorted(dicts):
        first.setdefault(spec_key(dicts[lab], "ecp5"), lab)
    distinct = set(first.values())
    real = {lab: costs[lab] for lab in distinct if costs[lab]["synthesized"]}
    predicted = {lab: cached_report(dicts[lab], "ecp5", cache) for lab in distinct - real.keys()}
    missing = {lab: dicts[lab] for lab, r in predicted.items() if r is None}
    todo = synthesis_plan(missing, budget or "all")
    t0 = time.perf_counter()
    with dask_client(workers=1) as client:
        done, failures = run_jobs(client, {lab: (synth_cached, (dicts[lab], "ecp5", str(cache))) for lab in todo},
                                  desc="check synth")
    if failures:
        raise failure_error(failures, len(todo), "synthesis job")
    predicted = {lab: r for lab, r in (predicted | done).items() if r is not None}
    real |= predicted
    by_key = {spec_key(dicts[lab], "ecp5"): r for lab, r in predicted.items()}
    checked = [lab for lab, c in costs.items() if not c["synthesized"] and spec_key(dicts[lab], "ecp5") in by_key]
    pairs = {lab: (costs[lab], by_key[spec_key(dicts[lab], "ecp5")]) for lab in checked}
    by_kind = {}
    for lab in checked:
        by_kind.setdefault(kind(dicts[lab]), []).append(lab)
    runs = sorted(real)
    return {"cores_predicted": sum(not c["synthesized"] for c in costs.values()), "checked": len(checked),
            "synthesized_now": len(done), "synth_seconds": round(time.perf_counter() - t0, 1),
            "error": prediction_error(*zip(*pairs.values())) if pairs else None,
            "by_kind": {k: prediction_error(*zip(*(pairs[lab] for lab in labs))) for k, labs in by_kind.items()},
            "leave_one_out": holdout_error([dicts[lab] for lab in runs], [real[lab] for lab in runs]),
            "real": {lab: {k: r[k] for k in ("lut", "ff", "dsp", "bram", "fmax_mhz")} for lab, r in real.items()}}


def real_point(p: dict, dicts: dict, check: dict) -> dict | None:
    """A point's resources from real synthesis runs only (``None`` if one of its cores has none)."""
    by_key = {spec_key(dicts[lab], "ecp5"): r for lab, r in check["real"].items()}
    rows = []
    for name, choice in p["layers"].items():
        r = by_key.get(spec_key(dicts[f"{name} / {label(choice)}"], "ecp5"))
        if r is None:
            return None
        rows.append(r)
    out = {k: sum(r[k] for r in rows) for k in ("lut", "ff", "dsp", "bram")}
    return out | {"lut_ff": out["lut"] + out["ff"], "fmax_mhz": min(r["fmax_mhz"] for r in rows)}


def _row(name: str, p: dict, ref: dict, real: dict | None) -> str:
    ratio = p["lut_ff"] / ref["lut_ff"]
    test = f"{100 * p['test_accuracy']:.2f}" if "test_accuracy" in p else "—"
    real_text = "—" if real is None else f"{real['lut_ff']} ({real['lut_ff'] / ref['lut_ff']:.2f})"
    return (f"| {name} | {100 * p['accuracy']:.2f} | {test} | {p['lut']} | {p['ff']} | {p['dsp']} | {p['bram']} | "
            f"{p['fmax_mhz']:.0f} | {ratio:.2f} | {real_text} |")


def table(results: dict, timing: dict, e: dict, check: dict) -> str:
    first = results[BUDGETS[0]]
    base = first["baselines"]
    ln = base["all_layernorm"]

    def row(name, p):
        return _row(name, p, ln, real_point(p, e["dicts"], check))

    lines = ["| configuration | val top-1 % | test top-1 % | LUT | FF | DSP | BRAM | Fmax MHz | LUT+FF / LN | "
             "real LUT+FF (/ LN) |", "|---" * 10 + "|",
             row("all LayerNorm", ln), row("all DyT 8-bit LUT", base["all_dyt_8bit"])]
    lines += [row(f"pick within {b} pt", results[b]["pick"]) for b in BUDGETS]
    lines += ["", "Front (validation):", "", "| LUT+FF | real LUT+FF | val top-1 % | DSP | BRAM | Fmax MHz |",
              "|---|---|---|---|---|---|"]
    for p in first["front"]:
        real = real_point(p, e["dicts"], check)
        lines.append(f"| {p['lut_ff']} | {'—' if real is None else real['lut_ff']} | {100 * p['accuracy']:.2f} | "
                     f"{p['dsp']} | {p['bram']} | {p['fmax_mhz']:.0f} |")
    lines += ["", "| synthesis of the same runs (fresh cache) | wall time (s) |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timing.items()]
    return "\n".join(lines)


def _pct(s: dict | None) -> str:
    return "—" if s is None else f"{s['mean_abs_pct']} % / {s['max_abs_pct']} %"


def check_table(check: dict) -> str:
    lines = ["| cores | n | LUT | FF | LUT+FF | Fmax | DSP exact | BRAM exact |", "|---" * 8 + "|"]
    rows = [("all predicted", check["error"])] + sorted(check["by_kind"].items())
    for name, err in rows:
        if err is None:
            continue
        lines.append(f"| {name} | {err['lut_ff']['n']} | {_pct(err['lut'])} | {_pct(err['ff'])} | "
                     f"{_pct(err['lut_ff'])} | {_pct(err['fmax_mhz'])} | {err['dsp']['exact']:.0%} | "
                     f"{err['bram']['exact']:.0%} |")
    return "\n".join(lines)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synth-budget", type=_synth_budget,
                    help="synthesis runs N or all (default: explore's, one per core structure)")
    ap.add_argument("--val-size", type=int, default=2000, help="validation images (default 2000)")
    ap.add_argument("--calib-size", type=int, default=1024, help="calibration images (default 1024)")
    ap.add_argument("--beam", type=int, default=3, help="beam width (default 3)")
    ap.add_argument("--steps", type=int, help="reconstruction steps (default: the library's)")
    ap.add_argument("--check-cache", type=Path, default=explore_step.DEFAULT_CACHE,
                    help="persistent synthesis cache of the cost model check (default: explore's --cache default)")
    ap.add_argument("--check-synth", type=_synth_budget,
                    help="at most N new synthesis runs for the check (default: every predicted core)")
    ap.add_argument("--work", type=Path, default=Path("out/bench-explore"), help="picks' converted directories")
    a = ap.parse_args(argv)
    load = {"before": _uptime()}
    t0 = time.perf_counter()
    caches = [Path(tempfile.mkdtemp(prefix="hardyt-bench-explore-")) for _ in range(2)]
    try:
        a.cache = caches[0]
        config = _explore_config(a)
        e = explore_step.explore(config)
        results = {}
        for b in BUDGETS:
            result = explore_step.finish(e, b)
            explore_step.write(a.work / f"drop-{b}", e, result)
            results[b] = result.to_dict()
        t1 = time.perf_counter()
        with dask_client(workers=2) as client:
            again = layer_costs(client, e["dicts"], "ecp5", caches[1], budget=config.synth_budget)
        timing = {"1 worker": e["seconds"]["synthesis"], "2 workers": round(time.perf_counter() - t1, 1)}
    finally:
        for c in caches:
            shutil.rmtree(c, ignore_errors=True)
    check = check_costs(e, a.check_cache, a.check_synth)
    load["after"] = _uptime()
    same = all(again["costs"][k] == v for k, v in e["hw"]["costs"].items())
    text = table(results, timing, e, check)
    print(text)
    meta = {"command": "python " + " ".join(shlex.quote(x) for x in [sys.argv[0], *(argv or sys.argv[1:])]),
            "machine": platform.platform(), "python": platform.python_version(), "load": load,
            "seconds": round(time.perf_counter() - t0, 1), "explore_seconds": e["seconds"]}
    OUT.mkdir(exist_ok=True)
    save_json_atomic(OUT / "explore.json", {"meta": meta, "timing": timing, "two_workers_same_costs": same,
                                            "cost_check": check, "results": {str(b): r for b, r in results.items()}})
    shutil.copyfile(a.work / f"drop-{BUDGETS[-1]}" / "front.png", OUT / "explore.png")
    atomic_write_text(OUT / "explore.md", render(meta, results, e, check, text, same))
    print(json.dumps(timing))
    return 0


def render(meta: dict, results: dict, e: dict, check: dict, text: str, same: bool) -> str:
    r = results[BUDGETS[0]]
    syn, s = r["synthesis"], r["search"]
    loo = check["leave_one_out"]
    covered = "every one" if syn["structures_synthesized"] == syn["structures"] else \
        f"{syn['structures_synthesized']} of them"
    return "\n".join([
        "# hardyt explore on the bundled ViT (ECP5)", "",
        f"`{meta['command']}` on {meta['machine']}, {meta['seconds']:.0f} s in all (calibration "
        f"{e['seconds']['calibration']} s, synthesis {e['seconds']['synthesis']} s, search {e['seconds']['search']} s"
        f"). {r['splits']['validation']} validation images and {r['splits']['test']} test images, disjoint halves "
        f"of the test split; {r['splits']['calibration']} training images calibrate. Lanes: the default (8).", "",
        f"Machine load (`uptime`; the 2 cores are shared with other jobs): before `{meta['load']['before']}`, after "
        f"`{meta['load']['after']}`.", "",
        f"Synthesis: {syn['cores']} candidate cores of {syn['structures']} structures; {syn['runs']} synthesis runs "
        f"cover {covered}, so every other core differs from a synthesized one in ROM contents only; {syn['estimated']} "
        f"cores from the cost model. Its leave-one-out error on explore's own runs: "
        f"{model_error_text(syn['model_error'])}. Search: {s['method']}"
        f"{'' if s['method'] == 'exact' else ' (beam ' + str(s['beam']) + ')'}, {s['measured']} configurations "
        f"measured of {s['space']:.3g}. Two workers gave the same costs: {same}.", "",
        "![front](explore.png)", "", text, "",
        "`real LUT+FF`: the same configuration costed with the real synthesis run of every one of its cores.", "",
        "## The cost model against real synthesis", "",
        f"Of the {check['cores_predicted']} cores explore predicted, {check['checked']} were synthesized as well "
        f"({check['synthesized_now']} by this run, in {check['synth_seconds']} s, chosen across the structures; "
        f"the rest found in `--check-cache` from an earlier run of the same specs): the model's prediction (fitted "
        f"on explore's {syn['runs']} runs) against the real run, mean / max absolute error in percent of the real "
        f"value:", "",
        check_table(check), "",
        f"Leave-one-out over all {loo['runs']} real runs (each DyT core held out, the model fitted on the rest): "
        f"{model_error_text(loo)}.", "",
        "The 2-worker time is what the shared machine gave; the load above says how busy it was.", ""])


if __name__ == "__main__":
    sys.exit(main())
