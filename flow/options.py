"""The options of each flow step, one dataclass each (FINN's ``DataflowBuildConfig``, one per step).

The command line builds these from its flags (:func:`from_args`); Python
callers build them directly. Defaults are the command line's.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

from hardyt.quant.errors import HardytError

__all__ = ["SEED", "ModelSource", "ConvertConfig", "EmitConfig", "SimConfig", "SynthConfig", "ExportConfig",
           "ExploreConfig", "DemoConfig", "from_args"]

SEED = 0  # the one default seed: calibration sample, optimizer, random specs, stimulus, placement


@dataclass
class ModelSource:
    """A trained model and the data it is fed: checkpoint, format, preprocessing overrides, splits.

    Members
    -------
    checkpoint : str or None
        timm ``.safetensors``/``.pth`` or a Hugging Face directory; None: the bundled ViT.
    config, format : str or None
        timm config JSON (default ``<stem>.json``); ``timm`` or ``hf`` (default: detected).
    data : str
        ``fashion-mnist``, an ImageFolder directory or a ``.npz``.
    calib_size : int or "all"
        Calibration images from the training split (labels unused).
    eval_size : int or None
        Test images (default: all).
    mean, std, image_size, crop_pct, interpolation, expect_accuracy
        Overrides of what the checkpoint records (:mod:`hardyt.quant.zoo.preprocess`).
    """

    checkpoint: str | None = None
    config: str | None = None
    format: str | None = None
    data: str = "fashion-mnist"
    calib_size: int | str = 1024
    eval_size: int | None = None
    seed: int = SEED
    mean: list | None = None
    std: list | None = None
    image_size: int | None = None
    crop_pct: float | None = None
    interpolation: str | None = None
    expect_accuracy: float | None = None

    def __post_init__(self):
        if self.calib_size != "all" and (not isinstance(self.calib_size, int) or self.calib_size < 1):
            raise HardytError(f"--calib-size must be >= 1 or all, got {self.calib_size}")
        if self.eval_size is not None and self.eval_size < 1:
            raise HardytError(f"--eval-size must be >= 1, got {self.eval_size}")


@dataclass
class ConvertConfig:
    """``hardyt convert``: the library's conversion options, the formats, where to write."""

    source: ModelSource = field(default_factory=ModelSource)
    out: str = "out/convert"
    in_bits: int = 8
    out_bits: int = 8
    tanh: str = "lut"
    tanh_range: str = "layer"
    lanes: int | None = None
    method: str = "reconstruct"
    steps: int | None = None
    alpha_shift: int = 0
    fold: bool = True
    freeze_weights: bool = False
    self_distill_lr: float | None = None
    feature_weight: float | None = None
    augment: str | None = None
    device: str | None = None
    strict: bool = False
    max_drop: float | None = None
    keep: str | list | None = None           # LayerNorms kept: a list, or names comma-separated
    layer_formats: str | dict | None = None  # per-layer formats: {layer: {key: value}} or a JSON file of it
    guard: bool = True
    time_budget: float | None = None
    val_size: int | None = None
    val_data: str | None = None
    progress: bool = True
    command: str | None = None

    def __post_init__(self):
        for name in ("in_bits", "out_bits"):
            if getattr(self, name) < 2:
                raise HardytError(f"--{name.replace('_', '-')} must be >= 2, got {getattr(self, name)}")
        if self.max_drop is not None and not self.max_drop >= 0:
            raise HardytError(f"--max-drop must be >= 0 points, got {self.max_drop}")
        if self.max_drop is not None and self.keep:
            raise HardytError("--keep and --max-drop: give one (--max-drop chooses the LayerNorms to keep)")
        if isinstance(self.keep, str):
            self.keep = [n.strip() for n in self.keep.split(",") if n.strip()]
        if isinstance(self.layer_formats, str):
            self.layer_formats = _layer_formats(self.layer_formats)
        if self.val_size is not None and self.val_size < 1:
            raise HardytError(f"--val-size must be >= 1, got {self.val_size}")

    def formats(self) -> dict:
        f = {"in_bits": self.in_bits, "out_bits": self.out_bits, "tanh": self.tanh, "lanes": self.lanes,
             "tanh_range": self.tanh_range}
        return f | ({"layers": self.layer_formats} if self.layer_formats else {})

    def library_options(self) -> dict:
        """Keyword arguments of :func:`hardyt.quant.convert`, validated by its ``ConvertOptions`` now."""
        from hardyt.quant.conversion.options import ConvertOptions

        options = {"method": self.method, "alpha_shift": self.alpha_shift, "freeze_weights": self.freeze_weights,
                   "device": self.device, "seed": self.source.seed, "progress": self.progress,
                   "strict": self.strict, "fold": self.fold, "guard": self.guard}
        for name in ("self_distill_lr", "feature_weight", "steps", "augment", "time_budget"):
            if getattr(self, name) is not None:
                options[name] = getattr(self, name)
        if self.keep:
            options["keep"] = tuple(self.keep)
        ConvertOptions(**options)
        return options


