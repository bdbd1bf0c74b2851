"""``hardyt prove`` on the demo's layers, on its engine and on a LayerNorm core, timed.

    python bench/prove.py CONVERTED_DIR [--workers 2] [--ln-channels 8] [--sets layers engine layernorm]
                          [--out bench/results/prove]

Emits every layer of a ``hardyt convert`` output (``hardyt rtl CONVERTED --layers
all``), the DyT engine for all of them (``--engine``) and a LayerNorm core of
``--ln-channels`` channels (the demo's lanes and widths), proves each with
:func:`hardyt.flow.prove` and writes ``OUT.json``/``.md``: per core every
property's mode, depth, result and seconds, the wall time of each set and
the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from hardyt.flow.emit import emit_cores, emit_spec
from hardyt.flow.options import EmitConfig, ProveConfig
from hardyt.flow.prove import prove
from hardyt.quant.contract.layernorm import random_layernorm_spec
from hardyt.quant.files import atomic_write_text

RESULTS = Path(__file__).with_name("results")
#: The sets: name (``--sets``, the directory under the work directory) -> label in the results.
SETS = {"layers": "demo layers", "engine": "engine", "layernorm": "layernorm"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("converted")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ln-channels", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS), help="the sets to prove (each "
                    "is emitted anyway)")
    ap.add_argument("--out", default=str(RESULTS / "prove"))
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hardyt-prove-"))
    layers = emit_cores(args.converted, EmitConfig(out=str(work / "layers"), layers=["all"]))
    emit_cores(args.converted, EmitConfig(out=str(work / "engine"), engine=True))
    first = layers.manifests[0]
    emit_spec(random_layernorm_spec(args.ln_channels, first.lanes, first.in_bits, first.out_bits, seed=0),
              work / "layernorm", "layernorm")
    sets, cores = [], {}
    for key in args.sets:
        label, d = SETS[key], work / key
        load = os.getloadavg()
        t0 = time.perf_counter()
        r = prove(d, ProveConfig(workers=args.workers, timeout=args.timeout))
        sets.append({"set": label, "cores": len(r.results) + len(r.errors), "ok": not r.failed, "errors": r.errors,
                     "wall_s": round(time.perf_counter() - t0, 1), "load_before": [round(x, 2) for x in load],
                     "load_after": [round(x, 2) for x in os.getloadavg()]})
        cores |= {f"{label}: {Path(k).name}": v for k, v in r.results.items()}
        print(json.dumps(sets[-1]), flush=True)
        write(Path(args.out), sets, cores, sys.argv[1:])   # after each set: a late one loses nothing before it
    return 0 if all(s["ok"] for s in sets) else 1


def write(out: Path, sets: list, cores: dict, argv) -> None:
    """``OUT.json`` and ``OUT.md`` of the sets proven so far."""
    doc = {"command": "python bench/prove.py " + " ".join(argv), "cpus": os.cpu_count(), "sets": sets,
           "cores": cores}
    atomic_write_text(out.with_suffix(".json"), json.dumps(doc, indent=1) + "\n")
    lines = ["# hardyt prove: the demo's layers, its engine, a LayerNorm core", "",
             f"`{doc['command']}` — {os.cpu_count()} CPUs shared with other jobs (1-minute load average before "
             "and after each set).", "",
             "| set | cores | all proven | wall s | load before | load after |", "|---|---|---|---|---|---|"]
    lines += [f"| {s['set']} | {s['cores']} | {'yes' if s['ok'] else 'no'} | {s['wall_s']} | {s['load_before'][0]} | "
              f"{s['load_after'][0]} |" for s in sets]
    lines += ["", "| core | kind | latency | property | mode | depth | result | task s (wall) | task CPU s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, r in cores.items():
        lines += [f"| {name} | {r['kind']} | {r['latency']} | {p['property']} | {p['mode']} | {p['depth']} | "
                  f"{p['result']} | {p['seconds']} | {p.get('cpu_seconds')} |" for p in r["properties"]]
    bounded = {(r["kind"], p["property"]): p["bounded_because"] for r in cores.values() for p in r["properties"]
               if p.get("bounded_because")}
    if bounded:
        lines += ["", "Bounded, not by induction (`bounded_because` in `prove.json`):", ""]
        lines += [f"- {kind} `{prop}`: {why}" for (kind, prop), why in bounded.items()]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
