"""``explore.json``: the result of the explore step (its writer is :func:`hardyt.flow.explore.write`)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hardyt.quant.files import load_json_object

from .record import Record

__all__ = ["ExploreResult", "read_explore"]


@dataclass
class ExploreResult(Record):
    """The front, the pick within the budget and what the search cost; other keys stay in ``extra``.

    Members
    -------
    front : list of dict
        Pareto points: ``accuracy`` (validation), ``lut``, ``ff``, ``dsp``, ``bram``, ``lut_ff``,
        ``fmax_mhz``, ``estimated_layers``, ``layers`` (each layer's choice).
    pick : dict
        The smallest point within ``max_drop``, with ``test_accuracy``.
    """

    command: str | None = None
    checkpoint: str = None
    data: str = None
    target: str = None
    lanes: int | None = None
    max_drop: float = None
    splits: dict = None
    reference: dict = None
    fmax_floor_mhz: float | None = None
    min_fmax: float | None = None
    front: list = None
    pick: dict = None
    baselines: dict = None
    search: dict = None
    synthesis: dict = None
    cost_model_error: dict = None
    candidates: dict = None
    seconds: dict = None


def read_explore(directory) -> ExploreResult:
    """``directory/explore.json``."""
    path = Path(directory) / "explore.json"
    return ExploreResult.from_dict(load_json_object(path, "explore result"), str(path))
