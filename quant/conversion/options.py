"""The options of :func:`~hardyt.quant.conversion.pipeline.convert`, as one validated dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..contract.check import check_options
from ..errors import HardytError
from .augment import check_augment
from .weights import check_adapt

__all__ = ["METHODS", "OBJECTIVES", "ConvertOptions", "OPTION_DEFAULTS"]

METHODS = ("naive", "lstsq", "sequential", "reconstruct")
OBJECTIVES = ("auto", "kl", "cosine")


@dataclass(frozen=True)
class ConvertOptions:
    """How :func:`convert` calibrates; every field has the default ``convert`` uses.

    >>> ConvertOptions(steps=10).steps
    10
    >>> ConvertOptions().feature_weight, ConvertOptions(freeze_weights=True).feature_weight
    (10.0, 1.0)
    >>> ConvertOptions.from_kwargs(stpes=10)  # doctest: +ELLIPSIS
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
    steps: int | None = None       # reconstruction: Adam steps (one calibration batch each); None: follow the
    #                                data and the referee within time_budget (schedule.plan_steps)
    time_budget: float | None = None  # seconds of reconstruction; None: schedule.TIME_BUDGET when steps is None
    guard: bool = True             # weights adapt after a frozen phase and are kept only if they beat it on the
    #                                referee (guard.py); False: they adapt from the start, kept whatever
    lr: float = 2e-2               # reconstruction: gamma/beta learning rate
    alpha_lr: float = 2e-2         # reconstruction: alpha learning rate, relative to each alpha
    temperature: float = 1.0       # reconstruction: softmax temperature of the KL
    feature_weight: float | None = None  # reconstruction: weight of the DyT-output vs LayerNorm-output MSE
    #                                      term; None: 10 when other weights adapt (it anchors them), else 1
    self_distill_lr: float = 3e-3  # learning rate of the weights that adapt besides DyT's (0: none adapt)
    relative_lr: float | None = 0.08  # each adapting tensor's rate is this times its RMS (self_distill_lr then
    #                                   only switches adaptation on or off); None: every tensor at self_distill_lr
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
    # Weights besides DyT's, and where the calibration runs (docs/conversion.md, "Weights and scale").
    freeze_weights: bool = False   # True: every weight besides DyT's stays as trained
    adapt: str = "all"             # weights that adapt (unless frozen): "all" or "consumers" (Linears reading a DyT)
    holdout: int = 0               # referee: the first N calibration samples held out of every fit and step;
    #                                0: 1/8 of the set, at least 64, at most 1024 (calibration.referee_size)
    eval_every: int = 50           # steps between the referee's checks (the best state on it is kept)
    patience: int = 4              # the adapted phase stops after this many checks in a row (and a quarter
    #                                of its steps: guard.adapt_patience) worse than its start; 0: never
    # What is compared with the LayerNorm model (docs/conversion.md, "Outputs that are not logits").
    output: object = None          # callable(model output) -> the tensor that matters; None: logits / first output
    objective: str = "auto"        # "kl" (logits), "cosine" (1 - cosine + relative MSE); auto: kl for logits
    device: str | None = None      # "cpu", "cuda", "cuda:N"; None: CUDA when present

    def __post_init__(self):
        object.__setattr__(self, "keep", tuple(self.keep))
        # Chosen by measurement (docs/conversion.md, "How the previous default was chosen").
        if self.feature_weight is None:
            object.__setattr__(self, "feature_weight", 10.0 if self.weight_lr > 0 else 1.0)
        check_options(self, "convert", ints={"alpha_shift": (0, 8), "rows_per_batch": (1, None),
                                             "fit_samples": (1, None), "seed": (0, None),
                                             "holdout": (0, None), "eval_every": (1, None),
                                             "patience": (0, None)},
                      positive=("lr", "alpha_lr", "temperature"), non_negative=("feature_weight", "self_distill_lr"),
                      choices={"method": METHODS, "objective": OBJECTIVES})
        for name in ("relative_lr", "time_budget"):
            if getattr(self, name) is not None:
                check_options(self, "convert", positive=(name,))
        if self.steps is not None:
            check_options(self, "convert", ints={"steps": (0, None)})
        if self.output is not None and not callable(self.output):
            raise HardytError(f"convert: output must be a callable picking a tensor from the model's output, "
                              f"got {type(self.output).__name__}")
        check_augment(self.augment)
        check_adapt(self.adapt)

    @classmethod
    def from_kwargs(cls, **options) -> "ConvertOptions":
        """The options from keyword arguments; an unknown name is a :class:`HardytError` listing the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = set(options) - known
        if unknown:
            raise HardytError(f"convert: unknown option(s) {sorted(unknown)}; known: {sorted(known)}")
        if options.get("self_distill_lr") and "relative_lr" not in options:
            options = options | {"relative_lr": None}  # a rate given is the rate used, for every tensor
        return cls(**options)

    @property
    def weight_lr(self) -> float:
        """The learning rate of the weights besides DyT's: 0 when frozen."""
        return 0.0 if self.freeze_weights else self.self_distill_lr

    def as_report(self) -> dict:
        """JSON-ready, as ``report["options"]`` records them."""
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()
               if k not in ("progress", "device")}
        out["output"] = None if self.output is None else getattr(self.output, "__qualname__", repr(self.output))
        return out


OPTION_DEFAULTS = asdict(ConvertOptions())
