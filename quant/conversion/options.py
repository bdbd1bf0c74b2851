"""The options of :func:`~hardyt.quant.conversion.pipeline.convert`, as one validated dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

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
        if self.method not in METHODS:
            raise HardytError(f"convert: method must be one of {', '.join(METHODS)}, got {self.method!r}")
        check_augment(self.augment)
        if not isinstance(self.fit_samples, int) or self.fit_samples < 1:
            raise HardytError(f"convert: fit_samples must be an integer >= 1, got {self.fit_samples!r}")
        if not isinstance(self.alpha_shift, int) or not 0 <= self.alpha_shift <= 8:
            raise HardytError(f"convert: alpha_shift must be an integer 0..8, got {self.alpha_shift!r}")

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
