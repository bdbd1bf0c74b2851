"""Flags several commands share, option errors in the words of the command line, help layout.

- :func:`add_model_flags`: the model and data a command loads (``convert``,
  ``explore``): checkpoint, ``--config``, ``--format``, ``--data``,
  ``--calib-size N|all``, ``--eval-size``, ``--seed`` and the preprocessing
  overrides, in two argument groups.
- :func:`add_seed_flag`: ``--seed`` with the one default, :data:`hardyt.flow.options.SEED`.
- :func:`add_sweep_flags`: ``--scheduler``, ``--workers`` (where tool jobs run).
- :func:`command_parser`: a subcommand parser with an EXAMPLES epilog.
"""
from __future__ import annotations

import argparse
import textwrap
from contextlib import contextmanager

from hardyt.flow.model_source import INTERPOLATIONS
from hardyt.flow.options import SEED
from hardyt.quant.errors import HardytError, SpecError

__all__ = ["flag_errors", "add_sweep_flags", "add_seed_flag", "add_model_flags", "calib_size", "command_parser"]

@contextmanager
def flag_errors():
    """Turn a bad option (a :class:`SpecError` naming a field, e.g. ``self_distill_lr``) into an error
    naming the flag the user typed (``--self-distill-lr``)."""
    try:
        yield
    except SpecError as e:
        raise HardytError(f"--{e.field.replace('_', '-')}: {e.message}") from None


def command_parser(sub, name: str, *, help: str, description: str, examples: list[str]):
    """A subcommand parser whose ``--help`` ends with EXAMPLES (each line a command, ``#`` comments)."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    return sub.add_parser(name, help=help, description=textwrap.fill(description, 88), epilog=epilog,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def calib_size(text: str):
    """``--calib-size``: a positive count or ``all``.

    >>> calib_size("all"), calib_size("64")
    ('all', 64)
    """
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of images or 'all', got {text!r}") from None


def add_seed_flag(p, what: str) -> None:
    """``--seed S`` (default :data:`SEED`, the same for every command)."""
    p.add_argument("--seed", type=int, default=SEED, metavar="S", help=f"{what} (default: {SEED})")


def add_sweep_flags(p) -> None:
    """``--scheduler`` and ``--workers``: where a command's tool jobs run (:mod:`hardyt.hw.tools.sweep`)."""
    g = p.add_argument_group("where tool jobs run (Dask)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="tcp://HOST:PORT of a Dask scheduler for the tool jobs (default: a local in-process cluster)")
    g.add_argument("--workers", type=int, default=1, help="local cluster workers (default 1)")


def add_model_flags(p, *, checkpoint_help: str, eval_help: str = "test images to evaluate on (default: all)") -> None:
    """The model source and data flags (:class:`hardyt.flow.options.ModelSource`), in two groups."""
    g = p.add_argument_group("model and data")
    g.add_argument("checkpoint", nargs="?", metavar="CHECKPOINT", help=checkpoint_help)
    g.add_argument("--config", help="JSON of timm VisionTransformer arguments (default: <checkpoint stem>.json)")
    g.add_argument("--format", choices=("timm", "hf"),
                   help="checkpoint format (default: hf for a directory with config.json, timm for .safetensors/.pth)")
    g.add_argument("--data", default="fashion-mnist",
                   help="fashion-mnist, an ImageFolder DIR or FILE.npz (default: fashion-mnist)")
    g.add_argument("--calib-size", type=calib_size, default=1024, metavar="N|all",
                   help="calibration images from the training split, or 'all' of it; labels unused (default: 1024)")
    g.add_argument("--eval-size", type=int, metavar="N", help=eval_help)
    add_seed_flag(g, "calibration sample and optimizer seed")
    g = p.add_argument_group("model input (default: what the checkpoint records)")
    g.add_argument("--mean", type=float, nargs="+", metavar="M",
                   help="per-channel mean of pixels scaled to [0, 1] (overrides the checkpoint's)")
    g.add_argument("--std", type=float, nargs="+", metavar="S", help="per-channel std (overrides the checkpoint's)")
    g.add_argument("--image-size", type=int, metavar="N", help="model input side in pixels (the center crop)")
    g.add_argument("--crop-pct", type=float, metavar="F",
                   help="resize the shortest edge to image-size / F, then center-crop (timm's crop_pct; 1: no margin)")
    g.add_argument("--interpolation", choices=INTERPOLATIONS, help="resize filter (Pillow's; .npz: torch's)")
    g.add_argument("--expect-accuracy", type=float, metavar="PCT",
                   help="the checkpoint's own test top-1 in percent, compared with what hardyt measures "
                        "(default: the sidecar JSON's test_accuracy, if any)")
