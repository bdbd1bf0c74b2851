"""``hardyt prove``: formal proofs of emitted cores' stream properties (:func:`hardyt.flow.prove`).

DIR is one directory written by ``hardyt rtl`` (a DyT core, a LayerNorm core
or a DyT engine) or a ``hardyt rtl`` output of a converted model (one
subdirectory per layer, each a Dask job of its own). Each core's results go
to ``prove.json`` beside its manifest. Exits 1 when a property fails (the
counterexample trace's path is printed) or is not decided.
"""
from __future__ import annotations

from hardyt.flow.options import ProveConfig, from_args
from hardyt.flow.prove import prove, report_lines
from hardyt.quant.errors import HardytError

from .flags import add_sweep_flags, command_parser

#: The properties (hardyt.hw.formal.prove.PROPERTIES), listed here so that parsing imports no HDL.
PROPERTY_NAMES = ("axis", "conservation", "drain", "latency", "token_bank", "load_isolation", "bad_frame")


def add_parser(sub):
    p = command_parser(sub, "prove", help="prove emitted cores' AXI4-Stream, conservation and latency properties "
                                          "(SymbiYosys)",
                       description="Prove, with SymbiYosys on the emitted Verilog as it is, the AXI4-Stream rules "
                                   "on m_axis, beat conservation, drain and latency of every core in DIR (and a "
                                   "DyT engine's bank properties); write prove.json per core.",
                       examples=["hardyt prove out/rtl                      # one core: every property",
                                 "hardyt prove out/layers --workers 2       # every layer of a `hardyt rtl` output",
                                 "hardyt prove out/engine --property bad_frame"])
    p.add_argument("dir", metavar="DIR", help="a `hardyt rtl` output: one core, or one subdirectory per layer")
    g = p.add_argument_group("proofs")
    g.add_argument("--property", action="append", choices=PROPERTY_NAMES, metavar="NAME",
                   help=f"prove only this property (repeatable; default every one the core has: "
                        f"{', '.join(PROPERTY_NAMES)})")
    g.add_argument("--timeout", type=float, default=600.0, help="seconds per SymbiYosys task (default 600)")
    g.add_argument("--keep", action="store_true", help="keep every task's work directory (DIR/formal/)")
    add_sweep_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    r = prove(args.dir, from_args(ProveConfig, args))
    for name, result in r.results.items():
        for line in report_lines(name, result):
            print(line, flush=True)
    for name, error in r.errors.items():
        print(f"{name}: ERROR: {error}", flush=True)
    if r.failed:
        raise HardytError(f"{r.root}: a property failed or was not decided in {len(r.failed)} of "
                          f"{len(r.results) + len(r.errors)} cores: {', '.join(r.failed)} (counterexample traces above)")
    return 0
