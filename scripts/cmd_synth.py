"""``hardyt synth``: resources (Yosys) and Fmax (nextpnr, ECP5) of emitted cores (:func:`hardyt.flow.synthesize`).

``DIR`` is one directory written by ``hardyt rtl``, or one holding a
directory per layer: then every layer is synthesized, each as a Dask job; a
failed layer is named once the others are done, and their reports are kept.
"""
from __future__ import annotations

from pathlib import Path

from hardyt.flow.options import SynthConfig, from_args
from hardyt.flow.synth import TARGETS, summary, synthesize

from .flags import add_seed_flag, add_sweep_flags, command_parser

def add_parser(sub):
    p = command_parser(sub, "synth", help="synthesize emitted cores: LUT, FF, DSP, BRAM and (ECP5) Fmax",
                       description="Run Yosys (and nextpnr for ECP5) on the core(s) emitted in DIR and write "
                                   "DIR/synth-<target>.json and .md next to the Verilog.",
                       examples=["hardyt synth out/rtl                      # ECP5: resources and Fmax",
                                 "hardyt synth out/rtl_layers --target xilinx --workers 2"])
    p.add_argument("directory", metavar="DIR", help="a `hardyt rtl` output, or a directory of layer directories")
    p.add_argument("--target", choices=TARGETS, default="ecp5",
                   help="ecp5: synth_ecp5 + nextpnr-ecp5 --85k (Fmax); xilinx: synth_xilinx, resources only "
                        "(default ecp5)")
    add_seed_flag(p, "nextpnr placement seed")
    add_sweep_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    r = synthesize(args.directory, from_args(SynthConfig, args))
    for d, report in r.reports.items():
        print(summary(report, Path(d) / f"synth-{args.target}.json"))
    r.check()
    return 0
