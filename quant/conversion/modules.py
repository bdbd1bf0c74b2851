"""Dynamic Tanh as torch modules, the float side of the model: DyT and ShiftDyT."""
from __future__ import annotations

import torch
from torch import nn

from ..contract.check import check_int

__all__ = ["DyT", "ShiftDyT", "effective_alpha", "NOT_LAYERNORM_EPS"]


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
        check_int("channels", channels, 1)
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


# Callers that read a LayerNorm's ``eps`` (nn.TransformerEncoderLayer's fused fast
# path requires norm1.eps == norm2.eps) must take their generic path, which calls
# the DyT module: NaN never compares equal.
NOT_LAYERNORM_EPS = float("nan")


class ShiftDyT(DyT):
    """DyT whose per-channel alpha is ``alpha * 2**shift[c]`` (hardware: a left shift).

    Parameters
    ----------
    channels : int
    alpha : float
        The smallest alpha (shift 0).
    shift : sequence of int
        Per-channel shifts, 0..8.
    affine : bool
    """

    def __init__(self, channels: int, alpha: float, shift, *, affine: bool = True):
        super().__init__(channels, alpha, affine=affine)
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.int64).reshape(channels))

    def effective_alpha(self) -> torch.Tensor:
        return self.alpha * torch.exp2(self.shift.float())

    def forward(self, x):
        y = torch.tanh(self.effective_alpha() * x)
        if self.weight is not None:
            y = y * self.weight + self.bias
        return y


def effective_alpha(dyt: DyT) -> torch.Tensor:
    """Per-channel (or scalar) alpha of a DyT layer."""
    return dyt.effective_alpha() if isinstance(dyt, ShiftDyT) else dyt.alpha


