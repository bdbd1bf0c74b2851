"""Equivalence of a mutant under invariants of the core: proven invariants, then induction assuming them.

:func:`hardyt.hw.formal.equiv.equivalent_by_induction` proves a mutant equal to
the emitted core from *any* common state. Some mutants differ only in states the
core never reaches — a ROM word bit that no ROM entry sets, a field of a bank's
tag that every loaded frame keeps in range — and the induction, which starts
from arbitrary states, cannot close there. :func:`equivalent_assuming` closes
it in two proven steps, as a user of YosysHQ's mcy would (an equivalence check
constrained by the design's own invariants):

1. **the invariants**: each is a Verilog expression over *probes* (registers of
   the flattened core, :class:`hardyt.hw.formal.harness.Probe`, connected as
   in the formal harness); SymbiYosys proves each by k-induction (``mode
   prove``) on the emitted core (``gold``) and, when asked, on the mutant
   (``gate``), under the harness's environment (reset first, AXI4-Stream
   inputs): they hold in every reachable state;
2. **the induction**: the two netlists in one Yosys session as in
   ``equivalent_by_induction``, each inside a wrapper that *assumes* its
   proven invariants, split into single-bit nets (so that a mutated bit is
   unpaired alone, not its whole word); ``equiv_simple`` (only when a pair the mutant
   holds apart in every state makes the induction's base case fail) and
   ``equiv_induct -set-assumes`` prove every pair, outputs included.

Together: from reset both stay in states where the invariants hold (step 1), and
from any such common state they agree at every cycle (step 2).
"""
from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from ..emission.emit import load_manifest
from .equiv import equiv_round, netlist_prep
from .harness import Probe, module_head, ports
from .prove import core_facts, sby_status

__all__ = ["equivalent_assuming", "prove_invariants", "wrapper_text"]


def wrapper_text(facts, probes: list[Probe], invariants: list[str], kind: str, environment: bool = True) -> str:
    """``hardyt_inv``: the top (``dut``), under the harness's environment if ``environment``, each
    invariant ``kind`` (``"assert"`` or ``"assume"``) in every state; the probes are left undriven
    (``connect -set``)."""
    ports_, conns, env = ports(facts)
    if not environment:   # the top's outputs of the coefficient port are declared with the environment
        env = "    wire c_tready, coef_done;\n    wire [2:0] coef_status;\n" if facts.kind == "dyt-engine" else ""
    decl = "".join(f"    (* keep *) wire [{p.width - 1}:0] {p.name};\n" for p in probes)
    body = "".join(f"    always @(*) {kind}({e});\n" for e in invariants)
    return (module_head("hardyt_inv", facts, ports_) + decl
            + f"    {facts.top} dut (\n        " + ",\n        ".join(conns) + "\n    );\n"
            + env + body + "endmodule\n")


def _core_script(manifest: dict, mutation: str | None, wrapper: str, probes: list[Probe]) -> list[str]:
    """Yosys commands: the flattened core (``mutation`` applied), inside ``wrapper``, probes connected."""
    return [*netlist_prep(manifest), *([mutation] if mutation else []), f"read_verilog -formal {wrapper}",
            "hierarchy -top hardyt_inv", "proc", "flatten",
            *[f"connect -set {p.name} \\dut.{p.path}" for p in probes]]


def prove_invariants(directory, invariants: list[str], probes: list[Probe], *, mutation: str | None = None,
                     work, depth: int = 4, timeout: float = 600.0) -> dict:
    """SymbiYosys k-induction (depth ``depth``) of ``invariants`` on the core in ``directory`` (with the
    Yosys command ``mutation`` applied, if given). ``{"result": "proven" | "failed" | "undecided" |
    "error", "depth", "seconds"}`` (``"log"`` unless proven)."""
    manifest = load_manifest(directory)
    d, work = Path(manifest["dir"]), Path(work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "inv.sv").write_text(wrapper_text(core_facts(manifest), probes, invariants, "assert"))
    files = [str(d / manifest["verilog"]), str(work / "inv.sv"), *[str(d / m) for m in manifest["mems"]]]
    script = _core_script(manifest, mutation, "inv.sv", probes) + ["prep -top hardyt_inv", "memory_map", "opt_clean"]
    (work / "inv.sby").write_text("\n".join(["[options]", "mode prove", f"depth {depth}", "", "[engines]",
                                             "smtbmc yices", "", "[script]", *script, "", "[files]", *files, ""]))
    out, status, log = sby_status("inv.sby", work, timeout, depth)
    if status == "PASS":
        return out | {"result": "proven"}
    if log is None:
        return out | {"result": "undecided", "log": f"no answer in {timeout:.0f} s"}
    return out | {"result": "failed" if status in ("FAIL", "UNKNOWN") else "error",
                  "log": str(work / "inv" / "logfile.txt")}


