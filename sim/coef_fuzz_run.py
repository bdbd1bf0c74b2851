"""Fuzzed coefficient frames into an emitted DyT engine, checked in HDL at the simulator's speed.

:func:`run_coef_fuzz` draws a plan of frames of every :data:`hardyt.sim.coef_fuzz.KINDS` kind and
random tokens of random layers, writes them with the loader model's outcome of every frame
(:func:`hardyt.sim.coef_fuzz.expect`: status, layer, table) as memory files, and runs
``coef_fuzz_harness.v`` around the engine's Verilog (Verilator by default). The harness streams
both with random idle and backpressure and checks every cycle what ``tests/fuzz_coef.py`` checks in
Amaranth's simulator (see the harness's header); nothing runs in Python per cycle, so 100,000 frames
take seconds instead of hours. Engines of folded layers with one channel count (one token length).
"""
from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from amaranth.hdl import Shape

from hardyt.hw.datapath.coef_loader import bank_layout
from hardyt.hw.datapath.engine_set import engine_shape, layer_frame, layer_table
from hardyt.hw.emission.emit import load_manifest
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_write_bytes

from .buildcache import build_root, source_copy
from .coef_fuzz import KINDS, disguised, expect, make_frame
from .engine_runner import engine_plan, is_engine
from .runner import _launch, _simulator_env, default_cache

__all__ = ["HARNESS", "fuzz_plan", "run_coef_fuzz"]

HARNESS = Path(__file__).with_name("coef_fuzz_harness.v")
#: The loader's instance in the emitted engine's Verilog (top ``axis``, engine ``core``).
LOADER = "dut.axis.core.loader"