@dataclass
class EmitConfig:
    """``hardyt rtl`` of a spec file or converted directory: which layers, names, engine or one core each."""

    out: str
    layers: list | None = None
    name: str | None = None
    engine: bool = False
    lanes: int | None = None


@dataclass
class SimConfig:
    """``hardyt sim``: simulator, stimulus, where tool jobs run."""

    simulator: str = "icarus"
    mode: str = "cocotb"
    vectors: int | None = None
    seed: int = SEED
    waves: bool = False
    activations: str | None = None
    scheduler: str | None = None
    workers: int = 1
    exhaustive: bool = False


@dataclass
class ProveConfig:
    """``hardyt prove``: which properties (default all of each core's), the time per task, where jobs run."""

    property: list[str] | None = None
    timeout: float = 600.0
    keep: bool = False
    scheduler: str | None = None
    workers: int = 1


@dataclass
class SynthConfig:
    """``hardyt synth``: target and placement seed, where tool jobs run."""

    target: str = "ecp5"
    seed: int = SEED
    scheduler: str | None = None
    workers: int = 1


@dataclass
class ExportConfig:
    """``hardyt export``: ONNX, QONNX or hls4ml, whole model or one layer."""

    format: str
    out: str
    layer: str | None = None
    batch: int = 1
    backend: str | None = None  # hls4ml: Vitis (default) or Vivado
    check: bool = False         # hls4ml: C simulation against the golden model before writing


@dataclass
class ExploreConfig:
    """``hardyt explore``: the search's budget, splits, synthesis and where it writes."""

    source: ModelSource = field(default_factory=ModelSource)
    max_drop: float = 1.0
    target: str = "ecp5"
    lanes: int | None = None
    scheduler: str | None = None
    workers: int = 1
    synth_budget: int | str | None = None
    min_fmax: float | None = None
    conversions: int = 3
    every_family: bool = False
    measure: int = 12
    beam: int = 3
    val_size: int = 2000
    steps: int | None = None
    cache: str | None = None
    out: str = "out/explore"
    command: str | None = None


@dataclass
class DemoConfig:
    """``hardyt demo``: the whole flow on the bundled ViT."""

    out: str = "out/demo"
    calib_size: int | str = 1024
    seed: int = SEED
    simulator: str = "icarus"
    vectors: int = 256
    synth: bool = True
    command: str | None = None


def _layer_formats(path) -> dict:
    """``--layer-formats FILE.json``: ``{layer: {format key: value}}``, checked."""
    from hardyt.quant.conversion.fixed_dyt import formats_from
    from hardyt.quant.files import load_json_object

    layers = load_json_object(path, "layer formats")
    try:
        formats_from({"layers": layers})
    except HardytError as e:
        raise HardytError(f"{path}: {e}") from None
    return layers


def from_args(cls, args, **given):
    """An options dataclass ``cls`` from an argparse namespace: each field from the flag of its name
    (``--no-X`` sets field ``X`` to False); a :class:`ModelSource` field from the same namespace."""
    values = {}
    for f in fields(cls):
        if f.name in given:
            continue
        if f.name == "source":
            values["source"] = from_args(ModelSource, args)
        elif hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
        elif hasattr(args, f"no_{f.name}"):
            values[f.name] = not getattr(args, f"no_{f.name}")
    return cls(**values, **given)
