"""``hardyt synth``: resources (Yosys) and Fmax (nextpnr, ECP5) of emitted cores.

::

    hardyt synth DIR [--target ecp5|xilinx] [--seed K] [--scheduler tcp://HOST:PORT] [--workers N]

``DIR`` is one directory written by ``hardyt rtl``, or one holding a
directory per layer (``hardyt rtl CONVERTED_DIR --out DIR``): then every
layer is synthesized, each as a Dask job (:mod:`hardyt.hw.sweep`); a failed
layer is named once the others are done, and their reports are kept. Each
core gets ``synth-<target>.json`` and ``.md``.
"""
from __future__ import annotations

from pathlib import Path

from .emitted import core_dirs
from .flags import add_sweep_flags


def add_parser(sub):
    from hardyt.hw.synth import TARGETS
    p = sub.add_parser("synth", help="synthesize emitted cores: LUT, FF, DSP, BRAM and (ECP5) Fmax",
                       description="Run Yosys (and nextpnr for ECP5) on the core(s) emitted in DIR and write "
                                   "DIR/synth-<target>.json and .md next to the Verilog.")
    p.add_argument("directory", metavar="DIR", help="a `hardyt rtl` output, or a directory of layer directories")
    p.add_argument("--target", choices=TARGETS, default="ecp5",
                   help="ecp5: synth_ecp5 + nextpnr-ecp5 --85k (Fmax); xilinx: synth_xilinx, resources only "
                        "(default ecp5)")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default 1)")
    add_sweep_flags(p)
    p.set_defaults(func=run)


def summary(r: dict, path: Path) -> str:
    fmax = f", Fmax {r['fmax_mhz']:.1f} MHz" if "fmax_mhz" in r else ""
    return (f"{r['top']} ({r['core']}, C={r['channels']}, P={r['lanes']}) {r['target']}: LUT {r['lut']}, "
            f"FF {r['ff']}, DSP {r['dsp']}, BRAM {r['bram']}, carry {r['carry']}{fmax}, latency {r['latency']} "
            f"cycles -> {path}")


def run(args) -> int:
    from hardyt.hw.sweep import dask_client, failure_error, run_jobs
    from hardyt.hw.synth import synth

    dirs = core_dirs(Path(args.directory))
    if len(dirs) == 1:
        r = synth(dirs[0], target=args.target, seed=args.seed)
        print(summary(r, dirs[0] / f"synth-{args.target}.json"))
        return 0
    jobs = {str(d): (synth, (d, args.target, False, args.seed)) for d in dirs}
    with dask_client(args.scheduler, args.workers) as client:
        reports, failures = run_jobs(client, jobs, desc="synth")
    for d in dirs:
        if str(d) in reports:
            print(summary(reports[str(d)], d / f"synth-{args.target}.json"))
    if failures:
        raise failure_error(failures, len(jobs), "synthesis job")
    return 0
