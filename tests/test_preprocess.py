"""Preprocessing resolved from checkpoints, images of any size and mode, lazy data sets."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from hardyt.quant import HardytError
from hardyt.quant.zoo.data import batch_loader, open_dataset
from hardyt.quant.zoo.preprocess import Preprocess, resolve_preprocessing


def _rng():
    return np.random.default_rng(0)


def _hf_vit_dir(path, processor):
    """A tiny Hugging Face ViTForImageClassification directory with its preprocessor_config.json."""
    from transformers import ViTConfig, ViTForImageClassification
    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=32, num_labels=3)
    ViTForImageClassification(cfg).save_pretrained(path)
    processor.save_pretrained(path)
    return path


def _folder(root, shapes):
    """ImageFolder ``root/<class>/<i>.png`` of random images: (h, w, mode) each."""
    files = []
    for i, (h, w, mode) in enumerate(shapes):
        depth = {"L": (), "I;16": (), "P": (), "RGB": (3,), "RGBA": (4,)}[mode]
        a = _rng().integers(0, 256, (h, w, *depth), dtype=np.uint8)
        im = Image.fromarray(a, "L" if mode in ("P", "I;16") else mode)
        im = im.convert(mode) if mode in ("P", "I;16") else im
        path = root / f"c{i % 2}" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        im.save(path)
        files.append(path)
    return files


HF_PROCESSORS = {
    "squash-bicubic": dict(size={"height": 32, "width": 32}, resample=3, image_mean=[0.4, 0.5, 0.6],
                           image_std=[0.2, 0.3, 0.25]),
    "shortest-edge-crop": dict(size={"shortest_edge": 37}, do_center_crop=True, crop_size={"height": 32, "width": 32},
                               resample=2),
}


@pytest.mark.parametrize("kind", HF_PROCESSORS)
def test_hf_pixels_equal_vit_image_processor(tmp_path, kind):
    """Offline: hardyt's pixel tensors of an ImageFolder equal transformers' ViTImageProcessor's, bit for bit."""
    from transformers import ViTImageProcessor

    from hardyt.scripts.model_input import detect_format, model_input_shape
    from hardyt.quant.zoo.load import load_hf
    model_dir = _hf_vit_dir(tmp_path / "hf", ViTImageProcessor(**HF_PROCESSORS[kind]))
    assert detect_format(model_dir, None) == "hf"
    channels, size = model_input_shape(load_hf(model_dir))
    pre, _ = resolve_preprocessing(model_dir, "hf", channels=channels, input_size=size)
    assert pre.sources["mean"] == "preprocessor_config.json image_mean"
    files = _folder(tmp_path / "data", [(40, 50, "RGB"), (17, 33, "RGB"), (64, 64, "RGB"), (31, 90, "RGB"),
                                        (32, 32, "RGB")])
    ds = open_dataset(tmp_path / "data", "test", pre, labels=False)
    ours = torch.stack([ds[i] for i in range(len(ds))]).numpy()
    processor = ViTImageProcessor.from_pretrained(model_dir)
    theirs = processor(images=[Image.open(f) for f in sorted(files, key=lambda p: (p.parent.name, p.name))],
                       return_tensors="np")["pixel_values"]
    assert ours.shape == theirs.shape == (5, 3, 32, 32)
    assert np.array_equal(ours, theirs)


def test_timm_pretrained_cfg_and_overrides(tmp_path):
    meta = {"config": {"num_heads": 2}, "pretrained_cfg": {"input_size": [3, 32, 32], "crop_pct": 0.875,
            "interpolation": "bicubic", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            "test_accuracy": 0.81}
    (tmp_path / "m.json").write_text(json.dumps(meta))
    pre, extras = resolve_preprocessing(tmp_path / "m.safetensors", "timm", channels=3, input_size=(32, 32))
    assert (pre.size, pre.resize, pre.interpolation, pre.crop_rounding) == ((32, 32), 36, "bicubic", "round")
    assert pre.sources["resize"] == "m.json pretrained_cfg.crop_pct"
    assert extras["test_accuracy"] == (0.81, "m.json test_accuracy")
    pre, _ = resolve_preprocessing(tmp_path / "m.safetensors", "timm", channels=3, input_size=(32, 32),
                                   overrides={"mean": [0.5], "crop_pct": 1.0, "interpolation": "bilinear"})
    assert (pre.mean, pre.std[0], pre.resize, pre.interpolation) == ((0.5,), 0.229, 32, "bilinear")
    assert (pre.sources["mean"], pre.sources["std"], pre.sources["resize"]) == \
        ("--mean", "m.json pretrained_cfg.std", "--crop-pct")
    with pytest.raises(HardytError, match=r"--image-size 32"):
        resolve_preprocessing(tmp_path / "m.safetensors", "timm", channels=3, input_size=(32, 32),
                              overrides={"image_size": 28})


def test_no_preprocessing_recorded_names_the_flags(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"num_heads": 2}))
    with pytest.raises(HardytError, match=r"m\.safetensors: no input normalization recorded .*m\.json.* "
                                          r"--mean and --std.*--image-size, --crop-pct and --interpolation"):
        resolve_preprocessing(tmp_path / "m.safetensors", "timm", channels=1, input_size=(28, 28))
    with pytest.raises(HardytError, match=r"preprocessor_config\.json.*--mean and --std"):
        resolve_preprocessing(tmp_path, "hf", channels=3, input_size=(28, 28))


