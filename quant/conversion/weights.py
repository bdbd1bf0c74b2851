"""Which weights besides DyT's adapt during the reconstruction, and how far they moved.

Adapting weights costs no hardware (the matrix engines run whatever weights
they are given), so the default conversion lets them follow the LayerNorm
model label-free; ``freeze_weights`` keeps them as trained.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import HardytError
from .fold import find_consumers

__all__ = ["ADAPT", "check_adapt", "adapted_parameters", "snapshot", "weight_changes"]

ADAPT = ("all", "consumers")
"""``all``: every parameter that is not a DyT's; ``consumers``: the Linear layers reading a DyT output."""


def check_adapt(adapt) -> str:
    """``adapt`` if it is one of :data:`ADAPT`, else a :class:`HardytError`.

    >>> check_adapt("consumers")
    'consumers'
    """
    if adapt not in ADAPT:
        raise HardytError(f"convert: adapt must be one of {', '.join(ADAPT)}, got {adapt!r}")
    return adapt


def adapted_parameters(model: nn.Module, dyts: dict, adapt: str, batch) -> dict[str, nn.Parameter]:
    """The parameters of ``model`` besides the DyT layers' that adapt, by name.

    ``consumers`` watches a forward pass on ``batch`` for the Linear layers
    whose input is a DyT output (e.g. qkv, fc1 and the head of a pre-LN ViT).
    """
    check_adapt(adapt)
    mine = {id(p) for m in dyts.values() for p in m.parameters()}
    if adapt == "all":
        return {n: p for n, p in model.named_parameters() if id(p) not in mine}
    linears = sorted({lin for into in find_consumers(model, list(dyts), batch).values() for lin in into})
    return {f"{lin}.{n}": p for lin in linears for n, p in model.get_submodule(lin).named_parameters()}


def snapshot(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached copies of ``params`` (to measure the change against)."""
    return {n: p.detach().clone() for n, p in params.items()}


def weight_changes(before: dict[str, torch.Tensor], params: dict[str, torch.Tensor]) -> dict[str, float]:
    """Relative norm of the change of every tensor, ``||W - W0|| / ||W0||``, largest first.

    >>> w = nn.Parameter(torch.ones(4))
    >>> before = snapshot({"w": w})
    >>> _ = w.data.mul_(1.5)
    >>> weight_changes(before, {"w": w})
    {'w': 0.5}
    """
    out = {}
    for n, p in params.items():
        w0 = before[n].float()
        out[n] = float((p.detach().float() - w0).norm() / w0.norm().clamp_min(1e-12))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
