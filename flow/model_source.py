"""The load step: a model source (checkpoint, format, preprocessing, data) → the model and its data.

:func:`load_model_source` takes a :class:`hardyt.flow.options.ModelSource` and
returns a :class:`LoadedModel`; the functions below are its parts. Every
function that takes ``source`` also takes an argparse namespace with the same
attribute names (the old ``load_model(args)``): :func:`as_source` fills in the
rest from the defaults.

- :func:`detect_format`: a directory with ``config.json`` is ``hf``;
  ``.safetensors``/``.pth``/``.pt``/``.bin`` is ``timm``; ``--format`` wins.
- :func:`resolve_input`: the checkpoint's recorded preprocessing
  (:func:`hardyt.quant.zoo.preprocess.resolve_preprocessing`) with the
  ``--mean --std --image-size --crop-pct --interpolation`` overrides, and the
  test accuracy it records (or ``--expect-accuracy``).
- :func:`calibration_loader` / :func:`test_set`: lazy batches of ``--data``
  (labels never read for calibration; ``--calib-size all`` = the whole
  training split).
- :func:`evaluate`: top-1 of several models in one streamed pass over the test set.
- :func:`accuracy_check`: the measured LayerNorm accuracy next to the recorded
  one; a gap over :data:`GAP_PT` points is a warning.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import load_json_object
from hardyt.quant.zoo.preprocess import INTERPOLATIONS  # noqa: F401 - the command line's choices

from .options import ModelSource

GAP_PT = 2.0  # measured vs recorded LayerNorm top-1, in points, above which preprocessing is suspect
CALIB_BATCH = 64
TIMM_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def detect_format(checkpoint, fmt: str | None) -> str:
    """``hf`` or ``timm`` for ``checkpoint`` (None: the bundled model); an explicit ``fmt`` wins."""
    if fmt:
        return fmt
    if checkpoint is None:
        return "timm"
    path = Path(checkpoint)
    if path.is_dir() and (path / "config.json").is_file():
        return "hf"
    if path.suffix in TIMM_SUFFIXES:
        return "timm"
    what = "a directory without config.json" if path.is_dir() else f"suffix '{path.suffix}'"
    raise HardytError(f"{path}: cannot tell the checkpoint format ({what}); a Hugging Face directory holds "
                      f"config.json, a timm checkpoint ends in {', '.join(TIMM_SUFFIXES)}; or pass --format timm|hf")


def as_source(source) -> ModelSource:
    """``source`` as a :class:`ModelSource` (an argparse namespace: its attributes of the same names)."""
    if isinstance(source, ModelSource):
        return source
    return ModelSource(**{f.name: getattr(source, f.name) for f in fields(ModelSource) if hasattr(source, f.name)})


def load_model(source):
    """``(model, format, path)`` of ``source.checkpoint`` (default: the bundled ViT), in eval mode."""
    from hardyt.quant.zoo import load
    args = as_source(source)
    fmt = detect_format(args.checkpoint, args.format)
    if fmt == "hf":
        if not args.checkpoint:
            raise HardytError("--format hf needs a CHECKPOINT directory")
        return load.load_hf(args.checkpoint).eval(), fmt, Path(args.checkpoint)
    path = Path(args.checkpoint) if args.checkpoint else load.default_model_path()
    return load.load_vit(path, load_json_object(args.config, "config") if args.config else None).eval(), fmt, path


def model_input_shape(model) -> tuple[int, tuple[int, int]]:
    """Input channels and (H, W) of a timm-layout ViT or a Hugging Face ViT."""
    pe = getattr(model, "patch_embed", None)
    if pe is not None and hasattr(pe, "img_size"):
        return int(pe.proj.in_channels), tuple(int(s) for s in pe.img_size)
    cfg = getattr(model, "config", None)
    size = getattr(cfg, "image_size", None)
    if cfg is None or size is None:
        raise HardytError(f"{type(model).__name__}: cannot tell the model's input size (no patch_embed.img_size "
                          "or config.image_size)")
    size = (size, size) if isinstance(size, int) else tuple(size)
    return int(getattr(cfg, "num_channels", 3)), size


def resolve_input(source, model, fmt: str, path: Path):
    """``(preprocess, expected)``: the model's input pipeline and its recorded top-1 ``(fraction, source)``."""
    from hardyt.quant.zoo.preprocess import resolve_preprocessing
    args = as_source(source)
    channels, size = model_input_shape(model)
    overrides = {"mean": args.mean, "std": args.std, "image_size": args.image_size, "crop_pct": args.crop_pct,
                 "interpolation": args.interpolation}
    pre, extras = resolve_preprocessing(path, fmt, channels=channels, input_size=size, overrides=overrides)
    expected = extras.get("test_accuracy")
    if args.expect_accuracy is not None:
        if not 0 <= args.expect_accuracy <= 100:
            raise HardytError(f"--expect-accuracy is a percentage in [0, 100], got {args.expect_accuracy}")
        expected = (args.expect_accuracy / 100, "--expect-accuracy")
    return pre, expected


