"""Dynamic Tanh as a torch module, the float side of the model."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["DyT"]


class DyT(nn.Module):
    """``gamma * tanh(alpha * x) + beta`` over the last dimension (Zhu et al., 2025).

    Parameters
    ----------
    channels : int
        Size of the last dimension.
    alpha : float
        Initial scalar alpha.
    per_channel_alpha : bool
        One alpha per channel instead of a scalar.
    affine : bool
        Whether gamma/beta are present (False once folded into the next Linear).
    """

    def __init__(self, channels: int, alpha: float = 0.5, *, per_channel_alpha: bool = False, affine: bool = True):
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.alpha = nn.Parameter(torch.full((channels,) if per_channel_alpha else (1,), float(alpha)))
        if affine:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.alpha * x)
        if self.weight is not None:
            y = y * self.weight + self.bias
        return y

    def extra_repr(self) -> str:
        return f"{self.channels}, alpha={tuple(self.alpha.shape)}, affine={self.weight is not None}"
