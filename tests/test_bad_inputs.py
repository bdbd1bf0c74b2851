"""Every ``hardyt`` subcommand against a table of bad inputs.

For each case: non-zero exit, exactly one line on stderr that names the
problem (file, key, field or value), no Python traceback, and nothing
half-written in the output directory. Progress bars are disabled
(``TQDM_DISABLE``) so that stderr holds only what the user must read.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from conftest import tiny_vit_files

HARDYT = [sys.executable, "-m", "hardyt.scripts.cli"]
MARKER = "pwned.txt"


class _RunsCode:
    """Unpickling this runs a shell command: a checkpoint that must never load."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _npz(tmp: Path, x, y) -> Path:
    path = tmp / "calib.npz"
    np.savez(path, x=x, y=y)
    return path


def _spec_json(tmp: Path, **change) -> Path:
    from hardyt.quant import DyTSpec, build_lut
    spec = DyTSpec(channels=8, lanes=2, in_bits=8, in_scale=0.05, alpha=0.5,
                   tanh=build_lut(8, 8, 0.025)).to_dict()
    spec.update(change)
    path = tmp / "layer.spec.json"
    path.write_text(json.dumps(spec))
    return path


RTL = ["rtl", "--channels", "8", "--lanes", "2", "--in-bits", "8", "--out-bits", "8",
       "--tanh", "lut", "--affine", "folded", "--alpha", "0.02"]


@dataclass
class Case:
    name: str
    command: str                          # the subcommand exercised
    argv: Callable[[Path], list]          # tmp -> arguments after `hardyt`
    names: str                            # regex the error line must match
    out: bool = True                      # the case gets `--out tmp/out` appended

    def __str__(self):
        return self.name


def _pickle_pth(t):
    (t / "evil.pth").write_bytes(pickle.dumps(_RunsCode(t / MARKER)))
    return ["convert", str(t / "evil.pth"), "--calib-size", "8"]


def _truncated(t):
    p = tiny_vit_files(t)
    p.write_bytes(p.read_bytes()[:300])
    return ["convert", str(p), "--calib-size", "8"]


def _not_checkpoint(t):
    (t / "notes.pth").write_text("these are my notes, not a checkpoint\n")
    return ["convert", str(t / "notes.pth"), "--calib-size", "8"]


def _emitted_without(t, what):
    """An emitted core directory, then a file inside it removed or damaged."""
    from hardyt.hw.emission.emit import emit
    from hardyt.quant import DyTSpec, build_lut
    d = t / "core"
    manifest = Path(emit(DyTSpec(channels=4, lanes=2, in_bits=6, in_scale=0.1, alpha=0.5,
                                 tanh=build_lut(6, 6, 0.05)), d))
    if what == "mem":
        for m in json.loads(manifest.read_text())["mems"]:
            (d / m).unlink()
    elif what == "manifest":
        manifest.unlink()
    return d


