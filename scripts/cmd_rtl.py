"""``hardyt rtl``: emit Verilog, ``.mem`` ROM files and a manifest for a core (:func:`hardyt.flow.emit_cores`).

Four forms::

    hardyt rtl SPEC.json --out DIR                       # one layer spec
    hardyt rtl CONVERTED_DIR [--layers all|NAME...] --out DIR   # every layer -> DIR/<name>/
    hardyt rtl --channels C [--lanes P ...] --out DIR    # a random spec from flags
    hardyt rtl CONVERTED_DIR --engine [--lanes P] --out DIR     # one engine for every layer
"""
from __future__ import annotations

from hardyt.flow.emit import emit_cores, emit_spec
from hardyt.flow.manifest import summary
from hardyt.flow.options import EmitConfig, from_args
from hardyt.flow.specs import random_spec
from hardyt.flow.tanh import TANH_KINDS
from hardyt.quant.errors import HardytError

from .flags import command_parser

_FLAG_DEFAULTS = {"lanes": 1, "in_bits": 8, "out_bits": 8, "tanh": "lut", "affine": "folded", "segments": 16,
                  "drop_bits": 0, "alpha": None, "seed": 0, "core": "dyt"}


def add_parser(sub):
    p = command_parser(sub, "rtl", help="emit Verilog + .mem ROMs + manifest for a DyT (or LayerNorm) core",
                       description="Generate the AXI4-Stream core of a layer spec, of every layer of a converted "
                                   "model, or of a random spec described by flags.",
                       examples=["hardyt rtl out/convert --out out/rtl               # one core per layer",
                                 "hardyt rtl out/convert/blocks_0_norm1.spec.json --out out/one",
                                 "hardyt rtl --channels 192 --lanes 4 --tanh pwl --affine channel --out out/pwl",
                                 "hardyt rtl --channels 8 --lanes 8 --in-bits 16 --tanh threshold --out out/thr",
                                 "hardyt rtl --core layernorm --channels 96 --lanes 8 --out out/ln",
                                 "hardyt rtl out/convert --engine --lanes 8 --out out/engine"])
    p.add_argument("source", nargs="?", metavar="SPEC.json|CONVERTED_DIR",
                   help="a layer spec file, or a directory written by `hardyt convert`")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--layers", nargs="+", metavar="NAME", help="CONVERTED_DIR: 'all' (default) or layer names")
    p.add_argument("--name", help="top module / file name (default: the spec's name)")
    p.add_argument("--engine", action="store_true",
                   help="CONVERTED_DIR: one DyT engine for every layer, its tables loaded at run time "
                        "(Verilog, a coefficient image per layer, manifest); --lanes sets its lanes")
    g = p.add_argument_group("flags form (no SOURCE)")
    g.add_argument("--core", choices=("dyt", "layernorm"), help="core kind (default dyt)")
    g.add_argument("--channels", type=int, help="channels per token C")
    g.add_argument("--lanes", type=int, help="channels per beat P (default 1)")
    g.add_argument("--in-bits", type=int, help="signed input width (default 8)")
    g.add_argument("--out-bits", type=int, help="signed output width (default 8)")
    g.add_argument("--tanh", choices=TANH_KINDS, help="tanh kind (default lut)")
    g.add_argument("--segments", type=int, help="pwl segments, a power of two (default 16)")
    g.add_argument("--drop-bits", type=int, help="lut: low bits of |x| dropped from the index (default 0)")
    g.add_argument("--affine", choices=("folded", "channel"), help="affine mode (default folded)")
    g.add_argument("--alpha", type=float, help="alpha per input LSB (default 2 / 2**(in_bits-1): tanh(2) at full-scale input)")
    g.add_argument("--seed", type=int, metavar="S", help="seed of the random gamma/beta (default 0)")
    p.set_defaults(func=run)


def _flag_spec(args):
    used = {k: getattr(args, k) for k in _FLAG_DEFAULTS if getattr(args, k) is not None}
    if args.channels is None:
        raise HardytError("give a SPEC.json, a CONVERTED_DIR, or --channels C (and other flags) to describe a core")
    o = _FLAG_DEFAULTS | used
    if o["core"] == "layernorm":
        extra = sorted(set(used) & {"tanh", "segments", "drop_bits", "affine", "alpha"})
        if extra:
            raise HardytError(f"--core layernorm takes no {', '.join('--' + k.replace('_', '-') for k in extra)}")
    return random_spec(channels=args.channels, name=args.name or o["core"], **o)


def run(args) -> int:
    flags = [k for k in _FLAG_DEFAULTS if getattr(args, k) is not None] + (["channels"] if args.channels else [])
    if args.engine:
        if args.source is None:
            raise HardytError("--engine needs a CONVERTED_DIR (`hardyt convert --out`)")
        bad = [f for f in flags if f != "lanes"]
        if bad:
            raise HardytError(f"--engine takes its layers from {args.source}; --{bad[0].replace('_', '-')} does not apply")
    elif args.source is None:
        cores = emit_spec(_flag_spec(args), args.out, args.name or (args.core or "dyt"))
    elif flags:
        raise HardytError(f"--{flags[0].replace('_', '-')} describes a core from flags; it cannot be combined "
                          f"with {args.source}")
    if args.engine or args.source is not None:
        cores = emit_cores(args.source, from_args(EmitConfig, args))
    for m in cores.manifests:
        print(summary(m))
    return 0
