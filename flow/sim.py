"""The simulate step: emitted cores → bit-exact results against the golden model (one Dask job per core).

Activations (the inputs a LayerNorm saw in the model) are used when given,
or when a core's directory or the root holds ``<layer>.inputs.npz`` as the
convert step writes it; a converted directory given as ``activations``
supplies each layer's file. A DyT engine runs the model's layers in order,
each with its activations when found.
"""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.contract.names import layer_file
from hardyt.quant.errors import HardytError

from .emitted import CoreResults, core_dirs
from .options import SimConfig

__all__ = ["SimResults", "simulate", "simulate_core", "report_lines", "VECTORS"]

VECTORS = {"cocotb": 1000, "bulk": 100_000}  # default --vectors per mode


class SimResults(CoreResults):
    """Per core directory: the runner's result dict (``ok``, ``elements``, ``mismatches``, ...), or an error."""


def activations_for(core: Path, root: Path, given: Path | None, name: str) -> Path | None:
    """The ``.inputs.npz`` of layer ``name``: ``given`` if a file, else in ``given`` (a directory) or near the core."""
    if given is not None and given.is_file():
        return given
    places = [given] if given is not None else [core, root]
    found = [p for d in places for p in sorted({d / f"{name}.inputs.npz", layer_file(d, name, ".inputs.npz")})
             if p.is_file()]
    return found[0] if found else None


def _run_engine(core: Path, root: Path, given: Path | None, manifest: dict, config: SimConfig, vectors: int):
    from hardyt.sim.engine_runner import run_engine_sim

    if config.mode != "cocotb":
        raise HardytError(f"{core}: a DyT engine is simulated in cocotb mode only (--mode bulk is for cores)")
    if given is not None and given.is_file():
        raise HardytError(f"--activations {given}: an engine runs every layer; give the converted directory")
    found = {layer["name"]: activations_for(core, root, given, layer["name"]) for layer in manifest["layers"]}
    return run_engine_sim(core, simulator=config.simulator, vectors=vectors, seed=config.seed,
                          activations={n: p for n, p in found.items() if p is not None}, waves=config.waves)


def simulate_core(core: Path, root: Path, given: Path | None, config: SimConfig, vectors: int) -> dict:
    """Simulate one emitted core or engine (a Dask job of its own when there are several)."""
    from hardyt.hw.emission.emit import load_manifest
    from hardyt.sim.engine_runner import is_engine
    from hardyt.sim.runner import run_sim

    manifest = load_manifest(core)
    if is_engine(manifest):
        return _run_engine(core, root, given, manifest, config, vectors)
    npz = activations_for(core, root, given, manifest["spec"]["name"])
    return run_sim(core, simulator=config.simulator, vectors=vectors, waves=config.waves, mode=config.mode,
                   seed=config.seed, activations=npz)


def simulate_exhaustive(root: Path, config: SimConfig) -> SimResults:
    """``exhaustive``: every code on every channel of each DyT core, the parts spread over the Dask workers."""
    from hardyt.hw.tools.sweep import dask_client
    from hardyt.sim.exhaustive import run_exhaustive

    out = SimResults(root)
    with dask_client(config.scheduler, config.workers) as client:
        for core in core_dirs(root):
            try:
                out.results[str(core)] = run_exhaustive(core, client=client, workers=config.workers,
                                                        seed=config.seed)
            except HardytError as e:
                out.errors[str(core)] = str(e)
    return out


def simulate(root, config: SimConfig) -> SimResults:
    """Simulate every core under ``root`` (one core, an engine, or one directory per layer)."""
    from hardyt.hw.tools.sweep import dask_client, run_jobs

    if config.exhaustive:
        return simulate_exhaustive(Path(root), config)
    if config.vectors is not None and config.vectors < 1:
        raise HardytError(f"--vectors: must be a positive integer, got {config.vectors}")
    root = Path(root)
    cores = core_dirs(root)
    given = Path(config.activations) if config.activations else None
    if given is not None and not given.exists():
        raise HardytError(f"--activations: {given}: no such file or directory")
    if given is not None and given.is_file() and len(cores) > 1:
        raise HardytError(f"--activations {given}: one file for {len(cores)} layers; give the converted directory")
    vectors = config.vectors or VECTORS[config.mode]
    if len(cores) == 1:
        return SimResults(root, {str(cores[0]): simulate_core(cores[0], root, given, config, vectors)})
    jobs = {str(core): (simulate_core, (core, root, given, config, vectors)) for core in cores}
    with dask_client(config.scheduler, config.workers) as client:
        results, errors = run_jobs(client, jobs, desc="sim")
    return SimResults(root, {str(c): results[str(c)] for c in cores if str(c) in results},
                      {str(c): errors[str(c)] for c in cores if str(c) in errors})


def _fmt_rate(r: dict) -> str:
    bpc, lat = r["beats_per_cycle"], r["latency"]
    rate = "not measured" if bpc is None else f"{bpc:.3f} beats/cycle (sink always ready)"
    latency = "not measured" if lat is None else f"{lat} cycles"
    return f"throughput {rate}, latency {latency} (manifest {r['manifest_latency']})"


def report_lines(name: str, r: dict, limit: int = 10) -> list[str]:
    """What ``hardyt sim`` prints for one core."""
    verdict = "PASS" if r["ok"] else "FAIL"
    if "space" in r:   # the exhaustive sweep
        return [f"{name}: {verdict} (verilator, exhaustive): {r['elements']:,} of {r['space']:,} inputs checked "
                f"(every code on every channel), {r['mismatches']} mismatches, {r['parts']} parts, {r['seconds']} s",
                *[f"  failed: {f}" for f in r["failures"][:limit]], *[f"  mismatch: {m}" for m in r["report"][:limit]]]
    lines = [f"{name}: {verdict} ({r['simulator']}, {r['mode']}): {r['elements']} elements checked, "
             f"{r['mismatches']} mismatches, {r['cycles']} cycles; {_fmt_rate(r)}"]
    tests = ", ".join(f"{t} {v.get('elements', 0)}" for t, v in r["tests"].items() if v.get("elements"))
    if tests:
        lines.append(f"  elements per test: {tests}")
    if r.get("layers"):
        real = r.get("activations", {})
        lines.append(f"  layers in order: {', '.join(r['layers'])}; real activations for {len(real)} of "
                     f"{len(r['layers'])}")
        lines += [f"  layer {n}: {v['elements']} elements, {v['mismatches']} mismatches"
                  for n, v in r.get("per_layer", {}).items()]
    lines += [f"  skipped: {s}" for s in r.get("skipped", [])]
    lines += [f"  failed: {f}" for f in r["failures"][:limit]]
    lines += [f"  mismatch: {m}" for m in r["report"][:limit]]
    if r.get("waves"):
        lines.append(f"  waves: {', '.join(r['waves'])}")
    if r.get("run_dir"):
        lines.append(f"  logs: {r['run_dir']}")
    return lines
