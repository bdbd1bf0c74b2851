"""The DyT layer spec: everything the hardware needs, as one JSON object.

A spec is what ``hw`` reads and nothing else: channels ``C``, lanes ``P``,
the input format and its real scale, the integer tanh (table or segments),
optional per-channel power-of-two alpha shifts, and the affine mode.

>>> from hardyt.quant.contract.tanh import build_lut
>>> spec = DyTSpec(channels=4, lanes=2, in_bits=6, in_scale=0.05, alpha=2.0,
...                tanh=build_lut(6, 8, 0.1))
>>> DyTSpec.from_json(spec.to_json()) == spec
True
>>> spec.out_bits, spec.affine.mode
(8, 'folded')
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from .check import check_input, check_int, check_real
from .fixed import signed_range
from .golden_dyt import dyt_elements, dyt_golden
from .specfile import SpecFile, check_header, reading_fields
from .stream import lane_channels
from .tanh import MAX_IN_BITS, Tanh, TanhLUT, TanhPWL, TanhThreshold

__all__ = ["SPEC_VERSION", "FoldedAffine", "ChannelAffine", "Affine", "DyTSpec"]

# Version 2 added ``tanh.out_scale`` (the tanh output format spans the layer's range);
# a version-1 file has none and means ``1/T``, as it always did. Version 3 added the
# ``threshold`` tanh kind; a spec is written in the oldest version that holds it
# (``lut``/``pwl``: 2), so an older hardyt still reads every spec it can build.
SPEC_VERSION = 3
_KIND_VERSION = {"lut": 2, "pwl": 2, "threshold": 3}
_MAX_SHIFT = 8


@dataclass(frozen=True)
class FoldedAffine:
    """gamma/beta folded into the next Linear: the core outputs the tanh code.

    The output is signed ``tanh.out_bits`` wide with real scale
    ``tanh.out_scale``; the next Linear absorbs it with gamma.
    """

    mode: str = field(default="folded", init=False)


@dataclass(frozen=True)
class ChannelAffine:
    """Per-channel ``y = sat(round_shift(gamma[c] * t + beta[c], shift))``.

    ``t`` is the tanh code; ``gamma`` and ``beta`` are signed integers of
    ``gamma_bits`` and ``beta_bits``; the output is signed ``out_bits`` wide
    with real scale ``out_scale`` (so ``gamma[c] ~ gamma_c * tanh.out_scale *
    2**shift / out_scale`` and ``beta[c] ~ beta_c * 2**shift / out_scale``).
    """

    gamma: tuple[int, ...]
    beta: tuple[int, ...]
    gamma_bits: int
    beta_bits: int
    shift: int
    out_bits: int
    out_scale: float
    mode: str = field(default="channel", init=False)

    def __post_init__(self):
        object.__setattr__(self, "gamma", tuple(self.gamma))
        object.__setattr__(self, "beta", tuple(self.beta))
        check_int("affine.gamma_bits", self.gamma_bits, 2, 32)
        check_int("affine.beta_bits", self.beta_bits, 2, 48)
        check_int("affine.shift", self.shift, 0, 40)
        check_int("affine.out_bits", self.out_bits, 2, 32)
        check_real("affine.out_scale", self.out_scale)
        for name, values, bits in (("gamma", self.gamma, self.gamma_bits), ("beta", self.beta, self.beta_bits)):
            lo, hi = signed_range(bits)
            for i, v in enumerate(values):
                check_int(f"affine.{name}[{i}]", v, lo, hi)


Affine = FoldedAffine | ChannelAffine


@dataclass(frozen=True)
class DyTSpec(SpecFile):
    """One DyT layer for the hardware.

    Parameters
    ----------
    channels : int
        Channels per token ``C``.
    lanes : int
        Channels per beat ``P``; ``C % P == 0``.
    in_bits : int
        Signed input code width.
    in_scale : float
        Real value of one input code.
    alpha : float
        The layer's (smallest) alpha; ``tanh.alpha_scale == alpha * in_scale``.
    tanh : TanhLUT, TanhPWL or TanhThreshold
        The integer tanh; its ``in_bits`` is ``in_bits + max(alpha_shift)``.
    affine : FoldedAffine or ChannelAffine
    alpha_shift : tuple of int or None
        Per-channel alpha as powers of two: channel ``c`` computes
        ``tanh(x << alpha_shift[c])`` (alpha_c = alpha * 2**shift).
    name : str
        Layer name in the source model (for reports and file names).
    """

    channels: int
    lanes: int
    in_bits: int
    in_scale: float
    alpha: float
    tanh: Tanh
    affine: Affine = FoldedAffine()
    alpha_shift: tuple[int, ...] | None = None
    name: str = "dyt"

    def __post_init__(self):
        check_int("channels", self.channels, 1, 1 << 16)
        check_int("lanes", self.lanes, 1, 256)
        if self.channels % self.lanes:
            raise SpecError("lanes", f"channels ({self.channels}) must be a multiple of lanes ({self.lanes})")
        check_int("in_bits", self.in_bits, 2, MAX_IN_BITS)
        check_real("in_scale", self.in_scale)
        check_real("alpha", self.alpha)
        if not isinstance(self.tanh, (TanhLUT, TanhPWL, TanhThreshold)):
            raise SpecError("tanh", f"must be a TanhLUT, TanhPWL or TanhThreshold, got {type(self.tanh).__name__}")
        if not isinstance(self.affine, (FoldedAffine, ChannelAffine)):
            raise SpecError("affine", f"must be FoldedAffine or ChannelAffine, got {type(self.affine).__name__}")
        extra = 0
        if self.alpha_shift is not None:
            object.__setattr__(self, "alpha_shift", tuple(self.alpha_shift))
            if len(self.alpha_shift) != self.channels:
                raise SpecError("alpha_shift", f"must have {self.channels} entries (channels), got {len(self.alpha_shift)}")
            for i, k in enumerate(self.alpha_shift):
                check_int(f"alpha_shift[{i}]", k, 0, _MAX_SHIFT)
            extra = max(self.alpha_shift)
        if self.tanh.in_bits != self.in_bits + extra:
            raise SpecError("tanh.in_bits", f"must be in_bits + max(alpha_shift) = {self.in_bits + extra}, got {self.tanh.in_bits}")
        expect = self.alpha * self.in_scale
        if not math.isclose(self.tanh.alpha_scale, expect, rel_tol=1e-9):
            raise SpecError("tanh.alpha_scale", f"must equal alpha * in_scale = {expect!r}, got {self.tanh.alpha_scale!r}")
        if isinstance(self.affine, ChannelAffine):
            for name in ("gamma", "beta"):
                n = len(getattr(self.affine, name))
                if n != self.channels:
                    raise SpecError(f"affine.{name}", f"must have {self.channels} entries (channels), got {n}")

    @property
    def out_bits(self) -> int:
        """Width of one output lane."""
        return self.affine.out_bits if isinstance(self.affine, ChannelAffine) else self.tanh.out_bits

    @property
    def out_scale(self) -> float:
        """Real value of one output code."""
        return self.affine.out_scale if isinstance(self.affine, ChannelAffine) else self.tanh.out_scale

    # -- JSON ------------------------------------------------------------

    def to_dict(self) -> dict:
        t = self.tanh
        tanh = {"kind": t.kind, "in_bits": t.in_bits, "out_bits": t.out_bits, "alpha_scale": t.alpha_scale,
                "out_scale": t.out_scale}
        if t.kind == "lut":
            tanh |= {"drop_bits": t.drop_bits, "table": list(t.table)}
        elif t.kind == "threshold":
            tanh |= {"thresholds": list(t.thresholds)}
        else:
            tanh |= {"seg_shift": t.seg_shift, "frac": t.frac, "slope": list(t.slope), "intercept": list(t.intercept)}
        a = self.affine
        affine = {"mode": a.mode}
        if a.mode == "channel":
            affine |= {k: getattr(a, k) for k in ("gamma_bits", "beta_bits", "shift", "out_bits", "out_scale")}
            affine |= {"gamma": list(a.gamma), "beta": list(a.beta)}
        return {
            "hardyt": "dyt", "version": _KIND_VERSION[t.kind], "name": self.name,
            "channels": self.channels, "lanes": self.lanes,
            "in_bits": self.in_bits, "in_scale": self.in_scale, "alpha": self.alpha,
            "alpha_shift": None if self.alpha_shift is None else list(self.alpha_shift),
            "tanh": tanh, "affine": affine,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "DyTSpec":
        check_header(d, "dyt", "DyT layer spec", SPEC_VERSION)
        with reading_fields():
            t = d["tanh"]
            common = (t["in_bits"], t["out_bits"], t["alpha_scale"])
            out_scale = t["out_scale"] if d["version"] >= 2 else None  # version 1: 1/T
            if t["kind"] == "lut":
                tanh = TanhLUT(*common, t["drop_bits"], t["table"], out_scale)
            elif t["kind"] == "pwl":
                tanh = TanhPWL(*common, t["seg_shift"], t["frac"], t["slope"], t["intercept"], out_scale)
            elif t["kind"] == "threshold" and d["version"] >= 3:
                tanh = TanhThreshold(*common, t["thresholds"], out_scale)
            else:
                raise SpecError("tanh.kind", f"must be 'lut', 'pwl' or (version 3) 'threshold', got {t['kind']!r}")
            a = d["affine"]
            if a["mode"] == "folded":
                affine = FoldedAffine()
            elif a["mode"] == "channel":
                affine = ChannelAffine(a["gamma"], a["beta"], a["gamma_bits"], a["beta_bits"], a["shift"],
                                       a["out_bits"], a["out_scale"])
            else:
                raise SpecError("affine.mode", f"must be 'folded' or 'channel', got {a['mode']!r}")
            return cls(d["channels"], d["lanes"], d["in_bits"], d["in_scale"], d["alpha"], tanh, affine,
                       d.get("alpha_shift"), d.get("name", "dyt"))

    def reference(self, x) -> np.ndarray:
        """The golden model on ``(..., C)`` codes (every core spec has one)."""
        return dyt_golden(x, self)

    def reference_stream(self, x_beats, last) -> np.ndarray:
        """The golden model on a stream: ``x_beats`` is ``(beats, P)``, ``last`` ``(beats,)``.

        Every core spec has this; it is what testbenches compare beats with.
        """
        x = check_input(x_beats, self.lanes, self.in_bits)
        return dyt_elements(x, lane_channels(last, self.lanes, self.channels), self)
