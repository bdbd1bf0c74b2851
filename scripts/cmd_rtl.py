"""``hardyt rtl``: emit Verilog, ``.mem`` ROM files and a manifest for a core.

Three forms::

    hardyt rtl SPEC.json --out DIR                       # one layer spec
    hardyt rtl CONVERTED_DIR [--layers all|NAME...] --out DIR   # every layer -> DIR/<name>/
    hardyt rtl --channels C [--lanes P ...] --out DIR    # a random spec from flags
    hardyt rtl CONVERTED_DIR --engine [--lanes P] --out DIR     # one engine for every layer

Every form writes the spec it used next to the Verilog (``NAME.spec.json``),
so ``hardyt sim DIR`` and ``hardyt synth DIR`` need nothing else.
"""
from __future__ import annotations

import json
from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir
from hardyt.quant.contract.spec_io import load_spec

_FLAG_DEFAULTS = {"lanes": 1, "in_bits": 8, "out_bits": 8, "tanh": "lut", "affine": "folded", "segments": 16,
                  "drop_bits": 0, "alpha": None, "seed": 0, "core": "dyt"}


def add_parser(sub):
    p = sub.add_parser("rtl", help="emit Verilog + .mem ROMs + manifest for a DyT (or LayerNorm) core",
                       description="Generate the AXI4-Stream core of a layer spec, of every layer of a converted "
                                   "model, or of a random spec described by flags.")
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
    g.add_argument("--tanh", choices=("lut", "pwl"), help="tanh kind (default lut)")
    g.add_argument("--segments", type=int, help="pwl segments, a power of two (default 16)")
    g.add_argument("--drop-bits", type=int, help="lut: low bits of |x| dropped from the index (default 0)")
    g.add_argument("--affine", choices=("folded", "channel"), help="affine mode (default folded)")
    g.add_argument("--alpha", type=float, help="alpha per input LSB (default 2 / 2**(in_bits-1): tanh(2) at full-scale input)")
    g.add_argument("--seed", type=int, help="seed of the random gamma/beta (default 0)")
    p.set_defaults(func=run)


def _flag_spec(args):
    used = {k: getattr(args, k) for k in _FLAG_DEFAULTS if getattr(args, k) is not None}
    if args.channels is None:
        raise HardytError("give a SPEC.json, a CONVERTED_DIR, or --channels C (and other flags) to describe a core")
    o = _FLAG_DEFAULTS | used
    name = args.name or o["core"]
    if o["core"] == "layernorm":
        extra = sorted(set(used) & {"tanh", "segments", "drop_bits", "affine", "alpha"})
        if extra:
            raise HardytError(f"--core layernorm takes no {', '.join('--' + k.replace('_', '-') for k in extra)}")
        try:
            from hardyt.quant.contract.layernorm import random_layernorm_spec
        except ModuleNotFoundError as e:
            if e.name != "hardyt.quant.contract.layernorm":
                raise
            raise HardytError("--core layernorm: this hardyt has no LayerNorm core (hardyt.quant.contract.layernorm)") from None
        return random_layernorm_spec(args.channels, o["lanes"], o["in_bits"], o["out_bits"], o["seed"]), name
    from hardyt.hw.cores import random_dyt_spec
    return random_dyt_spec(args.channels, o["lanes"], o["in_bits"], o["out_bits"], tanh=o["tanh"],
                           affine=o["affine"], alpha=o["alpha"], segments=o["segments"],
                           drop_bits=o["drop_bits"], seed=o["seed"], name=name), name


def _converted_specs(directory: Path, layers):
    files = sorted(directory.glob("*.spec.json"))
    if not files:
        raise HardytError(f"{directory}: no *.spec.json layer specs (is it a `hardyt convert` output?)")
    specs = {}
    for f in files:
        spec = load_spec(f)
        specs[spec.name] = spec
    if not layers or layers == ["all"]:
        return list(specs.values())
    unknown = [n for n in layers if n not in specs]
    if unknown:
        raise HardytError(f"{directory}: no layer {', '.join(unknown)}; layers are: {', '.join(specs)}")
    return [specs[n] for n in layers]


