"""``hardyt export``: a converted model as ONNX (float DyT), QONNX (DyT in the hardware's integers) or hls4ml projects.

::

    hardyt export CONVERTED_DIR --format onnx --out model.onnx            # onnxruntime runs it
    hardyt export CONVERTED_DIR --format qonnx --out model_qonnx.onnx     # FINN's input (docs/export.md)
    hardyt export CONVERTED_DIR --format qonnx --layer blocks.0.norm1 --out layer.onnx   # codes in, codes out
    hardyt export CONVERTED_DIR --format hls4ml --out DIR [--layer NAME] [--backend Vitis|Vivado] [--check]
"""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.errors import HardytError


def add_parser(sub):
    p = sub.add_parser("export", help="export a converted model as ONNX, QONNX (for FINN) or hls4ml projects",
                       description="Write a `hardyt convert` output as ONNX with float DyT, or as QONNX with every "
                                   "DyT layer in the hardware's integer arithmetic (MultiThreshold nodes), the rest "
                                   "float; or one DyT layer alone, integer codes in and out; or as hls4ml projects "
                                   "(one per DyT layer and one for the layer set, integer codes in and out; needs "
                                   "pip install 'hardyt[hls4ml]').")
    p.add_argument("converted", metavar="CONVERTED_DIR", help="a directory written by `hardyt convert`")
    p.add_argument("--format", choices=("onnx", "qonnx", "hls4ml"), required=True,
                   help="onnx: float DyT; qonnx: integer DyT; hls4ml: an hls4ml project per DyT layer")
    p.add_argument("--layer", metavar="NAME", help="qonnx, hls4ml: export this DyT layer alone (module name, e.g. "
                   "blocks.0.norm1, or its spec name blocks_0_norm1)")
    p.add_argument("--backend", choices=("Vitis", "Vivado"), help="hls4ml: the hls4ml backend (default Vitis)")
    p.add_argument("--check", action="store_true",
                   help="hls4ml: build each project's C simulation (hls4ml compile(), g++) and compare predict() "
                        "with the golden model on every input code of every channel; any mismatch is an error "
                        "and writes nothing")
    p.add_argument("--batch", type=int, default=1,
                   help="qonnx: images (or, with --layer, tokens) per inference; QONNX and FINN need a static "
                        "shape (default 1). onnx: the batch size is dynamic")
    p.add_argument("--out", required=True, metavar="FILE.onnx|DIR",
                   help="output file (onnx, qonnx) or directory (hls4ml), written atomically")
    p.set_defaults(func=run)


def _layer_spec(specs: dict, directory, name: str, kept=()):
    for module_name, spec in specs.items():
        if name in (module_name, spec.name):
            return spec
    kept = " (a kept LayerNorm, not a DyT layer)" if name in kept else ""
    raise HardytError(f"--layer {name}: no such DyT layer in {directory}{kept}; layers: {', '.join(specs)}")


def _run_hls4ml(args) -> int:
    from hardyt.quant.export import converted_specs
    from hardyt.quant.export.hls4ml_project import require_hls4ml, write_projects

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise HardytError(f"{out}: exists and is not a directory; --format hls4ml writes a directory")
    require_hls4ml()
    specs = converted_specs(args.converted)
    chosen = [_layer_spec(specs, args.converted, args.layer)] if args.layer else list(specs.values())
    report = write_projects(chosen, out, backend=args.backend or "Vitis", layer_set=not args.layer,
                            check=args.check)
    for path, entry in report["projects"].items():
        checked = f"; C simulation = golden model on {entry['elements']:,} elements" if args.check else ""
        print(f"{path}: hls4ml {report['backend']} project, {len(entry['layers'])} DyT layer(s){checked}")
    return 0


def run(args) -> int:
    from hardyt.quant.export import float_onnx, layer_qonnx, load_converted, qonnx_model, save_model

    if args.format == "hls4ml":
        return _run_hls4ml(args)
    if args.backend or args.check:
        raise HardytError(f"--{'backend' if args.backend else 'check'} applies to --format hls4ml")
    out = Path(args.out)
    if args.batch < 1:
        raise HardytError(f"--batch must be >= 1, got {args.batch}")
    if args.layer and args.format != "qonnx":
        raise HardytError("--layer exports one layer in integer codes: it needs --format qonnx")
    if out.is_dir():
        raise HardytError(f"{out}: is a directory; --out takes a file name")
    if not out.parent.is_dir():
        why = "is not a directory" if out.parent.exists() else "does not exist"
        raise HardytError(f"{out}: cannot write: {out.parent} {why}")
    conv = load_converted(args.converted)
    if args.layer:
        spec = _layer_spec(conv.specs, conv.directory, args.layer, conv.kept)
        model, what = layer_qonnx(spec, rows=args.batch), f"layer {args.layer} (INT{spec.in_bits} codes in, " \
                                                            f"INT{spec.out_bits} codes out)"
    elif args.format == "qonnx":
        model, what = qonnx_model(conv, batch=args.batch), f"{len(conv.specs)} DyT layers as QONNX integer nodes"
    else:
        model, what = float_onnx(conv), f"{len(conv.specs)} DyT layers in float"
    save_model(model, out)
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"{out}: {what}, {len(conv.kept)} LayerNorm kept; {len(model.graph.node)} nodes ({', '.join(ops)})")
    return 0
