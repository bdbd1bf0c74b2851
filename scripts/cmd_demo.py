"""``hardyt demo``: the whole flow on the bundled ViT, ending in one report (:func:`hardyt.flow.run_demo`)."""
from __future__ import annotations

import sys

from hardyt.flow.demo import run_demo
from hardyt.flow.options import DemoConfig, from_args
from hardyt.quant.errors import HardytError

from .flags import add_seed_flag, calib_size, command_parser


def add_parser(sub):
    p = command_parser(sub, "demo", help="the whole flow on the bundled ViT: convert, RTL, bit-exact sim, synth, report",
                       description="Convert the bundled ViT, emit Verilog for every DyT layer, simulate each "
                                   "bit-exact on Icarus, synthesize one DyT core and the LayerNorm core, "
                                   "and write OUT/report.md.",
                       examples=["hardyt demo                                # what `make demo` runs",
                                 "hardyt demo --calib-size 256 --no-synth --out out/quick"])
    p.add_argument("--out", default="out/demo", help="output directory (default: out/demo)")
    p.add_argument("--calib-size", type=calib_size, default=1024, metavar="N|all",
                   help="calibration images (default: 1024, as hardyt convert)")
    add_seed_flag(p, "calibration sample and optimizer seed")
    p.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus")
    p.add_argument("--vectors", type=int, default=256, help="random beats per layer on top of the real "
                   "activations and the exhaustive sweep (default: 256)")
    p.add_argument("--no-synth", action="store_true", help="skip synthesis and place-and-route")
    p.set_defaults(func=run)


def run(args) -> int:
    command = "hardyt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("hardyt") else None
    result = run_demo(from_args(DemoConfig, args, command=command), log=lambda line: print(line, flush=True))
    print(result.report)
    if result.failed:
        raise HardytError(f"bit-exact check failed on layer(s): {', '.join(result.failed)} "
                          f"(see {result.out / 'report.md'})")
    return 0
