"""``hardyt explore``'s search over families of conversions (:mod:`hardyt.quant.conversion.families`).

1. **Conversions** as Dask jobs on the cluster that synthesizes
   (:func:`convert_families`): the families :func:`kept_sets` names, each
   the library's default conversion with those LayerNorms kept, and its
   candidate specs; a frozen-weight conversion ranks the layers first when
   not every subset is converted.
2. **Costs** of every family's candidate cores and of the LayerNorm cores,
   in one :func:`hardyt.hw.costmodel.costs.layer_costs` call (one synthesis run per
   core structure over all families; the cost model for the rest).
3. **Search** (:func:`search_families`): each family's format choices on the
   validation split (exact when small, else by measured sensitivities), the
   Fmax floor removing slower cores first.

Labels: a LayerNorm core is ``"<layer> / layernorm"`` (one per width,
whatever the family); a DyT core ``"<layer> / <choice> / K<j>"``, ``j`` the
family.
"""
from __future__ import annotations

from hardyt.hw.tools.sweep import failure_error, run_jobs
from hardyt.quant.errors import HardytError

__all__ = ["convert_families", "family_specs", "search_families", "core_label", "lut_ff", "point_cost"]


def core_label(name: str, lab: str, family: int) -> str:
    """The cost label of a core.

    >>> core_label("norm", "layernorm", 2), core_label("norm", "dyt lut8 out8 folded", 2)
    ('norm / layernorm', 'norm / dyt lut8 out8 folded / K2')
    """
    return f"{name} / layernorm" if lab == "layernorm" else f"{name} / {lab} / K{family}"


def _jobs(client, jobs: dict, what: str) -> dict:
    results, failures = run_jobs(client, jobs, desc=what)
    if failures:
        raise failure_error(failures, len(jobs), f"{what} job")
    return results


def _family_jobs(model, batches: list, sets: dict, options: dict, lanes) -> dict:
    from hardyt.quant.conversion import explore
    from hardyt.quant.conversion.families import build_family

    choices = tuple(explore.TANH_CHOICES)   # read here: a worker process has the module's own
    return {key: (build_family, (model, batches, kept, options, lanes, choices)) for key, kept in sets.items()}


def convert_families(client, model, batches: list, names: list[str], options: dict, conversions: int, lanes, *,
                     ends: bool = True, between: bool = True):
    """``(families, order)``: ``[(kept, Calibration, candidates)]`` in :func:`kept_sets` order, the model as
    given (every LayerNorm kept) last, and the layers' ranking (``None`` when none was needed).

    ``ends``: the default conversion (nothing kept) and the model as given;
    ``between``: the families keeping some LayerNorms — every subset when
    there are no more than ``conversions``, else a chain ranked by a
    frozen-weight conversion (run beside the ends when both are asked for).
    """
    from hardyt.quant.conversion.families import kept_sets, layer_ranking

    chain = between and conversions > 1 and 2 ** len(names) > conversions
    jobs = _family_jobs(model, batches, {"K0": (), "KL": tuple(names)} if ends else {}, options, lanes)
    if chain:
        jobs["rank"] = (layer_ranking, (model, batches, options))
    done = _jobs(client, jobs, "convert") if jobs else {}
    order = done.pop("rank", None)
    middle = [k for k in kept_sets(names, conversions, order) if 0 < len(k) < len(names)] \
        if between and conversions > 1 else []
    if middle:
        done |= _jobs(client, _family_jobs(model, batches, {f"K{j + 1}": k for j, k in enumerate(middle)},
                                           options, lanes), "convert")
    sets = ([("K0", ())] if ends else []) + [(f"K{j + 1}", k) for j, k in enumerate(middle)] \
        + ([("KL", tuple(names))] if ends else [])
    return [(k, *done[key]) for key, k in sets], order


