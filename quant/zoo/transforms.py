"""Raw images → model input, as a :class:`~hardyt.quant.zoo.preprocess.Preprocess` describes it.

Two paths to the same pipeline (channels, resize, center crop, rescale,
normalize):

- :func:`read_image`: one image file with Pillow (what timm's torchvision
  transforms and Hugging Face's PIL image processors do, so the pixels
  match theirs);
- :func:`resize_batch`: a batch of arrays (an ``.npz``) with
  ``torch.nn.functional.interpolate`` (antialiased, like Pillow, but not
  bit-equal to it).

Both return pixels still in their stored range (uint8 stays uint8);
:func:`to_model_input` rescales and normalizes a batch.
"""
from __future__ import annotations

import numpy as np

from ..errors import HardytError
from .preprocess import NORMALIZATION, Preprocess

__all__ = ["read_image", "resize_batch", "to_model_input", "normalize", "output_size", "crop_offsets"]

# torch.nn.functional.interpolate modes for Pillow's filters; lanczos and hamming have none
_TORCH_MODES = {"nearest": "nearest-exact", "bilinear": "bilinear", "bicubic": "bicubic", "box": "area"}
_GREY_MODES = ("1", "L", "I;16", "I", "LA")
# ITU-R 601-2 luma, the weights Pillow's RGB -> L conversion uses
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def output_size(h: int, w: int, resize) -> tuple[int, int]:
    """(H, W) after ``resize`` (int: shortest edge, aspect kept as torchvision and Hugging Face round it).

    >>> output_size(300, 400, 256)
    (256, 341)
    >>> output_size(300, 400, (224, 224))
    (224, 224)
    """
    if resize is None:
        return h, w
    if isinstance(resize, tuple):
        return resize
    short, long = (h, w) if h <= w else (w, h)
    new_long = int(resize * long / short)
    return (resize, new_long) if h <= w else (new_long, resize)


def crop_offsets(h: int, w: int, size, rounding: str) -> tuple[int, int]:
    """Top and left of a centered ``size`` crop: floored (Hugging Face) or rounded (torchvision).

    >>> crop_offsets(31, 31, (24, 24), "floor"), crop_offsets(31, 31, (24, 24), "round")
    ((3, 3), (4, 4))
    """
    def off(old, new):
        return (old - new) // 2 if rounding == "floor" else int(round((old - new) / 2.0))
    return off(h, size[0]), off(w, size[1])


def _crop(a: np.ndarray, pre: Preprocess, where) -> np.ndarray:
    """Center crop of (..., H, W) to ``pre.size``; an image smaller than it is an error."""
    if pre.size is None:
        return a
    h, w = a.shape[-2:]
    if (h, w) == tuple(pre.size):
        return a
    if h < pre.size[0] or w < pre.size[1]:
        raise HardytError(f"{where}: image is {h}x{w} after resizing, smaller than the {pre.size[0]}x{pre.size[1]} "
                          "crop (set --crop-pct <= 1 and --image-size to resize it first)")
    top, left = crop_offsets(h, w, pre.size, pre.crop_rounding)
    return a[..., top:top + pre.size[0], left:left + pre.size[1]]


def read_image(path, pre: Preprocess) -> np.ndarray:
    """One image file as uint8 (C, H, W): converted, resized and cropped with Pillow per ``pre``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if pre.channels is None:
                im = im.convert("L" if im.mode in _GREY_MODES else "RGB")
            elif pre.channels in (1, 3):
                im = im.convert("L" if pre.channels == 1 else "RGB")
            else:
                raise HardytError(f"{path}: the model takes {pre.channels} input channels; image files give 1 "
                                  "(grey) or 3 (RGB)")
            size = output_size(im.height, im.width, pre.resize)
            if size != (im.height, im.width):
                im = im.resize((size[1], size[0]), resample=getattr(Image.Resampling, pre.interpolation.upper()))
            a = np.asarray(im, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise HardytError(f"{path}: cannot read image: {e}") from None
    return _crop(a[None] if a.ndim == 2 else a.transpose(2, 0, 1), pre, path)


def _channels(x, want, where):
    import torch

    c = x.shape[1]
    if want is None or c == want:
        return x
    if c == 1 and want == 3:
        return x.expand(-1, 3, -1, -1)
    if c == 3 and want == 1:
        return (x * torch.from_numpy(_LUMA).reshape(1, 3, 1, 1)).sum(1, keepdim=True)
    raise HardytError(f"{where}: images have {c} channels, the model takes {want} (only grey <-> RGB converts)")


def resize_batch(x: np.ndarray, pre: Preprocess, where="data") -> np.ndarray:
    """A batch (N, C, H, W), uint8 or float, converted, resized (torch interpolate) and cropped per ``pre``.

    uint8 stays uint8 (rounded and clamped, as Pillow keeps it); float stays float32.
    """
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    size = output_size(h, w, pre.resize)
    if size == (h, w) and pre.channels in (None, c):
        return _crop(x, pre, where)
    t = _channels(torch.from_numpy(np.ascontiguousarray(x)).float(), pre.channels, where)
    if size != (h, w):
        mode = _TORCH_MODES.get(pre.interpolation)
        if mode is None:
            raise HardytError(f"{where}: interpolation {pre.interpolation!r} is not available for array data "
                              f"(torch interpolate): pass --interpolation {'|'.join(_TORCH_MODES)}")
        kw = {"antialias": True, "align_corners": False} if mode in ("bilinear", "bicubic") else {}
        t = F.interpolate(t, size=size, mode=mode, **kw)
    out = t.numpy()
    if x.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return _crop(out, pre, where)


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


def to_model_input(x: np.ndarray, pre: Preprocess, where="data", first_index: int = 0) -> np.ndarray:
    """float32 model input of a preprocessed batch: uint8 times ``pre.rescale``, then normalized.

    Float data is taken to be rescaled already; a NaN/Inf pixel is an error
    naming its index (``first_index`` is the batch's offset in the data set).
    """
    if x.dtype == np.uint8:
        # float64 product, then float32: Hugging Face's rescale, so pixels match its processors exactly
        x = (x.astype(np.float64) * pre.rescale).astype(np.float32)
    else:
        x = x.astype(np.float32)
        if not np.all(np.isfinite(x)):
            bad = np.argwhere(~np.isfinite(x))[0]
            bad[0] += first_index
            raise HardytError(f"{where}: image value {x[tuple(bad - [first_index, 0, 0, 0])]} at index "
                              f"{tuple(bad.tolist())} is not finite")
    return normalize(x, pre.mean, pre.std, where)
