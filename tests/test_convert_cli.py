"""``hardyt convert`` end to end on a tiny timm-layout ViT and an .npz data set.

What the command promises: the files it writes, the keys of ``report.json``,
and accuracies equal to what the Python API (``hardyt.quant.convert`` and
``accuracy``) gives for the same checkpoint, data, calibration sample and seed.
"""
from __future__ import annotations

import json

import numpy as np
import torch
from conftest import TINY_VIT_NORMALIZATION, tiny_vit_files

from hardyt.quant.contract.fixed import signed_range
from hardyt.quant.contract.spec_io import load_spec
from hardyt.quant.outdir import MARKER
from hardyt.scripts.cli import main

CALIB, STEPS, SEED = 32, 5, 3
LAYERS = ["blocks_0_norm1", "blocks_0_norm2", "norm"]
CONVERT_KEYS = {"method", "fixed_point", "formats", "options", "calib_samples", "calib_batches", "layers",
                "kept_layernorms", "folded", "kl", "reconstruction_loss", "seconds",
                "kl_samples", "held_out", "held_out_samples", "weights", "world_size", "device", "fidelity", "warnings",
                "objective", "teacher"}
CLI_KEYS = {"command", "checkpoint", "format", "data", "test_samples", "preprocessing", "accuracy", "accuracy_check",
            "warnings", "convert_seconds", "total_seconds", "splits"}
LAYER_KEYS = {"name", "spec_name", "channels", "alpha", "alpha_shift", "in_scale", "clip", "fit_error", "clip_error",
              "folded", "folded_into", "fold_change", "spec", "alpha_clip", "out_scale", "sqnr_db", "min_in_bits",
              "min_out_bits"}


def _npz(tmp, n=96):
    rng = np.random.default_rng(0)
    path = tmp / "data.npz"
    np.savez(path, x=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, n))
    return path


def _python_api(checkpoint, data) -> tuple[dict, dict]:
    """The accuracies and the conversion report the library gives for what the command was asked."""
    from hardyt.quant import accuracy, convert, load_dataset, load_vit, to_float

    model = load_vit(checkpoint).eval()
    x_train, _ = load_dataset(data, "train", **TINY_VIT_NORMALIZATION)  # what the sidecar records
    x_test, y_test = load_dataset(data, "test", **TINY_VIT_NORMALIZATION)
    # The command's calibration sample: --calib-size images drawn with --seed, in batches of 64.
    pick = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(SEED))[:CALIB]
    converted, report = convert(model, list(x_train[pick].split(64)), fixed_point=True, steps=STEPS, seed=SEED)
    acc = {"ln_float": accuracy(model, x_test, y_test), "dyt_float": accuracy(to_float(converted), x_test, y_test),
           "dyt_fixed": accuracy(converted, x_test, y_test)}
    return acc, report


def test_convert_writes_what_it_promises(tmp_path, monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    out = tmp_path / "out"
    checkpoint, data = tiny_vit_files(tmp_path), _npz(tmp_path)
    rc = main(["convert", str(checkpoint), "--data", str(data), "--calib-size", str(CALIB), "--steps", str(STEPS),
               "--seed", str(SEED), "--out", str(out)])
    assert rc == 0

    files = {"model.safetensors", "config.json", "report.json", "report.md", "alpha.png", "sqnr.png", MARKER}
    files |= {f"{n}{ext}" for n in LAYERS for ext in (".spec.json", ".inputs.npz")}
    assert {p.name for p in out.iterdir()} == files  # nothing else, no temporary left behind
    for f in files:
        assert (out / f).stat().st_size > 0, f

    report = json.loads((out / "report.json").read_text())
    assert set(report) == CONVERT_KEYS | CLI_KEYS
    assert set(report["accuracy"]) == {"ln_float", "dyt_float", "dyt_fixed"}
    assert report["calib_samples"] == CALIB and report["test_samples"] == 96
    assert report["options"]["steps"] == STEPS and report["options"]["seed"] == SEED
    assert [layer["spec_name"] for layer in report["layers"]] == LAYERS
    assert all(set(layer) == LAYER_KEYS for layer in report["layers"])

    acc, api_report = _python_api(checkpoint, data)
    assert report["accuracy"] == acc
    assert [layer["spec"] for layer in report["layers"]] == [layer["spec"] for layer in api_report["layers"]]

    for layer in report["layers"]:
        spec = load_spec(out / f"{layer['spec_name']}.spec.json")
        assert spec.to_dict() == layer["spec"] and spec.in_bits == 8
        x = np.load(out / f"{layer['spec_name']}.inputs.npz")["x"]
        assert x.dtype == np.int64 and x.shape[1] == spec.channels and 100 <= x.shape[0] <= 1000
        lo, hi = signed_range(spec.in_bits)
        assert lo <= x.min() and x.max() <= hi  # codes the core accepts

    from safetensors.torch import load_file
    state = load_file(str(out / "model.safetensors"))
    assert "blocks.0.norm1.alpha" in state and "blocks.0.norm1.weight" not in state  # folded
    config = json.loads((out / "config.json").read_text())
    assert sorted(config["dyt_layers"]) == ["blocks.0.norm1", "blocks.0.norm2", "norm"]
    assert "| DyT, fixed point" in (out / "report.md").read_text()
    assert report["world_size"] == 1 and report["device"] == "cpu"
    assert report["weights"]["adapted"] == "all" and report["weights"]["max_change"] > 0
    assert "Weights besides DyT's: " in (out / "report.md").read_text()
    assert set(report["fidelity"]) >= {"cosine", "kl", "top1_agreement", "sqnr_floor_db"}
    assert all(layer["sqnr_db"] >= report["fidelity"]["sqnr_floor_db"] for layer in report["layers"])


def test_no_fold_keeps_channel_affine_and_the_engine_takes_it(tmp_path, monkeypatch):
    """--no-fold: every layer keeps gamma/beta (channel affine specs); the DyT engine serves them."""
    monkeypatch.setenv("TQDM_DISABLE", "1")
    out = tmp_path / "out"
    checkpoint, data = tiny_vit_files(tmp_path), _npz(tmp_path)
    assert main(["convert", str(checkpoint), "--data", str(data), "--calib-size", str(CALIB), "--steps", "2",
                 "--no-fold", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["options"]["fold"] is False and report["folded"] == 0
    assert all(load_spec(out / f"{n}.spec.json").affine.mode == "channel" for n in LAYERS)
    assert main(["rtl", str(out), "--engine", "--out", str(tmp_path / "eng")]) == 0
    manifest = json.loads((tmp_path / "eng" / "dyt_engine.json").read_text())
    assert [lay["affine"] for lay in manifest["layers"]] == ["channel"] * 3 and manifest["latency"] == 5
