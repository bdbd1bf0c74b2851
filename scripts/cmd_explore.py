"""``hardyt explore``: the smallest normalization hardware within an accuracy budget (:func:`hardyt.flow.run_explore`)."""
from __future__ import annotations

import sys

from hardyt.flow.explore import DEFAULT_CACHE, run_explore
from hardyt.flow.options import ExploreConfig, from_args
from hardyt.flow.synth import TARGETS

from .flags import add_model_flags, add_sweep_flags, command_parser


def add_parser(sub):
    p = command_parser(sub, "explore", help="the smallest normalization hardware within an accuracy budget",
                       description="Search per-layer choices (DyT at 6/8/10-bit LUT, 12-bit PWL or 8/10/12/16-bit "
                                   "threshold tanh, or "
                                   "LayerNorm) for the Pareto front of accuracy against LUT+FF, on the conversions "
                                   "`hardyt convert` makes (weights adapting, some LayerNorms kept; Dask jobs), with "
                                   "resources from synthesis runs (on Dask), every core at least as fast as the "
                                   "all-LayerNorm design's slowest, and accuracy from the fixed-point emulation on "
                                   "a validation split; pick the smallest configuration within --max-drop, "
                                   "reproducible with `hardyt convert --keep ... --layer-formats ...`.",
                       examples=["hardyt explore --max-drop 0.3 --out out/explore     # the bundled ViT, ECP5",
                                 "hardyt explore out/convert --max-drop 1 --target xilinx --workers 2",
                                 "hardyt rtl out/explore/pick --out out/pick_rtl   # then emit the pick"])
    add_model_flags(p, checkpoint_help="a checkpoint as for `hardyt convert`, or a `hardyt convert` output (its "
                                       "source checkpoint and conversion options are used); default: the bundled ViT",
                    eval_help="test images the pick is measured on (default: all the rest)")
    g = p.add_argument_group("search")
    g.add_argument("--max-drop", type=float, required=True, metavar="PT",
                   help="accuracy budget: top-1 points below the LayerNorm model on the validation split")
    g.add_argument("--val-size", type=int, default=2000,
                   help="validation images, drawn from the test split; the rest of it is the test set (default 2000)")
    g.add_argument("--conversions", type=int, default=3, metavar="N",
                   help="conversions with adapting weights, as `hardyt convert` makes them: none kept, then the 1, "
                        "2, ... LayerNorms costliest to replace kept (every subset when there are at most N; "
                        "default 3)")
    g.add_argument("--every-family", action="store_true",
                   help="convert every family of --conversions even when none can be cheaper than the default "
                        "conversion's pick (by default a family keeping LayerNorms is converted only when the "
                        "pick within --max-drop costs more than the cheapest LayerNorm core: same pick, fewer "
                        "conversions, a front without those families)")
    g.add_argument("--measure", type=int, default=12, metavar="M",
                   help="configurations measured per conversion along the front the per-layer sensitivities "
                        "predict (default 12)")
    g.add_argument("--beam", type=int, default=3,
                   help="a conversion's format choices are all measured when there are at most layers x choices x "
                        "BEAM of them (default 3)")
    g.add_argument("--steps", type=int, help="reconstruction steps (default: the library's)")
    g.add_argument("--lanes", type=int, help="channels per beat P of every core (default: largest of 8, 4, 2, 1 "
                                             "dividing C)")
    g = p.add_argument_group("synthesis")
    g.add_argument("--target", choices=TARGETS, default="ecp5", help="synthesis target (default ecp5)")
    g.add_argument("--synth-budget", type=synth_budget, metavar="N|all",
                   help="synthesize at most N cores (one of each structure first, then a second of each, ...) or "
                        "all of them; the cost model predicts the rest (default: one core of each structure, so "
                        "every other core differs from a synthesized one in ROM contents only)")
    g.add_argument("--min-fmax", type=float, metavar="MHZ",
                   help="every core of the pick at least this fast (ECP5; default: the slowest LayerNorm core of "
                        "the all-LayerNorm design, so a replacement never slows the system; 0: no floor)")
    g.add_argument("--cache", default=str(DEFAULT_CACHE),
                   help="synthesis cache directory (default $HARDYT_SYNTH_CACHE or ~/.cache/hardyt/synth)")
    add_sweep_flags(p)
    p.add_argument("--out", default="out/explore", help="output directory (default out/explore)")
    p.set_defaults(func=run)


def synth_budget(text: str):
    """``--synth-budget``: a count or ``all``.

    >>> synth_budget("all"), synth_budget("12")
    ('all', 12)
    """
    return text if text == "all" else int(text)


def config(args) -> ExploreConfig:
    command = "hardyt " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("hardyt") else None
    return from_args(ExploreConfig, args, command=command)


def run(args) -> int:
    e, result = run_explore(config(args))
    p, hw = result.pick, e["hw"]
    print(f"pick within {args.max_drop} pt: validation {100 * p['accuracy']:.2f} % (LayerNorm "
          f"{100 * result.reference['validation_accuracy']:.2f} %), test {100 * p['test_accuracy']:.2f} % "
          f"(LayerNorm {100 * result.reference['test_accuracy']:.2f} %), LUT {p['lut']} FF {p['ff']} "
          f"DSP {p['dsp']} BRAM {p['bram']} Fmax {p['fmax_mhz']} MHz; front of {len(result.front)} points; "
          f"{hw['synthesized']} "
          f"synthesized, {hw['cached']} cached, {hw['estimated']} estimated -> {args.out}\n"
          f"reproduce: {p['convert']['command']}")
    return 0