CASES = [
    Case("missing checkpoint", "convert", lambda t: ["convert", str(t / "nope.safetensors")], r"nope\.safetensors"),
    Case("truncated checkpoint", "convert", _truncated, r"vit\.safetensors"),
    Case("not a checkpoint", "convert", _not_checkpoint, r"notes\.pth"),
    Case("pickle that runs code", "convert", _pickle_pth, r"evil\.pth"),
    Case("missing key", "convert", lambda t: ["convert", str(tiny_vit_files(t, "missing_key")), "--calib-size", "8"],
         r"blocks\.0\.norm1\.weight"),
    Case("wrong shape", "convert", lambda t: ["convert", str(tiny_vit_files(t, "shape")), "--calib-size", "8"],
         r"head\.weight"),
    Case("NaN weight", "convert", lambda t: ["convert", str(tiny_vit_files(t, "nan")), "--calib-size", "8"],
         r"(?i)blocks\.0\.mlp\.fc1\.weight.*(nan|finite)|(nan|finite).*blocks\.0\.mlp\.fc1\.weight"),
    Case("empty calibration set", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--data",
                    str(_npz(t, np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64)))],
         r"(?i)calib\.npz.*empty|empty.*calib|no (images|samples|calibration)"),
    Case("constant calibration set", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--calib-size", "16", "--data",
                    str(_npz(t, np.full((32, 28, 28), 7, np.uint8), np.zeros(32, np.int64)))],
         r"(?i)constant"),
    Case("npz without x", "convert", lambda t: ["convert", str(tiny_vit_files(t)), "--data",
                                      str(_npz_only_y(t))], r"calib\.npz.*\bx\b|\bx\b.*calib\.npz"),
    Case("no preprocessing recorded", "convert",
         lambda t: ["convert", str(_write_json(tiny_vit_files(t).with_suffix(".json"), {"num_heads": 2}).with_suffix(
             ".safetensors")), "--mean", "0.5"], r"vit\.safetensors.*--std"),
    Case("checkpoint format unknown", "convert", lambda t: ["convert", str(_write(t / "model.onnx", "x"))],
         r"model\.onnx.*--format"),
    Case("calibration size not a number", "convert", lambda t: ["convert", "--calib-size", "many"], r"many"),
    Case("no test images to evaluate", "convert", lambda t: ["convert", "--eval-size", "0"], r"--eval-size"),
    Case("bad config JSON", "convert", lambda t: ["convert", str(tiny_vit_files(t)), "--config", str(_write(t / "c.json", "{nope"))],
         r"c\.json"),
    Case("negative self-distillation rate", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--self-distill-lr", "-1"], r"--self-distill-lr"),
    Case("negative feature weight", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--feature-weight", "-2"], r"--feature-weight: .*-2"),
    Case("negative reconstruction steps", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--steps", "-1"], r"--steps: .*-1"),
    Case("train: zero epochs", "train", lambda t: ["train", "--epochs", "0"], r"--epochs: .*0", out=False),
    Case("train: label smoothing of 1", "train", lambda t: ["train", "--label-smoothing", "1"],
         r"--label-smoothing: .*1", out=False),
    Case("unknown device", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--calib-size", "16", "--device", "tpu"], r"device must be"),
    Case("unknown augmentation", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--augment", "flip+rotate"], r"flip\+rotate"),
    Case("impossible bit width (rtl)", "rtl", lambda t: RTL[:6] + ["0"] + RTL[7:], r"in.bits"),
    Case("output narrower than 2 bits (tanh)", "tanh",
         lambda t: ["tanh", "--kind", "lut", "--in-bits", "8", "--out-bits", "1", "--alpha-scale", "0.02"],
         r"out.bits", out=False),
    Case("NaN alpha (tanh)", "tanh",
         lambda t: ["tanh", "--kind", "pwl", "--in-bits", "8", "--out-bits", "8", "--alpha-scale", "nan"],
         r"(?i)alpha", out=False),
    Case("C not a multiple of P", "rtl", lambda t: RTL[:2] + ["10", "--lanes", "4"] + RTL[5:], r"(?i)channels|lanes"),
    Case("spec from a newer version", "rtl", lambda t: ["rtl", str(_spec_json(t, version=99))], r"(?i)version"),
    Case("spec: tanh table for another width", "rtl", lambda t: ["rtl", str(_spec_json(t, in_bits=10))],
         r"(?i)in_bits|table"),
    Case("truncated spec JSON", "rtl", lambda t: ["rtl", str(_write(t / "s.json", '{"hardyt": "dyt", "vers'))], r"s\.json"),
    Case("output path is a file", "rtl", lambda t: RTL + ["--out", str(_write(t / "taken", "x"))], r"taken", out=False),
    Case("unwritable output directory", "rtl", lambda t: RTL + ["--out", "/proc/hardyt-out"], r"/proc/hardyt-out", out=False),
    Case("unknown option", "rtl", lambda t: RTL + ["--frobnicate", "3"], r"--frobnicate"),
    Case("sim: directory without a manifest", "sim", lambda t: ["sim", str(_mkdir(t / "empty"))], r"empty", out=False),
    Case("sim: ROM file missing", "sim", lambda t: ["sim", str(_emitted_without(t, "mem"))], r"\.mem", out=False),
    Case("synth: manifest missing", "synth", lambda t: ["synth", str(_emitted_without(t, "manifest")), "--target", "ecp5"],
         r"core", out=False),
    Case("synth: unknown target", "synth", lambda t: ["synth", str(_emitted_without(t, None)), "--target", "ice40"],
         r"ice40", out=False),
    Case("layer formats: unknown key", "convert",
         lambda t: ["convert", "--layer-formats", str(_write(t / "f.json", '{"norm": {"in_bitz": 6}}'))],
         r"f\.json.*in_bitz"),
    Case("layer formats: a layer the model lacks", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--calib-size", "8", "--steps", "1",
                    "--layer-formats", str(_write(t / "f.json", '{"blocks.9.norm1": {"in_bits": 6}}'))],
         r"blocks\.9\.norm1"),
    Case("keep: a LayerNorm the model lacks", "convert",
         lambda t: ["convert", str(tiny_vit_files(t)), "--calib-size", "8", "--steps", "1", "--keep", "nope.norm"],
         r"nope\.norm"),
    Case("explore: negative budget", "explore", lambda t: ["explore", "--max-drop", "-1"], r"--max-drop"),
    Case("explore: no conversion", "explore", lambda t: ["explore", "--max-drop", "1", "--conversions", "0"],
         r"--conversions"),
    Case("explore: negative Fmax floor", "explore", lambda t: ["explore", "--max-drop", "1", "--min-fmax", "-5"],
         r"--min-fmax"),
    Case("explore: scheduler not an address", "explore",
         lambda t: ["explore", "--max-drop", "1", "--scheduler", "farm-node"], r"--scheduler.*farm-node"),
    Case("export: not a converted directory", "export",
         lambda t: ["export", str(_mkdir(t / "plain")), "--format", "onnx", "--out", str(t / "m.onnx")],
         r"plain", out=False),
]


def _write_json(path: Path, data) -> Path:
    return _write(path, json.dumps(data))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _npz_only_y(t: Path) -> Path:
    path = t / "calib.npz"
    np.savez(path, y=np.zeros(4, np.int64))
    return path


def test_table_is_broad():
    assert len(CASES) >= 15
    assert len({c.name for c in CASES}) == len(CASES)


def test_every_subcommand_is_covered():
    from hardyt.scripts.cli import COMMANDS
    covered = {c.command for c in CASES}
    assert set(COMMANDS) - {"demo"} <= covered, set(COMMANDS) - covered


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_input(case, tmp_path):
    argv = [str(a) for a in case.argv(tmp_path)]
    out = tmp_path / "out"
    if case.out:
        argv += ["--out", str(out)]
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    env.pop("HARDYT_DEBUG", None)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    r = subprocess.run(HARDYT + argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0, f"{case}: exit 0\n{r.stdout}\n{r.stderr}"
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1, f"{case}: expected one line on stderr, got:\n{r.stderr}"
    assert re.search(case.names, lines[0]), f"{case}: error line does not name the problem: {lines[0]}"
    assert "internal error" not in lines[0], lines[0]
    assert not (tmp_path / MARKER).exists(), "unpickling ran code"
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    written = [p for p in after if p not in before]
    assert not any(p.is_relative_to("out") and (tmp_path / p).is_file() for p in written), \
        f"{case}: half-written output: {written}"
    assert not any(p.name.startswith(".") and p.name.endswith(".tmp") for p in after), after
