"""``hardyt tanh``: the error report of one fixed-point tanh configuration."""
from __future__ import annotations

import json

from hardyt.flow.tanh import TANH_KINDS, tanh_report

from .flags import command_parser



def add_parser(sub):
    p = command_parser(sub, "tanh", help="error report of one fixed-point tanh (lut, pwl or threshold)",
                       description="Build a fixed-point tanh and measure its error over every input code.",
                       examples=["hardyt tanh --kind lut --in-bits 8 --out-bits 8 --alpha-scale 0.03",
                                 "hardyt tanh --kind pwl --in-bits 12 --out-bits 8 --alpha-scale 0.002 --segments 32 "
                                 "--json",
                                 "hardyt tanh --kind threshold --in-bits 16 --out-bits 8 --alpha-scale 0.0001"])
    p.add_argument("--kind", choices=TANH_KINDS, required=True,
                   help="lut: table of outputs; pwl: segments, one multiply; threshold: the 2**out_bits - 1 "
                        "inputs where the correctly rounded output steps (binary search, no multiply)")
    p.add_argument("--in-bits", type=int, required=True, help="signed input width")
    p.add_argument("--out-bits", type=int, required=True, help="signed output width (full scale = 1.0)")
    p.add_argument("--alpha-scale", type=float, required=True,
                   help="alpha times the input LSB: the tanh argument per input code")
    p.add_argument("--segments", type=int, default=16, help="pwl: number of segments (power of two)")
    p.add_argument("--drop-bits", type=int, default=0, help="lut: low bits of |x| dropped from the index")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", metavar="FILE.png", help="draw approximation and error over the input range")
    p.set_defaults(func=run)


def run(args) -> int:
    d = tanh_report(args.kind, args.in_bits, args.out_bits, args.alpha_scale, segments=args.segments,
                    drop_bits=args.drop_bits, plot=args.plot)
    if args.json:
        print(json.dumps(d))
    else:
        for k, v in d.items():
            print(f"{k:>16}: {v:.4f}" if isinstance(v, float) and k != "alpha_scale" else f"{k:>16}: {v}")
    return 0
