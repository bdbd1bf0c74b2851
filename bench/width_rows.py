"""Input-width rows of the hardware bench (``bench/hardware.py --widths``): LUT, PWL and threshold tanh cores.

One run, same tools as the main sweep:

- ECP5 (``synth_ecp5`` + ``nextpnr-ecp5 --85k`` on the port-registering
  wrapper), C = 768, P = 4, folded affine: the ``lut``, ``pwl`` and
  ``threshold`` DyT cores at each input width (8-bit output), and the
  LayerNorm core at 8 and 16 bits (input and output that wide);
- Xilinx (``synth_xilinx -flatten -noiopad -family xcup``), the hls4ml point
  C = 8, P = 8, 16-bit input, 8-bit output: the threshold cores (folded and
  channel affine), the folded PWL core and hardyt's LayerNorm core (16-bit
  in and out). The issue's target cites an hls4ml LayerNorm figure (982 LUT,
  16 DSP) that docs/export.md found no source for: it is checked and
  reported as that, beside the like-for-like LayerNorm row.
- the folded threshold core with a radix-4 search (half the compare stages,
  three compares each; ``hardyt.hw.datapath.dyt_core.DyTCore``'s ``radix``)
  at the hls4ml point and on ECP5 at the widest input: rows named
  ``(radix 4)``, beside the default radix 2.

Targets (issue 27) are checked; a plot of LUT+FF and Fmax against input
width goes to ``hardware_width.png``.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["WIDTHS", "WIDTH_CORES", "width_jobs", "width_table", "width_targets", "width_plot"]

WIDTHS = (8, 12, 16)
WIDTH_C, WIDTH_P = 768, 4
#: The DyT cores of the width sweep (tanh kind, affine), by bench core name.
WIDTH_CORES = {"dyt-folded-lut": {"tanh": "lut", "affine": "folded"},
               "dyt-folded-pwl": {"tanh": "pwl", "affine": "folded"},
               "dyt-folded-threshold": {"tanh": "threshold", "affine": "folded"},
               "dyt-channel-threshold": {"tanh": "threshold", "affine": "channel"}}
# The LayerNorm core at the ends of the range only: at C = 768 it is the slowest run by far.
LN_WIDTHS = (8, 16)
XILINX_CORES = ("dyt-folded-threshold", "dyt-channel-threshold", "dyt-folded-pwl", "layernorm")
# Issue 27's bar: the LUT count of the former hls4ml LayerNorm figure, which had no source (docs/export.md);
# a bar for our core, not a measured hls4ml result.
HLS4ML_LUT = 982
PWL_BEFORE = "1400 LUT + 8 DSP (bench/results/hardware.md, dyt-folded-pwl 16-bit)"


def width_jobs(widths=WIDTHS, xilinx: bool = True) -> list[dict]:
    """Every core of the sweep as a ``bench/hardware.py`` job (``out_bits``: the DyT output width)."""
    jobs = [{"core": core, "channels": WIDTH_C, "lanes": WIDTH_P, "bits": b, "out_bits": 8, "target": "ecp5"}
            for core in ("dyt-folded-lut", "dyt-folded-pwl", "dyt-folded-threshold") for b in widths]
    jobs += [{"core": "layernorm", "channels": WIDTH_C, "lanes": WIDTH_P, "bits": b, "out_bits": b, "target": "ecp5"}
             for b in LN_WIDTHS]
    jobs.append({"core": "dyt-folded-threshold", "channels": WIDTH_C, "lanes": WIDTH_P, "bits": max(widths),
                 "out_bits": 8, "target": "ecp5", "radix": 4})
    if xilinx:
        jobs += [{"core": core, "channels": 8, "lanes": 8, "bits": 16, "out_bits": 16 if core == "layernorm" else 8,
                  "target": "xilinx"} for core in XILINX_CORES]
        jobs.append({"core": "dyt-folded-threshold", "channels": 8, "lanes": 8, "bits": 16, "out_bits": 8,
                     "target": "xilinx", "radix": 4})
    # The LayerNorm core and the widest configurations take longest: start them first.
    return sorted(jobs, key=lambda j: (j["core"] != "layernorm", -j["bits"]))


def width_table(rows: list[dict]) -> str:
    lines = ["| target | core | C | P | in bits | out bits | LUT | FF | LUT+FF | DSP | BRAM | carry | Fmax (MHz) | "
             "latency | (LUT+FF) / LN |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fmax = f"{r['fmax_mhz']:.1f}" if "fmax_mhz" in r else "— (not placed)"
        ratio = "—" if r.get("ratio_lut_ff") is None else f"{r['ratio_lut_ff']:.3f}"
        core = r["core"] + (f" (radix {r['radix']})" if "radix" in r else "")
        lines.append(f"| {r['target']} | {core} | {r['channels']} | {r['lanes']} | {r['bits']} | "
                     f"{r['out_bits']} | {r['lut']} | {r['ff']} | {r['lut'] + r['ff']} | {r['dsp']} | {r['bram']} | "
                     f"{r['carry']} | {fmax} | {r['latency']} | {ratio} |")
    return "\n".join(lines) + "\n"


def add_width_ratios(rows: list[dict]) -> None:
    """(LUT+FF) over the LayerNorm core's at the same target, C, P and input width."""
    ln = {(r["target"], r["channels"], r["lanes"], r["bits"]): r for r in rows if r["core"] == "layernorm"}
    for r in rows:
        base = ln.get((r["target"], r["channels"], r["lanes"], r["bits"]))
        r["ratio_lut_ff"] = (r["lut"] + r["ff"]) / (base["lut"] + base["ff"]) if base else None


