"""Faults injected, survived, nothing lost: the long runs of ``tests/test_faults.py``.

    nice -n 19 .venv/bin/python bench/faults.py                      # every row, the issue's counts
    nice -n 19 .venv/bin/python bench/faults.py --rows coefhdl --coefhdl-frames 1000000

Rows (each started here, on 127.0.0.1, bounded in time; helpers in tests/faults_harness.py,
tests/fuzz_parsers.py, tests/fuzz_coef.py):

* ``convert SIGKILL``: ``hardyt convert --out D`` (tiny ViT) killed at random moments — half anywhere in
  the run, half while it writes — while another process reads D: lost = snapshots of a mixed directory, or
  D not one complete run's after the kill;
* ``convert SIGTERM/SIGINT``: the same, a catchable signal: lost = a temporary left or D not complete;
* ``rank SIGKILL (torchrun, 2 procs)``: rank 1 killed mid-conversion: survived = torchrun exits, rank 0
  prints one line naming rank 1; lost = anything written;
* ``torchrun SIGTERM, SIGINT``: torchrun itself stopped: lost = anything written;
* ``Dask worker SIGKILL``: one worker of a 2-worker process LocalCluster killed mid-sweep: lost = results
  missing or different (the lost tasks recomputed, counted);
* ``Dask scheduler SIGKILL``: a ``dask scheduler`` killed mid-sweep: survived = one clear error; lost = a
  job the client saw finish whose result is not in the cache;
* ``hung synthesis tool``: a tool that never ends, ``HARDYT_JOB_TIMEOUT=2``: killed and named by its job;
* ``object cache corrupted``: Verilator object cache entries truncated, bit-flipped or re-keyed: lost = a
  corrupted entry returned as good;
* ``synthesis cache corrupted``: the same for issue 24's synthesis cache entries;
* ``coefficient frames``: fuzzed frames against a streaming engine (Amaranth simulator): lost = output
  elements not bit-exact plus monitor violations; survived = frames whose status is the model's;
* ``coefficient frames, HDL-checked``: the same fuzz and the same checks, on the emitted engine's Verilog in
  Verilator, every check in the HDL harness ``sim/coef_fuzz_harness.v`` (:mod:`hardyt.sim.coef_fuzz_run`):
  the 100,000 frames of the issue in seconds; frames that loaded without being a layer's frame (resealed,
  or two beats swapped: the plain-sum checksum does not see order) counted apart;
* ``coefficient frames, Verilator``: the emitted engine's Verilog, fuzzed frames with tokens of the loaded
  layers between groups of them (cocotb test ``fuzzed_frames``);
* ``parser inputs``: mutated files into every parser: lost = inputs answered by anything but a
  one-line ``HardytError`` naming the file (or a value).

Writes bench/results/faults.{json,md} after every row (rows of this run replace the previous file's rows of
the same name; each row names its command, seed, date and the machine's load).
"""
from __future__ import annotations

import argparse
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
OUT = ROOT / "bench" / "results"

import faults_harness as fh  # noqa: E402 - the shared harness lives beside the tests
import fuzz_parsers  # noqa: E402
from fault_coef_rows import coef_frames, coef_hdl, coef_verilator  # noqa: E402
from fault_table import render, row as _row, save, uptime as _uptime  # noqa: E402


