"""``report.md`` and ``alpha.png`` of a converted directory, rendered from its :class:`ConvertReport`."""
from __future__ import annotations

import numpy as np

from .convert_record import ConvertReport
from .model_source import describe_dict
from .plots import save_figure, subplots

__all__ = ["render_markdown", "fidelity_summary", "teacher_summary", "plot_alpha"]


def _report(report) -> ConvertReport:
    return report if isinstance(report, ConvertReport) else ConvertReport.from_dict(report)


def _pct(v) -> str:
    return f"{100 * v:.2f} %"


def fidelity_summary(report, *, warnings: bool = False) -> str:
    """The lines on fixed point vs float: worst layer SQNR, agreement (and every warning)."""
    report = _report(report)
    fid = report.fidelity
    worst = min(report.layers, key=lambda r: r.sqnr_db, default=None)
    top1 = "" if fid["top1_agreement"] is None else f", top-1 agreement {100 * fid['top1_agreement']:.2f} %"
    lines = [f"fixed vs float DyT: lowest layer SQNR {worst.sqnr_db:.1f} dB ({worst.name}, floor "
             f"{fid['sqnr_floor_db']:g} dB), output cosine {fid['cosine']:.5f}{top1}" if worst else
             "fixed vs float DyT: no DyT layer"]
    return "\n".join(lines + ([f"warning: {w}" for w in report.warnings] if warnings else []))


def teacher_summary(report) -> str:
    """The held-out check against the LayerNorm model, the weights kept and why the steps stopped."""
    from hardyt.quant.conversion.referee import referee_summary
    return referee_summary({"teacher": _report(report).teacher})


def _teacher(r: ConvertReport) -> list[str]:
    layers = (r.teacher or {}).get("layers") or []
    lines = ["", "## Against the LayerNorm model (held-out check)", "", "```", teacher_summary(r), "```"]
    if layers:
        lines += ["", "| layer | cosine to its LayerNorm's output (returned model) | float DyT |", "|---|---|---|"]
        lines += [f"| {la['name']} | {la['cosine']:.4f} | {la['cosine_float']:.4f} |" for la in layers]
    return lines


def plot_alpha(report, path) -> None:
    """Per-layer alpha (bars; blue folded, orange channel affine) and input clip (dots)."""
    layers = _report(report).layers
    fig, ax = subplots(figsize=(max(6, 0.45 * len(layers) + 2), 3.8))
    xs = np.arange(len(layers))
    ax.bar(xs, [layer.alpha for layer in layers], color=["C0" if layer.folded else "C1" for layer in layers])
    ax.set_yscale("log")
    ax.set_ylabel("alpha")
    ax.set_xticks(xs, [layer.name for layer in layers], rotation=60, ha="right", fontsize=8)
    ax2 = ax.twinx()
    ax2.plot(xs, [layer.clip for layer in layers], "k.", label="input clip")
    ax2.set_ylabel("input clip (real units)")
    ax.set_title("per-layer alpha (blue: gamma/beta folded, orange: channel affine) and input clip")
    save_figure(fig, path)


def _weights_line(report: ConvertReport) -> str:
    w = report.weights
    where = f"Calibrated on {report.device}, {report.world_size} process(es)."
    why = f" Kept {w['kept']}: {w['reason']}." if w.get("reason") else ""
    if w["adapted"] in ("frozen", "none"):
        return f"Weights besides DyT's: kept as trained ({w['adapted']}).{why} {where}"
    top = sorted(w["relative_change"].items(), key=lambda kv: -kv[1])[:3]
    return (f"Weights besides DyT's: {w['tensors']} tensors adapted ({w['adapted']}, lr {w['lr']:g}); largest "
            "relative changes ||W - W0|| / ||W0||: " + ", ".join(f"`{n}` {c:.3g}" for n, c in top)
            + f" (every tensor in report.json).{why} {where}")


