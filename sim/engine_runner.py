"""Run the cocotb tests of an emitted DyT engine (``hardyt sim DIR`` on a ``hardyt rtl --engine`` output).

As for a core (:mod:`hardyt.sim.runner`): the Verilog is compiled from a
content-keyed copy, the run has a fresh directory and a process of its own,
and nothing is written into the emitted directory. The coefficient images are
read from the emitted directory as they are, so a corrupted image is sent to
the engine as it is, and the run fails naming the layer.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hardyt.hw.emission.engine_emit import ENGINE_CORE
from hardyt.hw.emission.emit import load_manifest
from hardyt.quant.errors import HardytError
from hardyt.quant.files import save_json_atomic

from .buildcache import build_root, source_copy
from .runner import _check_args, _collect, _launch, _simulator_env, _test_env, check_activations, \
    default_cache

__all__ = ["run_engine_sim", "engine_plan", "is_engine"]


def is_engine(manifest: dict) -> bool:
    return manifest.get("core") == ENGINE_CORE


def engine_plan(manifest: dict, activations: dict | None = None) -> list[dict]:
    """The layers in order, each with its spec, image and activations file (or ``None``); checked."""
    from hardyt.quant.contract.spec_io import load_spec

    d = Path(manifest["dir"])
    plan = []
    for layer in manifest["layers"]:
        image = d / layer["image"]
        if not image.is_file():
            raise HardytError(f"{d}: layer {layer['name']}: coefficient image {layer['image']} is missing")
        spec = load_spec(d / layer["spec_file"])
        npz = (activations or {}).get(layer["name"])
        if npz is not None:
            check_activations(npz, spec)
        plan.append({"index": layer["index"], "name": layer["name"], "spec": spec.to_dict(), "image": str(image),
                     "npz": None if npz is None else str(Path(npz).resolve())})
    return plan


def run_engine_sim(directory, simulator: str = "icarus", vectors: int = 256, seed: int = 1,
                   activations: dict | None = None, cache=None, testcase=None, waves: bool = False,
                   quiet: bool = True) -> dict:
    """Simulate an engine directory: the keys of :func:`hardyt.sim.runner.run_sim`.

    ``activations`` maps layer names to ``<layer>.inputs.npz`` files: each
    layer then streams its first ``vectors`` elements of real inputs
    (random codes otherwise).
    """
    _check_args(simulator, "cocotb", vectors, seed)
    manifest = load_manifest(directory)
    if not is_engine(manifest):
        raise HardytError(f"{directory}: not a DyT engine (core {manifest['core']!r}); use hardyt.sim.run_sim")
    plan = engine_plan(manifest, activations)
    cache = Path(cache) if cache else default_cache()
    src, digest = source_copy(manifest, cache)
    env = _simulator_env(simulator, cache)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{simulator}-engine-", dir=cache))
    save_json_atomic(run_dir / "manifest.json", manifest)
    save_json_atomic(run_dir / "plan.json", plan)
    test_env = _test_env(manifest, run_dir, seed, vectors, None) | {"HARDYT_SIM_PLAN": str(run_dir / "plan.json")}
    key = f"{digest}-{simulator}-engine" + ("-waves" if waves else "")
    job = {"simulator": simulator, "sources": [str(src)], "top": manifest["top"], "module": "hardyt.sim.cocotb_engine",
           "build_dir": str(build_root(cache) / key), "parameters": {}, "defines": {},
           "build_args": ["-Wno-fatal", "-O3"] if simulator == "verilator" else [], "waves": waves,
           "test_dir": str(run_dir), "results_xml": str(run_dir / "results.xml"), "seed": seed,
           "outcome": str(run_dir / "outcome.json"), "testcase": testcase, "quiet": quiet}
    outcome = _launch(job, env | test_env, run_dir, quiet, manifest["dir"])
    out = _collect(manifest, run_dir, simulator=simulator, mode="cocotb", seed=seed) | {
        "build_seconds": outcome["build_seconds"], "sim_seconds": outcome["sim_seconds"],
        "layers": [step["name"] for step in plan],
        "activations": {step["name"]: step["npz"] for step in plan if step["npz"]}}
    if out["ok"] and not waves:
        import shutil
        shutil.rmtree(run_dir, ignore_errors=True)
        out["run_dir"] = None
    results = out["tests"].get("layer_order", {})
    out["per_layer"] = results.get("layers", {})
    json.dumps(out)  # everything reported is plain JSON
    return out