@pytest.mark.parametrize("channels", [1, 3])
def test_image_folder_of_any_size_and_mode(tmp_path, channels):
    _folder(tmp_path, [(40, 50, "RGB"), (17, 33, "L"), (64, 20, "RGBA"), (28, 28, "P"), (30, 29, "I;16")])
    pre = Preprocess(mean=(0.5,), std=(0.5,), channels=channels, size=(28, 28), resize=28)
    ds = open_dataset(tmp_path, "train", pre)
    x, y = next(iter(batch_loader(ds, batch_size=8)))
    assert x.shape == (5, channels, 28, 28) and y.tolist() == [0, 0, 0, 1, 1]
    assert torch.isfinite(x).all() and float(x.min()) >= -1 and float(x.max()) <= 1


def test_bad_image_named_by_path(tmp_path):
    _folder(tmp_path, [(20, 20, "RGB"), (30, 30, "RGB")])
    (tmp_path / "c0" / "broken.png").write_bytes(b"\x89PNG not really")
    pre = Preprocess(mean=(0.5,), std=(0.5,), channels=3, size=(16, 16), resize=16)
    ds = open_dataset(tmp_path, "train", pre)
    with pytest.raises(HardytError, match=r"c0/broken\.png: cannot read image"):
        list(batch_loader(ds))
    small = Preprocess(mean=(0.5,), std=(0.5,), channels=3, size=(24, 24))  # no resize: a 20x20 image cannot crop
    with pytest.raises(HardytError, match=r"c0/0\.png: image is 20x20 .*smaller than the 24x24 crop"):
        open_dataset(tmp_path, "train", small).batch([0])


def test_npz_resized_with_torch_close_to_pillow(tmp_path):
    x = _rng().integers(0, 256, (6, 20, 24), dtype=np.uint8)
    x[:, :, :12] //= 4  # structure, so that filters matter
    np.savez(tmp_path / "d.npz", x_train=x, x_test=x, y_test=np.arange(6))
    pre = Preprocess(mean=(0.0,), std=(1.0,), channels=3, size=(16, 16), resize=16, rescale=1.0)
    ds = open_dataset(tmp_path / "d.npz", "test", pre)
    got, y = ds.batch(range(6))
    assert got.shape == (6, 3, 16, 16) and y.tolist() == list(range(6))
    assert torch.equal(got[:, 0], got[:, 2])  # grey -> RGB
    # Pillow: shortest edge 20 -> 16 gives 16x19, center crop at round(1.5) = 2
    pil = np.stack([np.asarray(Image.fromarray(a).resize((19, 16), Image.Resampling.BILINEAR))[:, 2:18] for a in x])
    # torch's antialiased bilinear is not Pillow's bit for bit, but close (uint8 levels)
    assert np.abs(got[:, 0].numpy() - pil).max() <= 2
    with pytest.raises(HardytError, match=r"d\.npz: interpolation 'lanczos' .*--interpolation"):
        open_dataset(tmp_path / "d.npz", "test", Preprocess(mean=(0.0,), std=(1.0,), size=(16, 16), resize=16,
                                                            interpolation="lanczos")).batch([0])


def test_npz_streams_and_calibration_never_reads_labels(tmp_path):
    x = _rng().integers(0, 256, (50, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "plain.npz", x_train=x)  # no labels at all
    np.savez_compressed(tmp_path / "packed.npz", x_train=x)
    pre = Preprocess(mean=(0.5,), std=(0.25,))
    plain = open_dataset(tmp_path / "plain.npz", "train", pre, labels=False)
    assert isinstance(plain.reader.x, np.memmap)  # read on demand, never all at once
    packed = open_dataset(tmp_path / "packed.npz", "train", pre, labels=False)
    loader = batch_loader(plain, [7, 3, 42], batch_size=2)
    first = [b.clone() for b in loader]
    assert [len(b) for b in first] == [2, 1] and all(torch.equal(a, b) for a, b in zip(first, loader))  # re-iterable
    assert torch.equal(first[0][1], packed[3])
    np.testing.assert_allclose(first[0][0].numpy(), (x[7] / 255 - 0.5) / 0.25, rtol=1e-5, atol=1e-6)
    with pytest.raises(HardytError, match=r"plain\.npz: no array 'y_train'"):
        open_dataset(tmp_path / "plain.npz", "train", pre, labels=True)