def width_targets(rows: list[dict]) -> list[dict]:
    """The issue's hardware targets: ``{target, result, detail}``."""
    def row(target, core, bits, radix=2):
        return next((r for r in rows if r["target"] == target and r["core"] == core and r["bits"] == bits
                     and r.get("radix", 2) == radix), None)

    out = []

    def check(name, ok, detail):
        out.append({"target": name, "result": "not run" if ok is None else ("PASS" if ok else "MISS"),
                    "detail": detail})

    thr, pwl = row("xilinx", "dyt-folded-threshold", 16), row("xilinx", "dyt-folded-pwl", 16)
    if thr:
        bram = f", {thr['bram']} BRAM18"
        check("Xilinx C=8 P=8 16-bit: threshold core 0 DSP, LUT < 982 (the former, unsourced hls4ml LayerNorm figure)",
              thr["dsp"] == 0 and thr["lut"] < HLS4ML_LUT, f"{thr['lut']} LUT, {thr['dsp']} DSP{bram}")
        check("... and LUT < the PWL core's (this run; before: " + PWL_BEFORE + ")",
              None if pwl is None else thr["lut"] < pwl["lut"],
              "—" if pwl is None else f"threshold {thr['lut']} LUT vs pwl {pwl['lut']} LUT + {pwl['dsp']} DSP")
        ln_x = row("xilinx", "layernorm", 16)
        check("... and LUT, DSP below hardyt's LayerNorm core's (this run, same tools)",
              None if ln_x is None else thr["lut"] < ln_x["lut"] and thr["dsp"] < max(1, ln_x["dsp"]),
              "—" if ln_x is None else f"{thr['lut']} LUT, {thr['dsp']} DSP vs {ln_x['lut']} LUT, {ln_x['dsp']} DSP")
        check("stretch: threshold core <= 600 LUT", thr["lut"] <= 600, f"{thr['lut']} LUT")
        r4 = row("xilinx", "dyt-folded-threshold", 16, radix=4)
        check("stretch, radix 4: threshold core <= 600 LUT", None if r4 is None else r4["lut"] <= 600,
              "—" if r4 is None else f"{r4['lut']} LUT, {r4['ff']} FF, {r4['dsp']} DSP, {r4['bram']} BRAM18 "
                                     f"(radix 2: {thr['lut']} LUT, {thr['ff']} FF, {thr['bram']} BRAM18)")
    else:
        check("Xilinx C=8 P=8 16-bit threshold core", None, "not run")
    t16, ln16 = row("ecp5", "dyt-folded-threshold", 16), row("ecp5", "layernorm", 16)
    if t16 and ln16:
        check("ECP5 C=768 P=4 16-bit: threshold LUT+FF <= 1/4 of LayerNorm's", t16["ratio_lut_ff"] <= 0.25,
              f"{t16['lut'] + t16['ff']} vs {ln16['lut'] + ln16['ff']}: {t16['ratio_lut_ff']:.3f}")
        check("ECP5 C=768 P=4 16-bit: threshold Fmax >= LayerNorm's (placed)", t16["fmax_mhz"] >= ln16["fmax_mhz"],
              f"{t16['fmax_mhz']:.1f} vs {ln16['fmax_mhz']:.1f} MHz")
    else:
        check("ECP5 C=768 P=4 16-bit threshold vs LayerNorm", None, "not run")
    return out


def width_plot(rows: list[dict], path: Path) -> None:
    from hardyt.scripts.plots import save_figure, subplots
    ecp5 = [r for r in rows if r["target"] == "ecp5"]
    fig, (ax1, ax2) = subplots(2, 1, figsize=(7, 7), sharex=True)
    for core in ("dyt-folded-lut", "dyt-folded-pwl", "dyt-folded-threshold", "layernorm"):
        rs = sorted((r for r in ecp5 if r["core"] == core and "radix" not in r), key=lambda r: r["bits"])
        if rs:
            ax1.plot([r["bits"] for r in rs], [r["lut"] + r["ff"] for r in rs], "o-", label=core)
            ax2.plot([r["bits"] for r in rs], [r["fmax_mhz"] for r in rs], "o-", label=core)
    ax1.set_yscale("log")
    ax1.set_ylabel("LUT + FF (ECP5)")
    ax1.set_title(f"C = {WIDTH_C}, P = {WIDTH_P}: DyT (8-bit output) by tanh kind vs LayerNorm")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("placed Fmax (MHz)")
    ax2.set_xlabel("input width (bits)")
    save_figure(fig, path)


