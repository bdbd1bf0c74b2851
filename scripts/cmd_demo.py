"""``hardyt demo``: the whole flow on the bundled ViT, ending in one report.

convert (LN → DyT, calibrated, 8-bit) → emit RTL for every layer → bit-exact
simulation of every layer (Icarus, the layer's real activations plus every
input code) → synthesis of one DyT core and the LayerNorm core of the same
width → ``OUT/report.md`` with plots.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_write_text, prepare_out_dir

from . import cmd_convert, cmd_rtl
from .demo_report import render_report
from .emitted import layer_dirs


def add_parser(sub):
    p = sub.add_parser("demo", help="the whole flow on the bundled ViT: convert, RTL, bit-exact sim, synth, report",
                       description="Convert the bundled ViT, emit Verilog for every DyT layer, simulate each "
                                   "bit-exact on Icarus, synthesize one DyT core and the LayerNorm core, "
                                   "and write OUT/report.md.")
    p.add_argument("--out", default="out/demo", help="output directory (default: out/demo)")
    p.add_argument("--calib-size", type=int, default=1024, help="calibration images (default: 1024, as hardyt convert)")
    p.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    p.add_argument("--vectors", type=int, default=256, help="random beats per layer on top of the real "
                   "activations and the exhaustive sweep (default: 256)")
    p.add_argument("--no-synth", action="store_true", help="skip synthesis and place-and-route")
    p.set_defaults(func=run)


def _cli(module, argv: list[str]) -> int:
    """Run subcommand ``module`` in-process, exactly as the user would type ``hardyt ARGV``."""
    parser = argparse.ArgumentParser(prog="hardyt")
    module.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def run(args) -> int:
    from hardyt.hw.emit import load_manifest
    from hardyt.hw.synth import synth
    from hardyt.quant.contract.layernorm import random_layernorm_spec
    from hardyt.sim.runner import run_sim

    out = prepare_out_dir(args.out)
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    print("[1/4] convert the bundled ViT: LayerNorm → DyT, calibrate, 8-bit fixed point", flush=True)
    _cli(cmd_convert, ["convert", "--out", str(out / "convert"), "--calib-size", str(args.calib_size)])
    convert_report = json.loads((out / "convert" / "report.json").read_text())
    times["convert"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print("[2/4] emit Verilog for every DyT layer", flush=True)
    shutil.rmtree(out / "rtl", ignore_errors=True)
    _cli(cmd_rtl, ["rtl", str(out / "convert"), "--layers", "all", "--out", str(out / "rtl")])
    layers = layer_dirs(out / "rtl")
    if not layers:
        raise HardytError(f"{out / 'rtl'}: no layer was emitted")
    first = load_manifest(layers[0])
    ln_dir = out / "rtl_layernorm"
    ln_spec = random_layernorm_spec(first["channels"], first["lanes"], first["in_bits"], first["out_bits"], seed=0)
    from hardyt.hw.emit import emit
    emit(ln_spec, ln_dir, name="layernorm")
    times["rtl"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    print(f"[3/4] bit-exact simulation of {len(layers)} layers on {args.simulator}"
          + ("" if args.no_synth else ", synthesis in parallel"), flush=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        synth_job = None if args.no_synth else pool.submit(_synth_pair, layers[0], ln_dir, synth)
        sims = {}
        for d in tqdm(layers, desc="simulate", unit="layer"):
            npz = out / "convert" / f"{d.name}.inputs.npz"
            sims[d.name] = run_sim(d, simulator=args.simulator, vectors=args.vectors,
                                   activations=npz if npz.exists() else None)
        times["sim"] = time.perf_counter() - t0
        synth_results = synth_job.result() if synth_job else None
    times["synth"] = time.perf_counter() - t0

    print("[4/4] write the report", flush=True)
    text = render_report(out, convert_report, layers, sims, synth_results, times)
    atomic_write_text(out / "report.md", text)
    print(text)
    bad = [name for name, r in sims.items() if not r["ok"] or not r["elements"]]
    if bad:
        raise HardytError(f"bit-exact check failed on layer(s): {', '.join(bad)} (see {out / 'report.md'})")
    return 0


def _synth_pair(dyt_dir: Path, ln_dir: Path, synth) -> dict:
    return {"dyt": synth(dyt_dir, target="ecp5", progress=False),
            "layernorm": synth(ln_dir, target="ecp5", progress=False)}
