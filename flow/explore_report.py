"""``hardyt explore``'s report: ``front.png`` (the Pareto front against the two baselines) and ``explore.md``."""
from __future__ import annotations

from .plots import save_figure, subplots

__all__ = ["plot_front", "render_markdown", "layer_choice", "model_error_text", "search_text"]


def layer_choice(c: dict) -> str:
    """A layer's choice in a table cell.

    >>> layer_choice({"core": "dyt", "tanh": "pwl", "in_bits": 12, "out_bits": 7, "affine": "folded"})
    'pwl12/7'
    >>> layer_choice({"core": "layernorm"})
    'LN'
    """
    return "LN" if c["core"] == "layernorm" else f"{c['tanh']}{c['in_bits']}/{c['out_bits']}" + \
        ("" if c["affine"] == "folded" else " ch")


def plot_front(result: dict, path) -> None:
    """Validation accuracy against total LUT+FF: the front, the pick and the two all-alike baselines."""
    fig, ax = subplots(figsize=(7, 4.2))
    front = result["front"]
    ax.step([p["lut_ff"] for p in front], [100 * p["accuracy"] for p in front], "o-", where="post", ms=4,
            label="Pareto front (validation)")
    marks = {"all_layernorm": ("s", "all LayerNorm"), "all_dyt_8bit": ("^", "all DyT 8-bit LUT")}
    for key, (marker, name) in marks.items():
        b = result["baselines"][key]
        ax.plot([b["lut_ff"]], [100 * b["accuracy"]], marker, ms=9, label=name)
    p = result["pick"]
    ax.plot([p["lut_ff"]], [100 * p["accuracy"]], "*", ms=14, color="k",
            label=f"pick (within {result['max_drop']} pt)")
    ref = 100 * result["reference"]["validation_accuracy"]
    ax.axhline(ref - result["max_drop"], color="k", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel(f"total LUT + FF ({result['target']}, all normalization layers)")
    ax.set_ylabel("top-1 on the validation split (%)")
    ax.set_title("normalization hardware: accuracy against resources")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def _row(name: str, p: dict, names: list[str]) -> str:
    fmax = "—" if p["fmax_mhz"] is None else f"{p['fmax_mhz']:.0f}"
    rate = "—" if p.get("throughput_eps") is None else f"{p['throughput_eps'] / 1e9:.2f}"
    test = f"{100 * p['test_accuracy']:.2f}" if "test_accuracy" in p else ""
    return (f"| {name} | {100 * p['accuracy']:.2f} | {test} | {p['lut']} | {p['ff']} | {p['lut_ff']} | {p['dsp']} "
            f"| {p['bram']} | {fmax} | {rate} | {p['estimated_layers']} | "
            + " ".join(layer_choice(p["layers"][n]) for n in names) + " |")


def _pct(e: dict | None) -> str:
    return "—" if e is None else f"mean {e['mean_abs_pct']} %, max {e['max_abs_pct']} % (n={e['n']})"


def model_error_text(err: dict) -> str:
    """The cost model's leave-one-out error in words.

    >>> e = {"n": 2, "mean_abs_pct": 5.0, "max_abs_pct": 8.0}
    >>> model_error_text({"lut_ff": e, "fmax_mhz": None, "within_structure": e, "across_structures": None})
    'LUT+FF mean 5.0 %, max 8.0 % (n=2) (runs whose structure another run had: mean 5.0 %, max 8.0 % (n=2); the others: —)'
    """
    if err["lut_ff"] is None:
        return "not measured (no DyT run to hold out)"
    text = (f"LUT+FF {_pct(err['lut_ff'])} (runs whose structure another run had: {_pct(err['within_structure'])}; "
            f"the others: {_pct(err['across_structures'])})")
    return text + ("" if err["fmax_mhz"] is None else f"; Fmax {_pct(err['fmax_mhz'])}")


def search_text(s: dict) -> str:
    """The search in words: each conversion (LayerNorms kept), how its formats were searched.

    >>> search_text({"families": [{"kept": [], "method": "sensitivity", "measured": 70, "space": 4e8},
    ...                           {"kept": ["norm"], "method": "exact", "measured": 8, "space": 8}], "measured": 78})
    'Search: 2 conversions as `hardyt convert` makes them (weights adapting), 78 configurations measured: nothing kept: sensitivity, 70 of 4e+08; kept `norm`: exact, 8 of 8.'
    """
    parts = [("nothing kept" if not f["kept"] else "kept " + ", ".join(f"`{n}`" for n in f["kept"]))
             + f": {f['method']}, {f['measured']} of {f['space']:.3g}" for f in s["families"]]
    rank = ", and a frozen-weight one ranking the layers" if s.get("ranking") else ""
    text = (f"Search: {len(s['families'])} conversions as `hardyt convert` makes them (weights adapting){rank}, "
            f"{s['measured']} configurations measured: " + "; ".join(parts) + ".")
    b = s.get("bound")
    if b and b["pruned"]:
        text += (f" Families keeping LayerNorms not converted: the default conversion's pick within "
                 f"{b['max_drop']} pt costs {b['default_pick_lut_ff']:.0f} LUT+FF, less than the cheapest "
                 f"LayerNorm core ({b['cheapest_layernorm_lut_ff']:.0f}), so none could be picked.")
    return text


def _floor_text(result: dict) -> str:
    """The Fmax floor in words.

    >>> _floor_text({"fmax_floor_mhz": 120.0, "min_fmax": None})
    'Fmax floor: 120 MHz (the slowest core of the all-LayerNorm design); cores below it were not candidates.'
    """
    floor = result.get("fmax_floor_mhz")
    if floor is None:
        return "Fmax floor: none (`--min-fmax 0`, or a target without place and route)."
    why = "the slowest core of the all-LayerNorm design" if result.get("min_fmax") is None else "--min-fmax"
    return f"Fmax floor: {floor:.0f} MHz ({why}); cores below it were not candidates."


def render_markdown(result: dict) -> str:
    """``explore.md``."""
    names = list(result["pick"]["layers"])
    syn, s = result["synthesis"], result["search"]
    err_text = model_error_text(syn["model_error"])
    lines = [
        f"# hardyt explore: `{result['checkpoint']}` on `{result['data']}`, --max-drop {result['max_drop']} pt", "",
        f"Accuracy: top-1 in the hardware's fixed-point arithmetic on {result['splits']['validation']} validation "
        f"images (drawn from the test split; {result['splits']['calibration']} training images calibrate, labels "
        f"unused); the pick once on the other {result['splits']['test']} test images. LayerNorm model: validation "
        f"{100 * result['reference']['validation_accuracy']:.2f} %, test "
        f"{100 * result['reference']['test_accuracy']:.2f} %.", "",
        f"Resources: {result['target']}, sums over every normalization layer (slowest Fmax). {syn['cores']} "
        f"candidate cores of {syn['structures']} structures, {syn['runs']} synthesis runs ({syn['synthesized']} run "
        f"now, {syn['cached']} from the cache; {syn['reused']} more cores found in the cache), covering "
        f"{syn['structures_synthesized']} of the {syn['structures']} structures; {syn['estimated']} cores from the "
        f"cost model. Its leave-one-out error on the runs: {err_text}. Scheduler: {syn['scheduler']}.", "",
        search_text(s), "",
        "![front](front.png)", "",
        _floor_text(result), "",
        "| point | val top-1 % | test top-1 % | LUT | FF | LUT+FF | DSP | BRAM | Fmax MHz | Gelem/s | est. layers | "
        + " ".join(f"`{n}`" for n in names) + " |",
        "|---" * 12 + "|",
        _row("**pick**", result["pick"], names),
        _row("all LayerNorm", result["baselines"]["all_layernorm"], names),
        _row("all DyT 8-bit", result["baselines"]["all_dyt_8bit"], names),
    ]
    lines += [_row(f"front {i}", p, names) for i, p in enumerate(result["front"])]
    lines += ["", "Fmax: the slowest core of the point; Gelem/s: elements per second at that Fmax and lane "
              "count (one beat of P lanes per cycle).", "",
              "Choices: `lutB/O` = DyT, LUT tanh, B-bit input, O-bit output (`pwl` piecewise linear), folded "
              "affine unless `ch` (channel affine); `LN` = LayerNorm core. `est. layers`: layers whose core's "
              "resources come from the cost model, not from a synthesis run.", "",
              f"Timing: conversions {result['seconds']['conversions']} s, synthesis {result['seconds']['synthesis']} s,"
              f" search {result['seconds']['search']} s.", ""]
    p = result["pick"]
    lines[2:2] = [f"The pick, measured on {p['measured_on']}: validation "
                  f"{100 * p['accuracy']:.2f} % (search: {100 * p['search_accuracy']:.2f} %), test "
                  f"{100 * p['test_accuracy']:.2f} %. Reproduce it: `{p['convert']['command']}`.", ""]
    return "\n".join(lines)
