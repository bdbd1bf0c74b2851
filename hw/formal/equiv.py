"""Is a changed netlist still the emitted core? A bounded equivalence check with SymbiYosys.

:func:`equivalent` binds the emitted Verilog (``gold``) and another netlist of
the same top (``gate``: a mutant of ``bench/mutation.py``) to one miter: both
get the same inputs, under the harness's environment (reset first, every input
stream AXI4-Stream, :func:`hardyt.hw.formal.harness.ports`), and out of reset
their outputs must agree — ``s_axis_tready``, ``m_axis_tvalid``, and
``m_axis_tdata``/``tlast`` whenever ``tvalid`` is high (the engine: its
coefficient port's ``tready``, ``coef_status``, ``coef_done`` as well).
Bounded model checking from reset (Yices) to a depth that lets a whole
coefficient frame load and two tokens pass (:func:`equiv_depth`): no input
sequence of that length tells them apart (``equivalent``), or one does
(``differs``, with the first cycle and the counterexample trace).
"""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from ..emission.emit import load_manifest
from .harness import module_head, ports
from .prove import core_facts, run_sby, tool_dir

__all__ = ["equiv_depth", "equivalent", "miter_text"]

_OUTPUTS = ("s_tready", "m_tvalid", "m_tlast", "m_tdata")
_ENGINE_OUTPUTS = ("c_tready", "coef_status", "coef_done")


def equiv_depth(manifest: dict) -> int:
    """Cycles from reset: the longest coefficient frame's load (engine), the latency, two tokens, and 8."""
    load = max((layer.get("load_cycles", 0) for layer in manifest.get("layers", [])), default=0)
    return load + int(manifest["latency"]) + 2 * (manifest["channels"] // manifest["lanes"]) + 8


def miter_text(facts) -> str:
    """``hardyt_miter``: modules ``hardyt_gold`` and ``hardyt_gate`` on the same inputs, outputs compared."""
    engine = facts.kind == "dyt-engine"
    ports_, conns, env = ports(facts)
    outs = _OUTPUTS + (_ENGINE_OUTPUTS if engine else ())
    gate = []
    for c in conns:
        name = c[c.index("(") + 1:-1]
        gate.append(c.replace(f"({name})", f"(x_{name})") if name in outs else c)
    decl = f"    wire x_s_tready, x_m_tvalid, x_m_tlast;\n    wire [{facts.m_width - 1}:0] x_m_tdata;\n"
    same = ["s_tready == x_s_tready", "m_tvalid == x_m_tvalid"]
    if engine:
        decl += "    wire x_c_tready, x_coef_done;\n    wire [2:0] x_coef_status;\n"
        same += [f"{o} == x_{o}" for o in _ENGINE_OUTPUTS]
    checks = "".join(f"        assert({s});\n" for s in same)
    return ("// hardyt equivalence miter (hardyt.hw.formal.equiv): gold = the emitted top, gate = another netlist.\n"
            + module_head("hardyt_miter", facts, ports_) + decl
            + "    hardyt_gold gold (\n        " + ",\n        ".join(conns) + "\n    );\n"
            + "    hardyt_gate gate (\n        " + ",\n        ".join(gate) + "\n    );\n"
            + env
            + "    always @(*) if (past_ok && aresetn) begin\n" + checks
            + "        if (m_tvalid) assert(m_tdata == x_m_tdata && m_tlast == x_m_tlast);\n"
            + "    end\nendmodule\n")


def _sby(top: str, gold: str, gate: str, mems: list[str], depth: int) -> str:
    load = lambda f, name: [f"read_verilog {f}", f"hierarchy -top {top}", "proc", "flatten",  # noqa: E731
                            f"rename {top} {name}", f"design -stash {name}"]
    script = [*load(gold, "hardyt_gold"), *load(gate, "hardyt_gate"),
              "design -copy-from hardyt_gold -as hardyt_gold hardyt_gold",
              "design -copy-from hardyt_gate -as hardyt_gate hardyt_gate",
              "read_verilog -formal hardyt_miter.sv", "prep -top hardyt_miter", "flatten", "memory_map",
              # Structural hashing across the two copies: what the mutation did not touch merges.
              "opt_merge -share_all", "opt -full", "opt_clean"]
    return "\n".join(["[options]", "mode bmc", f"depth {depth}", "", "[engines]", "smtbmc yices", "",
                      "[script]", *script, "", "[files]", *mems, ""])


def equivalent(directory, verilog, *, depth: int | None = None, work=None, timeout: float = 300.0,
               keep: bool = False) -> dict:
    """Compare netlist ``verilog`` (same top and ports) with the core emitted in ``directory``.

    Returns ``{"result": "equivalent" | "differs" | "undecided" | "error", "depth", "seconds"}``,
    with ``"cycle"`` (first differing cycle from reset) and ``"trace"`` (``.vcd``) when it differs,
    ``"error"`` (the log's last lines) on a tool error. ``work`` (default: a ``equiv`` directory
    beside ``verilog``) is removed unless the netlists differ (or ``keep``).
    """
    manifest = load_manifest(directory)
    d = Path(manifest["dir"])
    facts = core_facts(manifest)
    depth = depth or equiv_depth(manifest)
    verilog = Path(verilog).resolve()
    work = Path(work) if work else verilog.parent / f"equiv-{verilog.stem}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "hardyt_miter.sv").write_text(miter_text(facts))
    gate = work / f"gate_{verilog.name}"
    shutil.copy(verilog, gate)
    files = [str(d / manifest["verilog"]), str(gate), str(work / "hardyt_miter.sv"),
             *[str(d / m) for m in manifest["mems"]]]
    (work / "equiv.sby").write_text(_sby(facts.top, manifest["verilog"], gate.name, files, depth))
    env = dict(os.environ, PATH=os.pathsep.join([str(tool_dir()), os.environ.get("PATH", "")]))
    t0 = time.perf_counter()
    log = run_sby("equiv.sby", work, env, timeout)
    out = {"depth": depth, "seconds": round(time.perf_counter() - t0, 1)}
    done = re.search(r"DONE \((\w+)", log or "")
    status = done.group(1) if done else None
    if status == "PASS":
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
        return out | {"result": "equivalent"}
    if status == "FAIL":
        steps = [int(x) for x in re.findall(r"failed assertion \S+ at \S+ step (\d+)", log)]
        cycle = min(steps) if steps else None
        trace = re.search(r"counterexample trace(?: \[\w+\])?: (\S+)", log)
        return out | {"result": "differs", "cycle": cycle, "trace": str(work / trace.group(1)) if trace else None}
    if log is None:
        return out | {"result": "undecided", "error": f"no answer in {timeout:.0f} s"}
    return out | {"result": "error", "error": log.strip().splitlines()[-3:]}