def fuzz_plan(specs, frames: int, seed: int, tokens: int | None = None) -> dict:
    """``frames`` fuzzed frames (kinds uniform) and ``tokens`` random tokens (``frames // 2``, at least 8),
    the model's outcome of each frame, and one valid frame per layer to keep the tokens going."""
    shape = engine_shape(specs)
    if shape.affine is not None or shape.tanh != "lut" or len({s.channels for s in specs}) != 1:
        raise HardytError("coefficient fuzz harness: folded LUT layers (a table engine) of one channel count only")
    rng = np.random.default_rng([seed, 28])
    goods = [layer_frame(s, i, shape) for i, s in enumerate(specs)]
    kinds = [KINDS[int(k)] for k in rng.integers(len(KINDS), size=frames)]
    plan = [make_frame(k, rng, goods) for k in kinds]
    want = [expect(f, shape) for f in plan + goods]
    for i, s in enumerate(specs):
        assert want[frames + i] == (1, i, [int(v) for v in layer_table(s, shape)]), "the model disagrees with the spec"
    n = tokens if tokens is not None else max(8, frames // 2)
    layers = rng.integers(len(specs), size=n)
    beats = shape.channels // shape.lanes
    half = np.array([1 << (specs[k].in_bits - 1) for k in layers]).repeat(beats)[:, None]
    x = rng.integers(-half, half, (n * beats, shape.lanes))
    return {"shape": shape, "kinds": kinds, "plan": plan, "goods": goods, "want": want, "layers": layers, "x": x,
            "beats": beats}


def _hex_lines(values) -> bytes:
    return "".join(f"{int(v):x}\n" for v in values).encode()


def _depth(n: int) -> int:
    return 1 << max(4, (max(n, 1) - 1).bit_length())


def _write_files(run_dir: Path, p: dict) -> dict:
    """The three memory files; the counts the harness needs."""
    s, tb = p["shape"], p["shape"].table_bits
    words = [w | (int(j == len(f) - 1) << 32) for f in p["plan"] + p["goods"] for j, w in enumerate(f)]
    keep_word = sum(len(f) for f in p["plan"])
    exp = []
    for status, layer, table in p["want"]:
        packed = 0 if table is None else int(sum((int(v) & ((1 << tb) - 1)) << (u * tb) for u, v in enumerate(table)))
        exp.append((((layer or 0) << 3 | status) << (tb << s.in_bits)) | packed)
    lsw = max(1, (s.layers - 1).bit_length())
    mask, last = (1 << s.in_bits) - 1, (np.arange(len(p["x"])) % p["beats"]) == p["beats"] - 1
    xs = [(int(layer) << 1 | int(t)) << (s.lanes * s.in_bits) | sum((int(v) & mask) << (i * s.in_bits)
                                                                    for i, v in enumerate(row))
          for row, t, layer in zip(p["x"], last, p["layers"].repeat(p["beats"]))]
    for name, values in (("fuzz_coef.mem", words), ("fuzz_expect.mem", exp), ("fuzz_x.mem", xs)):
        atomic_write_bytes(run_dir / name, _hex_lines(values))
    return {"nwords": len(words), "keep_word": keep_word, "nplan": len(p["plan"]), "ntok": len(p["layers"]),
            "lsw": lsw, "depths": (_depth(len(words)), _depth(len(exp)), _depth(len(p["layers"])))}


def _parameters(p: dict, files: dict) -> dict:
    s = p["shape"]
    layout = bank_layout(s)
    assert layout["usable"].offset == 0, "the harness reads a bank's usable bit at bit 0"
    return {"P": s.lanes, "WIN": s.in_bits, "TB": s.table_bits, "LSW": files["lsw"], "NBEATS": p["beats"],
            "NKEEP": len(p["goods"]), "BANK_W": layout.size, "LAYER_LSB": layout["layer"].offset,
            "LAYER_W": Shape.cast(layout["layer"].shape).width, "DEPTH_W": files["depths"][0],
            "DEPTH_F": files["depths"][1], "DEPTH_X": files["depths"][2]}


def run_coef_fuzz(directory, frames: int, seed: int = 1, simulator: str = "verilator", tokens: int | None = None,
                  cache=None) -> dict:
    """Fuzz the engine emitted in ``directory`` with ``frames`` frames; the harness's counters, the statuses
    by frame kind, the frames that loaded without being a layer's (``disguised``, by kind), timings."""
    from hardyt.quant.contract.spec_io import spec_from_dict

    manifest = load_manifest(directory)
    if not is_engine(manifest):
        raise HardytError(f"{directory}: not a DyT engine (core {manifest['core']!r})")
    specs = [spec_from_dict(step["spec"]) for step in engine_plan(manifest)]
    p = fuzz_plan(specs, frames, seed, tokens)
    cache = Path(cache) if cache else default_cache()
    src, digest = source_copy(manifest, cache)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{simulator}-coef-fuzz-", dir=cache))
    files = _write_files(run_dir, p)
    params = _parameters(p, files)
    beats = len(p["x"])
    run = {k: files[k] for k in ("nwords", "keep_word", "nplan", "ntok")} | {
        "seed": seed & 0xFFFFFFFF, "max_cycles": 60 * files["nwords"] + 20 * beats + 10_000}
    key = f"{digest}-{simulator}-coeffuzz-" + "-".join(str(v) for v in params.values())
    job = {"simulator": simulator, "sources": [str(HARNESS), str(src)], "top": "hardyt_coef_fuzz",
           "module": "hardyt.sim.cocotb_coef_fuzz", "build_dir": str(build_root(cache) / key),
           "parameters": params, "defines": {"HARDYT_TOP": manifest["top"], "HARDYT_LOADER": LOADER},
           "build_args": ["-Wno-fatal", "-O3"] if simulator == "verilator" else [], "waves": False,
           "test_dir": str(run_dir), "results_xml": str(run_dir / "results.xml"), "seed": seed,
           "outcome": str(run_dir / "outcome.json"), "testcase": None, "quiet": True}
    env = _simulator_env(simulator, cache) | {"HARDYT_COEF_FUZZ_RUN": json.dumps(run),
                                               "HARDYT_COEF_FUZZ_RESULTS": str(run_dir / "counters.json")}
    outcome = _launch(job, env, run_dir, True, manifest["dir"])
    try:
        n = json.loads((run_dir / "counters.json").read_text())
        statuses = [int(c) for c in (run_dir / "fuzz_statuses.txt").read_text().strip()]
    except (OSError, ValueError):
        raise HardytError(f"{directory}: the coefficient fuzz run reported nothing; see {run_dir}/sim.log") from None
    return _verdict(p, n, statuses, outcome, run_dir)


def _verdict(p: dict, n: dict, statuses: list, outcome: dict, run_dir: Path) -> dict:
    """The counters, the statuses by kind (plan frames), the disguised frames by kind, ``ok``."""
    kinds = p["kinds"]
    planned = statuses[:len(kinds)]
    by_kind = {k: dict(Counter(s for k2, s in zip(kinds, planned) if k2 == k)) for k in KINDS}
    hidden = Counter(k for k, f, (s, _, _) in zip(kinds, p["plan"], p["want"]) if s == 1 and disguised(f, p["goods"]))
    lost = n["status_bad"] + n["table_bad"] + n["start_bad"] + n["switch_bad"] + n["out_bad"]
    ok = bool(n["done"]) and lost == 0 and len(planned) == len(kinds) and n["checked"] == p["x"].size
    out = {"ok": ok, "frames": len(planned), "keep_alive_frames": len(statuses) - len(planned), "by_kind": by_kind,
           "disguised": dict(hidden), "tokens": len(p["layers"]), "elements": n["checked"], "lost": lost,
           "counters": n, "build_seconds": outcome["build_seconds"], "sim_seconds": outcome["sim_seconds"],
           "run_dir": None}
    if ok:
        import shutil
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        out["run_dir"] = str(run_dir)
    return out
