"""``hardyt synth``: resources (Yosys) and Fmax (nextpnr, ECP5) of emitted cores.

::

    hardyt synth DIR [--target ecp5|xilinx] [--seed K]

``DIR`` is one directory written by ``hardyt rtl``, or one holding a
directory per layer (``hardyt rtl CONVERTED_DIR --out DIR``): then every
layer is synthesized. Each core gets ``synth-<target>.json`` and ``.md``.
"""
from __future__ import annotations

from pathlib import Path

from .emitted import core_dirs


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
    p.set_defaults(func=run)


def summary(r: dict, path: Path) -> str:
    fmax = f", Fmax {r['fmax_mhz']:.1f} MHz" if "fmax_mhz" in r else ""
    return (f"{r['top']} ({r['core']}, C={r['channels']}, P={r['lanes']}) {r['target']}: LUT {r['lut']}, "
            f"FF {r['ff']}, DSP {r['dsp']}, BRAM {r['bram']}, carry {r['carry']}{fmax}, latency {r['latency']} "
            f"cycles -> {path}")


def run(args) -> int:
    from tqdm import tqdm

    from hardyt.hw.synth import synth

    dirs = core_dirs(Path(args.directory))
    for d in tqdm(dirs, desc="synth", unit="core", disable=len(dirs) < 2, leave=False):
        r = synth(d, target=args.target, seed=args.seed)
        tqdm.write(summary(r, d / f"synth-{args.target}.json"))
    return 0
