"""``hardyt demo`` as a sequence of flow steps: the whole flow on the bundled ViT, ending in one report.

convert (LN → DyT, calibrated, 8-bit) → emit a core per layer → bit-exact
simulation of every layer (the layer's real activations plus every input
code) → synthesis of one DyT core and the LayerNorm core of the same width
(in parallel with the simulations) → ``OUT/report.md`` with plots.
"""
from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_write_text, prepare_out_dir
from hardyt.quant.progress import progress

from .convert import ConvertResult, convert_model
from .demo_report import render_report
from .emit import EmittedCores, emit_cores, emit_spec
from .manifest import summary
from .options import ConvertConfig, DemoConfig, EmitConfig, ModelSource

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    """Every stage's output and the report's text (``failed``: layers not bit-exact)."""

    out: Path
    convert: ConvertResult
    cores: EmittedCores
    sims: dict
    synth: dict | None
    seconds: dict
    report: str

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.sims.items() if not r["ok"] or not r["elements"]]


def _synth_pair(dyt_dir: Path, ln_dir: Path) -> dict:
    from hardyt.hw.tools.synth import synth
    return {"dyt": synth(dyt_dir, target="ecp5", progress=False),
            "layernorm": synth(ln_dir, target="ecp5", progress=False)}


def _emit(out: Path, converted) -> tuple[EmittedCores, Path]:
    from hardyt.quant.contract.layernorm import random_layernorm_spec

    shutil.rmtree(out / "rtl", ignore_errors=True)
    cores = emit_cores(converted, EmitConfig(out=str(out / "rtl")))
    if not cores.manifests:
        raise HardytError(f"{out / 'rtl'}: no layer was emitted")
    first = cores.manifests[0]
    ln_spec = random_layernorm_spec(first.channels, first.lanes, first.in_bits, first.out_bits, seed=0)
    ln_dir = out / "rtl_layernorm"
    emit_spec(ln_spec, ln_dir, name="layernorm")
    return cores, ln_dir


def _simulate(cores: EmittedCores, converted, config: DemoConfig, ln_dir: Path, times: dict, t0: float):
    from hardyt.sim.runner import run_sim

    dirs = sorted(cores.dirs, key=lambda d: d.name)
    with ThreadPoolExecutor(max_workers=1) as pool:
        synth_job = pool.submit(_synth_pair, dirs[0], ln_dir) if config.synth else None
        sims = {}
        for d in progress(dirs, desc="simulate", unit="layer"):
            sims[d.name] = run_sim(d, simulator=config.simulator, vectors=config.vectors,
                                   activations=converted.inputs(d.name))
        times["sim"] = time.perf_counter() - t0
        synth_results = synth_job.result() if synth_job else None
    times["synth"] = time.perf_counter() - t0
    return dirs, sims, synth_results


def run_demo(config: DemoConfig, log=print) -> DemoResult:
    """Run the demo into ``config.out``; ``log`` gets each stage's heading and the convert step's summary."""
    out = prepare_out_dir(config.out)
    times: dict[str, float] = {}

    t0 = time.perf_counter()
    log("[1/4] convert the bundled ViT: LayerNorm → DyT, calibrate, 8-bit fixed point")
    source = ModelSource(calib_size=config.calib_size, seed=config.seed)
    converted = convert_model(ConvertConfig(source=source, out=str(out / "convert"), command=config.command), log=log)
    log(converted.summary())
    times["convert"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("[2/4] emit Verilog for every DyT layer")
    cores, ln_dir = _emit(out, converted.directory)
    for m in cores.manifests:
        log(summary(m))
    times["rtl"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"[3/4] bit-exact simulation of {len(cores.manifests)} layers on {config.simulator}"
        + (", synthesis in parallel" if config.synth else ""))
    dirs, sims, synth_results = _simulate(cores, converted.directory, config, ln_dir, times, t0)

    log("[4/4] write the report")
    text = render_report(out, converted.report.to_dict(), dirs, sims, synth_results, times)
    atomic_write_text(out / "report.md", text)
    return DemoResult(out, converted, cores, sims, synth_results, times, text)
