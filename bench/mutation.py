"""Mutation testing of the emitted HDL: do the project's checks notice a wrong netlist?

    nice -n 19 python bench/mutation.py [--dyt 150] [--layernorm 60] [--engine 40] [--seed 1] [--jobs 2]
                                        [--out bench/results/mutation] [--resume] [--work DIR]

For each core kind (three DyT cores — LUT/folded, PWL/channel with
per-channel alpha shifts, threshold/folded —, a LayerNorm core, a DyT engine with a folded and a
channel affine layer) the emitted Verilog is read by Yosys (``hierarchy;
proc; flatten``), ``mutate -list N`` draws N mutations of its netlist (YosysHQ's
mcy flow: inverted, constant or swapped bits on cell ports and wires; the
logic only, not the ROM contents, which tests/test_sim.py mutates in the
``.mem`` files), and each mutant is applied to a fresh copy and written back as Verilog. Every
mutant then meets the project's checks, cheapest first, until one kills it:

1. **sim**: the bulk harness (``sim/bulk_harness.v``) on Icarus, every code on
   every channel plus the saturation corners (LayerNorm: then random tokens,
   :data:`LN_ELEMENTS` elements in all), under random pauses on both
   sides, then at full rate (latency and throughput must equal the
   manifest's); the engine: its FuseSoC smoke testbench (layer 0's image
   loaded, every beat compared with the golden model), then its cocotb tests
   (every layer loaded in turn, every input code of every layer, bad and
   fuzzed frames, full rate across a layer switch:
   :func:`hardyt.sim.engine_runner.run_engine_sim`);
2. is it the original? First by induction, unbounded
   (:func:`hardyt.hw.formal.equiv.equivalent_by_induction`: the original and
   the mutant in one Yosys session, like-named signals paired and proven equal
   at every cycle, the pairs that differ unpaired until the outputs are proven
   or are among them); then over single-bit pairs, under the mutant's invariants
   where ``mutation_equiv.INVARIANTS`` lists it (unbounded too); if neither proves
   it, a bounded miter (:func:`hardyt.hw.formal.equiv.equivalent`: the same
   AXI4-Stream inputs to both, outputs compared from reset to a whole
   coefficient frame, the latency and two tokens): **equivalent** when one
   proves it, else the first differing cycle is kept;
3. otherwise **formal**: ``hardyt prove`` (:func:`hardyt.hw.formal.prove.prove_core`)
   on the mutant directory; a mutant it does not kill is a **survivor**,
   listed with the cycle at which it differs from the original, and whether it
   is proven equal at full rate (``m_axis_tready`` held high: then a difference
   needs backpressure; :func:`mutation_equiv.full_rate`).

Writes ``OUT.json`` (every mutant: its ``mutate`` command, the check that
killed it and how) and ``OUT.md`` (killed / survived / equivalent per kind,
every survivor), with the machine's load. Mutants and proofs live in a temporary directory, removed
at the end (``--work DIR`` keeps them): a mutant is rebuilt from its ``mutate`` command.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hardyt.hw.datapath.cores import random_dyt_spec, random_layernorm_spec
from hardyt.hw.emission.emit import emit, load_manifest
from hardyt.hw.emission.engine_emit import emit_engine
from hardyt.hw.formal.prove import prove_core
from hardyt.hw.tools.toolchain import iverilog_cmd, yosys_cmd
from hardyt.quant.contract.spec_io import spec_from_dict
from hardyt.quant.files import atomic_write_text
from hardyt.sim.bulk_files import write_bulk_files
from hardyt.sim.engine_runner import run_engine_sim
from hardyt.sim.runner import HARNESS

from mutation_equiv import equivalence, full_rate, single_bit

RESULTS = Path(__file__).with_name("results")
#: Elements of the LayerNorm bulk stream (every code on every channel is only 292 of them, one
#: code at a time in otherwise constant tokens: a mutant of the statistics can hide there).
LN_ELEMENTS = 16384

_TB = """`timescale 1ns/1ps
module mut_tb;
    // aresetn falls at 1 ns, not at 0: an event, so that every `always @*` block of the emitted
    // Verilog runs once in reset (Icarus may start them after the time-0 initializers).
    reg aclk = 0, aresetn, pause = {pause};
    reg [31:0] beats = {beats};
    wire done;
    wire [63:0] checked, mismatches, extra, protocol, cycles, fci, fco, first_bad;
    wire [31:0] fbl;
    wire [{wout}-1:0] fbg;
    hardyt_bulk #(.P({p}), .WIN({win}), .WOUT({wout}), .DEPTH({depth})) h (
        .aclk(aclk), .aresetn(aresetn), .beats(beats), .pause(pause), .done(done), .checked(checked),
        .mismatches(mismatches), .extra(extra), .protocol(protocol), .cycles(cycles), .first_cycle_in(fci),
        .first_cycle_out(fco), .first_bad(first_bad), .first_bad_lane(fbl), .first_bad_got(fbg));
    always #5 aclk = ~aclk;
    integer n;
    initial begin
        #1 aresetn = 0;
        repeat (3) @(posedge aclk);
        aresetn <= 1;
        for (n = 0; n < {limit} && !done; n = n + 1) @(posedge aclk);
        repeat ({latency} + 4) @(posedge aclk);
        $display("RESULT %0d %0d %0d %0d %0d %0d %0d %0d", done, checked, mismatches, extra, protocol, cycles, fci, fco);
        $finish;
    end
endmodule
"""


def _run(cmd, cwd, timeout=600):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def cores(work: Path) -> dict:
    """The cores whose netlists are mutated, by kind (directory list)."""
    out = {"dyt": [], "layernorm": [], "engine": []}
    for name, spec in (("lut", random_dyt_spec(4, 2, 8, 8, seed=1)),
                       ("pwl", random_dyt_spec(4, 2, 8, 8, tanh="pwl", affine="channel", alpha_shift=True, seed=2)),
                       ("thr", random_dyt_spec(4, 2, 8, 8, tanh="threshold", seed=4))):
        emit(spec, work / name, name="dyt")
        out["dyt"].append(work / name)
    emit(random_layernorm_spec(4, 2, 6, 6, seed=0), work / "ln", name="layernorm")
    out["layernorm"].append(work / "ln")
    specs = [random_dyt_spec(4, 2, 6, 6, affine="channel", alpha=0.2, seed=3, name="a"),
             random_dyt_spec(4, 2, 6, 6, alpha=0.1, name="b")]
    emit_engine(specs, work / "engine", "eng")
    out["engine"].append(work / "engine")
    return out


def mutants(core: Path, n: int, seed: int) -> list[dict]:
    """``n`` mutants of ``core``'s netlist as Verilog files in ``core/mutants`` (Yosys, a WebAssembly
    build, sees only its working directory): ``[{"id", "cmd", "verilog"}]``."""
    m = load_manifest(core)
    out = core / "mutants"
    out.mkdir(parents=True, exist_ok=True)
    prep = f"read_verilog {m['verilog']}; hierarchy -top {m['top']}; proc; flatten; opt_clean; design -save orig"
    listing = out / "mutations.txt"
    # The logic only: ROM contents ($meminit cells) are the .mem files' business (tests/test_sim.py mutates them).
    r = _run([*yosys_cmd(), "-q", "-p", f"{prep}; mutate -list {n} -seed {seed} -o mutants/mutations.txt "
                                        "* t:$meminit* %d"], core)
    if r.returncode:
        raise RuntimeError(f"{core}: yosys mutate failed: {r.stderr[-500:]}")
    cmds = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    script = [prep.replace("; ", "\n")]
    rows = []
    for k, cmd in enumerate(cmds):
        v = out / f"m{k:03d}.v"
        script += ["design -load orig", cmd, f"write_verilog -noattr mutants/{v.name}"]
        rows.append({"id": f"{core.name}/{k:03d}", "cmd": cmd, "verilog": v})
    (out / "apply.ys").write_text("\n".join(script) + "\n")
    r = _run([*yosys_cmd(), "-q", "-s", "mutants/apply.ys"], core, timeout=3600)
    if r.returncode:
        raise RuntimeError(f"{core}: yosys apply failed: {r.stderr[-500:]}")
    return rows


def _mutant_dir(core: Path, verilog: Path, where: Path) -> Path:
    """A copy of ``core`` whose ``NAME.v`` is the mutant (the .mem files stay: the netlist holds the ROMs)."""
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(core, where, ignore=shutil.ignore_patterns("formal", "prove.json", "mutants"))
    m = load_manifest(where)
    shutil.copy(verilog, where / m["verilog"])
    return where


class BulkCheck:
    """The bulk harness on Icarus with one stimulus for every mutant of a core: paused, then full rate.

    A DyT core's output is a function of one element's code and channel: every code on every channel
    (and the saturation corners) is its whole input space. A LayerNorm core's is a function of a whole
    token: every code on every channel, then random tokens up to :data:`LN_ELEMENTS` elements."""

    def __init__(self, core: Path, work: Path):
        self.m = load_manifest(core)
        spec = spec_from_dict(self.m["spec"])
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        vectors = LN_ELEMENTS if self.m["core"] == "layernorm" else 1
        self.beats, self.depth = write_bulk_files(work, spec, self.m, vectors, 1, None)
        for mem in self.m["mems"]:
            shutil.copy(core / mem, work / mem)

    def __call__(self, verilog: Path) -> str | None:
        m = self.m
        for pause in (1, 0):
            tb = self.work / "mut_tb.v"
            tb.write_text(_TB.format(pause=pause, beats=self.beats, wout=m["out_bits"], win=m["in_bits"],
                                     p=m["lanes"], depth=self.depth, latency=m["latency"],
                                     limit=8 * self.beats + 20 * m["latency"] + 1000))
            r = _run([*iverilog_cmd(), "-g2012", "-o", "sim.vvp", f"-DHARDYT_TOP={m['top']}", "-s", "mut_tb",
                      str(tb), str(HARNESS), str(verilog)], self.work)
            if r.returncode:
                return f"sim: does not compile ({r.stderr.strip().splitlines()[-1][:120] if r.stderr.strip() else ''})"
            r = _run(["vvp", "-n", "sim.vvp"], self.work, timeout=300)
            found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", r.stdout)
            if not found:
                return "sim: no result (hung or crashed)"
            done, checked, bad, extra, proto, cycles, fci, fco = map(int, found.groups())
            if not done or checked != self.beats * m["lanes"] or bad or extra or proto:
                return (f"sim ({'paused' if pause else 'full rate'}): {bad} mismatches, {extra} extra beats, "
                        f"{proto} protocol errors, {checked} of {self.beats * m['lanes']} elements")
            if not pause and (fco - fci != m["latency"] or cycles - fco != self.beats):
                return f"sim (full rate): latency {fco - fci} (manifest {m['latency']}), {self.beats} beats in " \
                       f"{cycles - fco} cycles"
        return None


class EngineCheck:
    """An engine: its FuseSoC smoke testbench on Icarus (layer 0 loads, every beat equals the golden
    model's), then its cocotb tests on a copy of the directory holding the mutant."""

    def __init__(self, core: Path, work: Path):
        self.m = load_manifest(core)
        self.core, self.work = core, work
        work.mkdir(parents=True, exist_ok=True)
        for f in core.glob("*.mem"):
            shutil.copy(f, work / f.name)

    def __call__(self, verilog: Path) -> str | None:
        name = self.m["name"]
        r = _run([*iverilog_cmd(), "-g2012", "-o", "sim.vvp", "-s", f"{name}_tb", str(self.core / f"{name}_tb.v"),
                  str(verilog)], self.work)
        if r.returncode:
            return "sim: does not compile"
        r = _run(["vvp", "-n", "sim.vvp"], self.work, timeout=300)
        if "every one as the golden model" not in r.stdout:
            line = next((x for x in (r.stdout + r.stderr).splitlines() if "smoke" in x), "no verdict")
            return f"smoke sim: {line.strip()[:160]}"
        try:
            out = run_engine_sim(_mutant_dir(self.core, verilog, self.work / "dir"), vectors=256,
                                 cache=self.work / "cache")
        except Exception as e:   # noqa: BLE001 - a hung or broken run is the mutant's doing: a kill, say so
            return f"cocotb: {type(e).__name__}: {str(e)[:140]}"
        if not out["ok"]:
            return f"cocotb: {'; '.join(out['failures'])[:160] or 'failed'}"
        return None


def formal_check(mdir: Path, kind: str, timeout: float = 600) -> str | None:
    """``hardyt prove`` on the mutant: a kill is a property that fails with a counterexample (an
    induction that does not close, or a timeout, is no kill). LayerNorm: ``axis`` and
    ``conservation`` (its ``drain`` and ``latency`` take minutes each)."""
    r = prove_core(mdir, properties=["axis", "conservation"] if kind == "layernorm" else None, timeout=timeout)
    bad = [f"{p['property']} failed ({Path(p['assertion']).name if p.get('assertion') else 'trace'})"
           for p in r["properties"] if p["result"] == "failed"]
    return f"formal: {', '.join(bad)}" if bad else None


def judge(kind: str, core: Path, row: dict, check, scratch: Path, limits=(300, 600, 600)) -> dict:
    """Run the checks on one mutant; what killed it, or whether it is equivalent. ``limits``: seconds of
    the bounded miter, of each ``hardyt prove`` task, of the induction."""
    t0 = time.perf_counter()
    out = {"id": row["id"], "kind": kind, "cmd": row["cmd"], "verilog": str(row["verilog"])}
    why = check(row["verilog"])
    eq = None
    if why is None:
        # Equivalent mutants cannot be killed by anything: check that before the (costlier) proofs.
        eq = equivalence(core, row, scratch, limits[0], limits[2])
        if eq["result"] != "equivalent":
            try:
                why = formal_check(_mutant_dir(core, row["verilog"], scratch / row["id"].replace("/", "_")), kind,
                                   limits[1])
            except Exception as e:   # noqa: BLE001 - a mutant the harness cannot even bind is a kill, say so
                why = f"formal: {type(e).__name__}: {str(e)[:120]}"
    if why is not None:
        out |= {"status": "killed", "by": why} | ({"equivalence": eq} if eq else {})
    elif eq["result"] == "equivalent":
        out |= {"status": "equivalent", "equivalence": eq}
    else:
        out |= {"status": "survived", "equivalence": eq, "full_rate": full_rate(core, row, scratch, limits[2])}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dyt", type=int, default=150, help="mutants of the DyT cores (split between the three)")
    ap.add_argument("--layernorm", type=int, default=60)
    ap.add_argument("--engine", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="mutants judged at once (each in its own directory)")
    ap.add_argument("--out", default=str(RESULTS / "mutation"))
    ap.add_argument("--equiv-timeout", type=float, default=300, help="seconds of the bounded equivalence miter")
    ap.add_argument("--induction-timeout", type=float, default=600, help="seconds of the equivalence induction")
    ap.add_argument("--formal-timeout", type=float, default=600, help="seconds of each hardyt prove task")
    ap.add_argument("--resume", action="store_true", help="keep the mutants OUT.json already judged (same seed)")
    ap.add_argument("--rejudge", nargs="*", metavar="ID", help="with --resume: judge the survivors again (only "
                    "these, if given)")
    ap.add_argument("--judged-only", action="store_true", help="with --resume: judge no mutant OUT.json does not "
                    "already hold (a rejudge of its survivors only)")
    ap.add_argument("--full-rate", action="store_true", help="with --resume: judge nothing; add to each survivor "
                    "without it the induction with m_axis_tready held high (does a difference need backpressure?)")
    ap.add_argument("--reprove-bounded", action="store_true", help="with --resume: judge nothing; prove each "
                    "mutant found equivalent by the bounded miter again, over single-bit pairs (unbounded)")
    ap.add_argument("--work", help="scratch directory, kept (default: a temporary one, removed at the end)")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="only write OUT from the mutants of these results "
                    "(runs split by kind or rejudged beside each other: a mutant's row where a later file changed it)")
    args = ap.parse_args(argv)
    if args.merge:
        docs = [json.loads(Path(f).read_text()) for f in args.merge]
        # One row per mutant: where a later file's differs from the row the mutant first had (a rejudge of a
        # copy of the same results, run beside), it replaces it.
        first, by_id = {}, {}
        for r in (r for d in docs for r in d["mutants"]):
            if r["id"] not in first or r != first[r["id"]]:
                by_id[r["id"]] = r
            first.setdefault(r["id"], r)
        rows = list(by_id.values())
        _write(Path(args.out), rows, args, time.perf_counter() - max(d["seconds"] for d in docs),
               [max(d["load_start"][k] for d in docs) for k in range(3)],
               command=" ; ".join(d["command"] for d in docs))
        return 0
    # Mutants, checks and proofs in a scratch directory (kept with --work, else removed at the end).
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="hardyt-mutation-"))
    try:
        return _judge_all(args, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def _judge_all(args, work: Path) -> int:
    """Judge the mutants ``args`` asks for in ``work``, writing OUT after each."""
    counts = {"dyt": args.dyt, "layernorm": args.layernorm, "engine": args.engine}
    out = Path(args.out)
    rows, t0, load0 = [], time.perf_counter(), os.getloadavg()
    if args.resume and out.with_suffix(".json").is_file():
        old = json.loads(out.with_suffix(".json").read_text())
        if old.get("seed") == args.seed:
            rows, t0 = old["mutants"], t0 - old["seconds"]
            if args.rejudge is not None:
                rows = [r for r in rows if r["status"] != "survived" or (args.rejudge and r["id"] not in args.rejudge)]
    if args.full_rate or args.reprove_bounded:
        dirs = {core.name: core for ds in cores(work).values() for core in ds}
        for r in rows:
            core, eq = dirs[r["id"].split("/")[0]], r.get("equivalence") or {}
            if args.full_rate and r["status"] == "survived" and "full_rate" not in r:
                r["full_rate"] = full_rate(core, r, work / "scratch", args.induction_timeout)
                print(r["id"], json.dumps(r["full_rate"]), flush=True)
            elif args.reprove_bounded and r["status"] == "equivalent" and eq.get("method", "bmc") == "bmc":
                got = single_bit(core, r, work / "scratch", args.induction_timeout)
                print(r["id"], got["result"], got["seconds"], flush=True)
                if got["result"] == "equivalent":
                    r["equivalence"] = got | {"bounded": eq}
            else:
                continue
            _write(out, rows, args, t0, load0)
        return 0
    done = {r["id"] for r in rows}
    known = {r["id"] for r in old["mutants"]} if args.judged_only and rows else None
    for kind, dirs in cores(work).items():
        for core in dirs:
            n = counts[kind] // len(dirs)
            if n <= 0:
                continue
            ms = [m for m in mutants(core, n, args.seed) if m["id"] not in done and (known is None or m["id"] in known)]
            if not ms:
                continue
            check = (EngineCheck if kind == "engine" else BulkCheck)(core, work / "check" / core.name)
            assert check(Path(core / load_manifest(core)["verilog"])) is None, f"{core}: the original fails"
            checks = [check] + [type(check)(core, work / "check" / f"{core.name}{j}") for j in range(1, args.jobs)]
            free = queue.Queue()
            for c in checks:
                free.put(c)

            def one(row):
                c = free.get()
                try:
                    return judge(kind, core, row, c, work / "scratch", (args.equiv_timeout, args.formal_timeout,
                                                                           args.induction_timeout))
                finally:
                    free.put(c)

            with ThreadPoolExecutor(args.jobs) as pool:
                for r in pool.map(one, ms):
                    rows.append(r)
                    print(json.dumps(r), flush=True)
                    _write(out, rows, args, t0, load0)
    _write(out, rows, args, t0, load0)
    return 0


def _why(r: dict) -> str:
    eq = r.get("equivalence") or {}
    ind = eq.get("induction") or {}
    pairs = ind.get("unproven_pairs")
    unproven = f"induction: {ind.get('result')}" + (f" (not proven equal: {', '.join(pairs[:4])})" if pairs else "")
    for kind in ("single-bit pairs", "invariants"):
        if kind in eq:
            unproven += f"; {'under invariants' if kind == 'invariants' else kind}: {eq[kind]['result']}"
    if eq.get("result") == "differs":
        return (f"differs from the original {eq.get('cycle')} cycles from reset (bounded miter); no check sees it; "
                f"{unproven}")
    fr = r.get("full_rate")
    where = ("" if fr is None else "; equal at full rate (induction, m_axis_tready held high): a difference needs "
             "backpressure" if fr["result"] == "equivalent" else f"; at full rate too: induction {fr['result']}")
    return f"{unproven}; bounded miter {eq.get('result')} ({eq.get('error', '')}){where}"


def _how(eq: dict) -> str:
    if eq.get("method") == "induction under invariants":
        proofs = ", ".join(f"{side} {p['result']} (depth {p['depth']}, {p['seconds']} s)"
                           for side, p in eq.get("proofs", {}).items())
        invs = "; ".join(f"{side}: " + " && ".join(f"({e})" for e in v) for side, v in eq["invariants"].items() if v)
        return (f"induction under invariants, single-bit pairs, unpaired {', '.join(eq['unpaired'][:4]) or 'none'}; "
                f"{eq.get('why', '')}" + (f"; invariants {invs}; proofs by k-induction: {proofs}" if invs else ""))
    if eq.get("method") in ("induction", "induction over single-bit pairs"):
        bounded = f"; the bounded miter too, depth {eq['bounded']['depth']}" if eq.get("bounded") else ""
        return eq["method"] + (f", unpaired {', '.join(eq['unpaired'][:4])}" if eq.get("unpaired") else "") + bounded
    return f"bmc, depth {eq['depth']}"


def _write(out: Path, rows: list, args, t0: float, load0, command: str | None = None) -> None:
    kinds = {}
    for r in rows:
        k = kinds.setdefault(r["kind"], {"mutants": 0, "killed": 0, "survived": 0, "equivalent": 0})
        k["mutants"] += 1
        k[r["status"]] += 1
    for k in kinds.values():
        live = k["mutants"] - k["equivalent"]
        k["score"] = round(k["killed"] / live, 4) if live else None
    total = {s: sum(k[s] for k in kinds.values()) for s in ("mutants", "killed", "survived", "equivalent")}
    live = total["mutants"] - total["equivalent"]
    total["score"] = round(total["killed"] / live, 4) if live else None
    command = command or f"nice -n {os.nice(0)} python bench/mutation.py " + " ".join(sys.argv[1:])
    doc = {"command": command, "seed": args.seed,
           "seconds": round(time.perf_counter() - t0, 1), "load_start": [round(x, 2) for x in load0],
           "load_end": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count(), "per_kind": kinds,
           "total": total, "mutants": rows}
    atomic_write_text(out.with_suffix(".json"), json.dumps(doc, indent=1) + "\n")
    by = {}
    for r in rows:
        if r["status"] == "killed":
            check = r["by"].split(":")[0].split(" (")[0]
            by.setdefault(r["kind"], {}).setdefault(check, 0)
            by[r["kind"]][check] += 1
    lines = ["# Mutation testing of the emitted HDL", "",
             f"`{doc['command']}` — {doc['seconds']} s on {os.cpu_count()} CPUs shared with other jobs "
             f"(1-minute load {doc['load_start'][0]} at the start, {doc['load_end'][0]} at the end).", "",
             "| kind | mutants | killed | survived | equivalent | killed / non-equivalent | killed by |",
             "|---|---|---|---|---|---|---|"]
    for kind, k in [*kinds.items(), ("all", total)]:
        score = "—" if k["score"] is None else f"{100 * k['score']:.2f} %"  # 94.97 is no 95.0
        killers = ", ".join(f"{c} {n}" for c, n in sorted(by.get(kind, {}).items()))
        lines.append(f"| {kind} | {k['mutants']} | {k['killed']} | {k['survived']} | {k['equivalent']} | {score} "
                     f"| {killers} |")
    surv = [r for r in rows if r["status"] == "survived"]
    lines += ["", f"## Survivors ({len(surv)})", ""]
    lines += [f"- `{r['id']}` `{r['cmd']}`: {_why(r)}" for r in surv] or ["none"]
    eq = [r for r in rows if r["status"] == "equivalent"]
    lines += ["", f"## Equivalent ({len(eq)})", "",
              "*induction*: every pair of like-named signals (outputs included) proven equal at every cycle by "
              "Yosys `equiv_simple`/`equiv_induct`, the wires listed left unpaired (unbounded); *induction over "
              "single-bit pairs*: the same over one-bit nets, so that a mutated bit is unpaired alone (unbounded); "
              "*induction under invariants* (bench/mutation_equiv.py): the invariants listed proven by SymbiYosys "
              "k-induction on the core (gold) and the mutant (gate), then assumed by `equiv_induct -set-assumes` "
              "over single-bit pairs (unbounded); *bmc*: no input sequence from reset to the depth given tells them "
              "apart (bounded miter).", ""]
    lines += [f"- `{r['id']}` ({_how(r['equivalence'])}): `{r['cmd']}`" for r in eq] or ["none"]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
