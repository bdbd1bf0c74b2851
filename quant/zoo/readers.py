"""Where a data set's images live: IDX files, ``.npz`` arrays, ImageFolder trees.

Each reader opens a split cheaply and reads images on demand
(``images(indices, pre)``: a batch, converted, resized and cropped per the
:class:`~hardyt.quant.zoo.preprocess.Preprocess`, pixels still in their stored
range); labels are read only when asked for (``labels(indices)``), so
calibration never touches them. An ``.npz`` written by ``np.savez``
(uncompressed) is memory-mapped: only the images asked for are read. A
compressed ``.npz`` member and the gzip IDX files are decompressed into
memory once (as stored, uint8).
"""
from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..errors import HardytError
from .transforms import read_image, resize_batch

__all__ = ["ArrayReader", "FolderReader", "npz_reader", "idx_reader", "folder_reader", "read_idx", "idx_name",
           "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_IDX_PREFIX = {"train": "train", "test": "t10k"}


class ArrayReader:
    """Images in an array (N, C, H, W) or (N, H, W), memory-mapped or in memory; labels loaded on demand."""

    def __init__(self, x, load_labels, source):
        self.x, self._load_labels, self.source, self._y = x, load_labels, source, None

    def __len__(self) -> int:
        return len(self.x)

    def images(self, indices, pre) -> np.ndarray:
        x = np.asarray(self.x[np.asarray(indices, dtype=np.int64)])
        if x.ndim == 3:
            x = x[:, None]
        if x.dtype.kind in "iu" and x.dtype != np.uint8:
            x = x.astype(np.float32) / 255.0
        return resize_batch(x, pre, self.source)

    def labels(self, indices) -> np.ndarray:
        if self._y is None:
            self._y = self._load_labels()
        return self._y[np.asarray(indices, dtype=np.int64)]


class FolderReader:
    """An ImageFolder split: files listed once, each image decoded with Pillow when asked for."""

    def __init__(self, files: list, targets: np.ndarray, source):
        self.files, self.targets, self.source = files, targets, source

    def __len__(self) -> int:
        return len(self.files)

    def images(self, indices, pre) -> np.ndarray:
        batch = [read_image(self.files[i], pre) for i in indices]
        if pre.size is None:  # images taken as they are: every one must match the split's first
            first = self.files[0]
            shape = batch[0].shape if indices[0] == 0 else read_image(first, pre).shape
            for i, a in zip(indices, batch):
                if a.shape != shape:
                    raise HardytError(f"{self.files[i]}: image is {a.shape} (C, H, W), the first image "
                                      f"{first.name} is {shape}")
        return np.stack(batch)

    def labels(self, indices) -> np.ndarray:
        return self.targets[np.asarray(indices, dtype=np.int64)]


# ---------------------------------------------------------------- IDX (Fashion-MNIST)

def idx_name(split: str, kind: str) -> str:
    return f"{_IDX_PREFIX[split]}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"


def idx_reader(directory: Path, split: str, hint: str = "") -> ArrayReader:
    """An IDX pair's split; ``hint`` is added to a missing file's error (where to get the files)."""
    images = read_idx(directory / idx_name(split, "images"), ndim=3, hint=hint)

    def labels():
        y = read_idx(directory / idx_name(split, "labels"), ndim=1, hint=hint)
        if len(images) != len(y):
            raise HardytError(f"{directory}: {len(images)} {split} images but {len(y)} labels")
        return y.astype(np.int64)
    return ArrayReader(images, labels, directory / idx_name(split, "images"))


def read_idx(path: Path, ndim: int, hint: str = "") -> np.ndarray:
    """The uint8 array of a gzip IDX file (MNIST format)."""
    if not path.exists():
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

def _npz_member(path: Path, zf: zipfile.ZipFile, key: str):
    """Array ``key`` of an .npz: memory-mapped when stored uncompressed, else read whole."""
    info = zf.getinfo(f"{key}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with zf.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # zip local file header; name and extra-field lengths at bytes 26-29
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
        offset = fh.tell()
    if dtype.hasobject:
        raise HardytError(f"{path}: '{key}' holds Python objects, not numbers")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def npz_reader(path: Path, split: str, labels: bool) -> ArrayReader:
    """An .npz split: ``x_<split>``/``y_<split>`` when present, else ``x``/``y``."""
    try:
        with zipfile.ZipFile(path) as zf:
            keys = {n[:-4] for n in zf.namelist() if n.endswith(".npy")}
            xk, yk = (f"x_{split}", f"y_{split}") if f"x_{split}" in keys else ("x", "y")
            for k in (xk, yk) if labels else (xk,):
                if k not in keys:
                    raise HardytError(f"{path}: no array '{k}' (found: {', '.join(sorted(keys)) or 'none'})")
            x = _npz_member(path, zf, xk)
    except HardytError:
        raise
    except Exception as e:  # noqa: BLE001 - zipfile and numpy's header parser raise a dozen types on bad bytes
        raise HardytError(f"{path}: cannot read .npz: {type(e).__name__}: {e}") from None
    if x.ndim not in (3, 4):
        raise HardytError(f"{path}: '{xk}' must be (N, C, H, W) or (N, H, W), got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise HardytError(f"{path}: '{xk}' must be uint8 or float, got {x.dtype}")

    def load_labels():
        try:
            with np.load(path, allow_pickle=False) as f:
                y = f[yk]
        except Exception as e:  # noqa: BLE001 - zipfile and numpy's header parser raise a dozen types on bad bytes
            raise HardytError(f"{path}: cannot read '{yk}': {type(e).__name__}: {e}") from None
        if y.ndim != 1 or len(y) != len(x):
            raise HardytError(f"{path}: '{yk}' must be ({len(x)},) labels, got shape {y.shape}")
        if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(np.isfinite(y))
                                             and np.all(y == np.round(y))):
            raise HardytError(f"{path}: '{yk}' must hold integer class labels, got {y.dtype}")
        if len(y) and y.min() < 0:
            raise HardytError(f"{path}: '{yk}' holds a negative label {y.min()}")
        return y.astype(np.int64)
    return ArrayReader(x, load_labels, path)


# ---------------------------------------------------------------- ImageFolder

def folder_reader(root: Path, split: str) -> FolderReader:
    """One subfolder per class (sorted names = labels 0, 1, ...); ``train/`` and ``test/`` pick the split."""
    try:
        import PIL  # noqa: F401
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
        raise HardytError(f"{root}: no PNG/JPEG images (nor {', '.join(IMAGE_SUFFIXES[3:])}) in the class "
                          f"folders {', '.join(classes)}")
    return FolderReader([p for p, _ in files], np.array([label for _, label in files], np.int64), root)
