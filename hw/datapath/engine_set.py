"""The layer set of a DyT engine: its shape (the widest layer) and each layer's coefficients.

Numbers only (no HDL): which layers one :class:`hardyt.hw.datapath.engine.DyTEngine`
can serve, the table each layer loads, and its coefficient frame.

The engine supports the LUT tanh over every signed code (what ``hardyt
convert`` produces by default: 8-bit tables), with gamma/beta folded into the
next Linear or per channel (``channel`` affine: ``hardyt convert --no-fold``,
or layers whose gamma/beta do not fold). Other layers are refused with an
error naming the layer: a PWL tanh, a table over more than 8 input bits,
per-channel alpha shifts, a ``beta`` wider than a coefficient beat.

>>> from hardyt.hw.datapath.cores import random_dyt_spec
>>> specs = [random_dyt_spec(8, 2, 8, 8, name="a"), random_dyt_spec(4, 2, 6, 6, name="b")]
>>> shape = engine_shape(specs)
>>> shape
EngineShape(layers=2, channels=8, lanes=2, in_bits=8, out_bits=8, table_bits=8, affine=None)
>>> t = layer_table(specs[1], shape)
>>> len(t), int(t[0x1f]), int(t[0x20]), int(t[0x80])   # codes 31, 32 (clipped to 31), -128 (to -32)
(256, 31, 31, -31)
>>> engine_shape(specs + [random_dyt_spec(8, 2, 8, 8, affine="channel", name="c")]).affine
AffineShape(gamma_bits=8, beta_bits=13, shift_lo=6, shift_hi=6)
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hardyt.quant.errors import HardytError
from hardyt.quant.contract.fixed import bits_for_signed
from hardyt.quant.contract.spec import ChannelAffine, DyTSpec
from hardyt.quant.contract.tanh import tanh_int

from .coef_frame import COEF_BITS, AffineSection, frame_words
from .dyt_core import SIGNED_ROM_MAX_BITS

__all__ = ["EngineShape", "AffineShape", "engine_shape", "relane", "layer_table", "layer_frame", "MAX_LAYERS"]

#: Layer indices fit the header's 8-bit field.
MAX_LAYERS = 256


@dataclass(frozen=True)
class AffineShape:
    """The channel affine part of an engine: gamma and ``beta + half`` widths, the range of shifts."""

    gamma_bits: int
    beta_bits: int
    shift_lo: int
    shift_hi: int


@dataclass(frozen=True)
class EngineShape:
    """What a DyT engine is sized for: ``layers`` sets, the most channels, lanes, the widest formats.

    ``table_bits`` is the widest tanh code; ``affine`` is ``None`` when no layer has channel affine.
    """

    layers: int
    channels: int
    lanes: int
    in_bits: int
    out_bits: int
    table_bits: int
    affine: AffineShape | None = None

    @property
    def beats(self) -> int:
        """Beats of the longest token."""
        return self.channels // self.lanes

    def to_dict(self) -> dict:
        return {"hardyt": "dyt-engine", **dataclasses.asdict(self)}


def _check_layer(spec) -> None:
    name = getattr(spec, "name", "?")
    if not isinstance(spec, DyTSpec):
        raise HardytError(f"layer {name}: the DyT engine serves DyT layers, got a {type(spec).__name__}")
    why = None
    if spec.alpha_shift is not None:
        why = "per-channel alpha shifts"
    elif spec.tanh.kind == "threshold":
        why = ("tanh threshold (the engine's RAM holds one table of outputs read in one cycle, not the per-stage "
               "thresholds of a binary search: convert with --tanh lut, or emit the layer as its own core)")
    elif spec.tanh.kind != "lut":
        why = f"tanh {spec.tanh.kind} (the engine's table is a LUT over every code: convert with --tanh lut)"
    elif spec.tanh.in_bits > SIGNED_ROM_MAX_BITS:
        why = f"a {spec.tanh.in_bits}-bit tanh input (the engine's table covers at most {SIGNED_ROM_MAX_BITS} bits)"
    elif isinstance(spec.affine, ChannelAffine) and _beta_bits(spec.affine) > COEF_BITS:
        why = f"a {_beta_bits(spec.affine)}-bit beta (a coefficient beat has {COEF_BITS} bits)"
    if why:
        raise HardytError(f"layer {name}: the DyT engine does not support {why}; emit it as its own core "
                          f"(hardyt rtl without --engine)")


def _beta_bits(a: ChannelAffine) -> int:
    """Bits of ``beta + half`` (what the frame carries, as the core's beta ROM)."""
    half = (1 << a.shift) >> 1
    return bits_for_signed(min(a.beta) + half, max(a.beta) + half)


def _affine_shape(specs) -> AffineShape | None:
    affs = [s.affine for s in specs if isinstance(s.affine, ChannelAffine)]
    if not affs:
        return None
    return AffineShape(max(a.gamma_bits for a in affs), max(2, max(_beta_bits(a) for a in affs)),
                       min(a.shift for a in affs), max(a.shift for a in affs))


def relane(spec: DyTSpec, lanes: int) -> DyTSpec:
    """``spec`` at ``lanes`` lanes (DyT is elementwise: only the beat packing changes)."""
    if spec.channels % lanes:
        raise HardytError(f"layer {spec.name}: {spec.channels} channels are not a multiple of {lanes} lanes")
    return dataclasses.replace(spec, lanes=lanes)


def engine_shape(specs, lanes: int | None = None) -> EngineShape:
    """The engine that serves every layer of ``specs`` (in their order: index = position).

    ``lanes`` defaults to the first layer's; every layer must fit it.
    """
    specs = list(specs)
    if not specs:
        raise HardytError("the DyT engine needs at least one layer")
    if len(specs) > MAX_LAYERS:
        raise HardytError(f"the DyT engine serves at most {MAX_LAYERS} layers, got {len(specs)}")
    for s in specs:
        _check_layer(s)
    lanes = specs[0].lanes if lanes is None else lanes
    specs = [relane(s, lanes) for s in specs]
    return EngineShape(len(specs), max(s.channels for s in specs), lanes, max(s.in_bits for s in specs),
                       max(s.out_bits for s in specs), max(s.tanh.out_bits for s in specs), _affine_shape(specs))


def layer_table(spec: DyTSpec, shape: EngineShape) -> np.ndarray:
    """The ``2**shape.in_bits`` tanh codes the engine's table holds for ``spec``.

    Entry ``u`` is the output for the input whose two's complement is ``u``;
    codes outside the layer's narrower range (never sent) take the nearest.
    """
    n = 1 << shape.in_bits
    codes = np.arange(n, dtype=np.int64)
    codes[codes >= n // 2] -= n
    lo, hi = -(1 << (spec.in_bits - 1)), (1 << (spec.in_bits - 1)) - 1
    return tanh_int(np.clip(codes, lo, hi), spec.tanh)


def layer_frame(spec: DyTSpec, index: int, shape: EngineShape) -> list[int]:
    """Layer ``index``'s coefficient frame (see :mod:`hardyt.hw.datapath.coef_frame`)."""
    a, aff = spec.affine, None
    if isinstance(a, ChannelAffine):
        aff = AffineSection(a.shift, a.out_bits, list(a.gamma), list(a.beta), shape.affine.gamma_bits,
                            shape.affine.beta_bits)
    return frame_words(index, spec.channels // shape.lanes, layer_table(spec, shape), shape.table_bits,
                       shape.in_bits, aff)
