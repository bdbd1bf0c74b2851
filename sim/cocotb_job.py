"""One cocotb build and test, in a process of its own: ``python -m hardyt.sim.cocotb_job JOB.json``.

:func:`hardyt.sim.runner.run_sim` starts this module as a subprocess with the
environment of that one run. cocotb_tools' runner reads the process
environment (``PATH`` to find the simulator, every variable it hands to the
simulator) and writes to ``sys.stdout``; in a process of its own a run can
neither see nor change another run's environment or output, so simulations
may start from several threads at once (``hardyt demo`` synthesizes on a
thread while it simulates).

``JOB.json`` holds the arguments of ``build`` and ``test`` (see
:func:`run_job`); the outcome (``build_seconds``, ``sim_seconds``, ``error``)
is written to the file named by its ``outcome`` key.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from hardyt.quant.files import save_json_atomic

__all__ = ["run_job", "main"]


def run_job(job: dict) -> dict:
    """Build the sources, run the cocotb test module; the seconds each took.

    A simulator that exits non-zero after writing results is not an error
    here: the results file tells which tests failed.
    """
    from cocotb_tools.runner import get_runner

    run_dir = Path(job["test_dir"])
    quiet = job["quiet"]
    runner = get_runner(job["simulator"])
    if quiet:  # "Skipping compilation", "Failed n of m tests": the caller reports results itself
        runner.log.setLevel(logging.CRITICAL)
    t0 = time.perf_counter()
    # Runs of the same design share its build directory: the caller holds it for this run
    # (hardyt.sim.buildcache.reserved, the lock beside it), so no other run builds there meanwhile.
    runner.build(sources=job["sources"], hdl_toplevel=job["top"], build_dir=job["build_dir"],
                 parameters=job["parameters"], defines=job["defines"], build_args=job["build_args"],
                 timescale=("1ns", "1ps"), waves=job["waves"],
                 log_file=run_dir / "build.log" if quiet else None)
    t1 = time.perf_counter()
    try:
        runner.test(test_module=job["module"], hdl_toplevel=job["top"], test_dir=run_dir,
                    build_dir=job["build_dir"], waves=job["waves"], results_xml=job["results_xml"],
                    testcase=job["testcase"], seed=job["seed"], log_file=run_dir / "sim.log" if quiet else None)
    except SystemExit:
        pass
    return {"build_seconds": round(t1 - t0, 3), "sim_seconds": round(time.perf_counter() - t1, 3)}


def main(argv=None) -> int:
    job = json.loads(Path((sys.argv[1:] if argv is None else argv)[0]).read_text())
    outcome = {"build_seconds": None, "sim_seconds": None, "error": None}
    try:
        outcome |= run_job(job)
    except (Exception, SystemExit) as e:  # cocotb exits when the simulator is missing or the build fails
        outcome["error"] = f"{type(e).__name__}: {e}"
    save_json_atomic(job["outcome"], outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
