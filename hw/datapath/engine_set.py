"""The layer set of a DyT engine: its shape (the widest layer) and each layer's coefficients.

Numbers only (no HDL): which layers one :class:`hardyt.hw.datapath.engine.DyTEngine`
can serve, the table each layer loads, and its coefficient frame.

The engine supports the LUT tanh over every signed code (what ``hardyt
convert`` produces by default: 8-bit tables), with gamma/beta folded into the
next Linear or per channel (``channel`` affine: ``hardyt convert --no-fold``,
or layers whose gamma/beta do not fold). A set with a ``threshold`` tanh
layer (``hardyt convert --tanh threshold``; or ``tanh="threshold"``) makes a
*threshold engine*: its RAMs hold each layer's ``2**b - 1`` thresholds per
compare stage (:mod:`hardyt.quant.contract.threshold`) instead of a table, at
any input width up to :data:`THRESHOLD_MAX_IN_BITS`; it serves LUT and PWL
layers too, through the thresholds of their (monotone) output codes. Other
layers are refused with an error naming the layer: a PWL tanh or a table over
more than 8 input bits (table engine), per-channel alpha shifts, a ``beta``
wider than a coefficient beat, a tanh whose codes are not monotone.

>>> from hardyt.hw.datapath.cores import random_dyt_spec
>>> specs = [random_dyt_spec(8, 2, 8, 8, name="a"), random_dyt_spec(4, 2, 6, 6, name="b")]
>>> shape = engine_shape(specs)
>>> shape
EngineShape(layers=2, channels=8, lanes=2, in_bits=8, out_bits=8, table_bits=8, affine=None, tanh='lut')
>>> t = layer_table(specs[1], shape)
>>> len(t), int(t[0x1f]), int(t[0x20]), int(t[0x80])   # codes 31, 32 (clipped to 31), -128 (to -32)
(256, 31, 31, -31)
>>> engine_shape(specs + [random_dyt_spec(8, 2, 8, 8, affine="channel", name="c")]).affine
AffineShape(gamma_bits=8, beta_bits=13, shift_lo=6, shift_hi=6)
>>> thr = engine_shape([random_dyt_spec(8, 2, 16, 8, tanh="threshold", name="t"), specs[1]])
>>> thr.tanh, thr.in_bits, thr.entries, thr.entry_bits
('threshold', 16, 255, 17)
>>> w = layer_thresholds(specs[1], thr)       # 6-bit output: levels past +-31 always / never reached
>>> w[94:98], w[157:161]
((-32768, -32768, -32, -29), (26, 30, 32768, 32768))
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hardyt.quant.errors import HardytError
from hardyt.quant.contract.fixed import bits_for_signed
from hardyt.quant.contract.spec import ChannelAffine, DyTSpec
from hardyt.quant.contract.tanh import full_scale, tanh_int
from hardyt.quant.contract.threshold import stage_words

from .coef_frame import COEF_BITS, AffineSection, frame_words, threshold_frame_words
from .dyt_core import SIGNED_ROM_MAX_BITS

__all__ = ["EngineShape", "AffineShape", "engine_shape", "relane", "layer_table", "layer_thresholds", "layer_frame",
           "MAX_LAYERS", "THRESHOLD_MAX_IN_BITS", "ENGINE_TANH"]

#: Layer indices fit the header's 8-bit field.
MAX_LAYERS = 256
#: A threshold engine's widest input: a threshold word (``in_bits + 1``) fits a coefficient beat, and a
#: non-threshold layer's thresholds come from its codes, all ``2**in_bits`` of them.
THRESHOLD_MAX_IN_BITS = 16
#: What an engine's RAMs hold: ``lut``, a table of outputs per input code; ``threshold``, per-stage thresholds.
ENGINE_TANH = ("lut", "threshold")


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

    ``table_bits`` is the widest tanh code; ``affine`` is ``None`` when no layer has channel affine;
    ``tanh`` what the RAMs hold (:data:`ENGINE_TANH`).
    """

    layers: int
    channels: int
    lanes: int
    in_bits: int
    out_bits: int
    table_bits: int
    affine: AffineShape | None = None
    tanh: str = "lut"

    @property
    def beats(self) -> int:
        """Beats of the longest token."""
        return self.channels // self.lanes

    @property
    def entries(self) -> int:
        """Entries of a frame's table section: ``2**in_bits`` outputs, or ``2**table_bits - 1`` thresholds."""
        return (1 << self.table_bits) - 1 if self.tanh == "threshold" else 1 << self.in_bits

    @property
    def entry_bits(self) -> int:
        """Bits of one entry: ``table_bits``, or ``in_bits + 1`` for a threshold (its range is ``-M .. M``)."""
        return self.in_bits + 1 if self.tanh == "threshold" else self.table_bits

    def to_dict(self) -> dict:
        return {"hardyt": "dyt-engine", **dataclasses.asdict(self)}


