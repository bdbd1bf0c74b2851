"""Datasets without torchvision: .npz, ImageFolder, IDX (Fashion-MNIST)."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from hardyt.quant import HardytError, load_dataset
from hardyt.quant.zoo import data as data_mod
from hardyt.quant.zoo.data import NORMALIZATION

MEAN, STD = NORMALIZATION["mean"][0], NORMALIZATION["std"][0]


def _rng():
    return np.random.default_rng(0)


def test_npz_uint8_hw(tmp_path):
    x = _rng().integers(0, 256, (6, 5, 7), dtype=np.uint8)
    y = np.arange(6) % 3
    np.savez(tmp_path / "d.npz", x=x, y=y)
    xt, yt = load_dataset(tmp_path / "d.npz", "test")
    assert xt.shape == (6, 1, 5, 7) and xt.dtype == torch.float32 and yt.dtype == torch.int64
    np.testing.assert_allclose(xt.numpy()[:, 0], (x / 255.0 - MEAN) / STD, rtol=1e-5, atol=1e-6)
    assert yt.tolist() == y.tolist()


def test_npz_float_nchw_custom_normalization_and_splits(tmp_path):
    x = _rng().random((4, 3, 2, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 2, 3]), x=x[:2], y=np.array([5, 6]))
    xt, yt = load_dataset(tmp_path / "d.npz", "train", mean=[0.5, 0.5, 0.0], std=[0.25, 0.5, 1.0])
    np.testing.assert_allclose(xt[:, 0].numpy(), (x[:, 0] - 0.5) / 0.25, rtol=1e-6)
    np.testing.assert_allclose(xt[:, 2].numpy(), x[:, 2], rtol=1e-6)
    assert yt.tolist() == [0, 1, 2, 3]
    assert load_dataset(tmp_path / "d.npz", "test")[1].tolist() == [5, 6]  # no x_test: falls back to x


def test_limit_is_a_fixed_subset(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((50, 2, 2), np.uint8), y=np.arange(50))
    a = load_dataset(tmp_path / "d.npz", "test", 10)[1]
    assert len(a) == 10 and len(set(a.tolist())) == 10
    assert torch.equal(a, load_dataset(tmp_path / "d.npz", "test", 10)[1])


@pytest.mark.parametrize("arrays, message", [
    ({"y": np.zeros(2)}, r"no array 'x' \(found: y\)"),
    ({"x": np.zeros((2, 2, 2))}, r"no array 'y'"),
    ({"x": np.zeros((2, 4)), "y": np.zeros(2, int)}, r"'x' must be \(N, C, H, W\).*\(2, 4\)"),
    ({"x": np.zeros((3, 2, 2)), "y": np.zeros(2, int)}, r"'y' must be \(3,\) labels.*\(2,\)"),
    ({"x": np.zeros((0, 2, 2)), "y": np.zeros(0, int)}, r"holds no images"),
    ({"x": np.full((2, 2, 2), np.nan), "y": np.zeros(2, int)}, r"image value nan .* not finite"),
    ({"x": np.zeros((2, 2, 2)), "y": np.array([0.5, 1])}, r"'y' must hold integer class labels"),
    ({"x": np.zeros((2, 2, 2)), "y": np.array([0, -1])}, r"negative label -1"),
    ({"x": np.array([["a"]] * 2), "y": np.zeros(2, int)}, r"'x' must be \(N, C, H, W\)|'x' must be uint8 or float"),
])
def test_bad_npz(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(HardytError, match=r"bad\.npz.*" + message):
        load_dataset(tmp_path / "bad.npz")


def test_bad_specs(tmp_path):
    with pytest.raises(HardytError, match=r"nope\.npz"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(HardytError, match=r"junk\.npz: cannot read \.npz"):
        load_dataset(tmp_path / "junk.npz")
    with pytest.raises(HardytError, match="no such dataset"):
        load_dataset(tmp_path / "missing-dir")
    with pytest.raises(HardytError, match="split must be"):
        load_dataset("fashion-mnist", "val")
    with pytest.raises(HardytError, match="limit must be a positive integer"):
        load_dataset("fashion-mnist", "test", 0)
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 2, 2), np.uint8), y=np.zeros(2, int))
    with pytest.raises(HardytError, match="normalization std .* must be positive"):
        load_dataset(tmp_path / "d.npz", std=[0.0])
    with pytest.raises(HardytError, match="mean has 2 values for 1 channels"):
        load_dataset(tmp_path / "d.npz", mean=[0.1, 0.2])


def _png(path, array):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder(tmp_path):
    imgs = _rng().integers(0, 256, (4, 6, 5), dtype=np.uint8)
    for i, cls in enumerate(["b_shirt", "a_coat", "b_shirt", "c_bag"]):
        _png(tmp_path / "root" / cls / f"{i}.png", imgs[i])
    (tmp_path / "root" / "a_coat" / "notes.txt").write_text("ignored")
    x, y = load_dataset(tmp_path / "root", "train")
    assert x.shape == (4, 1, 6, 5)
    assert y.tolist() == [0, 1, 1, 2]  # sorted class names, then sorted files
    np.testing.assert_allclose(x[0, 0].numpy(), (imgs[1] / 255.0 - MEAN) / STD, rtol=1e-5, atol=1e-6)


def test_image_folder_rgb_and_splits(tmp_path):
    rgb = _rng().integers(0, 256, (2, 4, 4, 3), dtype=np.uint8)
    _png(tmp_path / "train" / "x" / "0.png", rgb[0])
    _png(tmp_path / "test" / "x" / "0.png", rgb[1])
    _png(tmp_path / "test" / "y" / "1.png", rgb[0])
    x, y = load_dataset(tmp_path, "test", mean=[0, 0, 0], std=[1, 1, 1])
    assert x.shape == (2, 3, 4, 4) and y.tolist() == [0, 1]
    np.testing.assert_allclose(x[0].numpy(), rgb[1].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert len(load_dataset(tmp_path, "train")[0]) == 1


def test_bad_image_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HardytError, match="no class subfolders"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "noimg" / "cls").mkdir(parents=True)
    with pytest.raises(HardytError, match="no PNG/JPEG images"):
        load_dataset(tmp_path / "noimg")
    _png(tmp_path / "sizes" / "a" / "0.png", np.zeros((4, 4), np.uint8))
    _png(tmp_path / "sizes" / "b" / "1.png", np.zeros((5, 4), np.uint8))
    with pytest.raises(HardytError, match=r"1\.png: image is \(1, 5, 4\).*0\.png is \(1, 4, 4\)"):
        load_dataset(tmp_path / "sizes")
    (tmp_path / "sizes" / "b" / "2.png").write_bytes(b"not a png")
    (tmp_path / "sizes" / "b" / "1.png").unlink()
    with pytest.raises(HardytError, match=r"2\.png: cannot read image"):
        load_dataset(tmp_path / "sizes")


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_subset(tmp_path, monkeypatch):
    images = _rng().integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12) % 10
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("HARDYT_FASHION_MNIST_DIR", str(tmp_path))
    x, y = load_dataset("fashion-mnist", "test", 5)
    keep = data_mod.subset(12, 5)
    assert y.tolist() == labels[keep].tolist()
    np.testing.assert_allclose(x[:, 0].numpy(), (images[keep] / 255.0 - MEAN) / STD, rtol=1e-5, atol=1e-6)
    assert len(load_dataset(tmp_path, "test")[0]) == 12  # a directory of IDX files works too
    with pytest.raises(HardytError, match=r"train-images-idx3-ubyte\.gz: missing Fashion-MNIST file"):
        load_dataset("fashion-mnist", "train")
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:3])
    with pytest.raises(HardytError, match="12 test images but 3 labels"):
        load_dataset("fashion-mnist", "test")
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", 12, 28, 28) + b"\0" * 100)
    with pytest.raises(HardytError, match=r"t10k-images-idx3-ubyte\.gz: IDX header says"):
        load_dataset("fashion-mnist", "test")


def test_missing_debian_dataset_names_package(tmp_path, monkeypatch):
    monkeypatch.delenv("HARDYT_FASHION_MNIST_DIR", raising=False)
    monkeypatch.setattr(data_mod, "FASHION_MNIST_DIR", tmp_path / "fmnist")
    with pytest.raises(HardytError, match=r"fmnist/t10k-images-idx3-ubyte\.gz: .*dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_fashion_mnist_installed():
    x, y = load_dataset("fashion-mnist", "test", 200)
    assert x.shape == (200, 1, 28, 28) and set(y.tolist()) == set(range(10))
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2  # normalized as trained


def test_train_on_tiny_idx(tmp_path, monkeypatch):
    """``hardyt train`` end to end on a 64-image IDX set: weights + record that load_vit reads back."""
    import json

    from hardyt.quant import load_vit
    from hardyt.scripts.cli import main

    rng = _rng()
    for split, n in (("train", 64), ("t10k", 32)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setenv("HARDYT_FASHION_MNIST_DIR", str(tmp_path))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    out = tmp_path / "m.safetensors"
    args = ["train", "--out", str(out), "--epochs", "1", "--batch-size", "16", "--patch-size", "7",
            "--embed-dim", "8", "--depth", "1", "--num-heads", "2"]
    assert main(args) == 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["test_samples"] == 32 and 0 <= meta["test_accuracy"] <= 1
    assert meta["config"]["embed_dim"] == 8 and meta["normalization"] == NORMALIZATION
    assert meta["command"].startswith(f"hardyt train --out {out} --epochs 1 --batch-size 16")
    model = load_vit(out)
    assert model.blocks[0].attn.num_heads == 2
    assert main(["train", "--out", str(tmp_path / "m.pth")]) == 1  # not .safetensors: one-line error
