"""docs/models.md "Bring your own model": every command of both walkthroughs, run as written.

The commands are read from the document (the ``sh`` blocks of each
walkthrough; the timm sidecar from its ``json`` block), so the document and
this test cannot drift apart. The checkpoints and data are tiny stand-ins
with the documented layout: a 224x224 timm ViT with 56-pixel patches and an
ImageFolder of photos of every size; a Hugging Face ViT directory with its
``preprocessor_config.json`` and an ``.npz``.
"""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hardyt.scripts.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def _walkthrough(title: str) -> tuple[list[list[str]], list[str]]:
    """The hardyt command lines and the json blocks of the walkthrough section ``title``."""
    text = DOC.read_text().split("## Bring your own model", 1)[1]
    section = text.split(f"### {title}", 1)[1].split("\n### ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    commands = [shlex.split(line) for lang, body in blocks if lang == "sh" for line in body.splitlines()
                if line.startswith("hardyt ")]
    return commands, [body for lang, body in blocks if lang == "json"]


def _photos(root: Path, per_split=(24, 8)):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_split):
        for i in range(n):
            h, w = (int(v) for v in rng.integers(150, 400, 2))
            mode = ("RGB", "L", "RGBA")[i % 3]
            a = rng.integers(0, 256, (h, w, len(mode)) if mode != "L" else (h, w), dtype=np.uint8)
            path = root / split / f"class{i % 2}" / f"{i}.{'jpg' if mode != 'RGBA' else 'png'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(a, mode).save(path)


def _run(commands, cwd: Path, monkeypatch) -> None:
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert [c[:2] for c in commands] == [["hardyt", "convert"], ["hardyt", "rtl"], ["hardyt", "sim"],
                                         ["hardyt", "synth"]]
    for command in commands:
        assert main(command[1:]) == 0, " ".join(command)


def _synthesized(rtl: Path, layers: int) -> None:
    reports = sorted(rtl.glob("*/synth-ecp5.json"))
    assert len(reports) == layers
    for r in reports:
        res = json.loads(r.read_text())
        assert res["lut"] > 0 and res["fmax_mhz"] > 0


@pytest.mark.slow
def test_timm_walkthrough(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    from hardyt.quant.zoo.vit import VisionTransformer
    commands, (sidecar,) = _walkthrough("A timm checkpoint")
    torch.manual_seed(0)
    vit = VisionTransformer(img_size=224, patch_size=56, in_chans=3, num_classes=2, embed_dim=24, depth=1,
                            num_heads=3, mlp_ratio=2.0)
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(tmp_path / "my_vit.safetensors"))
    (tmp_path / "my_vit.json").write_text(sidecar)
    _photos(tmp_path / "photos")
    _run(commands, tmp_path, monkeypatch)
    report = json.loads((tmp_path / "out" / "my_vit" / "report.json").read_text())
    assert report["preprocessing"]["resize"] == 256 and report["preprocessing"]["size"] == [224, 224]
    assert report["calib_samples"] == 24  # --calib-size 256 of a 24-image training split: all of it
    _synthesized(tmp_path / "out" / "my_vit_rtl", layers=3)


@pytest.mark.slow
def test_hf_walkthrough(tmp_path, monkeypatch):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    commands, _ = _walkthrough("A Hugging Face directory")
    torch.manual_seed(0)
    model = ViTForImageClassification(ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=24,
                                                num_hidden_layers=1, num_attention_heads=3, intermediate_size=48,
                                                num_labels=4))
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    model.save_pretrained(tmp_path / "my_hf_vit")
    processor.save_pretrained(tmp_path / "my_hf_vit")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "my_data.npz", x_train=rng.integers(0, 256, (300, 3, 40, 40), dtype=np.uint8),
             x_test=rng.integers(0, 256, (40, 3, 40, 40), dtype=np.uint8), y_test=rng.integers(0, 4, 40))
    _run(commands, tmp_path, monkeypatch)
    report = json.loads((tmp_path / "out" / "my_hf_vit" / "report.json").read_text())
    assert report["format"] == "hf" and report["calib_samples"] == 256
    # a random stand-in model is far from the 98 % the walkthrough expects: the check says so
    assert report["accuracy_check"]["expected"] == 0.98
    assert len([w for w in report["warnings"] if "the checkpoint records 98.00 %" in w]) == 1
    _synthesized(tmp_path / "out" / "my_hf_vit_rtl", layers=3)