def model_order(directory: Path, specs: list) -> list:
    """``specs`` in the model's layer order (``config.json``'s ``dyt_layers`` as ``hardyt convert``
    writes it), else as given."""
    try:
        order = list(json.loads((directory / "config.json").read_text())["dyt_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        return specs
    from hardyt.hw.emit import verilog_name

    # Spec names may be the module names as written to files (blocks_0_norm1 for blocks.0.norm1).
    rank = {verilog_name(n): i for i, n in enumerate(order)} | {n: i for i, n in enumerate(order)}
    return sorted(specs, key=lambda s: rank.get(s.name, len(rank)))


def _engine(args, source: Path) -> Path:
    from hardyt.hw.engine_emit import emit_engine

    if not source.is_dir():
        raise HardytError(f"--engine: {source} is not a converted directory (`hardyt convert --out`)")
    specs = model_order(source, _converted_specs(source, args.layers))
    return emit_engine(specs, Path(args.out), args.name or "dyt_engine", lanes=args.lanes)


def _engine_summary(manifest_path: Path) -> str:
    m = json.loads(manifest_path.read_text())
    layers = m["layers"]
    channel = sum(lay.get("affine") == "channel" for lay in layers)

    def span(key):
        lo, hi = min(lay[key] for lay in layers), max(lay[key] for lay in layers)
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    return (f"{m['name']}: {manifest_path.parent / m['verilog']}, DyT engine for {len(layers)} layers "
            f"({channel} with channel affine; C <= {m['channels']}, P={m['lanes']}, {m['in_bits']}-bit in, "
            f"{m['out_bits']}-bit out), latency {m['latency']} cycles, {len(layers)} coefficient images of "
            f"{span('frame_beats')} x {m['coef_tdata_width']}-bit beats, {span('load_cycles')} cycles to load a layer")


def _summary(manifest_path: Path) -> str:
    m = json.loads(manifest_path.read_text())
    d = manifest_path.parent
    return (f"{m['name']}: {d / m['verilog']} + {len(m['mems'])} .mem ({m['core']}, C={m['channels']}, "
            f"P={m['lanes']}), latency {m['latency']} cycles, s_axis_tdata {m['s_axis_tdata_width']} bits "
            f"({m['lanes']}x{m['in_bits']}), m_axis_tdata {m['m_axis_tdata_width']} bits "
            f"({m['lanes']}x{m['out_bits']})")


def run(args) -> int:
    from hardyt.hw.emit import emit, verilog_name

    out = Path(args.out)
    flags = [k for k in _FLAG_DEFAULTS if getattr(args, k) is not None] + (["channels"] if args.channels else [])
    if args.engine:
        if args.source is None:
            raise HardytError("--engine needs a CONVERTED_DIR (`hardyt convert --out`)")
        bad = [f for f in flags if f != "lanes"]
        if bad:
            raise HardytError(f"--engine takes its layers from {args.source}; --{bad[0].replace('_', '-')} does not apply")
        print(_engine_summary(_engine(args, Path(args.source))))
        return 0
    if args.source is None:
        spec, name = _flag_spec(args)
        manifests = [emit(spec, out, name)]
    else:
        if flags:
            raise HardytError(f"--{flags[0].replace('_', '-')} describes a core from flags; it cannot be combined "
                              f"with {args.source}")
        source = Path(args.source)
        if source.is_dir():
            if args.name:
                raise HardytError("--name names one core; a converted directory emits one per layer")
            # verilog_name keeps a layer's directory inside --out whatever its spec's name holds.
            with atomic_output_dir(out) as tmp:
                names = [emit(spec, tmp / verilog_name(spec.name)).relative_to(tmp)
                         for spec in _converted_specs(source, args.layers)]
            manifests = [out / n for n in names]
        elif source.is_file():
            if args.layers:
                raise HardytError("--layers selects layers of a converted directory, not of one spec file")
            manifests = [emit(load_spec(source), out, args.name)]
        else:
            raise HardytError(f"{source}: no such spec file or converted directory")
    for m in manifests:
        print(_summary(m))
    return 0
