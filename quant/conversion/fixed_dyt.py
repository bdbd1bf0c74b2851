"""DyT in the hardware's integer arithmetic, as a torch module.

:class:`FixedDyT` quantizes its input with the layer's calibrated scale,
computes the golden model's integer DyT and dequantizes the output codes, so
that a model evaluated with it measures the accuracy of what the FPGA
computes. The integer function is a table of every (channel, input code)
built by :func:`hardyt.quant.contract.golden_dyt.dyt_elements` itself: equal to the
golden model bit for bit by construction, and a single gather at run time.

:func:`make_spec` turns a calibrated float DyT (alpha, gamma, beta, input
scale) into the :class:`~hardyt.quant.spec.DyTSpec` the hardware reads.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from ..contract.fixed import bits_for_signed, round_half_up, signed_range
from ..contract.golden_dyt import dyt_elements, dyt_golden
from ..contract.names import layer_stem
from ..contract.spec import ChannelAffine, DyTSpec, FoldedAffine
from ..contract.tanh import build_tanh, full_scale, range_out_scale
from ..errors import HardytError
from ..runtime.graph import set_module
from .modules import NOT_LAYERNORM_EPS, DyT

__all__ = ["FORMAT_DEFAULTS", "formats_from", "layer_formats", "tanh_out_scale", "channel_affine", "make_spec", "quantize_codes",
           "FixedDyT", "dyt_layers", "with_layers", "to_float"]

# Fixed-point formats of a converted layer; ``fixed_point={...}`` overrides them.
FORMAT_DEFAULTS = {
    "in_bits": 8,        # signed input code width
    "out_bits": 8,       # tanh output width (folded layers output this)
    "tanh": "lut",       # "lut", "pwl" or "threshold"
    "tanh_range": "layer",  # tanh output spans "layer": tanh(alpha * clip); "full": +-1 (version-1 specs)
    "segments": 16,      # pwl segments
    "drop_bits": 0,      # lut: low bits of |x| dropped from the index
    "gamma_bits": None,  # channel affine (unfoldable layers): gamma ROM width; None: from the data
    "beta_bits": None,   # channel affine: beta ROM width; None: from the data
    "affine_out_bits": None,  # channel affine: output width; None: from the data
    "lanes": None,       # channels per beat; None: largest of 8, 4, 2, 1 dividing C
}
_TANH_RANGES = ("layer", "full")
# Data-chosen channel affine: the median channel keeps this many significant gamma bits,
# and no width grows past the cap (one DSP multiplier input, a 24-bit stream word).
_GAMMA_SIGNIFICANT = 8
_MAX_GAMMA_BITS = 18
_MAX_AFFINE_OUT_BITS = 24

# Above this many table entries (channels x input codes) the golden model runs directly.
_MAX_TABLE = 1 << 22


def _check_formats(formats: dict, where: str) -> None:
    unknown = set(formats) - set(FORMAT_DEFAULTS)
    if unknown:
        raise HardytError(f"{where}: unknown format key(s) {sorted(unknown)}; known: {sorted(FORMAT_DEFAULTS)}")
    if formats.get("tanh_range", "layer") not in _TANH_RANGES:
        raise HardytError(f"{where}: tanh_range must be one of {_TANH_RANGES}, got {formats['tanh_range']!r}")


def formats_from(fixed_point) -> dict:
    """The formats for ``fixed_point`` (``True``/``False`` or a dict of overrides).

    ``fixed_point["layers"]``, ``{layer name: {key: value}}``, overrides the
    formats of single layers (:func:`layer_formats`); it is kept in the result.

    >>> formats_from({"in_bits": 6, "layers": {"norm": {"tanh": "pwl"}}})["layers"]
    {'norm': {'tanh': 'pwl'}}
    """
    if fixed_point in (True, False, None):
        return dict(FORMAT_DEFAULTS)
    if not isinstance(fixed_point, dict):
        raise HardytError(f"fixed_point: must be True, False or a dict of formats, got {fixed_point!r}")
    layers = fixed_point.get("layers", {})
    if not isinstance(layers, dict) or not all(isinstance(v, dict) for v in layers.values()):
        raise HardytError(f"fixed_point: layers must map layer names to format dicts, got {layers!r}")
    _check_formats({k: v for k, v in fixed_point.items() if k != "layers"}, "fixed_point")
    for name, f in layers.items():
        _check_formats(f, f"fixed_point: layer {name}")
    return dict(FORMAT_DEFAULTS) | fixed_point


def layer_formats(formats: dict, name: str) -> dict:
    """The formats of layer ``name``: ``formats`` with that layer's overrides (``formats["layers"][name]``).

    >>> f = layer_formats(formats_from({"in_bits": 6, "layers": {"norm": {"in_bits": 10}}}), "norm")
    >>> f["in_bits"], "layers" in f
    (10, False)
    """
    return {k: v for k, v in formats.items() if k != "layers"} | formats.get("layers", {}).get(name, {})


def _lanes(channels: int, lanes) -> int:
    if lanes is None:
        return next(p for p in (8, 4, 2, 1) if channels % p == 0)
    return int(lanes)


def tanh_out_scale(formats: dict, in_bits: int, alpha_scale: float) -> float | None:
    """The tanh output scale ``formats`` ask for: the layer's range, or ``None`` (±1)."""
    if formats["tanh_range"] == "full":
        return None
    return range_out_scale(in_bits, formats["out_bits"], alpha_scale)


