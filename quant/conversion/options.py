"""The options of :func:`~hardyt.quant.conversion.pipeline.convert`, as one validated dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..contract.check import check_options
from ..errors import HardytError
from .augment import check_augment

__all__ = ["METHODS", "ConvertOptions", "OPTION_DEFAULTS"]

METHODS = ("naive", "lstsq", "sequential", "reconstruct")


@dataclass(frozen=True)
class ConvertOptions:
    """How :func:`convert` calibrates; every field has the default ``convert`` uses.

    >>> ConvertOptions(steps=10).steps
    10
    >>> ConvertOptions.from_kwargs(stpes=10)
    Traceback (most recent call last):
    ...
    hardyt.quant.errors.HardytError: convert: unknown option(s) ['stpes']; known: ...
    >>> ConvertOptions(steps=-1)
    Traceback (most recent call last):
    ...
    hardyt.quant.errors.SpecError: convert: steps: must be an integer >= 0, got -1

    A bad value is a :class:`~hardyt.quant.errors.SpecError` whose ``field``
    is the option's name (the command line turns it into its flag).
    """

    method: str = "reconstruct"    # one of METHODS
    steps: int = 600               # reconstruction: Adam steps (one calibration batch each)
    lr: float = 2e-2               # reconstruction: gamma/beta learning rate
    alpha_lr: float = 2e-2         # reconstruction: alpha learning rate, relative to each alpha
    temperature: float = 1.0       # reconstruction: softmax temperature of the KL
    feature_weight: float = 1.0    # reconstruction: weight of the DyT-output vs LayerNorm-output MSE term
    self_distill_lr: float = 0.0   # > 0: also tune every other weight (label-free self-distillation)
    quant_aware: bool = False      # reconstruction through the fixed-point quantization (STE)
    augment: str = "shift"         # label-free variants of image batches: "flip", "shift", "mixup", "+"-joined
    alpha_shift: int = 0           # > 0: per-channel alpha as shifts 0..alpha_shift (else one scalar alpha)
    fold: bool = True              # fold gamma/beta into following Linear layers when exact
    keep: tuple = ()               # LayerNorm names to keep as LayerNorm
    rows_per_batch: int = 512      # token rows per batch used by the closed-form fits and the clip search
    fit_samples: int = 1024        # the closed-form fits and the clip search use the first batches up to this many
    seed: int = 0
    progress: bool = False         # tqdm progress bars
    strict: bool = False           # a fidelity warning (fixed point vs float) is an error instead

    def __post_init__(self):
        object.__setattr__(self, "keep", tuple(self.keep))
        check_options(self, "convert", ints={"steps": (0, None), "alpha_shift": (0, 8), "rows_per_batch": (1, None),
                                             "fit_samples": (1, None), "seed": (0, None)},
                      positive=("lr", "alpha_lr", "temperature"), non_negative=("feature_weight", "self_distill_lr"),
                      choices={"method": METHODS})
        check_augment(self.augment)

    @classmethod
    def from_kwargs(cls, **options) -> "ConvertOptions":
        """The options from keyword arguments; an unknown name is a :class:`HardytError` listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise HardytError(f"convert: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**options)

    def as_report(self) -> dict:
        """JSON-ready, as ``report["options"]`` records them."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if k != "progress"}


OPTION_DEFAULTS = asdict(ConvertOptions())
