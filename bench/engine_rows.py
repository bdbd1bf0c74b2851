"""The DyT engine rows of the hardware bench (``bench/hardware.py --engine CONVERTED_DIR``).

For a converted model's layers (the bundled ViT's 9), at each ``--lanes`` P,
on ECP5: the engine serving every layer, each layer as its own folded DyT
core, and one LayerNorm core of the widest layer's C; with
``--engine-channel CONVERTED_DIR`` (a ``hardyt convert --no-fold`` output)
also the engine for those channel affine layers and its first layer as its
own channel affine core; with ``--engine-threshold`` also the threshold
engine for the folded layers (the same layers, its RAMs holding per-stage
thresholds instead of tables). Plus each engine's throughput across layer
switches, measured in simulation (Icarus, the cocotb ``throughput`` test:
two loaded sets, tokens of both back to back, source always valid and sink
always ready). Targets (issue 18) are checked.
"""
from __future__ import annotations

from pathlib import Path

from hardyt.hw import emit
from hardyt.hw.emission.emit import load_manifest
from hardyt.hw.emission.engine_emit import emit_engine
from hardyt.hw.datapath.engine_set import relane
from hardyt.quant.contract.layernorm import random_layernorm_spec
from hardyt.flow.converted import ConvertedDir
from hardyt.quant.errors import HardytError

__all__ = ["reemit", "engine_jobs", "engine_table", "engine_targets", "engine_throughput"]

BITS = 8


def _specs(converted: Path):
    return ConvertedDir(converted).specs()


def reemit(d: Path, write) -> Path:
    """``write(d)`` (an emission, which replaces ``d`` whole); earlier synthesis reports in ``d`` are put
    back only when the files synthesis reads (the manifest's Verilog and ``.mem`` ROMs) came out
    byte-identical."""
    def synthesized():
        try:
            m = load_manifest(d)
        except HardytError:
            return None
        return {f: (d / f).read_bytes() for f in [m["verilog"], *m["mems"]]}

    before = synthesized()
    reports = {p.name: p.read_bytes() for p in d.glob("synth-*")} if before is not None else {}
    write(d)
    if reports and synthesized() == before:
        for name, data in reports.items():
            (d / name).write_bytes(data)
    return d


def engine_jobs(converted: Path, lanes: list[int], work: Path, channel: Path | None = None,
                threshold: bool = False) -> list[tuple[dict, Path]]:
    """Emit every core of the comparison; ``(job, directory)`` pairs for the synthesis pool."""
    specs = _specs(converted)
    ch_specs = _specs(channel) if channel else []
    out = []
    for p in lanes:
        sets = [("folded", specs, None), ("channel", ch_specs, None)] + ([("threshold", specs, "threshold")]
                                                                         if threshold else [])
        for kind, layers, tanh in sets:
            if not layers:
                continue
            d = reemit(work / f"engine_{kind}_p{p}", lambda d: emit_engine(layers, d, "dyt_engine", lanes=p, tanh=tanh))
            out.append(({"core": "dyt-engine", "set": kind, "layers": len(layers),
                         "channels": max(s.channels for s in layers), "lanes": p, "bits": BITS, "target": "ecp5"}, d))
        for s in specs:
            d = reemit(work / f"engine_layer_{s.name}_p{p}", lambda d: emit(relane(s, p), d, "layer"))
            out.append(({"core": "dyt-folded-layer", "layer": s.name, "channels": s.channels, "lanes": p,
                         "bits": BITS, "target": "ecp5"}, d))
        if ch_specs:
            s = ch_specs[0]
            d = reemit(work / f"engine_channel_layer_{s.name}_p{p}", lambda d: emit(relane(s, p), d, "layer"))
            out.append(({"core": "dyt-channel-layer", "layer": s.name, "channels": s.channels, "lanes": p,
                         "bits": BITS, "target": "ecp5"}, d))
        c = max(s.channels for s in specs)
        ln = random_layernorm_spec(c, p, BITS, BITS, seed=0, name="layernorm")
        d = reemit(work / f"engine_layernorm_c{c}_p{p}", lambda d: emit(ln, d, "layernorm"))
        out.append(({"core": "layernorm", "channels": c, "lanes": p, "bits": BITS, "target": "ecp5"}, d))
    return out


def engine_throughput(engine_dir: Path) -> dict:
    """The cocotb ``throughput`` test of an emitted engine on Icarus."""
    from hardyt.sim.engine_runner import run_engine_sim
    r = run_engine_sim(engine_dir, "icarus", vectors=64, testcase="test_throughput")
    t = r["tests"].get("throughput", {})
    return {"ok": r["ok"], "beats_per_cycle": t.get("beats_per_cycle"), "latency": t.get("latency"),
            "switches": t.get("switches"), "beats": t.get("beats"), "failures": r["failures"]}


def _ram_luts(r: dict) -> int:
    return 4 * r["cells"].get("TRELLIS_DPR16X4", 0)


