"""A checkpoint's input preprocessing, and where each value came from.

A model is only as good as the pixels it is fed: the mean/std, input size,
resize and interpolation it was trained with. :func:`resolve_preprocessing`
reads them from what the checkpoint records and applies the user's overrides:

- Hugging Face: ``preprocessor_config.json`` in the model directory
  (``image_mean``, ``image_std``, ``do_normalize``, ``size``, ``do_resize``,
  ``resample``, ``do_rescale``/``rescale_factor``, ``do_center_crop``/``crop_size``);
- timm: the sidecar ``<stem>.json``'s ``normalization`` (``mean``, ``std``,
  as ``hardyt train`` writes it) and/or a timm ``pretrained_cfg`` (``mean``,
  ``std``, ``input_size``, ``crop_pct``, ``interpolation``);
- overrides (``hardyt convert --mean --std --image-size --crop-pct
  --interpolation``) win over both.

Mean and std are never guessed: without them a :class:`HardytError` names
the flags to pass. The result is a :class:`Preprocess`; ``sources`` says
where each value came from and :meth:`Preprocess.to_dict` is what
``report.json`` records. The pipeline it describes (applied by
:mod:`hardyt.quant.zoo.transforms`): channels converted to the model's
(grey ↔ RGB), resize (shortest edge to an int, or both sides to (H, W)),
center crop to ``size``, uint8 pixels times ``rescale``, then
``(x - mean) / std`` per channel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HardytError
from ..files import load_json_object

__all__ = ["Preprocess", "resolve_preprocessing", "recorded", "resize_for", "NORMALIZATION", "INTERPOLATIONS",
           "OVERRIDE_FLAGS"]

# Fashion-MNIST training-set pixel mean and std (of x / 255): the bundled model's input normalization.
NORMALIZATION = {"mean": [0.2860], "std": [0.3530]}

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "hamming")
# PIL.Image.Resampling values, as Hugging Face's `resample` records them
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
OVERRIDE_FLAGS = {"mean": "--mean", "std": "--std", "image_size": "--image-size", "crop_pct": "--crop-pct",
                  "interpolation": "--interpolation"}


@dataclass(frozen=True)
class Preprocess:
    """How raw images become model input.

    Parameters
    ----------
    mean, std : tuple of float
        Per channel (one value: every channel), of pixels after ``rescale``.
    channels : int or None
        Input channels the model takes (1: grey, 3: RGB); None keeps the images' own.
    size : (H, W) or None
        What the model sees (the center crop); None keeps the images' size.
    resize : int, (H, W) or None
        An int resizes the shortest edge to it (aspect kept); (H, W) resizes to exactly that; None: no resize.
    interpolation : str
        One of :data:`INTERPOLATIONS`.
    rescale : float
        Factor of uint8 pixels (float data is taken to be rescaled already).
    crop_rounding : "floor" or "round"
        Center-crop offset ``(old - new) / 2``: Hugging Face floors it, torchvision (timm) rounds it.
    sources : dict
        Where each value came from (``mean``, ``std``, ``size``, ...).
    """

    mean: tuple
    std: tuple
    channels: int | None = None
    size: tuple | None = None
    resize: int | tuple | None = None
    interpolation: str = "bilinear"
    rescale: float = 1 / 255
    crop_rounding: str = "round"
    sources: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        for name in ("mean", "std"):
            v = getattr(self, name)
            if not v or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v):
                raise HardytError(f"{self._where(name)}: normalization {name} must be finite numbers, got "
                                  f"{list(v)}")
            if self.channels is not None and len(v) not in (1, self.channels):
                raise HardytError(f"{self._where(name)}: normalization {name} has {len(v)} values for a model with "
                                  f"{self.channels} input channel(s)")
        if any(s <= 0 for s in self.std):
            raise HardytError(f"{self._where('std')}: normalization std {list(self.std)} must be positive")
        if self.interpolation not in INTERPOLATIONS:
            raise HardytError(f"{self._where('interpolation')}: interpolation {self.interpolation!r} is not one of "
                              f"{', '.join(INTERPOLATIONS)}")
        sizes = [s for s in (self.size, (self.resize,) if isinstance(self.resize, int) else self.resize) if s]
        if any(not isinstance(s, int) or s < 1 for t in sizes for s in t):
            raise HardytError(f"{self._where('size')}: image sizes must be positive integers, got size "
                              f"{self.size}, resize {self.resize}")
        if not (math.isfinite(self.rescale) and self.rescale > 0):
            raise HardytError(f"{self._where('rescale')}: rescale factor must be positive, got {self.rescale}")

    def _where(self, key) -> str:
        return self.sources.get(key, "preprocessing")

    def to_dict(self) -> dict:
        """JSON form for ``report.json``: every value, and ``sources``."""
        return {"mean": list(self.mean), "std": list(self.std), "channels": self.channels,
                "size": list(self.size) if self.size else None,
                "resize": list(self.resize) if isinstance(self.resize, tuple) else self.resize,
                "interpolation": self.interpolation, "rescale": self.rescale, "crop_rounding": self.crop_rounding,
                "sources": dict(self.sources)}


def _floats(value, where) -> tuple:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise HardytError(f"{where}: expected a number or a list of numbers, got {value!r}")
    return tuple(float(v) for v in values)


def _hw(value, where) -> tuple:
    """(H, W) from an int, [H, W], [C, H, W] or a Hugging Face size dict with height/width."""
    if isinstance(value, dict):
        value = [value.get("height"), value.get("width")]
    value = [value, value] if isinstance(value, int) else list(value) if isinstance(value, (list, tuple)) else None
    if value is None or len(value) not in (2, 3) or not all(isinstance(v, int) and v > 0 for v in value):
        raise HardytError(f"{where}: expected a positive size (N, [H, W] or {{\"height\", \"width\"}})")
    return tuple(value[-2:])


def _interpolation(value, where) -> str:
    name = _PIL_RESAMPLE.get(value) if isinstance(value, int) else value
    if name not in INTERPOLATIONS:
        raise HardytError(f"{where}: unknown interpolation {value!r} (expected one of {', '.join(INTERPOLATIONS)}"
                          f" or a PIL resample number 0-5)")
    return name


def resize_for(size: tuple, crop_pct: float, squash: bool = False):
    """timm's eval resize: each side ``floor(side / crop_pct)``; square without ``squash``: an int (shortest edge).

    >>> resize_for((224, 224), 0.875)
    256
    >>> resize_for((28, 32), 1.0)
    (28, 32)
    """
    h, w = (math.floor(s / crop_pct) for s in size)
    return (h, w) if squash or h != w else h


def _from_hf(path: Path) -> dict:
    """Values and sources from a Hugging Face ``preprocessor_config.json``."""
    cfg, src, out = load_json_object(path, "preprocessing"), path.name, {}

    def put(key, value, where):
        out[key] = (value, f"{src} {where}")

    if cfg.get("do_normalize", True) is False:
        put("mean", (0.0,), "do_normalize=false")
        put("std", (1.0,), "do_normalize=false")
    else:
        for key, hf in (("mean", "image_mean"), ("std", "image_std")):
            if hf in cfg:
                put(key, _floats(cfg[hf], f"{path} {hf}"), hf)
    if cfg.get("do_rescale", True) is False:
        put("rescale", 1.0, "do_rescale=false")
    elif "rescale_factor" in cfg:
        put("rescale", _floats(cfg["rescale_factor"], f"{path} rescale_factor")[0], "rescale_factor")
    if "resample" in cfg:
        put("interpolation", _interpolation(cfg["resample"], f"{path} resample"), "resample")
    size = cfg.get("size")
    if cfg.get("do_resize", True) is not False and size is not None:
        if isinstance(size, dict) and "shortest_edge" in size:
            put("resize", _hw(size["shortest_edge"], f"{path} size.shortest_edge")[0], "size.shortest_edge")
        else:
            hw = _hw(size, f"{path} size")
            put("resize", hw, "size")
            put("size", hw, "size")
    if cfg.get("do_center_crop") and cfg.get("crop_size") is not None:
        put("size", _hw(cfg["crop_size"], f"{path} crop_size"), "crop_size")
    out["crop_rounding"] = ("floor", f"{src} (Hugging Face center crop)")
    return out


def _from_timm(path: Path) -> dict:
    """Values and sources from a timm sidecar JSON: ``normalization`` and/or ``pretrained_cfg``."""
    meta, src, out = load_json_object(path, "preprocessing"), path.name, {}
    norm = meta.get("normalization")
    if isinstance(norm, dict):
        for key in ("mean", "std"):
            if key in norm:
                out[key] = (_floats(norm[key], f"{path} normalization.{key}"), f"{src} normalization.{key}")
    cfg = meta.get("pretrained_cfg")
    if isinstance(cfg, dict):
        where = f"{src} pretrained_cfg"
        for key in ("mean", "std"):
            if key in cfg:
                out[key] = (_floats(cfg[key], f"{path} pretrained_cfg.{key}"), f"{where}.{key}")
        if "input_size" in cfg:
            out["size"] = (_hw(cfg["input_size"], f"{path} pretrained_cfg.input_size"), f"{where}.input_size")
        if "crop_pct" in cfg:
            out["crop_pct"] = (_floats(cfg["crop_pct"], f"{path} pretrained_cfg.crop_pct")[0], f"{where}.crop_pct")
        if "interpolation" in cfg:
            out["interpolation"] = (_interpolation(cfg["interpolation"], f"{path} pretrained_cfg.interpolation"),
                                    f"{where}.interpolation")
    if "test_accuracy" in meta:
        out["test_accuracy"] = (_floats(meta["test_accuracy"], f"{path} test_accuracy")[0], f"{src} test_accuracy")
    return out


def recorded(checkpoint, fmt: str) -> tuple[dict, Path]:
    """What a checkpoint records about its input: ``{key: (value, source)}`` and the file it looked at."""
    checkpoint = Path(checkpoint)
    if fmt == "hf":
        path = checkpoint / "preprocessor_config.json"
        return (_from_hf(path) if path.is_file() else {}), path
    path = checkpoint.with_suffix(".json")
    return (_from_timm(path) if path.is_file() else {}), path


def resolve_preprocessing(checkpoint, fmt: str, *, channels: int | None, input_size: tuple | None,
                          overrides: dict | None = None) -> tuple[Preprocess, dict]:
    """The :class:`Preprocess` of ``checkpoint`` (``fmt`` ``"hf"`` or ``"timm"``) and its recorded extras.

    ``channels`` and ``input_size`` are the model's (its config); ``overrides``
    holds ``mean``, ``std``, ``image_size``, ``crop_pct``, ``interpolation``
    (None: not given). Returns ``(preprocess, extras)``; ``extras`` holds
    ``test_accuracy`` as ``(value, source)`` when the checkpoint records it.
    """
    found, looked = recorded(checkpoint, fmt)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    val = {k: v[0] for k, v in found.items()}
    src = {k: v[1] for k, v in found.items()}
    for key in ("mean", "std", "interpolation"):
        if key in given:
            val[key], src[key] = (tuple(given[key]) if key != "interpolation" else given[key]), OVERRIDE_FLAGS[key]
    missing = [OVERRIDE_FLAGS[k] for k in ("mean", "std") if k not in val]
    if missing:
        raise HardytError(
            f"{checkpoint}: no input normalization recorded (looked in {looked}) and none given: pass "
            f"{' and '.join(missing)} (per channel, of pixels scaled to [0, 1]) as the model was trained with; "
            "also --image-size, --crop-pct and --interpolation if the images are not the model's input size")
    # Hugging Face's {"height", "width"} resize without a crop squashes to the input size: keep that form
    squash = isinstance(val.get("resize"), tuple) and src.get("resize") == src.get("size")
    if "image_size" in given:
        val["size"], src["size"] = _hw(given["image_size"], "--image-size"), "--image-size"
    elif "size" not in val and input_size is not None:
        val["size"], src["size"] = tuple(input_size), "model config"
    if input_size is not None and val.get("size") != tuple(input_size):
        raise HardytError(f"{src.get('size', 'preprocessing')}: images would be {val.get('size')} but the model "
                          f"takes {tuple(input_size)} (H, W); pass --image-size {input_size[0]}")
    if "crop_pct" in given or "image_size" in given or ("resize" not in val and "size" in val):
        crop_pct = given.get("crop_pct", val.get("crop_pct", 1.0))
        if not (isinstance(crop_pct, (int, float)) and 0 < crop_pct <= 1):
            raise HardytError(f"--crop-pct must be in (0, 1], got {crop_pct}")
        val["resize"] = resize_for(val["size"], crop_pct, squash)
        src["resize"] = ("--crop-pct" if "crop_pct" in given else src["crop_pct"] if "crop_pct" in src
                         else "default: crop_pct 1, resize to the input size")
    src.setdefault("interpolation", "default")
    src.setdefault("rescale", "default: uint8 / 255")
    src.setdefault("crop_rounding", "default: torchvision center crop")
    if channels is not None:
        src["channels"] = "model config"
    pre = Preprocess(mean=val["mean"], std=val["std"], channels=channels, size=val.get("size"),
                     resize=val.get("resize"), interpolation=val.get("interpolation", "bilinear"),
                     rescale=val.get("rescale", 1 / 255), crop_rounding=val.get("crop_rounding", "round"),
                     sources={k: v for k, v in src.items() if k not in ("crop_pct", "test_accuracy")})
    extras = {k: found[k] for k in ("test_accuracy",) if k in found}
    return pre, extras
