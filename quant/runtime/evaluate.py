"""Top-1 accuracy of a classifier on a labelled tensor set, batched."""
from __future__ import annotations

import torch
from torch import nn
from ..progress import progress as progress_bar
from .graph import model_logits

__all__ = ["predictions", "accuracy"]


def predictions(model: nn.Module, x: torch.Tensor, *, batch_size: int = 500, progress: bool = False,
                desc: str = "evaluate") -> torch.Tensor:
    """Predicted class of every sample of ``x`` (the model in eval mode, no grad)."""
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.inference_mode():
            for chunk in progress_bar(x.split(batch_size), desc=desc, unit="batch", disable=not progress, leave=False):
                out.append(model_logits(model, chunk).argmax(-1))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, **kw) -> float:
    """Fraction of samples whose predicted class is ``y``.

    >>> m = nn.Linear(2, 2, bias=False)
    >>> _ = m.weight.data.copy_(torch.eye(2))
    >>> accuracy(m, torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]]), torch.tensor([0, 1, 1]))
    0.6666666666666666
    """
    if len(x) == 0:
        return float("nan")
    return int((predictions(model, x, **kw) == y).sum()) / len(y)
