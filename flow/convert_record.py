"""``report.json`` of a converted directory as dataclasses: the report and one record per DyT layer."""
from __future__ import annotations

from dataclasses import dataclass, field

from .record import Record

__all__ = ["LayerRecord", "ConvertReport"]


@dataclass
class LayerRecord(Record):
    """One DyT layer of a conversion report (``report.json`` ``layers[i]``)."""

    name: str = None
    spec_name: str = None
    channels: int = None
    alpha: float = None
    alpha_shift: list | None = None
    in_scale: float = None
    clip: float = None
    alpha_clip: float = None
    fit_error: float = None
    sqnr_db: float = None
    min_in_bits: int | None = None
    min_out_bits: int | None = None
    folded: bool = None
    folded_into: list = None
    fold_change: float | None = None
    spec: dict = None


@dataclass
class ConvertReport(Record):
    """``report.json`` of a converted directory; sections this code does not know stay in ``extra``.

    The library's :func:`hardyt.quant.convert` returns the dict this reads
    (``layers``, ``fidelity``, ``weights``, ...); the convert step adds what
    it measured (``accuracy``, ``preprocessing``, ...).
    """

    NESTED = {"layers": LayerRecord}

    command: str | None = None
    checkpoint: str = None
    format: str = None
    data: str = None
    test_samples: int = None
    preprocessing: dict = None
    accuracy: dict = None
    accuracy_check: dict | None = None
    method: str = None
    formats: dict = None
    options: dict = None
    calib_samples: int = None
    device: str = None
    world_size: int = None
    layers: list[LayerRecord] = field(default_factory=list)
    kept_layernorms: list[str] = field(default_factory=list)
    folded: int = None
    fidelity: dict = None
    teacher: dict | None = None  # the held-out check against the LayerNorm model (quant.conversion.referee)
    splits: dict | None = None   # which split decided, which was only reported, with sizes
    weights: dict = None
    warnings: list[str] = field(default_factory=list)
    partial: dict | None = None
    convert_seconds: float = None
    total_seconds: float = None
