"""``hardyt export``: a converted model as ONNX (float DyT) or QONNX (DyT in the hardware's integers).

See :func:`hardyt.flow.export_model` and docs/export.md.
"""
from __future__ import annotations

from hardyt.flow.export import export_model
from hardyt.flow.options import ExportConfig, from_args

from .flags import command_parser


def add_parser(sub):
    p = command_parser(sub, "export", help="export a converted model as ONNX or QONNX (for FINN)",
                       description="Write a `hardyt convert` output as ONNX with float DyT, or as QONNX with every "
                                   "DyT layer in the hardware's integer arithmetic (MultiThreshold nodes), the rest "
                                   "float; or one DyT layer alone, integer codes in and out.",
                       examples=["hardyt export out/convert --format onnx --out model.onnx   # onnxruntime runs it",
                                 "hardyt export out/convert --format qonnx --out model_qonnx.onnx   # FINN's input",
                                 "hardyt export out/convert --format qonnx --layer blocks.0.norm1 --out layer.onnx"])
    p.add_argument("converted", metavar="CONVERTED_DIR", help="a directory written by `hardyt convert`")
    p.add_argument("--format", choices=("onnx", "qonnx"), required=True, help="onnx: float DyT; qonnx: integer DyT")
    p.add_argument("--layer", metavar="NAME", help="qonnx only: export this DyT layer alone (module name, e.g. "
                   "blocks.0.norm1, or its spec name blocks_0_norm1)")
    p.add_argument("--batch", type=int, default=1,
                   help="qonnx: images (or, with --layer, tokens) per inference; QONNX and FINN need a static "
                        "shape (default 1). onnx: the batch size is dynamic")
    p.add_argument("--out", required=True, metavar="FILE.onnx", help="output file (written atomically)")
    p.set_defaults(func=run)


def run(args) -> int:
    e = export_model(args.converted, from_args(ExportConfig, args))
    ops = sorted({n.op_type for n in e.model.graph.node})
    print(f"{e.path}: {e.what}, {e.kept} LayerNorm kept; {len(e.model.graph.node)} nodes ({', '.join(ops)})")
    return 0
