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

For data sets that must not sit in memory at once, and for images of any size,
:func:`open_dataset` gives a lazy ``torch.utils.data.Dataset`` preprocessed per
a :class:`~hardyt.quant.zoo.preprocess.Preprocess` (resize, crop, grey <-> RGB,
normalization) and :func:`batch_loader` a re-iterable ``DataLoader`` over it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import HardytError
from .preprocess import NORMALIZATION, Preprocess
from .readers import ArrayReader, folder_reader, idx_name, idx_reader, npz_reader
from .transforms import normalize, to_model_input

__all__ = ["load_dataset", "open_dataset", "batch_loader", "ImageDataset", "load_idx", "normalize", "subset",
           "NORMALIZATION", "FASHION_MNIST_DIR", "SPLITS"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
SPLITS = ("train", "test")


def _torch_dataset():
    from torch.utils.data import Dataset
    return Dataset


class ImageDataset(_torch_dataset()):
    """One split of a data set, read and preprocessed lazily.

    Items are ``x`` (float32 tensor (C, H, W)) or, with ``labels``, ``(x, y)``.
    ``__getitems__`` reads a whole batch at once (what ``DataLoader`` calls).
    """

    def __init__(self, reader, pre: Preprocess, labels: bool, source):
        self.reader, self.pre, self.with_labels, self.source = reader, pre, labels, source

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices) -> list:
        import torch

        indices = [int(i) for i in indices]
        x = self.reader.images(indices, self.pre)
        x = torch.from_numpy(to_model_input(x, self.pre, self.source, first_index=indices[0]))
        if not self.with_labels:
            return list(x)
        y = torch.from_numpy(self.reader.labels(indices))
        return list(zip(x, y))

    def batch(self, indices):
        """``x`` (N, C, H, W), or ``(x, y)`` with labels, of the items at ``indices``."""
        import torch

        items = self.__getitems__(indices)
        if not self.with_labels:
            return torch.stack(items)
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def open_dataset(spec, split: str = "test", pre: Preprocess | None = None, *, labels: bool = True) -> ImageDataset:
    """``split`` of dataset ``spec`` as a lazy :class:`ImageDataset` preprocessed per ``pre``.

    ``pre`` None: images as they are, normalized with :data:`NORMALIZATION`.
    ``labels=False`` never reads labels (calibration).
    """
    if split not in SPLITS:
        raise HardytError(f"split must be one of {SPLITS}, got {split!r}")
    pre = pre or Preprocess(mean=tuple(NORMALIZATION["mean"]), std=tuple(NORMALIZATION["std"]))
    spec = str(spec)
    path = Path(spec)
    if spec == "fashion-mnist":
        directory = os.environ.get("HARDYT_FASHION_MNIST_DIR")
        reader = idx_reader(Path(directory or FASHION_MNIST_DIR), split,
                            "" if directory else " (install the Debian package dataset-fashion-mnist)")
    elif path.suffix == ".npz":
        if not path.is_file():
            raise HardytError(f"{path}: no such dataset (expected fashion-mnist, an ImageFolder directory or a .npz "
                              "file)")
        reader = npz_reader(path, split, labels)
    elif path.is_dir() and (path / idx_name(split, "images")).exists():
        reader = idx_reader(path, split)
    elif path.is_dir():
        reader = folder_reader(path, split)
    elif path.exists():
        raise HardytError(f"{path}: not a dataset (expected fashion-mnist, an ImageFolder directory or a .npz file)")
    else:
        raise HardytError(f"{path}: no such dataset (expected fashion-mnist, an ImageFolder directory or a .npz "
                          "file)")
    if len(reader) == 0:
        raise HardytError(f"{spec}: the {split} split holds no images")
    if labels:
        reader.labels([0])  # read and check the labels now, not mid-run
    return ImageDataset(reader, pre, labels, spec)


def batch_loader(dataset: ImageDataset, indices=None, batch_size: int = 64, workers: int = 0):
    """A re-iterable ``DataLoader`` over ``indices`` (default: all) in that order, ``batch_size`` per batch."""
    from torch.utils.data import DataLoader

    indices = list(range(len(dataset))) if indices is None else [int(i) for i in indices]
    return DataLoader(dataset, batch_size=batch_size, sampler=indices, num_workers=workers)


def load_dataset(spec, split: str = "test", limit: int | None = None, *, mean=None, std=None, pre=None):
    """Load ``split`` of dataset ``spec`` as normalized float32 images and int64 labels (all in memory).

    ``pre`` (a :class:`Preprocess`) resizes, crops and normalizes; without it
    images are taken as they are and normalized with ``mean``/``std``
    (default :data:`NORMALIZATION`).
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise HardytError(f"dataset limit must be a positive integer, got {limit!r}")
    if pre is None:
        pre = Preprocess(mean=_values(mean, "mean"), std=_values(std, "std"))
    ds = open_dataset(spec, split, pre, labels=True)
    return ds.batch(subset(len(ds), limit))


def _values(v, key) -> tuple:
    return tuple(float(a) for a in np.atleast_1d(NORMALIZATION[key] if v is None else v).reshape(-1))


def subset(n: int, limit: int | None) -> np.ndarray:
    """A fixed pseudo-random subset of ``range(n)`` of ``limit`` indices, sorted (all when ``limit`` is None)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).permutation(n)[:limit])



def load_idx(directory, split: str = "test", limit: int | None = None):
    """uint8 images (N, 1, H, W) and labels (N,) of an MNIST-style IDX pair in ``directory``."""
    reader: ArrayReader = idx_reader(Path(directory), split)
    keep = subset(len(reader), limit)
    return reader.x[keep, None], reader.labels(keep)