def _header(r: ConvertReport) -> list[str]:
    f = r.formats
    return ["# hardyt convert", "",
            f"Checkpoint `{r.checkpoint}`, data `{r.data}` ({r.test_samples} test images), "
            f"{r.calib_samples} calibration images (labels unused), method `{r.method}`, "
            f"{f['in_bits']}-bit input, {f['tanh']} tanh ({f['out_bits']}-bit out). Conversion "
            f"{r.convert_seconds:.0f} s, total {r.total_seconds:.0f} s.", "",
            f"Preprocessing: {describe_dict(r.preprocessing)}.", ""]


def _accuracy(r: ConvertReport) -> list[str]:
    acc, lines = r.accuracy, ["| model | top-1 | vs LayerNorm |", "|---|---|---|"]
    for key, label in (("ln_float", "LayerNorm, float"), ("dyt_float", "DyT, float"),
                       ("dyt_fixed", "DyT, fixed point (hardware arithmetic)")):
        delta = "" if key == "ln_float" else f"{100 * (acc[key] - acc['ln_float']):+.2f} pt"
        lines.append(f"| {label} | {_pct(acc[key])} | {delta} |")
    check = r.accuracy_check
    if check:
        lines += ["", f"The checkpoint records {_pct(check['expected'])} ({check['source']}); measured LayerNorm "
                      f"{_pct(check['measured'])}: {check['gap_pt']:+.2f} pt."]
    return lines + [line for w in r.warnings for line in ("", f"**Warning:** {w}")]


def _layers(r: ConvertReport) -> list[str]:
    lines = ["| layer | C | alpha | shifts | in_scale | clip | alpha·clip | fit error | SQNR dB | min in/out bits "
             "| affine | folded into |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for la in r.layers:
        shifts = "–" if la.alpha_shift is None else f"0..{max(la.alpha_shift)}"
        lines.append(f"| {la.name} | {la.channels} | {la.alpha:.4g} | {shifts} | {la.in_scale:.4g} | {la.clip:.3g} "
                     f"| {la.alpha_clip:.3g} | {la.fit_error:.3g} | {la.sqnr_db:.1f} "
                     f"| {la.min_in_bits or '>16'}/{la.min_out_bits or '>16'} "
                     f"| {la.spec['affine']['mode']} | {', '.join(la.folded_into) or '–'} |")
    return lines


def _partial(part: dict) -> list[str]:
    dec = part.get("decided_on") or {}
    lines = ["", f"## Partial replacement (--max-drop {part['max_drop']} pt)", "",
             f"Decided on the {dec.get('split')} ({dec.get('samples')} images, {dec.get('metric')}); the test "
             "images above are reported only.", "",
             "| converted (cheapest first) | layer added | cost (KL, alone) | top-1 |", "|---|---|---|---|",
             f"| 0 | – | – | {_pct(part['curve'][0])} |"]
    for k, name in enumerate(part["order"], 1):
        lines.append(f"| {k} | {name} | {part['costs'][name]:.4f} | {_pct(part['curve'][k])} |")
    if any(t["accuracy"] is not None for t in part.get("tried", [])):
        lines += ["", "Full conversions tried (weights adapt; the curve above is on the trained weights):", "",
                  "| converted | top-1 |", "|---|---|"]
        lines += [f"| {t['converted']} | {_pct(t['accuracy'])} |" for t in part["tried"]]
    return lines


def render_markdown(report) -> str:
    """``report.md`` of a conversion."""
    r = _report(report)
    lines = _header(r) + _accuracy(r)
    lines += ["", _weights_line(r), "", "![per-layer alpha](alpha.png)", ""] + _layers(r)
    lines += _teacher(r)
    lines += ["", "## Fixed point vs float DyT", "", "![per-layer SQNR](sqnr.png)", "",
              "```", fidelity_summary(r), "```"]
    if r.kept_layernorms:
        lines += ["", "LayerNorms kept (served by the LayerNorm core): " + ", ".join(f"`{n}`" for n in r.kept_layernorms)]
    return "\n".join(lines + (_partial(r.partial) if r.partial else [])) + "\n"