def family_specs(families: list, layernorm_spec) -> tuple[dict, dict, dict, dict]:
    """``(dicts, specs, choices, formats)`` by cost label: every core's spec dict (for synthesis), DyT spec,
    choice and the formats ``hardyt convert --layer-formats`` takes for it."""
    dicts, specs, choices, formats = {}, {}, {}, {}
    for j, (_, fam, cands) in enumerate(families):
        from hardyt.quant.conversion.explore import label
        for name, layer in cands.items():
            for choice, f, spec in layer:
                key = core_label(name, label(choice), j)
                dicts[key], specs[key], choices[key], formats[key] = spec.to_dict(), spec, choice, f
    shapes = {}
    for _, fam, cands in families:
        for name, layer in cands.items():
            shapes.setdefault(name, (layer[0][2].channels, layer[0][2].lanes))
    for name, (c, p) in shapes.items():
        dicts[core_label(name, "layernorm", 0)] = layernorm_spec(c, p, name.replace(".", "_")).to_dict()
    return dicts, specs, choices, formats


def lut_ff(costs: dict, label: str) -> int:
    """A core's LUT+FF, the search's cost (``label``: :func:`core_label`)."""
    return costs[label]["lut"] + costs[label]["ff"]


def point_cost(p: dict, costs: dict) -> float:
    """A point's LUT+FF: the sum over its layers' cores (``p["layers"]``: ``{layer: label}``, ``p["family"]``)."""
    return sum(lut_ff(costs, core_label(n, lab, p["family"])) for n, lab in p["layers"].items())


def search_families(families: list, names: list[str], specs: dict, costs: dict, allowed, x_val, y_val, *,
                    beam: int, measure: int, which=None, delta=None) -> tuple[list[dict], dict]:
    """Every measured point (``{"layers": {layer: label}, "accuracy", "cost", "family"}``) and the search's
    record (method per family, configurations measured, ``baselines``: all LayerNorm and all DyT 8-bit —
    those of the families searched —, ``delta``: the sensitivities the first family measured).

    ``allowed(label) -> bool``: the Fmax floor. ``which``: the indices of
    ``families`` to search (default all). Sensitivities measured on the
    first family (nothing kept), or the ``delta`` given, predict the others'.
    """
    from hardyt.quant.conversion.explore import Evaluator, label
    from hardyt.quant.conversion.families import reference_config, sensitivity_search

    points, record, baselines = [], [], {}
    for j in range(len(families)) if which is None else which:
        kept, fam, cands = families[j]
        options = {n: ["layernorm"] for n in kept}
        fam_specs = {}
        for name, layer in cands.items():
            every = [label(c) for c, _, _ in layer]
            fam_specs |= {(name, lab): specs[core_label(name, lab, j)] for lab in every}
            options[name] = [lab for lab in every if allowed(core_label(name, lab, j))]
            if not options[name]:
                raise HardytError(f"no core of layer {name} reaches the Fmax floor (--min-fmax 0 disables it)")
        options = {n: options[n] for n in names}
        cost = {(n, lab): lut_ff(costs, core_label(n, lab, j)) for n in names for lab in options[n]}
        evaluate = Evaluator(fam, fam_specs, x_val, y_val)
        reference = reference_config(names, options)
        limit = len(names) * max(len(v) for v in options.values()) * beam
        found, d, method = sensitivity_search(names, options, cost, evaluate, reference, delta=delta,
                                              measure=measure, exact_limit=limit)
        delta = delta or (d if method == "sensitivity" else None)
        points += [p | {"family": j} for p in found]
        if not kept:    # the default conversion's 8-bit formats, whatever the floor allows
            eight = reference_config(names, {n: [label(c) for c, _, _ in cands[n]] for n in names})
            baselines["all_dyt_8bit"] = {"layers": eight, "accuracy": evaluate(eight), "family": j}
        if len(kept) == len(names):
            baselines["all_layernorm"] = {"layers": dict.fromkeys(names, "layernorm"), "accuracy": evaluate({}),
                                          "family": j}
        record.append({"kept": list(kept), "method": method, "measured": len(evaluate.seen),
                       "space": _space(options)})
    for p in baselines.values():
        p["cost"] = point_cost(p, costs)
    return points, {"families": record, "measured": sum(r["measured"] for r in record), "baselines": baselines,
                    "delta": delta}


def _space(options: dict) -> int:
    n = 1
    for labels in options.values():
        n *= len(labels)
    return n