def _check_layer(spec, tanh: str) -> None:
    name = getattr(spec, "name", "?")
    if not isinstance(spec, DyTSpec):
        raise HardytError(f"layer {name}: the DyT engine serves DyT layers, got a {type(spec).__name__}")
    why = None
    if spec.alpha_shift is not None:
        why = "per-channel alpha shifts"
    elif tanh == "threshold":
        if spec.tanh.in_bits > THRESHOLD_MAX_IN_BITS:
            why = f"a {spec.tanh.in_bits}-bit tanh input (a threshold engine takes at most {THRESHOLD_MAX_IN_BITS})"
        elif isinstance(spec.affine, ChannelAffine) and _beta_bits(spec.affine) > COEF_BITS:
            why = f"a {_beta_bits(spec.affine)}-bit beta (a coefficient beat has {COEF_BITS} bits)"
    elif spec.tanh.kind == "threshold":
        why = ("tanh threshold on a table engine (its RAM holds one table of outputs, not the per-stage "
               "thresholds of a binary search: build a threshold engine, tanh='threshold')")
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


def engine_shape(specs, lanes: int | None = None, tanh: str | None = None) -> EngineShape:
    """The engine that serves every layer of ``specs`` (in their order: index = position).

    ``lanes`` defaults to the first layer's; every layer must fit it. ``tanh``
    (:data:`ENGINE_TANH`) defaults to ``threshold`` when a layer has a
    threshold tanh, else ``lut``.
    """
    specs = list(specs)
    if not specs:
        raise HardytError("the DyT engine needs at least one layer")
    if len(specs) > MAX_LAYERS:
        raise HardytError(f"the DyT engine serves at most {MAX_LAYERS} layers, got {len(specs)}")
    if tanh is None:
        tanh = "threshold" if any(getattr(getattr(s, "tanh", None), "kind", None) == "threshold" for s in specs) \
            else "lut"
    if tanh not in ENGINE_TANH:
        raise HardytError(f"the DyT engine's tanh must be one of {', '.join(ENGINE_TANH)}, got {tanh!r}")
    for s in specs:
        _check_layer(s, tanh)
    lanes = specs[0].lanes if lanes is None else lanes
    specs = [relane(s, lanes) for s in specs]
    shape = EngineShape(len(specs), max(s.channels for s in specs), lanes, max(s.in_bits for s in specs),
                        max(s.out_bits for s in specs), max(s.tanh.out_bits for s in specs), _affine_shape(specs),
                        tanh)
    if tanh == "threshold":
        for s in specs:
            layer_thresholds(s, shape)          # a tanh that is not monotone is refused here, by name
    return shape


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


def _own_thresholds(spec: DyTSpec) -> np.ndarray:
    """The ``2**b - 1`` thresholds of the layer's tanh at its own widths (a threshold tanh's, or those of
    the output codes of any other kind, over every input code: they must not decrease)."""
    t = spec.tanh
    if t.kind == "threshold":
        return np.asarray(t.thresholds, dtype=np.int64)
    m = 1 << (t.in_bits - 1)
    codes = np.arange(-m, m, dtype=np.int64)
    y = tanh_int(codes, t)
    if np.any(np.diff(y) < 0):
        k = int(np.argmax(np.diff(y) < 0))
        raise HardytError(f"layer {spec.name}: the DyT engine does not support a tanh that decreases (code "
                          f"{codes[k]} -> {y[k]}, {codes[k] + 1} -> {y[k + 1]}): a threshold engine needs "
                          "monotone codes")
    levels = np.arange(1, 1 << t.out_bits, dtype=np.int64) - (1 << (t.out_bits - 1))
    idx = np.searchsorted(y, levels, side="left")
    return np.where(idx < len(codes), codes[np.minimum(idx, len(codes) - 1)], m)


def layer_thresholds(spec: DyTSpec, shape: EngineShape) -> tuple[int, ...]:
    """The ``2**shape.table_bits - 1`` thresholds a threshold engine holds for ``spec``, in level order.

    The engine's output is ``#{x >= thresholds} - 2**(table_bits-1)``; a layer
    with fewer output bits (largest code ``T``) has the engine's levels below
    ``-T`` reached by every code (``-M``, the engine's smallest) and those
    above ``T`` by none (``M``, one past its largest). Equal to a threshold
    tanh's own thresholds when the widths are the engine's.
    """
    own = _own_thresholds(spec)
    t_layer, big = full_scale(spec.tanh.out_bits), 1 << (shape.in_bits - 1)
    levels = np.arange(1, 1 << shape.table_bits, dtype=np.int64) - (1 << (shape.table_bits - 1))
    inside = own[np.clip(levels + t_layer, 0, len(own) - 1)]
    return tuple(int(v) for v in np.where(levels < -t_layer, -big, np.where(levels > t_layer, big, inside)))


def layer_frame(spec: DyTSpec, index: int, shape: EngineShape) -> list[int]:
    """Layer ``index``'s coefficient frame (see :mod:`hardyt.hw.datapath.coef_frame`)."""
    a, aff = spec.affine, None
    if isinstance(a, ChannelAffine):
        aff = AffineSection(a.shift, a.out_bits, list(a.gamma), list(a.beta), shape.affine.gamma_bits,
                            shape.affine.beta_bits)
    if shape.tanh == "threshold":
        words = [w for stage in stage_words(layer_thresholds(spec, shape), shape.table_bits) for w in stage]
        return threshold_frame_words(index, spec.channels // shape.lanes, words, shape.in_bits, aff)
    return frame_words(index, spec.channels // shape.lanes, layer_table(spec, shape), shape.table_bits,
                       shape.in_bits, aff)