def _show(v) -> str:
    if isinstance(v, list) and all(isinstance(a, int) for a in v):
        return "x".join(map(str, v))  # a size
    if isinstance(v, list):
        return "[" + ", ".join(f"{a:g}" for a in v) + "]"
    return str(v)


def describe_dict(pre: dict) -> str:
    """One line for a :meth:`Preprocess.to_dict`: each value with where it came from."""
    src = pre["sources"]
    return ", ".join(f"{key} {_show(pre[key])} ({src[key]})" for key in
                     ("mean", "std", "channels", "resize", "size", "interpolation")
                     if pre[key] is not None and key in src)


def describe(pre) -> str:
    """:func:`describe_dict` of a :class:`Preprocess`."""
    return describe_dict(pre.to_dict())


def calibration_loader(source, pre):
    """Lazy calibration batches of the training split (labels never read): ``--calib-size`` images or all."""
    import torch
    args = as_source(source)

    from hardyt.quant.zoo.data import batch_loader, open_dataset
    train = open_dataset(args.data, "train", pre, labels=False)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed))
    if args.calib_size != "all":
        order = order[:args.calib_size]
    return batch_loader(train, order.tolist(), CALIB_BATCH)


def test_set(source, pre):
    """``(dataset, indices)`` of the labelled test split, ``--eval-size`` images (a fixed subset) or all."""
    from hardyt.quant.zoo.data import open_dataset, subset
    args = as_source(source)
    test = open_dataset(args.data, "test", pre, labels=True)
    return test, subset(len(test), args.eval_size)


def evaluate(models: dict, test, indices, batch_size: int = 256) -> dict:
    """Top-1 of each model (by name) on the test items at ``indices``, each batch read once."""
    from hardyt.quant.runtime.evaluate import predictions
    from hardyt.quant.zoo.data import batch_loader

    from hardyt.quant.progress import progress
    hits = dict.fromkeys(models, 0)
    loader = batch_loader(test, indices, batch_size)
    for x, y in progress(loader, desc="evaluate", unit="batch", leave=False):
        for name, model in models.items():
            hits[name] += int((predictions(model, x, batch_size=batch_size) == y).sum())
    return {name: h / len(indices) for name, h in hits.items()}


def accuracy_check(measured: float, expected, test_samples: int) -> tuple[dict | None, str | None]:
    """``(record, warning)``: the measured LayerNorm top-1 next to the checkpoint's own, warned over GAP_PT."""
    if expected is None:
        return None, None
    value, source = expected
    gap = 100 * (measured - value)
    record = {"expected": value, "source": source, "measured": measured, "gap_pt": gap, "test_samples": test_samples}
    if abs(gap) <= GAP_PT:
        return record, None
    return record, (f"LayerNorm top-1 measured {100 * measured:.2f} % on {test_samples} test images, the checkpoint "
                    f"records {100 * value:.2f} % ({source}): a gap of {gap:+.2f} pt (over {GAP_PT:g}) — the "
                    "preprocessing (--mean/--std/--image-size/--crop-pct/--interpolation) or the data probably "
                    "differ from training")


@dataclass
class LoadedModel:
    """What the load step gives the steps after it.

    Members
    -------
    source : ModelSource
    model : torch.nn.Module
        The trained model, eval mode (the teacher and the referee).
    format : str
        ``timm`` or ``hf``.
    path : Path
        The checkpoint read.
    preprocess : hardyt.quant.zoo.preprocess.Preprocess
        The input pipeline, each value with where it came from.
    expected : tuple or None
        The checkpoint's own test top-1 ``(fraction, where recorded)``.
    """

    source: ModelSource
    model: object
    format: str
    path: Path
    preprocess: object
    expected: tuple | None

    def calibration(self):
        """Lazy calibration batches (:func:`calibration_loader`)."""
        return calibration_loader(self.source, self.preprocess)

    def test(self):
        """``(dataset, indices)`` of the test split (:func:`test_set`)."""
        return test_set(self.source, self.preprocess)


def load_model_source(source) -> LoadedModel:
    """The load step: the model of ``source`` and its preprocessing (checkpoint's, with the overrides)."""
    source = as_source(source)
    model, fmt, path = load_model(source)
    pre, expected = resolve_input(source, model, fmt, path)
    return LoadedModel(source, model, fmt, path, pre, expected)
