"""``hardyt sim``: prove emitted cores bit-exact against the golden model (:func:`hardyt.flow.simulate`).

DIR is one directory written by ``hardyt rtl`` or a ``hardyt rtl`` output of
a converted model (one subdirectory per layer, each simulated as a Dask job
of its own). The Verilog and ``.mem`` files are simulated as they are;
expected values come from the spec in each manifest. Exits 1 on any
mismatch, protocol violation, throughput or latency miss.
"""
from __future__ import annotations

from hardyt.flow.options import SimConfig, from_args
from hardyt.flow.sim import VECTORS, report_lines, simulate
from hardyt.quant.errors import HardytError

from .flags import add_seed_flag, add_sweep_flags, command_parser


def add_parser(sub):
    p = command_parser(sub, "sim", help="simulate emitted RTL (Icarus/Verilator, cocotb) and check it bit-exact",
                       description="Simulate the Verilog and .mem files of an emitted core (or of every layer "
                                   "of a `hardyt rtl` output) and compare every output with the golden model.",
                       examples=["hardyt sim out/rtl                                  # cocotb on Icarus",
                                 "hardyt sim out/rtl --simulator verilator --mode bulk --vectors 1000000",
                                 "hardyt sim out/layers --activations out/convert --workers 2",
                                 "hardyt sim out/engine --activations out/convert  # a DyT engine, layer by layer",
                                 "hardyt sim out/rtl --exhaustive --workers 2     # every input of a DyT core"])
    p.add_argument("dir", metavar="DIR", help="a `hardyt rtl` output: one core, or one subdirectory per layer")
    g = p.add_argument_group("simulation")
    g.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus", help="default icarus")
    g.add_argument("--mode", choices=("cocotb", "bulk"), default="cocotb",
                   help="cocotb: Python drivers and scoreboard, every test (default); "
                        "bulk: stimulus and expected values from memory files, checked in HDL (fast)")
    g.add_argument("--vectors", type=int, metavar="N",
                   help=f"cocotb: random elements, on top of the exhaustive and corner tests (default "
                        f"{VECTORS['cocotb']}); bulk: elements in all, at least (default {VECTORS['bulk']})")
    add_seed_flag(g, "stimulus and pause seed")
    g.add_argument("--activations", metavar="FILE.npz|CONVERTED_DIR",
                   help="real input codes (a <layer>.inputs.npz, or the `hardyt convert` directory holding "
                        "one per layer): cocotb mode sends the first N elements, bulk mode all of them")
    g.add_argument("--waves", action="store_true", help="dump waveforms (paths printed)")
    g.add_argument("--exhaustive", action="store_true",
                   help="DyT cores: every input code on every channel (2**in_bits x C elements, up to 16-bit "
                        "inputs) in Verilator bulk mode, in parts over the Dask workers (bulk mode already "
                        "includes it when it fits 4M elements)")
    add_sweep_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    r = simulate(args.dir, from_args(SimConfig, args))
    for name, result in r.results.items():
        for line in report_lines(name, result):
            print(line, flush=True)
    for name, error in r.errors.items():
        print(f"{name}: ERROR: {error}", flush=True)
    failed = r.failed
    if failed and len(r.results) + len(r.errors) == 1:
        raise HardytError(f"{r.root}: not bit-exact or failed a check (see above)")
    if failed:
        raise HardytError(f"{r.root}: {len(failed)} of {len(r.results) + len(r.errors)} cores not bit-exact or "
                          f"failed a check: {', '.join(failed)}")
    return 0
