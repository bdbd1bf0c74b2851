"""``hardyt convert`` with your own model: format detected, preprocessing from the checkpoint, any images."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from PIL import Image

from hardyt.quant import HardytError
from hardyt.scripts import model_input
from hardyt.scripts.cli import main


def _timm_vit(tmp, meta=None, in_chans=3):
    """A tiny timm-layout ViT (32x32 input) and its sidecar JSON (``meta`` besides the config)."""
    from safetensors.torch import save_file

    from hardyt.quant.zoo.vit import VisionTransformer
    cfg = dict(img_size=32, patch_size=8, in_chans=in_chans, num_classes=3, embed_dim=16, depth=1, num_heads=2,
               mlp_ratio=2.0)
    torch.manual_seed(0)
    path = tmp / "vit.safetensors"
    save_file({k: v.contiguous() for k, v in VisionTransformer(**cfg).state_dict().items()}, str(path))
    (tmp / "vit.json").write_text(json.dumps({"config": cfg, **(meta or {})}))
    return path


def _mixed_folder(root, n=12):
    """train/ and test/ ImageFolders of images of every size and mode."""
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "P", "LA"]
    for split in ("train", "test"):
        for i in range(n):
            h, w = (int(v) for v in rng.integers(20, 70, 2))
            mode = modes[i % len(modes)]
            bands = len(Image.new(mode if mode != "P" else "L", (1, 1)).getbands())
            a = rng.integers(0, 256, (h, w, bands) if bands > 1 else (h, w), dtype=np.uint8)
            im = Image.fromarray(a, mode if mode != "P" else "L").convert(mode)
            path = root / split / f"class{i % 3}" / f"{i}.{'jpg' if mode in ('RGB', 'L') and i % 2 else 'png'}"
            path.parent.mkdir(parents=True, exist_ok=True)
            im.save(path)
    return root


def test_detect_format(tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert model_input.detect_format(tmp_path / "hf", None) == "hf"
    assert model_input.detect_format(tmp_path / "m.safetensors", None) == "timm"
    assert model_input.detect_format(tmp_path / "m.pth", None) == "timm"
    assert model_input.detect_format(None, None) == "timm"  # the bundled model
    assert model_input.detect_format(tmp_path / "hf", "timm") == "timm"  # an explicit flag wins
    with pytest.raises(HardytError, match=r"m\.onnx: cannot tell the checkpoint format.*--format timm\|hf"):
        model_input.detect_format(tmp_path / "m.onnx", None)
    with pytest.raises(HardytError, match=r"without config\.json"):
        model_input.detect_format(tmp_path, None)


def test_image_folder_of_mixed_sizes_and_modes_converts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    cfg = {"input_size": [3, 32, 32], "crop_pct": 0.9, "interpolation": "bicubic", "mean": [0.5, 0.4, 0.3],
           "std": [0.2, 0.2, 0.2]}
    ckpt = _timm_vit(tmp_path, {"pretrained_cfg": cfg})
    out = tmp_path / "out"
    rc = main(["convert", str(ckpt), "--data", str(_mixed_folder(tmp_path / "photos")), "--calib-size", "all",
               "--steps", "3", "--std", "0.25", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    pre = report["preprocessing"]
    assert report["format"] == "timm" and report["calib_samples"] == 12 and report["test_samples"] == 12
    assert (pre["mean"], pre["std"], pre["size"], pre["resize"], pre["interpolation"], pre["channels"]) == \
        ([0.5, 0.4, 0.3], [0.25], [32, 32], 35, "bicubic", 3)
    assert pre["sources"] == {"mean": "vit.json pretrained_cfg.mean", "std": "--std",
                              "size": "vit.json pretrained_cfg.input_size", "resize": "vit.json pretrained_cfg.crop_pct",
                              "interpolation": "vit.json pretrained_cfg.interpolation", "rescale": "default: uint8 / 255",
                              "crop_rounding": "default: torchvision center crop", "channels": "model config"}
    # 12 images: 6 held out as the referee, too few for a check that means much, and the report says so
    # (a random stand-in also fails the held-out check); nothing else warns.
    assert report["accuracy_check"] is None
    assert report["warnings"][0].startswith("held-out check: only 6 calibration samples held out")
    assert all(w.startswith("held-out check") for w in report["warnings"])
    assert "preprocessing: mean [0.5, 0.4, 0.3] (vit.json pretrained_cfg.mean), std [0.25] (--std)" in \
        capsys.readouterr().out
    assert "Preprocessing: mean" in (out / "report.md").read_text()


def test_hf_directory_detected_and_preprocessed_from_its_config(tmp_path, monkeypatch):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    monkeypatch.setenv("TQDM_DISABLE", "1")
    torch.manual_seed(0)
    model_dir = tmp_path / "hf"
    ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, num_channels=1, hidden_size=16,
                                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                        num_labels=4)).save_pretrained(model_dir)
    ViTImageProcessor(size={"height": 16, "width": 16}, image_mean=[0.3], image_std=[0.3]).save_pretrained(model_dir)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.integers(0, 256, (40, 3, 20, 20), dtype=np.uint8),
             x_test=rng.integers(0, 256, (16, 3, 20, 20), dtype=np.uint8), y_test=rng.integers(0, 4, 16))
    out = tmp_path / "out"
    assert main(["convert", str(model_dir), "--data", str(tmp_path / "d.npz"), "--calib-size", "32", "--steps", "2",
                 "--expect-accuracy", "97", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["format"] == "hf"
    assert report["preprocessing"]["sources"]["mean"] == "preprocessor_config.json image_mean"
    assert report["preprocessing"]["resize"] == [16, 16] and report["preprocessing"]["channels"] == 1
    check = report["accuracy_check"]
    assert check["expected"] == 0.97 and check["source"] == "--expect-accuracy"
    assert check["gap_pt"] == pytest.approx(100 * (report["accuracy"]["ln_float"] - 0.97))
    others = [w for w in report["warnings"] if not w.startswith("held-out check")]  # a random stand-in
    assert len(others) == 1 and "--expect-accuracy" in others[0]


def test_no_preprocessing_fails_naming_the_flags(tmp_path, capsys):
    ckpt = _timm_vit(tmp_path)
    assert main(["convert", str(ckpt), "--calib-size", "8", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "vit.safetensors: no input normalization recorded" in err
    assert "pass --mean and --std" in err and "--image-size, --crop-pct and --interpolation" in err
    assert not (tmp_path / "out").exists()


def _check_bundled(mean, std, n=1000):
    """LayerNorm top-1 of the bundled ViT on ``n`` Fashion-MNIST test images, fed with ``mean``/``std``."""
    args = argparse.Namespace(checkpoint=None, format=None, config=None, mean=mean, std=std, image_size=None,
                              crop_pct=None, interpolation=None, expect_accuracy=None, data="fashion-mnist",
                              eval_size=n)
    model, fmt, path = model_input.load_model(args)
    pre, expected = model_input.resolve_input(args, model, fmt, path)
    test, idx = model_input.test_set(args, pre)
    measured = model_input.evaluate({"ln": model}, test, idx)["ln"]
    return model_input.accuracy_check(measured, expected, len(idx))


def test_accuracy_gap_warns_when_normalization_is_wrong():
    torch.set_num_threads(1)
    record, warning = _check_bundled(None, None)  # 1000 images, the recorded normalization: agrees with the recorded 90.33 %
    assert record["source"] == "vit_fmnist.json test_accuracy" and record["expected"] == 0.9033
    assert abs(record["gap_pt"]) < 2 and warning is None
    record, warning = _check_bundled([0.5], [0.5])  # deliberately wrong
    assert record["gap_pt"] < -2
    assert warning and "preprocessing" in warning and "records 90.33 % (vit_fmnist.json test_accuracy)" in warning
