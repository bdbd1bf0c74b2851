"""Image classification datasets as tensors, without torchvision.

``load_dataset(spec, split, limit)`` returns ``(x, y)``: ``x`` float32
``(N, C, H, W)``, ``y`` int64 ``(N,)``. Pixels are scaled to [0, 1] (uint8 / 255;
float data is taken to be in [0, 1] already) and then normalized per channel as
``(x - mean) / std`` with the bundled model's training normalization
(``NORMALIZATION``, also recorded in its config JSON) unless ``mean``/``std``
are given.

``spec`` is one of:

- ``"fashion-mnist"``: the IDX files of Debian's ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``, or ``$HARDYT_FASHION_MNIST_DIR``);
  a directory holding such IDX files works too;
- an ImageFolder directory: one subfolder per class (sorted names = labels
  0, 1, ...) of PNG/JPEG images, all the same size; if it has ``train/`` and
  ``test/`` subfolders the split picks one, otherwise both splits are the whole
  tree;
- ``FILE.npz`` with ``x`` (N, C, H, W or N, H, W; uint8 or float) and ``y``
  (integer labels); ``x_train``/``y_train`` or ``x_test``/``y_test`` are used for
  that split when present.

``limit`` keeps a fixed pseudo-random subset of that many images (the same for
every call), so a partial test set still covers every class.
"""
from __future__ import annotations

import gzip
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import HardytError

__all__ = ["load_dataset", "load_idx", "normalize", "NORMALIZATION", "FASHION_MNIST_DIR", "SPLITS"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
# Fashion-MNIST training-set pixel mean and std (of x / 255): the bundled model's input normalization.
NORMALIZATION = {"mean": [0.2860], "std": [0.3530]}
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_IDX_PREFIX = {"train": "train", "test": "t10k"}


def load_dataset(spec, split: str = "test", limit: int | None = None, *, mean=None, std=None):
    """Load ``split`` of dataset ``spec`` as normalized float32 images and int64 labels."""
    import torch

    if split not in SPLITS:
        raise HardytError(f"split must be one of {SPLITS}, got {split!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise HardytError(f"dataset limit must be a positive integer, got {limit!r}")
    spec = str(spec)
    path = Path(spec)
    if spec == "fashion-mnist":
        x, y = load_idx(Path(os.environ.get("HARDYT_FASHION_MNIST_DIR", FASHION_MNIST_DIR)), split, limit)
    elif path.suffix == ".npz":
        x, y = _load_npz(path, split, limit)
    elif path.is_dir() and (path / _idx_name(split, "images")).exists():
        x, y = load_idx(path, split, limit)
    elif path.is_dir():
        x, y = _load_image_folder(path, split, limit)
    elif path.exists():
        raise HardytError(f"{path}: not a dataset (expected fashion-mnist, an ImageFolder directory or a .npz file)")
    else:
        raise HardytError(f"{path}: no such dataset (expected fashion-mnist, an ImageFolder directory or a .npz "
                          "file)")
    if len(x) == 0:
        raise HardytError(f"{spec}: the {split} split holds no images")
    x = normalize(_to_unit(x, spec), mean, std, spec)
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def normalize(x: np.ndarray, mean=None, std=None, source="data") -> np.ndarray:
    """``(x - mean) / std`` per channel of ``x`` (N, C, H, W); defaults: ``NORMALIZATION``."""
    c = x.shape[1]
    mean = np.asarray(NORMALIZATION["mean"] if mean is None else mean, dtype=np.float32).reshape(-1)
    std = np.asarray(NORMALIZATION["std"] if std is None else std, dtype=np.float32).reshape(-1)
    for name, v in (("mean", mean), ("std", std)):
        if v.size not in (1, c):
            raise HardytError(f"{source}: normalization {name} has {v.size} values for {c} channels")
        if not np.all(np.isfinite(v)):
            raise HardytError(f"{source}: normalization {name} {v.tolist()} is not finite")
    if np.any(std <= 0):
        raise HardytError(f"{source}: normalization std {std.tolist()} must be positive")
    return ((x - mean.reshape(1, -1, 1, 1)) / std.reshape(1, -1, 1, 1)).astype(np.float32)


def _to_unit(x: np.ndarray, source) -> np.ndarray:
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise HardytError(f"{source}: image value {x[tuple(bad)]} at index {tuple(bad.tolist())} is not finite")
    return x


def _subset(n: int, limit: int | None) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).permutation(n)[:limit])


