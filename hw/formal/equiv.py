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

:func:`equivalent_by_induction` decides more, and without a bound, when the
other netlist is the emitted one with a Yosys ``mutate`` command applied: both
netlists stay in one Yosys session, so every signal of the original has its
twin in the mutant under the same name. ``equiv_make`` pairs them (one
``$equiv`` cell per bit), ``equiv_simple`` proves each pair from the pairs
feeding its logic cone (a few cycles back through the registers) and
``equiv_induct`` proves the rest together by temporal induction. When every
pair, outputs included, is proven, the two netlists agree at every cycle from
any common state (reset included): an unbounded proof, where the bounded
miter drowns in the arithmetic (a bit of a PWL product that no operand can
reach is a small local question; unrolled over the whole pipeline, it is not).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from ..emission.emit import load_manifest
from ..tools.toolchain import yosys_cmd
from .harness import module_head, ports
from .prove import core_facts, sby_status

__all__ = ["equiv_depth", "equivalent", "equivalent_by_induction", "miter_text", "netlist_prep"]

_OUTPUTS = ("s_tready", "m_tvalid", "m_tlast", "m_tdata")
_ENGINE_OUTPUTS = ("c_tready", "coef_status", "coef_done")
_PORT = re.compile(r"^\s*(?:input|output)\s+(?:wire\s+|reg\s+)?(?:\[[^]]*\]\s*)?(\w+)", re.M)


def equiv_round(work: Path, unpaired: list[str], left: float, timeout: float) -> tuple[dict | None, str]:
    """One run of ``work/equiv.ys`` with ``unpaired`` written to ``unpaired.txt``, within ``left`` seconds:
    ``(None, its log)``, or a verdict that ends the rounds (``undecided`` after ``timeout``, ``error``)."""
    (work / "unpaired.txt").write_text("".join(f"{w}\n" for w in unpaired))
    try:
        r = subprocess.run([*yosys_cmd(), "-q", "-s", "equiv.ys", "-l", "equiv.log"], cwd=work,
                           capture_output=True, text=True, timeout=max(left, 1))
    except subprocess.TimeoutExpired:
        return {"result": "undecided", "error": f"no answer in {timeout:.0f} s"}, ""
    log = (work / "equiv.log").read_text() if (work / "equiv.log").is_file() else ""
    if r.returncode or not re.search(r"Found \d+ \$equiv cells", log):
        return {"result": "error", "error": (r.stderr or log).strip().splitlines()[-3:]}, log
    return None, log


def netlist_prep(manifest: dict) -> list[str]:
    """The Yosys commands that read ``manifest``'s Verilog as the netlist ``mutate`` works on."""
    return [f"read_verilog {manifest['verilog']}", f"hierarchy -top {manifest['top']}", "proc", "flatten",
            "opt_clean"]


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
    out, status, log = sby_status("equiv.sby", work, timeout, depth)
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


def equivalent_by_induction(directory, mutation: str, *, work=None, seq: int = 4, rounds: int = 8,
                            timeout: float = 300.0, keep: bool = False, held_high: tuple[str, ...] = ()) -> dict:
    """Prove, without a bound, that the core emitted in ``directory`` and the same netlist with the Yosys
    command ``mutation`` (``mutate -mode ... -module TOP ...``) applied are equivalent.

    A pair that cannot be proven equal (the mutated wire, at least) is unpaired and the proof run again,
    so that the logic it feeds is compared through both versions of it — up to ``rounds`` times, as
    long as no output is among them: a difference the core masks (a bit no operand reaches, a value
    the next stage clips) is proven masked there.

    Returns ``{"result": "equivalent" | "unproven" | "undecided" | "error", "method": "induction",
    "seconds", "unpaired"}`` (``unpaired``: the wires left out of the pairing); ``"unproven"``
    (the netlists may still be equivalent, or not) names the pairs that were not proven
    (``"unproven_pairs"``). ``timeout`` bounds the whole; ``work`` (default: a directory in
    ``directory``) is removed unless ``keep``.

    ``held_high``: input ports tied to 1 in both netlists, a restricted environment: with
    ``("m_axis_tready",)`` the sink never stalls, so ``"equivalent"`` then means equal at full rate
    only (a difference, if any, needs backpressure). The result names them (``"held_high"``).
    """
    manifest = load_manifest(directory)
    d, top = Path(manifest["dir"]), manifest["top"]
    work = Path(work) if work else d / f"equiv-induct-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for f in [manifest["verilog"], *manifest["mems"]]:
        shutil.copy(d / f, work / f)
    # Port names of any module: after ``flatten`` only the top's keep a name without a dot.
    ports = set(_PORT.findall((d / manifest["verilog"]).read_text()))
    if set(held_high) - ports:
        raise ValueError(f"{d / manifest['verilog']}: no port {sorted(set(held_high) - ports)[0]!r} to hold high")
    script = [*netlist_prep(manifest), *[f"connect -set {p} 1'b1" for p in held_high], "design -save orig",
              f"rename {top} gold", "design -stash gold",
              "design -load orig", mutation, f"rename {top} gate", "design -stash gate",
              "design -copy-from gold -as gold gold", "design -copy-from gate -as gate gate",
              "memory_map", "opt_clean", "equiv_make -blacklist unpaired.txt gold gate equiv", "hierarchy -top equiv",
              f"equiv_simple -seq {seq}", f"equiv_induct -seq {seq}", "equiv_status"]
    (work / "equiv.ys").write_text("\n".join(script) + "\n")
    t0 = time.perf_counter()
    unpaired: list[str] = []
    out = {"method": "induction"} | ({"held_high": list(held_high)} if held_high else {})
    for _ in range(rounds):
        verdict, log = equiv_round(work, unpaired, timeout - (time.perf_counter() - t0), timeout)
        if verdict:
            out |= verdict
            break
        bad = re.findall(r"Unproven \$equiv \S+: \\(\S+)_gold \[?(\d*)\]?", log)
        if not bad:
            out |= {"result": "equivalent"}
            break
        wires = sorted({w for w, _ in bad})
        if {w for w in wires if "." not in w} & ports or set(wires) <= set(unpaired):
            out |= {"result": "unproven", "unproven_pairs": [f"{w}[{b}]" if b else w for w, b in bad][:20]}
            break
        unpaired = sorted(set(unpaired) | set(wires))
    else:
        out |= {"result": "unproven", "unproven_pairs": [f"{w}[{b}]" if b else w for w, b in bad][:20]}
    out |= {"seconds": round(time.perf_counter() - t0, 1), "unpaired": unpaired}
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return out