def width_main(args, command: str, prepare, run_job) -> int:
    """``bench/hardware.py --widths``: emit, synthesize on Dask, write ``hardware_width.{json,md,png}``."""
    import os
    import tempfile
    import time

    from hardyt.hw.sweep import dask_client, failure_error, run_jobs
    from hardyt.quant.files import atomic_write_text, save_json_atomic

    t0, load = time.perf_counter(), os.getloadavg()
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="hardyt-bench-width-")
    work = args.work or Path(tmp.name)
    jobs = width_jobs(tuple(args.width_bits or WIDTHS), xilinx=not args.no_xilinx)
    dirs = [prepare(j, work) for j in jobs]
    missing = []
    if args.report_only:   # an interrupted run: keep the jobs whose report is in --work, name the others
        have = [(d / f"synth-{j['target']}.json").is_file() for j, d in zip(jobs, dirs)]
        missing = [j for j, h in zip(jobs, have) if not h]
        jobs, dirs = [j for j, h in zip(jobs, have) if h], [d for d, h in zip(dirs, have) if h]
    with dask_client(args.scheduler, max(1, args.jobs)) as client:
        results, failures = run_jobs(client, {str(d): (run_job, (j, d, args.seed)) for j, d in zip(jobs, dirs)},
                                     desc="synth")
    if failures:
        raise failure_error(failures, len(jobs), "synthesis job")
    rows = [results[str(d)] for d in dirs]
    if tmp:
        tmp.cleanup()
    failed = [r for r in rows if "error" in r]
    rows = sorted((r for r in rows if "error" not in r), key=lambda r: (r["target"], r["core"], r["bits"]))
    add_width_ratios(rows)
    targets = width_targets(rows)
    wall, load_end = time.perf_counter() - t0, os.getloadavg()
    reused = sum(r["reused"] for r in rows)
    text = ["# DyT by tanh kind and input width vs LayerNorm", "", f"Command: `{command}`", "",
            f"{len(rows)} tool runs" + (f" ({reused} reused from --work: reports of byte-identical emitted files, "
                                        "synthesized by an earlier run of this command)" if reused else "")
            + f", {wall:.0f} s wall with {args.jobs} job(s), under `nice -n {os.nice(0)}` on a shared "
            f"2-core machine: load average {load[0]:.1f} at the start, {load_end[0]:.1f} at the end (tool "
            "times are not comparable across rows; resources and Fmax do not depend on load).", "",
            "ECP5: Yosys synth_ecp5, nextpnr-ecp5 --85k --package CABGA381 --seed "
            f"{args.seed}, Fmax of aclk on the port-registering wrapper; LUT = LUT4 + 2 per CCU2C + 4 per "
            "TRELLIS_DPR16X4, BRAM = DP16KD. Xilinx: synth_xilinx -flatten -noiopad -family xcup (not placed), "
            "BRAM in RAMB18 units. DyT cores: folded affine unless named channel, alpha = 2 / 2**(in_bits-1), "
            "8-bit output; LayerNorm cores: output as wide as the input. Threshold stages of 16 words or more "
            "are ROMs in block RAM (hardyt.hw.dyt_core.THRESHOLD_BLOCK_MIN_WORDS).", "", width_table(rows)]
    text += [f"- failed: {r['core']} {r['target']} {r['bits']}-bit: {r['error']}" for r in failed]
    text += [f"- not run (the run was interrupted; --report-only): {j['core']}"
             + (f" radix {j['radix']}" if "radix" in j else "") + f" {j['target']} C={j['channels']} "
             f"P={j['lanes']} {j['bits']}-bit" for j in missing]
    text += ["", "## Targets", "", "| target | result | numbers |", "|---|---|---|"]
    text += [f"| {t['target']} | {t['result']} | {t['detail']} |" for t in targets]
    md = "\n".join(text) + "\n"
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    save_json_atomic(args.out / "hardware_width.json", {"command": command, "rows": rows, "failed": failed,
                                                        "targets": targets, "wall_s": round(wall, 1),
                                                        "missing": missing,
                                                        "load_start": load, "load_end": load_end})
    atomic_write_text(args.out / "hardware_width.md", md)
    width_plot(rows, args.out / "hardware_width.png")
    return 0