def convert_kills(n: int, rng, tmp: Path) -> list[dict]:
    checkpoint, data = fh.tiny_inputs(tmp)
    out = tmp / "D"
    first = subprocess.run(fh.convert_argv(checkpoint, data, out, seed=1), env=fh.ENV, capture_output=True)
    assert first.returncode == 0, first.stderr
    reader = fh.Reader(out, tmp)
    kills, terms = [], []
    try:
        # A run may end before its signal lands: go on until n were sent (within 3 n runs).
        for k in range(3 * n):
            if sum(r["sent"] for r in kills) == n:
                break
            r = fh.kill_during(fh.convert_argv(checkpoint, data, out, seed=2 + k), out, rng,
                               when="write" if k % 2 else "any")
            r["complete"] = fh.converted_problems(out)[0] == []
            kills.append(r)
        sigs = (signal.SIGTERM, signal.SIGINT) * 6
        for k, sig in enumerate(sigs):
            if sum(r["sent"] for r in terms) == 4:
                break
            r = fh.kill_during(fh.convert_argv(checkpoint, data, out, seed=100 + k), out, rng, sig=sig,
                               when="write" if k % 4 < 2 else "any")
            r["complete"] = fh.converted_problems(out)[0] == []
            r["clean"] = not r["left"]
            terms.append(r)
    finally:
        seen = reader.finish()
    mixed = len(seen["mixed"])
    sent = [r for r in kills if r["sent"]]
    rows = [_row("convert SIGKILL at a random moment, reader running", len(sent),
                 sum(r["complete"] for r in sent), mixed + sum(not r["complete"] for r in sent),
                 [r["exit_seconds"] for r in sent],
                 f"{seen['snapshots']} reader snapshots, {mixed} mixed, {seen['absent']} absent; "
                 f"runs seen complete: seeds {sorted(seen['seeds'])}")]
    sent = [r for r in terms if r["sent"]]
    rows.append(_row("convert SIGTERM / SIGINT", len(sent), sum(r["complete"] and r["clean"] for r in sent),
                     sum(not (r["complete"] and r["clean"]) for r in sent), [r["exit_seconds"] for r in sent],
                     f"exit codes {[(sig.name, r['rc']) for sig, r in zip(sigs, terms) if r['sent']]} (negative: "
                     f"the signal came during the imports, before the command installed its handler; -6, an "
                     f"abort inside a library being imported); D complete after each: "
                     f"{[r['complete'] for r in sent]}; a temporary of its own left: {[bool(r['left']) for r in sent]}"))
    return rows


def rank_kills(n: int, rng, tmp: Path) -> list[dict]:
    checkpoint, data = fh.tiny_inputs(tmp)
    out = tmp / "R"
    results, lines = [], set()
    for k in range(n + 2):
        rank, sig = (1, signal.SIGKILL) if k < n else (None, (signal.SIGTERM, signal.SIGINT)[k - n])
        port = 29600 + int(rng.integers(0, 300))
        r = fh.kill_rank(fh.torchrun_argv(port, fh.convert_argv(checkpoint, data, out, seed=k)), rank, rng,
                         sig=sig)
        r["written"] = out.exists() or fh.temporaries(out) != []
        r["named"] = len(r["errors"]) == 1 and ("lost rank 1" in r["errors"][0] if rank == 1 else True)
        r["rank"] = rank
        results.append(r)
        lines.update(e.split(": ", 1)[1] if ": " in e else e for e in r["errors"])
        shutil.rmtree(out, ignore_errors=True)
    kills = [r for r in results if r["rank"] == 1 and r["sent"]]
    terms = [r for r in results if r["rank"] is None and r["sent"]]
    example = next((e for r in kills for e in r["errors"]), "")
    return [_row("rank 1 SIGKILL under torchrun (2 procs, gloo)", len(kills),
                 sum(r["rc"] != 0 and r["named"] and r["exit_seconds"] < 40 for r in kills),
                 sum(r["written"] for r in kills), [r["exit_seconds"] for r in kills], f"rank 0 said: {example}"
                 + "".join(f"; run {i}: rc {r['rc']}, no line naming rank 1, stderr ended {r['stderr_tail']}"
                           for i, r in enumerate(kills) if not r["named"])),
            _row("torchrun itself SIGTERM, SIGINT (2 procs)", len(terms), sum(r["rc"] != 0 and not r["written"] for r in terms),
                 sum(r["written"] for r in terms), [r["exit_seconds"] for r in terms],
                 f"exit codes {sorted({r['rc'] for r in terms})}")]


