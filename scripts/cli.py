"""The ``hardyt`` command line: one subcommand per module ``cmd_<name>.py``.

Each subcommand module defines ``add_parser(subparsers)`` which registers its
parser and sets ``func`` to a ``run(args) -> int`` function. Bad input raises
:class:`hardyt.quant.HardytError`; ``main`` prints it as one line and exits 1.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from hardyt.quant.errors import HardytError
from hardyt.quant.version import hardyt_version

# Subcommands, in the order --help lists them.
COMMANDS = ("tanh", "convert", "demo", "train", "rtl", "sim", "prove", "synth", "export", "explore")


class Terminated(KeyboardInterrupt):
    """``SIGTERM`` (a scheduler, ``torchrun`` tearing its group down, ``kill``): unwinds like Ctrl-C, so
    every temporary output is removed (:func:`hardyt.quant.files.atomic_output_dir`)."""


def _terminate(signum, frame):
    raise Terminated


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> Parser:
    parser = Parser(prog="hardyt", description="LayerNorm → Dynamic Tanh for ViTs on FPGAs: "
                    "calibrate, quantize, generate RTL, prove it bit-exact.")
    parser.add_argument("--version", action="version", version=f"hardyt {hardyt_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS:
        importlib.import_module(f"hardyt.scripts.cmd_{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    try:   # the subcommands import torch and amaranth: Ctrl-C there is an interruption too, not a traceback
        parser = build_parser()
    except KeyboardInterrupt:
        print("hardyt: interrupted", file=sys.stderr)
        return 130
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return int(args.func(args) or 0)
    except Terminated:
        print(f"hardyt {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except HardytError as e:
        print(f"hardyt {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hardyt {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"hardyt {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - last resort: one line unless debugging
        if os.environ.get("HARDYT_DEBUG"):
            raise
        print(f"hardyt {args.command}: internal error: {type(e).__name__}: {e} "
              "(set HARDYT_DEBUG=1 for a traceback and please report it)", file=sys.stderr)
        return 3
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
