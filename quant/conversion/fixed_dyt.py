"""DyT in the hardware's integer arithmetic, as a torch module.

:class:`FixedDyT` quantizes its input with the layer's calibrated scale,
computes the golden model's integer DyT and dequantizes the output codes, so
that a model evaluated with it measures the accuracy of what the FPGA
computes. The integer function is a table of every (channel, input code)
built by :func:`hardyt.quant.golden_model.dyt_elements` itself: equal to the
golden model bit for bit by construction, and a single gather at run time.

:func:`make_spec` turns a calibrated float DyT (alpha, gamma, beta, input
scale) into the :class:`~hardyt.quant.spec.DyTSpec` the hardware reads.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..contract.fixed import round_half_up, signed_range
from ..contract.golden_dyt import dyt_elements
from ..contract.spec import ChannelAffine, DyTSpec, FoldedAffine
from ..contract.tanh import build_tanh, full_scale
from ..errors import HardytError
from .modules import NOT_LAYERNORM_EPS

__all__ = ["FORMAT_DEFAULTS", "formats_from", "make_spec", "quantize_codes", "FixedDyT"]

# Fixed-point formats of a converted layer; ``fixed_point={...}`` overrides them.
FORMAT_DEFAULTS = {
    "in_bits": 8,        # signed input code width
    "out_bits": 8,       # tanh output width (folded layers output this)
    "tanh": "lut",       # "lut" or "pwl"
    "segments": 16,      # pwl segments
    "drop_bits": 0,      # lut: low bits of |x| dropped from the index
    "gamma_bits": 8,     # channel affine (unfoldable layers): gamma ROM width
    "beta_bits": 16,     # channel affine: beta ROM width
    "affine_out_bits": 8,  # channel affine: output width
    "lanes": None,       # channels per beat; None: largest of 8, 4, 2, 1 dividing C
}

# Above this many table entries (channels x input codes) the golden model runs directly.
_MAX_TABLE = 1 << 22


def formats_from(fixed_point) -> dict:
    """The formats for ``fixed_point`` (``True``/``False`` or a dict of overrides)."""
    if fixed_point in (True, False, None):
        return dict(FORMAT_DEFAULTS)
    if not isinstance(fixed_point, dict):
        raise HardytError(f"fixed_point: must be True, False or a dict of formats, got {fixed_point!r}")
    unknown = set(fixed_point) - set(FORMAT_DEFAULTS)
    if unknown:
        raise HardytError(f"fixed_point: unknown format key(s) {sorted(unknown)}; known: {sorted(FORMAT_DEFAULTS)}")
    return dict(FORMAT_DEFAULTS) | fixed_point


def _lanes(channels: int, lanes) -> int:
    if lanes is None:
        return next(p for p in (8, 4, 2, 1) if channels % p == 0)
    return int(lanes)


def make_spec(name: str, alpha: float, in_scale: float, formats: dict, *, channels: int,
              alpha_shift=None, gamma=None, beta=None) -> DyTSpec:
    """The hardware spec of one calibrated DyT layer.

    ``gamma``/``beta`` (float arrays) give a per-channel affine; ``None``
    means they were folded into the next Linear. ``alpha_shift`` gives
    per-channel alpha as ``alpha * 2**shift``.
    """
    f = formats
    extra = 0 if alpha_shift is None else int(max(alpha_shift))
    tanh = build_tanh(f["tanh"], f["in_bits"] + extra, f["out_bits"], float(alpha) * float(in_scale),
                      segments=f["segments"], drop_bits=f["drop_bits"])
    affine = FoldedAffine()
    if gamma is not None:
        gamma = np.asarray(gamma, dtype=np.float64)
        beta = np.zeros(channels) if beta is None else np.asarray(beta, dtype=np.float64)
        t_max = full_scale(f["out_bits"])
        out_max = float(np.max(np.abs(gamma) + np.abs(beta))) or 1.0
        out_scale = out_max / full_scale(f["affine_out_bits"])
        # Largest shift whose integer gamma still fits gamma_bits.
        g_top = full_scale(f["gamma_bits"])
        g_unit = float(np.max(np.abs(gamma))) / (t_max * out_scale) or 1.0
        shift = max(0, min(40, math.floor(math.log2(g_top / g_unit))))
        g = round_half_up(gamma * 2.0 ** shift / (t_max * out_scale))
        b = round_half_up(beta * 2.0 ** shift / out_scale)
        lo, hi = signed_range(f["beta_bits"])
        if b.min() < lo or b.max() > hi:
            raise HardytError(f"{name}: beta needs more than beta_bits={f['beta_bits']} bits at shift {shift}")
        affine = ChannelAffine(tuple(int(v) for v in g), tuple(int(v) for v in b), f["gamma_bits"],
                               f["beta_bits"], shift, f["affine_out_bits"], out_scale)
    return DyTSpec(channels=channels, lanes=_lanes(channels, f["lanes"]), in_bits=f["in_bits"],
                   in_scale=float(in_scale), alpha=float(alpha), tanh=tanh, affine=affine,
                   alpha_shift=None if alpha_shift is None else tuple(int(k) for k in alpha_shift),
                   name=name.replace(".", "_"))


def quantize_codes(x: torch.Tensor, in_scale: float, in_bits: int) -> torch.Tensor:
    """Input codes as :func:`hardyt.quant.fixed.quantize` makes them (half up, saturated).

    Computed in float64 like the NumPy function, so both give the same codes.
    """
    lo, hi = signed_range(in_bits)
    return torch.floor(x.double() / in_scale + 0.5).nan_to_num_(0.0).clamp_(lo, hi).to(torch.int64)


class FixedDyT(nn.Module):
    """A DyT layer computing the golden model's integers between float neighbours.

    Parameters
    ----------
    spec : DyTSpec
        The layer; its ``in_scale`` quantizes the input, its ``out_scale``
        dequantizes the output.
    float_module : nn.Module or None
        The float DyT it was made from (kept out of the state dict; see
        :func:`hardyt.quant.convert.to_float`).

    Members
    -------
    record : list or None
        When a list, each forward appends the ``(tokens, C)`` int64 input codes.
    """

    def __init__(self, spec: DyTSpec, float_module: nn.Module | None = None):
        super().__init__()
        self.spec = spec
        self.record = None
        self.float_module = (float_module,)  # a tuple: not a submodule, not in the state dict
        self.eps = NOT_LAYERNORM_EPS
        lo, hi = signed_range(spec.in_bits)
        self._lo = lo
        self._n_codes = hi - lo + 1
        if spec.channels * self._n_codes <= _MAX_TABLE:
            codes, channel = np.meshgrid(np.arange(lo, hi + 1, dtype=np.int64), np.arange(spec.channels))
            table = dyt_elements(codes, channel, spec)
            self.register_buffer("table", torch.from_numpy(table.reshape(-1)), persistent=False)
        else:
            self.table = None

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Input codes of ``x`` (last dimension = channels)."""
        return quantize_codes(x, self.spec.in_scale, self.spec.in_bits)

    def integer(self, q: torch.Tensor) -> torch.Tensor:
        """Output codes of input codes ``q`` (the golden model's function)."""
        if self.table is None:
            from .golden_model import golden
            return torch.from_numpy(golden(q.cpu().numpy(), self.spec)).to(q.device)
        row = torch.arange(self.spec.channels, device=q.device) * self._n_codes
        return self.table[row + (q - self._lo)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.spec.channels:
            raise HardytError(f"{self.spec.name}: expected {self.spec.channels} channels, got shape {tuple(x.shape)}")
        q = self.codes(x.detach())
        if self.record is not None:
            self.record.append(q.reshape(-1, self.spec.channels).cpu())
        return self.integer(q).to(x.dtype) * self.spec.out_scale

    def extra_repr(self) -> str:
        s = self.spec
        return f"{s.channels}, in_bits={s.in_bits}, tanh={s.tanh.kind}, affine={s.affine.mode}"
