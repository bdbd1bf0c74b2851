"""The table of ``bench/faults.py``: one row per fault, rendered as Markdown and saved with its run."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from hardyt.quant.files import atomic_write_bytes

__all__ = ["uptime", "row", "render", "save"]


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def row(fault, injected, survived, lost, seconds, note="") -> dict:
    seconds = [s for s in seconds if s is not None]
    return {"fault": fault, "injected": injected, "survived": survived, "lost": lost,
            "exit_seconds_max": round(max(seconds), 2) if seconds else None,
            "exit_seconds_median": round(float(np.median(seconds)), 2) if seconds else None, "note": note}


def render(rows: list[dict], meta: dict) -> str:
    lines = ["# Faults injected, survived, nothing lost", "", f"`{meta['command']}` — {meta['date']}; load "
             f"before: {meta['load']['before']}; after: {meta['load']['after']} (times measured under that load)",
             "", "| fault injected | times | survived | data lost | time to a clean exit (median / max, s) | note |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        t = "—" if r["exit_seconds_max"] is None else f"{r['exit_seconds_median']} / {r['exit_seconds_max']}"
        lines.append(f"| {r['fault']} | {r['injected']} | {r['survived']} | {r['lost']} | {t} | {r['note']} |")
    return "\n".join(lines) + "\n"


def save(rows: list[dict], meta: dict, out: Path, order: tuple) -> None:
    """``out``/faults.{json,md}: this run's rows, and the previous file's rows of other names (rows in
    ``order`` of their ``row`` name)."""
    out.mkdir(parents=True, exist_ok=True)
    previous = json.loads((out / "faults.json").read_text()) if (out / "faults.json").is_file() else {"rows": []}
    names = {r["row"] for r in rows}
    kept = [r for r in previous["rows"] if r.get("row") not in names]
    owners = {(r.get("command"), r.get("seed")) for r in kept}
    this = (meta["command"], meta["seed"], meta["date"])
    runs = [m for m in previous.get("runs", []) if (m["command"], m["seed"]) in owners
            and (m["command"], m["seed"], m["date"]) != this] + [meta]
    merged = {"rows": sorted(kept + rows, key=lambda r: order.index(r["row"])), "runs": runs}
    atomic_write_bytes(out / "faults.json", (json.dumps(merged, indent=1) + "\n").encode())
    loads = "; ".join(f"{r['row']}: {r['load_after']}" for r in merged["rows"] if r.get("load_after"))
    atomic_write_bytes(out / "faults.md", (render(merged["rows"], meta) + "\nRuns (each row names its command and "
                       "seed): " + "; ".join(f"`{m['command']}` {m['date']}, load {m['load']}" for m in runs)
                       + (f"\n\nLoad after each row: {loads}" if loads else "") + "\n").encode())