def equivalent_assuming(directory, mutation: str, probes: list[Probe], gold: list[str], gate: list[str] = (), *,
                        work, seq: int = 4, rounds: int = 8, timeout: float = 600.0, unpaired=()) -> dict:
    """Prove the core in ``directory`` and the same netlist with ``mutation`` applied equivalent, given
    the invariants ``gold`` of the core and ``gate`` of the mutant (both proven first, then assumed).

    Returns ``{"result": "equivalent" | "unproven" | "undecided" | "error", "method": "induction under
    invariants", "invariants": {"gold": [...], "gate": [...]}, "proofs", "unpaired", "seconds"}``. ``unpaired``:
    single-bit nets (``dut.PATH_BIT``) left out of the pairing from the first round (the mutated bit's
    known fan-out: each round otherwise unpairs one register stage of it).
    """
    manifest = load_manifest(directory)
    d, work = Path(manifest["dir"]), Path(work)
    t0 = time.perf_counter()
    out = {"method": "induction under invariants", "invariants": {"gold": list(gold), "gate": list(gate)}}
    proofs = {}
    for side, invs, mut in (("gold", gold, None), ("gate", gate, mutation)):
        if invs:
            proofs[side] = prove_invariants(d, list(invs), probes, mutation=mut, work=work / f"inv-{side}",
                                            timeout=timeout)
            if proofs[side]["result"] != "proven":
                return out | {"result": "unproven", "proofs": proofs, "seconds": round(time.perf_counter() - t0, 1)}
    out["proofs"] = proofs
    facts = core_facts(manifest)
    work.mkdir(parents=True, exist_ok=True)
    for side, invs in (("gold", gold), ("gate", gate)):
        # No environment here: the invariants restrict the states, the induction holds for any input.
        (work / f"w_{side}.sv").write_text(wrapper_text(facts, probes, list(invs), "assume", environment=False))
    for f in [manifest["verilog"], *manifest["mems"]]:
        shutil.copy(d / f, work / f)
    script = [*netlist_prep(manifest), "design -save orig"]
    for side, mut in (("gold", None), ("gate", mutation)):
        script += ["design -load orig", *([mut] if mut else []), f"read_verilog -formal w_{side}.sv",
                   "hierarchy -top hardyt_inv", "proc", "flatten", "chformal -lower",
                   *[f"connect -set {p.name} \\dut.{p.path}" for p in probes],
                   # The top's outputs are wires of the wrapper: kept, so that they are compared.
                   "setattr -set keep 1 w:s_tready w:m_tvalid w:m_tlast w:m_tdata w:c_tready w:coef_*",
                   f"rename hardyt_inv {side}", f"design -stash {side}"]
    induct = f"equiv_induct -set-assumes -seq {seq}"
    script += ["design -copy-from gold -as gold gold", "design -copy-from gate -as gate gate", "memory_map",
               "opt_clean", "splitnets -format _", "equiv_make -blacklist unpaired.txt gold gate equiv",
               "hierarchy -top equiv", induct, "equiv_status"]
    (work / "equiv.ys").write_text("\n".join(script) + "\n")
    outputs = ({"s_tready", "m_tvalid", "m_tlast", "c_tready", "coef_done"}
               | {f"m_tdata_{k}" for k in range(facts.m_width)} | {f"coef_status_{k}" for k in range(3)})
    unpaired: list[str] = sorted(unpaired)
    for _ in range(rounds):
        verdict, log = equiv_round(work, unpaired, timeout - (time.perf_counter() - t0), timeout)
        if not verdict and "inherently diverges" in log and f"equiv_simple -seq {seq}" not in script:
            # A pair the mutant holds apart in every state (the mutated net under another name) fails the
            # induction's base case, and with it every pair: prove the pairs one by one first (slower).
            script.insert(script.index(induct), f"equiv_simple -seq {seq}")
            (work / "equiv.ys").write_text("\n".join(script) + "\n")
            verdict, log = equiv_round(work, unpaired, timeout - (time.perf_counter() - t0), timeout)
        if verdict:
            out |= verdict
            break
        bad = sorted(set(re.findall(r"Unproven \$equiv \S+: \\(\S+)_gold", log)))
        if not bad:
            out |= {"result": "equivalent"}
            break
        if set(bad) & outputs or set(bad) <= set(unpaired):
            out |= {"result": "unproven", "unproven_pairs": bad[:20]}
            break
        unpaired = sorted(set(unpaired) | set(bad))
    else:
        out |= {"result": "unproven", "unproven_pairs": bad[:20]}
    return out | {"unpaired": unpaired, "seconds": round(time.perf_counter() - t0, 1)}
