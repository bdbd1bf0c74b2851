"""``hardyt export``: a converted model as ONNX (float DyT) or QONNX (DyT in the hardware's integers).

::

    hardyt export CONVERTED_DIR --format onnx --out model.onnx            # onnxruntime runs it
    hardyt export CONVERTED_DIR --format qonnx --out model_qonnx.onnx     # FINN's input (docs/export.md)
    hardyt export CONVERTED_DIR --format qonnx --layer blocks.0.norm1 --out layer.onnx   # codes in, codes out
"""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.errors import HardytError


def add_parser(sub):
    p = sub.add_parser("export", help="export a converted model as ONNX or QONNX (for FINN)",
                       description="Write a `hardyt convert` output as ONNX with float DyT, or as QONNX with every "
                                   "DyT layer in the hardware's integer arithmetic (MultiThreshold nodes), the rest "
                                   "float; or one DyT layer alone, integer codes in and out.")
    p.add_argument("converted", metavar="CONVERTED_DIR", help="a directory written by `hardyt convert`")
    p.add_argument("--format", choices=("onnx", "qonnx"), required=True, help="onnx: float DyT; qonnx: integer DyT")
    p.add_argument("--layer", metavar="NAME", help="qonnx only: export this DyT layer alone (module name, e.g. "
                   "blocks.0.norm1, or its spec name blocks_0_norm1)")
    p.add_argument("--batch", type=int, default=1,
                   help="qonnx: images (or, with --layer, tokens) per inference; QONNX and FINN need a static "
                        "shape (default 1). onnx: the batch size is dynamic")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="output file (written atomically)")
    p.set_defaults(func=run)


def _layer_spec(conv, name: str):
    for module_name, spec in conv.specs.items():
        if name in (module_name, spec.name):
            return spec
    kept = " (a kept LayerNorm, not a DyT layer)" if name in conv.kept else ""
    raise HardytError(f"--layer {name}: no such DyT layer in {conv.directory}{kept}; layers: "
                      f"{', '.join(conv.specs)}")


def run(args) -> int:
    from hardyt.quant.export import float_onnx, layer_qonnx, load_converted, qonnx_model, save_model

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
        spec = _layer_spec(conv, args.layer)
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