def _row(p, name, r, ram="—", load="—") -> str:
    return (f"| {p} | {name} | {r['lut']} | {ram} | {r['ff']} | {r['dsp']} | {r['bram']} | {r['fmax_mhz']:.1f} | "
            f"{r['latency']} | {load} |")


def engine_table(rows: list[dict]) -> str:
    lines = ["| P | design | LUT | (of which LUT RAM) | FF | DSP | BRAM | Fmax (MHz) | latency | load (cycles/layer) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for p in sorted({r["lanes"] for r in rows}):
        at = [r for r in rows if r["lanes"] == p]
        cores = [r for r in at if r["core"] == "dyt-folded-layer"]
        for r in [r for r in at if r["core"] == "dyt-engine"]:
            kind = {"folded": "folded", "channel": "channel affine", "threshold": "folded, thresholds"}[r["set"]]
            lines.append(_row(p, f"DyT engine ({r['layers']} layers, {kind})", r, _ram_luts(r), r.get("load_cycles")))
        if cores:
            s = {k: sum(r[k] for r in cores) for k in ("lut", "ff", "dsp", "bram")}
            one = min(cores, key=lambda r: r["lut"] + r["ff"])
            lines.append(f"| {p} | {len(cores)} folded DyT cores (sum) | {s['lut']} | — | {s['ff']} | {s['dsp']} | "
                         f"{s['bram']} | {min(r['fmax_mhz'] for r in cores):.1f} (slowest) | {cores[0]['latency']} | — |")
            lines.append(_row(p, f"one folded core (smallest: {one['layer']})", one))
        for r in [r for r in at if r["core"] == "dyt-channel-layer"]:
            lines.append(_row(p, f"one channel affine core ({r['layer']})", r))
        for r in [r for r in at if r["core"] == "layernorm"]:
            lines.append(_row(p, f"LayerNorm core (C={r['channels']})", r))
    return "\n".join(lines) + "\n"


def engine_targets(rows: list[dict], throughput: dict) -> list[dict]:
    """Issue 18's targets, per P: PASS/MISS with the numbers that decide them."""
    out = []

    def add(name, ok, detail):
        out.append({"target": name, "result": "PASS" if ok else "MISS", "detail": detail})

    for p in sorted({r["lanes"] for r in rows}):
        at = [r for r in rows if r["lanes"] == p]
        eng = next((r for r in at if r["core"] == "dyt-engine" and r["set"] == "folded"), None)
        cores = [r for r in at if r["core"] == "dyt-folded-layer"]
        ln = next((r for r in at if r["core"] == "layernorm"), None)
        if eng is None or not cores:
            continue
        one = min(cores, key=lambda r: r["lut"] + r["ff"])
        logic = eng["lut"] - _ram_luts(eng) + eng["ff"]
        bound = 1.5 * (one["lut"] + one["ff"])
        add(f"P={p}: engine 0 DSP", eng["dsp"] == 0, f"{eng['dsp']} DSP")
        add(f"P={p}: engine LUT+FF (less its table RAM) <= 1.5x one folded core's", logic <= bound,
            f"{logic} vs 1.5 x {one['lut'] + one['ff']} = {bound:.0f}; table RAM: {eng['bram']} BRAM, "
            f"{_ram_luts(eng)} LUTs as RAM")
        if ln is not None:
            add(f"P={p}: engine Fmax >= LayerNorm core's", eng["fmax_mhz"] >= ln["fmax_mhz"],
                f"{eng['fmax_mhz']:.1f} vs {ln['fmax_mhz']:.1f} MHz")
        load = eng.get("load_cycles")
        add(f"P={p}: load time a few hundred cycles per layer", load is not None and load <= 500, f"{load} cycles")
        thr = next((r for r in at if r["core"] == "dyt-engine" and r["set"] == "threshold"), None)
        if thr is not None:
            add(f"P={p}: threshold engine 0 DSP", thr["dsp"] == 0, f"{thr['dsp']} DSP")
            add(f"P={p}: threshold engine load time a few hundred cycles per layer",
                thr.get("load_cycles") is not None and thr["load_cycles"] <= 500, f"{thr.get('load_cycles')} cycles")
        ch = next((r for r in at if r["core"] == "dyt-engine" and r["set"] == "channel"), None)
        if ch is not None:
            add(f"P={p}: channel affine engine <= 1 DSP per lane", ch["dsp"] <= p, f"{ch['dsp']} DSP")
            add(f"P={p}: channel affine engine load time a few hundred cycles per layer",
                ch.get("load_cycles") is not None and ch["load_cycles"] <= 500, f"{ch.get('load_cycles')} cycles")
    for t in throughput.values():
        add_ok = t["ok"] and t["beats_per_cycle"] == 1.0
        add(f"P={t['lanes']}: 0 bubbles at layer switches, {t['set']} set (simulated)", add_ok,
            f"{t['beats_per_cycle']} beats/cycle over {t['beats']} beats and {t['switches']} switches"
            + (f"; {t['failures']}" if t["failures"] else ""))
    return out
