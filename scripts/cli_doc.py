"""``docs/cli.md``, generated from the parser: ``python -m hardyt.scripts.cli_doc [--check] [FILE]``.

Every command's ``--help`` as argparse prints it at 100 columns, under a
heading per command. ``--check`` exits 1 (naming the file) when ``FILE``
differs from what the parser gives, which ``tests/test_cli_doc.py`` runs:
a flag added without regenerating the file fails the suite.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .cli import COMMANDS, build_parser

WIDTH = "100"
DEFAULT = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _subparsers(parser: argparse.ArgumentParser) -> dict:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The markdown of ``parser`` (default: the ``hardyt`` parser)."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps to the terminal: fix it so the file does not depend on one
    try:
        parser = parser or build_parser()
        subs = _subparsers(parser)
        lines = ["# The `hardyt` command line", "",
                 "Generated from the parser by `python -m hardyt.scripts.cli_doc` (do not edit by hand; "
                 "`tests/test_cli_doc.py` fails when this file and the parser differ).", "",
                 "```", parser.format_help().rstrip(), "```", ""]
        for name in [c for c in COMMANDS if c in subs] + sorted(set(subs) - set(COMMANDS)):
            lines += [f"## hardyt {name}", "", "```", subs[name].format_help().rstrip(), "```", ""]
        return "\n".join(lines)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hardyt.scripts.cli_doc", description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT, help=f"default: {DEFAULT}")
    ap.add_argument("--check", action="store_true", help="exit 1 if FILE is not what the parser gives")
    a = ap.parse_args(argv)
    text = render()
    if a.check:
        if not a.file.is_file() or a.file.read_text() != text:
            print(f"{a.file}: out of date with the parser; run python -m hardyt.scripts.cli_doc", file=sys.stderr)
            return 1
        return 0
    a.file.write_text(text)
    print(f"wrote {a.file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