def dask_faults(n: int, rng, tmp: Path) -> list[dict]:
    kills = []
    for k in range(n):
        cache = tmp / f"w{k}"
        cache.mkdir()
        kills.append(fh.kill_worker_during_sweep(rng, cache))
    losses = []
    for k in range(6):   # at a random moment, then once k jobs have finished (their results must stay)
        cache = tmp / f"s{k}"
        cache.mkdir()
        after = 0 if k < 3 else int(rng.integers(1, 6))
        losses.append(fh.lose_scheduler_during_sweep(rng, cache, 8790 + k, after=after))
    rows = [_row("Dask worker SIGKILL mid-sweep (2-worker LocalCluster, 8 jobs)", n, sum(r["ok"] for r in kills),
                 sum(r["lost"] for r in kills), [r["seconds"] for r in kills],
                 f"tasks recomputed per kill: {[r['recomputed'] for r in kills]}; seconds = whole sweep")]
    for what, part in (("at a random moment", losses[:3]), ("after k jobs finished", losses[3:])):
        rows.append(_row(f"Dask scheduler SIGKILL mid-sweep, {what}", len(part),
                         sum(bool(r["error"]) and r["cached"] >= r["after"] for r in part),
                         sum(r["lost"] for r in part), [r["seconds"] for r in part],
                         (f"k = {[r['after'] for r in part]}; " if part[0]["after"] else "")
                         + f"jobs the client saw finish: {[r['finished'] for r in part]}, results in the cache "
                         f"after: {[r['cached'] for r in part]}; error: {part[0]['error']}"))
    return rows


def hung_tool(n: int, tmp: Path) -> list[dict]:
    import os

    from hardyt.hw.tools import synth
    from hardyt.hw.tools.sweep import dask_client, run_jobs

    os.environ["HARDYT_JOB_TIMEOUT"] = "2"
    try:
        t0 = time.monotonic()
        with dask_client(workers=1) as client:
            _, failures = run_jobs(client, {f"layer{k} lut8": (synth._run, (["sleep", "600"], tmp, f"t{k}.log",
                                                                             "yosys", None)) for k in range(n)},
                                   progress=False)
        took = time.monotonic() - t0
    finally:
        del os.environ["HARDYT_JOB_TIMEOUT"]
    named = sum(f"killed after the 2 s timeout" in failures.get(f"layer{k} lut8", "") for k in range(n))
    return [_row("synthesis tool hung (HARDYT_JOB_TIMEOUT=2)", n, named, 0, [took / n],
                 f"e.g. {next(iter(failures.items())) if failures else ''}")]


def objcache_corruption(n: int, rng, tmp: Path) -> list[dict]:
    import contextlib
    import io

    from hardyt.sim.objcache import read_entry, write_entry

    lied, entry = 0, tmp / "k.o"
    content = bytes(rng.integers(0, 256, 4096, dtype=np.uint8))
    for k in range(n):
        write_entry(entry, "key", content)
        data = entry.read_bytes()
        i = int(rng.integers(len(data)))
        how = k % 3
        data = data[:i] if how == 0 else data[:i] + bytes([data[i] ^ (1 << int(rng.integers(8)))]) + data[i + 1:] \
            if how == 1 else data.replace(b" key ", b" kez ", 1)
        entry.write_bytes(data)
        with contextlib.redirect_stderr(io.StringIO()):
            back = read_entry(entry, "key")
        lied += back is not None and back != content
    return [_row("Verilator object cache entry corrupted", n, n - lied, lied, [],
                 "truncated, one bit flipped, or another key's header; each discarded and recompiled")]


def synth_cache_corruption(n: int, rng, tmp: Path) -> list[dict]:
    """The synthesis cache (hardyt.hw.tools.synth_cache, issue 24): entries damaged, never returned as good."""
    import warnings

    from hardyt.hw.tools import synth_cache

    report = {"lut": 123, "ff": 45, "dsp": 0, "bram": 0, "fmax_mhz": 210.5, "target": "ecp5"}
    lied, warned = 0, 0
    for k in range(n):
        path = synth_cache.store(tmp, "k" * 16, report)
        data = path.read_bytes()
        i = int(rng.integers(len(data)))
        how = k % 3
        if how == 0:
            data = data[:i]
        elif how == 1:
            data = data[:i] + bytes([data[i] ^ (1 << int(rng.integers(8)))]) + data[i + 1:]
        else:
            data = data.replace(b"123", b"124", 1)
        path.write_bytes(data)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            back = synth_cache.load(tmp, "k" * 16)
        warned += bool(seen)
        lied += back is not None and back != report
    return [_row("synthesis cache entry corrupted (issue 24's cache)", n, n - lied, lied, [],
                 f"truncated, one bit flipped, or a number edited; {warned} warned and re-run")]


