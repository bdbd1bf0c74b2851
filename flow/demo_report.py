"""The demo's ``report.md`` and its plots, from the results of each stage."""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.files import save_json_atomic
from hardyt.quant.contract.spec_io import load_spec
from hardyt.quant.contract.tanh import error_report

from .plots import plot_resources, plot_tanh

RESOURCES = ("lut", "ff", "dsp", "bram")


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def _accuracy(acc: dict) -> list[str]:
    ln = acc.get("ln_float")
    rows = ["| model | top-1 (Fashion-MNIST test) | vs LayerNorm |", "|---|---|---|"]
    for key, label in (("ln_float", "LayerNorm, float"), ("dyt_float", "DyT, float"),
                       ("dyt_fixed", "DyT, fixed point (the hardware's arithmetic)")):
        v = acc.get(key)
        delta = "" if key == "ln_float" or v is None or ln is None else f"{100 * (v - ln):+.2f} pt"
        rows.append(f"| {label} | {_pct(v)} | {delta} |")
    return rows


def _rate(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def _layers(layer_dirs, sims: dict, manifests: dict) -> list[str]:
    rows = ["| layer | C | P | in/out bits | tanh | affine | latency (manifest / measured) | elements checked "
            "| mismatches | beats/cycle | result |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in layer_dirs:
        m, r = manifests[d.name], sims[d.name]
        spec = m["spec"]
        rows.append(f"| {d.name} | {m['channels']} | {m['lanes']} | {m['in_bits']}/{m['out_bits']} "
                    f"| {spec['tanh']['kind']} | {spec['affine']['mode']} | {m['latency']} / {r['latency']} "
                    f"| {r['elements']:,} | {r['mismatches']} | {_rate(r['beats_per_cycle'])} "
                    f"| {'PASS' if r['ok'] else 'FAIL'} |")
    return rows


def _resources(synth: dict, manifests: dict) -> list[str]:
    dyt, ln = synth["dyt"], synth["layernorm"]
    rows = ["| core (ECP5) | LUT | FF | DSP | BRAM | Fmax (MHz) | latency (cycles) |",
            "|---|---|---|---|---|---|---|"]
    for label, r, lat in (("DyT", dyt, manifests["dyt"]["latency"]),
                          ("LayerNorm", ln, manifests["layernorm"]["latency"])):
        rows.append(f"| {label} | {r['lut']} | {r['ff']} | {r['dsp']} | {r['bram']} "
                    f"| {r['fmax_mhz']:.1f} | {lat} |")
    ratio = (dyt["lut"] + dyt["ff"]) / max(1, ln["lut"] + ln["ff"])
    rows.append("")
    rows.append(f"DyT LUT+FF = {100 * ratio:.1f} % of the LayerNorm core's at the same C and P.")
    return rows


def _rom_shape(manifest: dict, rom: str) -> str:
    """``"tanh ROM: 256 words x 8 bits"`` from an emitted core's manifest (one copy per lane pair)."""
    (entry,) = {(r["depth"], r["width"]) for r in manifest["roms"].values() if r["rom"] == rom}
    return f"{rom} ROM: {entry[0]} words × {entry[1]} bits, one per lane pair"


def _budget(report: dict) -> str:
    """The conversion budget this demo used (it may be smaller than the benchmark's)."""
    w = report.get("weights", {})
    run = report.get("teacher", {}).get("phases") or []   # the steps each phase ran (the option may be None)
    steps = sum(p.get("steps") or 0 for p in run) if run else report["options"]["steps"]
    return (f"Conversion budget: {report['calib_samples']} unlabeled calibration images, "
            f"{steps} reconstruction steps, weights besides DyT's: {w.get('adapted', '?')}"
            f" (lr {w.get('lr', 0):g}), {report['convert_seconds']:.0f} s on {report.get('device', 'cpu')}.")


def render_report(out: Path, convert_report: dict, layer_dirs, sims: dict, synth, times: dict) -> str:
    """Write the plots into ``out`` and return the markdown text of the report."""
    from hardyt.hw.emission.emit import load_manifest
    manifests = {d.name: load_manifest(d) for d in layer_dirs}
    lines = ["# hardyt demo: the bundled ViT, LayerNorm → DyT, on an FPGA", ""]

    lines += ["## Accuracy", ""] + _accuracy(convert_report["accuracy"]) + ["", _budget(convert_report), ""]
    alpha_png = next(iter(sorted((out / "convert").glob("*.png"))), None)
    if alpha_png:
        lines += [f"![per-layer alpha]({alpha_png.relative_to(out)})", ""]

    spec = load_spec(layer_dirs[0] / f"{manifests[layer_dirs[0].name]['name']}.spec.json")
    t = spec.tanh
    rep = error_report(t)
    plot_tanh(t, out / "tanh_error.png")
    lines += ["## tanh", "",
              f"Layer `{layer_dirs[0].name}`: {t.kind}, {t.in_bits}-bit in, {t.out_bits}-bit out: "
              f"worst error {rep.worst_ulp:.3f} ULP, mean {rep.mean_ulp:.3f} ULP over every input code, "
              f"{rep.rom_bits} table bits; in the core, {_rom_shape(manifests[layer_dirs[0].name], 'tanh')}.",
              "", "![tanh error](tanh_error.png)", ""]

    lines += ["## Bit-exact simulation (every layer)", ""] + _layers(layer_dirs, sims, manifests) + [""]
    total = sum(r["elements"] for r in sims.values())
    bad = sum(r["mismatches"] for r in sims.values())
    lines += [f"{total:,} output elements compared as integers with the golden model: {bad} mismatches.", ""]

    if synth:
        ln_manifest = load_manifest(out / "rtl_layernorm")
        m = {"dyt": manifests[layer_dirs[0].name], "layernorm": ln_manifest}
        plot_resources({"DyT": synth["dyt"], "LayerNorm": synth["layernorm"]}, out / "resources.png",
                       title=f"ECP5, C = {ln_manifest['channels']}, P = {ln_manifest['lanes']}")
        lines += ["## Hardware (Yosys synth_ecp5, nextpnr-ecp5 --85k)", ""] + _resources(synth, m)
        lines += ["", "![resources](resources.png)", ""]
        save_json_atomic(out / "synth.json", synth)

    lines += ["## Time", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in times.items()] + [""]
    return "\n".join(lines)