# ---------------------------------------------------------------- IDX (Fashion-MNIST)

def _idx_name(split: str, kind: str) -> str:
    return f"{_IDX_PREFIX[split]}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"


def load_idx(directory, split: str = "test", limit: int | None = None):
    """uint8 images (N, 1, H, W) and labels (N,) of an MNIST-style IDX pair in ``directory``."""
    directory = Path(directory)
    images = _read_idx(directory / _idx_name(split, "images"), ndim=3)
    labels = _read_idx(directory / _idx_name(split, "labels"), ndim=1)
    if len(images) != len(labels):
        raise HardytError(f"{directory}: {len(images)} {split} images but {len(labels)} labels")
    keep = _subset(len(images), limit)
    return images[keep, None], labels[keep]


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    if not path.exists():
        hint = " (install the Debian package dataset-fashion-mnist)" if path.parent == FASHION_MNIST_DIR else ""
        raise HardytError(f"{path}: missing Fashion-MNIST file{hint}")
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise HardytError(f"{path}: cannot read gzip IDX file: {e}") from None
    # IDX header: two zero bytes, type code 0x08 (uint8), number of dimensions, then big-endian sizes
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or data[3] != ndim:
        raise HardytError(f"{path}: not a {ndim}-dimensional uint8 IDX file")
    shape = tuple(int(s) for s in np.frombuffer(data, ">u4", count=ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise HardytError(f"{path}: IDX header says {shape} = {int(np.prod(shape))} bytes, file holds {body.size}")
    return body.reshape(shape)


# ---------------------------------------------------------------- .npz

def _load_npz(path: Path, split: str, limit: int | None):
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            xk, yk = (f"x_{split}", f"y_{split}") if f"x_{split}" in keys else ("x", "y")
            for k in (xk, yk):
                if k not in keys:
                    raise HardytError(f"{path}: no array '{k}' (found: {', '.join(sorted(keys)) or 'none'})")
            x, y = f[xk], f[yk]
    except HardytError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise HardytError(f"{path}: cannot read .npz: {e}") from None
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise HardytError(f"{path}: '{xk}' must be (N, C, H, W) or (N, H, W), got shape {x.shape}")
    if x.dtype != np.uint8 and x.dtype.kind not in "fiu":
        raise HardytError(f"{path}: '{xk}' must be uint8 or float, got {x.dtype}")
    if y.ndim != 1 or len(y) != len(x):
        raise HardytError(f"{path}: '{yk}' must be ({len(x)},) labels, got shape {y.shape}")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise HardytError(f"{path}: '{yk}' must hold integer class labels, got {y.dtype}")
    if len(y) and y.min() < 0:
        raise HardytError(f"{path}: '{yk}' holds a negative label {y.min()}")
    if x.dtype.kind in "iu" and x.dtype != np.uint8:
        x = x.astype(np.float32) / 255.0
    keep = _subset(len(x), limit)
    return x[keep], y[keep].astype(np.int64)


# ---------------------------------------------------------------- ImageFolder

def _load_image_folder(root: Path, split: str, limit: int | None):
    try:
        from PIL import Image
    except ImportError:
        raise HardytError("reading an image folder needs Pillow (pip install pillow)") from None
    if (root / "train").is_dir() and (root / "test").is_dir():
        root = root / split
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise HardytError(f"{root}: no class subfolders (an ImageFolder has one folder of images per class)")
    files = [(p, label) for label, c in enumerate(classes) for p in sorted((root / c).iterdir())
             if p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise HardytError(f"{root}: no PNG/JPEG images in the class folders {', '.join(classes)}")
    keep = _subset(len(files), limit)
    images, labels = [], []
    for i in keep:
        p, label = files[i]
        try:
            with Image.open(p) as im:
                im = im.convert("L" if im.mode in ("1", "L", "I;16", "I", "LA") else "RGB")
                a = np.asarray(im, dtype=np.uint8)
        except (OSError, ValueError) as e:
            raise HardytError(f"{p}: cannot read image: {e}") from None
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)
        if images and a.shape != images[0].shape:
            raise HardytError(f"{p}: image is {a.shape} (C, H, W), the first image {files[keep[0]][0].name} is "
                              f"{images[0].shape}")
        images.append(a)
        labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)