def parser_inputs(n: int, seed: int, tmp: Path) -> list[dict]:
    per = -(-n // len(fuzz_parsers.TARGETS))
    found, inputs, notes = [], 0, []
    for k, target in enumerate(fuzz_parsers.TARGETS):
        r = fuzz_parsers.fuzz(target, tmp / f"p{k}", per, seed=seed + k)
        inputs += r["inputs"]
        found += [f"{target.name}: {f}" for f in r["findings"]]
        notes.append(f"{target.name} {r['inputs']}")
    return [_row("parser inputs fuzzed (hypothesis)", inputs, inputs - len(found), len(found), [],
                 "; ".join(notes) + (f"; findings: {found[:5]}" if found else ""))]


ROWS = ("convert", "ranks", "dask", "hung", "objcache", "coef", "coefhdl", "verilator", "parsers")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    p.add_argument("--convert-kills", type=int, default=20)
    p.add_argument("--rank-kills", type=int, default=10)
    p.add_argument("--worker-kills", type=int, default=10)
    p.add_argument("--coef-frames", type=int, default=100_000, help="frames of the Amaranth-simulator row")
    p.add_argument("--coef-seconds", type=float, default=6 * 3600, help="stop the frames row after this long")
    p.add_argument("--coefhdl-frames", type=int, default=100_000, help="frames of the HDL-checked row")
    p.add_argument("--verilator-frames", type=int, default=3000)
    p.add_argument("--parser-inputs", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    p.add_argument("--out", type=Path, default=OUT, help="where faults.{json,md} go (default bench/results)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    meta = {"command": "bench/faults.py " + " ".join(sys.argv[1:] if argv is None else argv), "seed": args.seed,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.platform(),
            "load": {"before": _uptime()}}
    rows = []
    with tempfile.TemporaryDirectory(prefix="hardyt-faults-") as d:
        tmp = Path(d)
        jobs = {"convert": lambda: convert_kills(args.convert_kills, rng, tmp / "c"),
                "ranks": lambda: rank_kills(args.rank_kills, rng, tmp / "r"),
                "dask": lambda: dask_faults(args.worker_kills, rng, tmp / "d"),
                "hung": lambda: hung_tool(3, tmp / "h"),
                "objcache": lambda: objcache_corruption(300, rng, tmp / "o")
                + synth_cache_corruption(300, rng, tmp / "o"),
                "coef": lambda: coef_frames(args.coef_frames, args.seed, args.coef_seconds),
                "coefhdl": lambda: coef_hdl(args.coefhdl_frames, args.seed, tmp / "e"),
                "verilator": lambda: coef_verilator(args.verilator_frames, args.seed, tmp / "v"),
                "parsers": lambda: parser_inputs(args.parser_inputs, args.seed, tmp / "p")}
        for name in args.rows:
            (tmp / name[0]).mkdir(exist_ok=True)
            t0 = time.monotonic()
            try:
                new = jobs[name]()
            except Exception as e:  # a row that breaks is reported as such, and the run goes on
                new = [_row(f"{name}: the row failed", 1, 0, 0, [], f"{type(e).__name__}: {e}")]
            for r in new:
                r |= {"row": name, "seconds": round(time.monotonic() - t0, 1), "command": meta["command"],
                      "seed": args.seed, "date": meta["date"], "load_after": _uptime()}
            rows += new
            meta["load"]["after"] = _uptime()
            save(rows, meta, args.out, ROWS)   # after every row: a run stopped later keeps what it measured
            print("\n".join(render(new, meta).splitlines()[-len(new):]), flush=True)
    print(render(rows, meta))
    bad = [r for r in rows if r["lost"] or r["survived"] < r["injected"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