def channel_affine(name: str, gamma, beta, reach, tanh_scale: float, formats: dict) -> ChannelAffine:
    """The per-channel affine of a layer whose tanh codes have real value ``tanh_scale``.

    ``reach[c]`` is the largest ``|tanh|`` channel ``c`` can output (its
    alpha times the clip). Widths left ``None`` in ``formats`` come from the
    data: the output LSB is no coarser than the median channel's tanh LSB
    (``|gamma_c| * tanh_scale``), so outlier channels widen the output instead
    of flattening the others; gamma keeps 8 significant bits on the median
    channel; beta gets the bits its codes need.
    """
    gamma = np.asarray(gamma, dtype=np.float64)
    beta = np.zeros_like(gamma) if beta is None else np.asarray(beta, dtype=np.float64)
    out_max = float(np.max(np.abs(gamma) * reach + np.abs(beta))) or 1.0
    g_abs = np.abs(gamma)
    g_med = max(float(np.median(g_abs)), float(g_abs.max()) * 2.0 ** -16) or 1.0
    out_bits = formats["affine_out_bits"]
    if out_bits is None:
        codes = out_max / (g_med * tanh_scale)
        out_bits = min(_MAX_AFFINE_OUT_BITS, max(formats["out_bits"], bits_for_signed(0, math.ceil(codes))))
    out_scale = out_max / full_scale(out_bits)
    gamma_bits = formats["gamma_bits"]
    if gamma_bits is None:
        spread = math.ceil(float(g_abs.max()) / g_med * full_scale(_GAMMA_SIGNIFICANT))
        gamma_bits = min(_MAX_GAMMA_BITS, bits_for_signed(0, spread))
    # Largest shift whose integer gamma still fits gamma_bits.
    g_unit = float(g_abs.max()) * tanh_scale / out_scale or 1.0
    shift = max(0, min(40, math.floor(math.log2(full_scale(gamma_bits) / g_unit))))
    g = round_half_up(gamma * tanh_scale * 2.0 ** shift / out_scale)
    b = round_half_up(beta * 2.0 ** shift / out_scale)
    beta_bits = formats["beta_bits"]
    if beta_bits is None:
        beta_bits = max(2, bits_for_signed(int(b.min()), int(b.max())))
    lo, hi = signed_range(beta_bits)
    if b.min() < lo or b.max() > hi:
        raise HardytError(f"{name}: beta needs more than beta_bits={beta_bits} bits at shift {shift}")
    return ChannelAffine(tuple(int(v) for v in g), tuple(int(v) for v in b), gamma_bits, beta_bits, shift,
                         out_bits, out_scale)


def make_spec(name: str, alpha: float, in_scale: float, formats: dict, *, channels: int,
              alpha_shift=None, gamma=None, beta=None) -> DyTSpec:
    """The hardware spec of one calibrated DyT layer.

    ``gamma``/``beta`` (float arrays) give a per-channel affine; ``None``
    means they were folded into the next Linear (which then also absorbs the
    tanh output scale). ``alpha_shift`` gives per-channel alpha as
    ``alpha * 2**shift``. Keys missing from ``formats`` take
    :data:`FORMAT_DEFAULTS`.
    """
    f = FORMAT_DEFAULTS | layer_formats(formats, name)
    extra = 0 if alpha_shift is None else int(max(alpha_shift))
    alpha_scale = float(alpha) * float(in_scale)
    out_scale = tanh_out_scale(f, f["in_bits"] + extra, alpha_scale)
    tanh = build_tanh(f["tanh"], f["in_bits"] + extra, f["out_bits"], alpha_scale,
                      segments=f["segments"], drop_bits=f["drop_bits"], out_scale=out_scale)
    affine = FoldedAffine()
    if gamma is not None:
        shifts = np.zeros(channels) if alpha_shift is None else np.asarray(alpha_shift, dtype=np.float64)
        reach = np.tanh(alpha_scale * 2.0 ** shifts * 2.0 ** (f["in_bits"] - 1))
        affine = channel_affine(name, gamma, beta, reach, tanh.out_scale, f)
    return DyTSpec(channels=channels, lanes=_lanes(channels, f["lanes"]), in_bits=f["in_bits"],
                   in_scale=float(in_scale), alpha=float(alpha), tanh=tanh, affine=affine,
                   alpha_shift=None if alpha_shift is None else tuple(int(k) for k in alpha_shift),
                   name=layer_stem(name))


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
            return torch.from_numpy(dyt_golden(q.cpu().numpy(), self.spec)).to(q.device)
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


def dyt_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The DyT layers (float or fixed point) of a converted model, by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, (DyT, FixedDyT))}


def with_layers(model: nn.Module, make, names=None) -> nn.Module:
    """A copy of ``model`` with layers replaced: each DyT layer (or each layer in ``names``) by
    ``make(name, layer)``; ``make`` may also be a dict of modules by name, copied in."""
    out = copy.deepcopy(model)
    if isinstance(make, dict):
        modules = make
        make = lambda name, _: copy.deepcopy(modules[name])  # noqa: E731
    targets = dyt_layers(out) if names is None else {n: out.get_submodule(n) for n in names}
    for name, m in targets.items():
        set_module(out, name, make(name, m))
    return out


def to_float(model: nn.Module) -> nn.Module:
    """A copy of a fixed-point converted model with float DyT layers (same calibration)."""
    return with_layers(model, lambda _name, m: m.float_module[0] if isinstance(m, FixedDyT) else m)
