"""docs/cli.md is generated from the parser, and a flag added without regenerating it fails here; and the
command line's start-up (Ctrl-C while it imports the subcommands) stays one line."""
from __future__ import annotations

from hardyt.scripts import cli_doc
from hardyt.scripts.cli import build_parser


def test_cli_md_matches_the_parser():
    assert cli_doc.main(["--check", str(cli_doc.DEFAULT)]) == 0, \
        "docs/cli.md is out of date: run python -m hardyt.scripts.cli_doc"


def test_a_new_flag_is_drift(tmp_path, capsys):
    """The check can fail: the same parser with one more flag renders differently, and --check says so."""
    parser = build_parser()
    sub = cli_doc._subparsers(parser)["sim"]
    sub.add_argument("--brand-new-flag", action="store_true", help="added without regenerating docs/cli.md")
    changed = cli_doc.render(parser)
    assert changed != cli_doc.render() and "--brand-new-flag" in changed
    stale = tmp_path / "cli.md"
    stale.write_text(changed)
    assert cli_doc.main(["--check", str(stale)]) == 1
    assert "out of date with the parser" in capsys.readouterr().err


def test_every_command_has_examples_and_groups():
    for name, p in cli_doc._subparsers(build_parser()).items():
        assert p.epilog and p.epilog.startswith("examples:"), name


def test_ctrl_c_while_the_subcommands_import_is_one_line(monkeypatch, capsys):
    from hardyt.scripts import cli

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert cli.main(["convert", "--help"]) == 130
    assert capsys.readouterr().err == "hardyt: interrupted\n"
