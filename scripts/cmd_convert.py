"""``hardyt convert``: LayerNorm → calibrated fixed-point DyT for a trained ViT (:func:`hardyt.flow.convert_model`)."""
from __future__ import annotations

import sys

from hardyt.flow.convert import convert_model
from hardyt.flow.options import ConvertConfig, from_args
from hardyt.flow.tanh import TANH_KINDS

from .flags import add_model_flags, command_parser, flag_errors

EXAMPLES = [
    "hardyt convert --out out/convert                      # the bundled ViT on Fashion-MNIST",
    "hardyt convert vit.safetensors --data photos/ --calib-size all --out out/vit",
    "hardyt convert hf_vit_dir --mean 0.5 0.5 0.5 --std 0.5 0.5 0.5 --tanh pwl --out out/hf",
    "hardyt convert --max-drop 0.3 --val-size 5000 --out out/partial   # keep the LayerNorms that cost accuracy",
    'torchrun --nproc-per-node 2 "$(command -v hardyt)" convert --out out/convert',
]


def add_parser(sub):
    p = command_parser(sub, "convert", help="replace every LayerNorm of a trained ViT by calibrated fixed-point DyT",
                       description="Calibrate DyT layers in place of a trained ViT's LayerNorms (labels unused), "
                                   "fold gamma/beta into the next Linear, quantize to the hardware's fixed point, "
                                   "evaluate LayerNorm / DyT float / DyT fixed on the test set and write the "
                                   "converted checkpoint, one DyT spec per layer and a report.",
                       examples=EXAMPLES)
    add_model_flags(p, checkpoint_help="timm-format .safetensors/.pth or a Hugging Face directory (default: the "
                                       "bundled Fashion-MNIST ViT)")
    g = p.add_argument_group("fixed-point format")
    g.add_argument("--in-bits", type=int, default=8, help="DyT input code width (default: 8)")
    g.add_argument("--out-bits", type=int, default=8, help="tanh output width (default: 8)")
    g.add_argument("--tanh", choices=TANH_KINDS, default="lut", help="fixed-point tanh kind (default: lut)")
    g.add_argument("--tanh-range", choices=("layer", "full"), default="layer",
                   help="tanh output format: 'layer' spans tanh(alpha*clip), 'full' spans +-1 (default: layer)")
    g.add_argument("--lanes", type=int, help="channels per beat P (default: largest of 8, 4, 2, 1 dividing C)")
    g.add_argument("--layer-formats", metavar="FILE.json",
                   help="per-layer formats overriding --in-bits/--out-bits/--tanh/--lanes: a JSON object "
                        "{layer: {tanh, in_bits, out_bits, affine_out_bits, ...}}, e.g. `hardyt explore`'s "
                        "pick/layer_formats.json")
    g.add_argument("--alpha-shift", type=int, default=0, metavar="K",
                   help="per-channel alpha as shifts 0..K (default 0: one alpha per layer)")
    g.add_argument("--no-fold", action="store_true",
                   help="keep gamma/beta in every DyT layer (channel affine in hardware: one multiply-add per "
                        "lane) instead of folding them into the next Linear")
    g = p.add_argument_group("calibration (docs/conversion.md)")
    g.add_argument("--method", default="reconstruct",
                   choices=("naive", "lstsq", "sequential", "reconstruct"), help="calibration (default: reconstruct)")
    g.add_argument("--steps", type=int,
                   help="reconstruction steps, exactly (default: follow the data and the held-out check within "
                        "--time-budget)")
    g.add_argument("--time-budget", type=float, metavar="S",
                   help="compute seconds of reconstruction (CPU time over torch threads: wall seconds on an idle "
                        "machine; default: 480 when --steps is not given)")
    g.add_argument("--augment", metavar="KINDS",
                   help="reconstruction batches varied by flip, shift, mixup ('+'-joined) or '' for none "
                        "(default: the library's, shift)")
    g.add_argument("--freeze-weights", action="store_true",
                   help="keep every weight besides DyT's as trained (default: they adapt, label-free, toward the "
                        "LayerNorm model; the report says how far each tensor moved)")
    g.add_argument("--no-guard", action="store_true",
                   help="keep the adapted weights even if they do not beat the frozen-weight conversion on the "
                        "held-out check (default: the better of the two is returned, and the report says which)")
    g.add_argument("--self-distill-lr", type=float, metavar="LR",
                   help="learning rate of the weights that adapt (default: the library's; 0: none adapt)")
    g.add_argument("--feature-weight", type=float, metavar="W",
                   help="weight of the per-layer DyT-output vs LayerNorm-output term of the reconstruction "
                        "(default: 10 when weights adapt, 1 when frozen; 0: logit KL only)")
    g.add_argument("--keep", metavar="NAME[,NAME...]",
                   help="LayerNorms to keep as LayerNorm (module names, comma-separated), e.g. what `hardyt explore` "
                        "picked (explore.json: pick.convert)")
    g.add_argument("--max-drop", type=float, metavar="PT",
                   help="keep the fewest LayerNorms such that top-1 drops by at most PT points, judged on the "
                        "validation images (--val-size, --val-data) or else on the held-out calibration images "
                        "(top-1 agreement with the LayerNorm model); the test images are only reported")
    g.add_argument("--val-size", type=int, metavar="N",
                   help="N images of --data's test split (drawn with --seed + 1) are the validation --max-drop "
                        "decides on; the rest are the test images reported; with --val-data, N images of it")
    g.add_argument("--val-data", metavar="SPEC",
                   help="a labelled validation set for --max-drop (fashion-mnist, DIR or FILE.npz; its test split)")
    g.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when present); under torchrun each rank "
                                    "takes its share of every calibration batch and rank 0 writes the outputs")
    g = p.add_argument_group("output and checks")
    g.add_argument("--out", default="out/convert", help="output directory (default: out/convert)")
    g.add_argument("--strict", action="store_true",
                   help="a warning (layer SQNR or fixed-vs-float agreement below its floor, or the held-out "
                        "check against the LayerNorm model below its floor) is an error: exit 1, nothing written")
    p.set_defaults(func=run)


def config(args) -> ConvertConfig:
    """The convert step's config for these flags, checked now (before any model is loaded)."""
    command = "hardyt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("hardyt") else None
    with flag_errors():
        c = from_args(ConvertConfig, args, command=command)
        c.library_options()
    return c


def run(args) -> int:
    result = convert_model(config(args), log=lambda line: print(line, flush=True))
    if result is not None:  # None: a torchrun rank other than 0
        print(result.summary())
    return 0
