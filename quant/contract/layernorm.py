"""The LayerNorm baseline: its spec and its integer golden model.

DyT is compared against an honest fixed-point LayerNorm core; this module
defines, in integer NumPy, exactly what that core computes (the RTL is held
to it bit for bit), and the spec it is built from.

Per token of ``C`` input codes ``x_c`` (real value ``x_c * in_scale``)::

    S1 = sum x_c                 S2 = sum x_c^2           (exact integers, one pass)
    V  = C*S2 - S1^2             (= C^2 * variance, exact, >= 0)
    W  = V + eps_q               (eps_q = C^2 * eps / in_scale^2, >= 1)
    r  ~ 2^R / sqrt(W / 4^e)     (table on the leading bits of W, one Newton step)
    z_c = sat(round((C*x_c - S1) * r / 2^(R + e - Z)))          (normalized, Z frac bits)
    y_c = sat(round((gamma[c] * z_c + beta[c]) / 2^A), out_bits)

One pass, not two and not Welford: with exact integer sums there is no
cancellation to fear (that is why floating point needs Welford or two
passes), and both sums are complete the moment a token's last beat arrives,
so the token buffer is read once, for the output. A second pass over the
buffer for ``sum (x - mean)^2`` would need a second read of every beat
(half throughput, or a third token of buffering) and a division by ``C``
before it. The price is width: ``S2`` and ``V`` are about
``2*in_bits + 2*log2(C)`` bits, once per token.

>>> spec = random_layernorm_spec(8, 2, 8, 8, seed=0)
>>> x = np.array([[-40, -30, -20, -10, 0, 10, 20, 30], [5] * 8])
>>> layernorm_golden(x, spec)
array([[-64,   3,  14, -34,  35,   9,  61,  54],
       [  3,  28,  20, -32,  23, -30,  15, -21]])
>>> np.round(layernorm_float(x, spec), 2)
array([[-64.04,   2.75,  13.5 , -33.79,  34.55,   8.77,  60.52,  53.71],
       [  2.79,  27.84,  20.21, -31.82,  22.87, -29.85,  14.7 , -20.76]])

A constant token has ``V = 0``: ``eps_q`` keeps ``W`` positive and the
output is ``beta`` alone (rounded), as for a float LayerNorm.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..errors import HardytError, SpecError
from .check import check_input, check_int, check_real
from .fixed import FixedFormat, bits_for_signed, round_half_up, round_shift, saturate, signed_range
from .rsqrt import build_rsqrt_table, rsqrt_error, rsqrt_int
from .specfile import SpecFile, check_header, reading_fields

__all__ = ["LN_SPEC_VERSION", "LayerNormSpec", "layernorm_golden", "layernorm_float", "rsqrt_int", "build_rsqrt_table",
           "rsqrt_error", "random_layernorm_spec"]

LN_SPEC_VERSION = 1
_INT64_SAFE = 1 << 62        # every intermediate magnitude stays below this (NumPy int64, no wrap)


@dataclass(frozen=True)
class LayerNormSpec(SpecFile):
    """One LayerNorm layer for the baseline core.

    Parameters
    ----------
    channels : int
        Channels per token ``C``.
    lanes : int
        Channels per beat ``P``; ``C % P == 0``.
    in_bits, out_bits : int
        Signed input and output code widths.
    in_scale, out_scale : float
        Real value of one input and one output code (for reports; the
        datapath is integer).
    eps_q : int
        LayerNorm's eps in the datapath's units: ``round(C^2 * eps / in_scale^2)``, at least 1.
    rsqrt_index_bits : int
        ``T``: leading bits of the normalized variance that index the seed table.
    rsqrt_frac : int
        ``R``: fractional bits of the seed, of the Newton step and of ``u``.
    rsqrt_table : tuple of int
        ``3 * 2**(T-2)`` positive seeds (see :func:`build_rsqrt_table`).
    norm_frac : int
        ``Z``: fractional bits of the normalized value ``z`` (``Z < R``).
    gamma, beta : tuple of int
        Per-channel affine, signed ``gamma_bits`` / ``beta_bits`` wide.
    gamma_bits, beta_bits : int
    affine_shift : int
        ``A``: ``y = sat(round_shift(gamma*z + beta, A))``.
    name : str
        Layer name (reports, file names).
    """

    channels: int
    lanes: int
    in_bits: int
    out_bits: int
    in_scale: float
    out_scale: float
    eps_q: int
    rsqrt_index_bits: int
    rsqrt_frac: int
    rsqrt_table: tuple[int, ...]
    norm_frac: int
    gamma: tuple[int, ...]
    beta: tuple[int, ...]
    gamma_bits: int
    beta_bits: int
    affine_shift: int
    name: str = "layernorm"

    def __post_init__(self):
        for k in ("rsqrt_table", "gamma", "beta"):
            v = getattr(self, k)
            if not isinstance(v, (list, tuple)):
                raise SpecError(k, f"must be a list of integers, got {type(v).__name__}")
            object.__setattr__(self, k, tuple(v))
        self.validate()

    def validate(self) -> None:
        """Check every field and that no intermediate value can exceed int64 (SpecError names the field)."""
        check_int("channels", self.channels, 1, 1 << 14)
        check_int("lanes", self.lanes, 1, 256)
        if self.channels % self.lanes:
            raise SpecError("lanes", f"channels ({self.channels}) must be a multiple of lanes ({self.lanes})")
        check_int("in_bits", self.in_bits, 2, 16)
        check_int("out_bits", self.out_bits, 2, 24)
        check_real("in_scale", self.in_scale)
        check_real("out_scale", self.out_scale)
        check_int("eps_q", self.eps_q, 1, 1 << 40)
        T, R = self.rsqrt_index_bits, self.rsqrt_frac
        check_int("rsqrt.index_bits", T, 2, 14)
        check_int("rsqrt.frac", R, max(2, T - 2), 30)
        check_int("norm_frac", self.norm_frac, 0, R - 1)
        n = 3 << (T - 2)
        if len(self.rsqrt_table) != n:
            raise SpecError("rsqrt.table", f"must have 3 * 2**(index_bits-2) = {n} entries, got {len(self.rsqrt_table)}")
        for i, v in enumerate(self.rsqrt_table):
            check_int(f"rsqrt.table[{i}]", v, 1, 1 << (R + 1))
        check_int("affine.gamma_bits", self.gamma_bits, 2, 32)
        check_int("affine.beta_bits", self.beta_bits, 2, 48)
        check_int("affine.shift", self.affine_shift, 0, 48)
        for name, values, bits in (("gamma", self.gamma, self.gamma_bits), ("beta", self.beta, self.beta_bits)):
            if len(values) != self.channels:
                raise SpecError(f"affine.{name}", f"must have {self.channels} entries (channels), got {len(values)}")
            lo, hi = signed_range(bits)
            for i, v in enumerate(values):
                check_int(f"affine.{name}[{i}]", v, lo, hi)
        if not isinstance(self.name, str):
            raise SpecError("name", f"must be a string, got {self.name!r}")
        b = self.bounds
        for key, field in (("w", "in_bits"), ("product", "rsqrt.frac"), ("newton", "rsqrt.frac"),
                           ("affine", "affine.gamma_bits")):
            if b[key] >= _INT64_SAFE:
                raise SpecError(field, f"too wide: an intermediate value ({key}) would exceed 62 bits")

    # -- derived widths ------------------------------------------------------

    @property
    def beats(self) -> int:
        """Beats per token ``C / P``."""
        return self.channels // self.lanes

    @property
    def z_bits(self) -> int:
        """Width of ``z``: ``|z| <= sqrt(C - 1)`` (plus the rsqrt's error) with ``Z`` fractional bits."""
        return self.norm_frac + 1 + (math.isqrt(self.channels) + 1).bit_length()

    @property
    def bounds(self) -> dict:
        """Extreme values of the intermediate integers (what sizes the datapath).

        The Newton step's are exact: for every seed, ``u`` ranges over its bin.
        """
        C, R, T = self.channels, self.rsqrt_frac, self.rsqrt_index_bits
        xmax = 1 << (self.in_bits - 1)
        bin_w = 1 << (R + 2 - T)
        a_max, c_min, c_max, r1_max = 0, None, None, 0
        for i, t in enumerate(self.rsqrt_table):
            u_lo = (i + (1 << (T - 2))) * bin_w
            a = (t * t + (1 << (R - 1))) >> R
            b_lo = (u_lo * a + (1 << (R - 1))) >> R
            b_hi = ((u_lo + bin_w - 1) * a + (1 << (R - 1))) >> R
            lo, hi = (3 << R) - b_hi, (3 << R) - b_lo
            a_max, r1_max = max(a_max, a), max(r1_max, (t * hi + (1 << R)) >> (R + 1))
            c_min, c_max = lo if c_min is None else min(c_min, lo), hi if c_max is None else max(c_max, hi)
        return {
            "w": C * C * xmax * xmax + self.eps_q,    # V <= C*S2 <= C^2 * xmax^2
            "d": 2 * C * xmax,                        # |C*x - S1|
            "a": a_max, "c_min": c_min, "c_max": c_max, "r1": r1_max,
            "product": 2 * C * xmax * r1_max,
            "newton": max((4 << R) * a_max, max(self.rsqrt_table) * max(abs(c_min), c_max)),
            "affine": (1 << (self.gamma_bits - 1)) * (1 << (self.z_bits - 1)) + (1 << (self.beta_bits - 1)),
        }

    # -- JSON ------------------------------------------------------------

    def to_dict(self) -> dict:
        return {
            "hardyt": "layernorm", "version": LN_SPEC_VERSION, "name": self.name,
            "channels": self.channels, "lanes": self.lanes,
            "in_bits": self.in_bits, "in_scale": self.in_scale,
            "out_bits": self.out_bits, "out_scale": self.out_scale,
            "eps_q": self.eps_q, "norm_frac": self.norm_frac,
            "rsqrt": {"index_bits": self.rsqrt_index_bits, "frac": self.rsqrt_frac, "table": list(self.rsqrt_table)},
            "affine": {"gamma_bits": self.gamma_bits, "beta_bits": self.beta_bits, "shift": self.affine_shift,
                       "gamma": list(self.gamma), "beta": list(self.beta)},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, d: dict) -> "LayerNormSpec":
        check_header(d, "layernorm", "LayerNorm spec", LN_SPEC_VERSION)
        with reading_fields():
            r, a = d["rsqrt"], d["affine"]
            return cls(d["channels"], d["lanes"], d["in_bits"], d["out_bits"], d["in_scale"], d["out_scale"],
                       d["eps_q"], r["index_bits"], r["frac"], r["table"], d["norm_frac"],
                       a["gamma"], a["beta"], a["gamma_bits"], a["beta_bits"], a["shift"],
                       d.get("name", "layernorm"))

    # -- golden model entry points (every core spec has these) -----------------

    def reference(self, x) -> np.ndarray:
        """The golden model on ``(..., C)`` codes."""
        return layernorm_golden(x, self)

    def reference_stream(self, x_beats, last) -> np.ndarray:
        """The golden model on a stream: ``x_beats`` is ``(beats, P)``, ``last`` ``(beats,)``.

        Tokens are framed by count (``C/P`` beats each); ``tlast`` is carried
        through by the core and may only mark a token's last beat: LayerNorm
        needs whole tokens.
        """
        x = check_input(x_beats, self.lanes, self.in_bits)
        last = np.asarray(last, dtype=bool)
        B = self.beats
        if x.ndim != 2 or len(last) != len(x):
            raise HardytError(f"stream: expected (beats, {self.lanes}) codes and one last flag per beat, "
                              f"got {x.shape} and {last.shape}")
        if len(x) % B:
            raise HardytError(f"stream: {len(x)} beats is not a whole number of tokens of C/P = {B} beats")
        bad = np.flatnonzero(last & (np.arange(len(x)) % B != B - 1))
        if bad.size:
            raise HardytError(f"stream: tlast on beat {bad[0]}, which does not end a token of C/P = {B} beats "
                              f"(LayerNorm needs whole tokens)")
        return layernorm_golden(x.reshape(-1, self.channels), self).reshape(-1, self.lanes)


def layernorm_golden(x, spec: LayerNormSpec) -> np.ndarray:
    """LayerNorm of integer input codes ``x`` (shape ``(..., C)``) as output codes.

    Per token (last axis), every step exact or rounded half up
    (:func:`hardyt.quant.contract.fixed.round_shift`) and every narrowing saturated:

    1. ``S1 = sum x``, ``S2 = sum x^2`` (one pass, exact);
    2. ``W = C*S2 - S1^2 + eps_q`` (``C^2`` times variance plus eps, exact, ``>= 1``);
    3. ``r1, e = rsqrt_int(W)``: ``W^(-1/2) ~ r1 / 2^(R + e)``;
    4. ``z_c = sat(round_shift((C*x_c - S1) * r1, R + e - Z), z_bits)``: the
       normalized value with ``Z`` fractional bits (the shift is at least 1
       because ``Z < R``; the core computes it as ``((p >>> (s-1)) + 1) >>> 1``,
       the same integer);
    5. ``y_c = sat(round_shift(gamma[c] * z_c + beta[c], A), out_bits)``.
    """
    x = check_input(x, spec.channels, spec.in_bits)
    C, R, Z = spec.channels, spec.rsqrt_frac, spec.norm_frac
    s1 = x.sum(axis=-1, keepdims=True)
    s2 = (x * x).sum(axis=-1, keepdims=True)
    w = C * s2 - s1 * s1 + spec.eps_q
    r1, e = rsqrt_int(w, spec)
    p = (C * x - s1) * r1
    shift = R + e - Z                           # >= 1, per token
    z = saturate(round_shift(p >> (shift - 1), 1), FixedFormat(spec.z_bits))
    acc = np.asarray(spec.gamma, dtype=np.int64) * z + np.asarray(spec.beta, dtype=np.int64)
    return saturate(round_shift(acc, spec.affine_shift), FixedFormat(spec.out_bits))


def layernorm_float(x, spec: LayerNormSpec) -> np.ndarray:
    """The real LayerNorm the golden model approximates, in output codes (float64, not rounded or clipped).

    ``(gamma[c] * 2^Z * (x - mean) / sqrt(var + eps_q / C^2) + beta[c]) / 2^A``,
    i.e. a float LayerNorm with the spec's own gamma, beta and eps.
    """
    x = check_input(x, spec.channels, spec.in_bits).astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    z = (x - mean) / np.sqrt(var + spec.eps_q / spec.channels ** 2)
    g = np.asarray(spec.gamma, dtype=np.float64) * 2.0 ** spec.norm_frac
    return (g * z + np.asarray(spec.beta, dtype=np.float64)) / 2.0 ** spec.affine_shift


def random_layernorm_spec(channels: int, lanes: int, in_bits: int, out_bits: int, seed: int = 0, *,
                          name: str = "layernorm") -> LayerNormSpec:
    """A realistic LayerNorm spec for hardware comparison, without a model.

    Inputs and outputs span ``[-4, 4)`` (``in_scale = 2^-(in_bits-3)``,
    ``out_scale = 2^-(out_bits-3)``), ``eps = 1e-6`` (timm's ViT);
    ``gamma`` real in ``[0.25, 2)`` and ``beta`` in ``[-1, 1]`` drawn from
    ``seed`` and coded with ``gamma_bits = out_bits + 2`` (``out_bits - 1``
    fractional bits). Precision follows ``out_bits``: ``Z = out_bits + 1``
    (z's LSB is 1/16 of an output LSB), ``R = out_bits + 6``,
    ``T = out_bits // 2 + 3`` (96 seeds at 8 bits: Newton error about 1e-4).

    >>> s = random_layernorm_spec(16, 4, 8, 8, seed=3)
    >>> s.beats, s.rsqrt_index_bits, len(s.rsqrt_table), s.norm_frac, s.rsqrt_frac, s.affine_shift
    (4, 7, 96, 9, 14, 11)
    """
    for key, v, lo in (("channels", channels, 1), ("lanes", lanes, 1), ("in_bits", in_bits, 2),
                       ("out_bits", out_bits, 2), ("seed", seed, 0)):
        check_int(key, v, lo)
    rng = np.random.default_rng(seed)
    in_scale, out_scale = 2.0 ** -(in_bits - 3), 2.0 ** -(out_bits - 3)
    eps_q = max(1, int(round(channels * channels * 1e-6 / in_scale ** 2)))
    Z, R, T = out_bits + 1, out_bits + 6, out_bits // 2 + 3
    gamma_bits = out_bits + 2
    g = gamma_bits - 3                               # gamma's fractional bits: |gamma| < 4
    A = g + Z - (out_bits - 3)                       # acc has g + Z fractional bits; output has out_bits - 3
    gamma = round_half_up(rng.uniform(0.25, 2.0, channels) * 2.0 ** g)
    beta = round_half_up(rng.uniform(-1.0, 1.0, channels) * 2.0 ** (g + Z))
    beta_bits = bits_for_signed(-(1 << (g + Z)), 1 << (g + Z))
    return LayerNormSpec(channels, lanes, in_bits, out_bits, in_scale, out_scale, eps_q, T, R,
                         build_rsqrt_table(T, R), Z, tuple(int(v) for v in gamma), tuple(int(v) for v in beta),
                         gamma_bits, beta_bits, A, name)
