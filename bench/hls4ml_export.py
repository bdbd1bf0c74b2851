"""hls4ml projects of every DyT layer of a converted model, checked in hls4ml's own C simulation.

    .venv/bin/hardyt convert --steps 20 --out /tmp/conv      # the hardware does not depend on calibration quality
    .venv/bin/hardyt convert --steps 20 --no-fold --out /tmp/conv_nofold     # channel affine layers
    .venv/bin/python bench/hls4ml_export.py /tmp/conv [/tmp/conv_nofold]     # prints the table, writes
                                                             # bench/results/hls4ml_export.{json,md}

What ``hardyt export CONVERTED_DIR --format hls4ml --out DIR`` writes (``write_projects``: one
project per DyT layer and one for the layer set, Vitis backend, ``io_parallel``), then each project
opened as a user opens it (``hls4ml.converters.link_existing_project``), built by ``compile()``
(g++) and run by ``predict()`` on every input code of every channel, compared with the golden model.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from hardyt.quant.export import converted_specs
from hardyt.quant.export.hls4ml_project import SET_NAME, csim_check, project_name, write_projects
from hardyt.quant.files import atomic_write_text, save_json_atomic

OUT = Path(__file__).parent / "results"


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (g++), user + system: the cost a busy machine hides."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def run(converted: Path, work: Path, backend: str) -> dict:
    """Export every layer of ``converted`` into ``work``, then each project's C simulation against the golden model."""
    specs = list(converted_specs(converted).values())
    try:
        made_by = json.loads((converted / "report.json").read_text())["command"]
    except (OSError, ValueError, KeyError):
        made_by = None
    t0 = time.perf_counter()
    write_projects(specs, work, backend=backend)
    export_s = time.perf_counter() - t0
    rows = []
    for group, name in [([s], project_name(s.name)) for s in specs] + [(specs, SET_NAME)]:
        t = time.perf_counter()
        r = csim_check(work / name, group)
        s = group[0]
        rows.append({"converted": str(converted), "project": name, "layers": len(group), "channels": sum(g.channels for g in group),
                     "in_bits": s.in_bits if len(group) == 1 else None,
                     "tanh": s.tanh.kind if len(group) == 1 else "—",
                     "affine": s.affine.mode if len(group) == 1 else "—",
                     "elements": r["elements"], "mismatches": r["mismatches"],
                     "csim_s": round(time.perf_counter() - t, 1)})
    return {"converted": str(converted), "made_by": made_by, "export_s": round(export_s, 1), "rows": rows}


def table(result: dict) -> str:
    made_by = f", made by `{result['made_by']}`" if result["made_by"] else ""
    lines = [f"`{result['converted']}`{made_by}; export {result['export_s']} s:", "",
             "| project | layers | channels | input bits | tanh | affine | elements checked | mismatches | "
             "compile + predict (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['project']} | {r['layers']} | {r['channels']} | {r['in_bits'] or '—'} | {r['tanh']} | "
                     f"{r['affine']} | {r['elements']:,} | {r['mismatches']} | {r['csim_s']} |")
    per_layer = [r for r in result["rows"] if r["project"] != SET_NAME]
    lines.append(f"| **every layer project** | {len(per_layer)} | | | | | "
                 f"{sum(r['elements'] for r in per_layer):,} | {sum(r['mismatches'] for r in per_layer)} | "
                 f"{sum(r['csim_s'] for r in per_layer):.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("converted", type=Path, nargs="+", metavar="CONVERTED_DIR", help="`hardyt convert` outputs")
    ap.add_argument("--backend", default="Vitis", choices=("Vitis", "Vivado"))
    ap.add_argument("--work", type=Path, help="keep the projects here (default: a temporary directory)")
    ap.add_argument("--out", type=Path, default=OUT, help="results directory (default bench/results)")
    args = ap.parse_args(argv)
    command = "python bench/hls4ml_export.py " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                                                  else argv))
    load_before = _load()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hardyt-bench-hls4ml-") as tmp:
        results = [run(c, (args.work or Path(tmp)) / f"projects{i}", args.backend)
                   for i, c in enumerate(args.converted)]
    wall = time.perf_counter() - t0
    cpu = _cpu_s()
    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    meta = {"command": command, "converted": [str(c) for c in args.converted], "backend": args.backend,
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "export_s": [r["export_s"] for r in results],
            "load_before": load_before,
            "load_after": _load(), "cores": os.cpu_count(), "hls4ml": version("hls4ml"), "keras": version("keras"),
            "hgq2": version("hgq2"), "gxx": gxx, "python": sys.version.split()[0], "machine": platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    rows = [row for r in results for row in r["rows"]]
    md = "\n".join([
        "# hls4ml export: every DyT layer in hls4ml's own C simulation", "",
        f"Command: `{command}` ({meta['date']}; hls4ml {meta['hls4ml']}, keras {meta['keras']} on torch, "
        f"hgq2 {meta['hgq2']}, {gxx}).", "",
        f"Export ({args.backend} backend, io_parallel) of each converted model: a project per layer and the "
        "layer set; then each project opened with `link_existing_project`, `compile()` (g++) and "
        f"`predict()` on every input code of every channel against the golden model. {wall:.0f} s wall in all "
        f"({cpu:.0f} CPU seconds, g++ included), "
        f"on {meta['cores']} cores with load average {load_before} (1/5/15 min) before and {meta['load_after']} "
        "after: other jobs shared the machine, so the times are upper bounds.", "",
        *[table(r) for r in results]])
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    save_json_atomic(args.out / "hls4ml_export.json", {"meta": meta, "converted": [
        {k: r[k] for k in ("converted", "made_by", "export_s")} for r in results], "rows": rows})
    atomic_write_text(args.out / "hls4ml_export.md", md)
    return 0 if all(r["mismatches"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
