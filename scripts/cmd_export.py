"""``hardyt export``: a converted model as ONNX (float DyT), QONNX (DyT in the hardware's integers) or hls4ml projects.

See :func:`hardyt.flow.export_model`, :func:`hardyt.flow.export.export_hls4ml` and docs/export.md.
"""
from __future__ import annotations

from hardyt.flow.export import export_hls4ml, export_model
from hardyt.flow.options import ExportConfig, from_args

from .flags import command_parser


def add_parser(sub):
    p = command_parser(sub, "export", help="export a converted model as ONNX, QONNX (for FINN) or hls4ml projects",
                       description="Write a `hardyt convert` output as ONNX with float DyT, or as QONNX with every "
                                   "DyT layer in the hardware's integer arithmetic (MultiThreshold nodes), the rest "
                                   "float; or one DyT layer alone, integer codes in and out; or as hls4ml projects "
                                   "(one per DyT layer and one for the layer set, integer codes in and out; needs "
                                   "pip install 'hardyt[hls4ml]').",
                       examples=["hardyt export out/convert --format onnx --out model.onnx   # onnxruntime runs it",
                                 "hardyt export out/convert --format qonnx --out model_qonnx.onnx   # FINN's input",
                                 "hardyt export out/convert --format qonnx --layer blocks.0.norm1 --out layer.onnx",
                                 "hardyt export out/convert --format hls4ml --check --out out/hls4ml"])
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


def run(args) -> int:
    if args.format == "hls4ml":
        report = export_hls4ml(args.converted, from_args(ExportConfig, args))
        for path, entry in report["projects"].items():
            checked = f"; C simulation = golden model on {entry['elements']:,} elements" if args.check else ""
            print(f"{path}: hls4ml {report['backend']} project, {len(entry['layers'])} DyT layer(s){checked}")
        return 0
    e = export_model(args.converted, from_args(ExportConfig, args))
    ops = sorted({n.op_type for n in e.model.graph.node})
    print(f"{e.path}: {e.what}, {e.kept} LayerNorm kept; {len(e.model.graph.node)} nodes ({', '.join(ops)})")
    return 0
