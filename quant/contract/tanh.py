"""Fixed-point tanh: direct tables (``lut``), piecewise-linear (``pwl``) and step points (``threshold``).

All three approximate ``tanh(a * x) / s`` for a signed ``in_bits`` input code ``x``,
where ``a`` (``alpha_scale``) is alpha times the input's real LSB and ``s``
(``out_scale``) is the real value of one output code. The largest output code
is ``T = 2**(out_bits - 1) - 1`` and the range is symmetric (``-T .. T``; the
code ``-T - 1`` is never produced). ``s = 1 / T`` (the default, and every
version-1 spec) makes code ``T`` exactly 1.0; :func:`range_out_scale` makes
``T`` the largest tanh the input range reaches, ``tanh(a * 2**(in_bits-1))``,
so a layer in DyT's linear region (``a * 2**(in_bits-1)`` well below 1) still
uses every output code instead of rounding to 0. Both store only ``|x|`` (tanh
is odd; the sign is restored after the lookup, and input 0 gives code 0) and
stop storing where the rounded output reaches ``T`` (inputs past that
saturate). The ``threshold`` kind (:mod:`hardyt.quant.contract.threshold`)
stores, instead of outputs, the ``2**out_bits - 1`` inputs where the
correctly rounded output steps.

Errors are in output LSBs (ULPs) of the table's own format, against exact
``tanh(a * x) / s``, computed over every input code.

>>> lut = build_lut(in_bits=6, out_bits=8, alpha_scale=0.125)
>>> len(lut.table), lut.table[:6]
(25, (0, 16, 31, 46, 59, 70))
>>> tanh_int(np.array([-32, -3, 0, 3, 31]), lut)
array([-127,  -46,    0,   46,  127])
>>> error_report(lut).worst_ulp <= 0.5
True
>>> small = build_lut(6, 8, 0.001, out_scale=range_out_scale(6, 8, 0.001))   # linear region
>>> tanh_int(np.array([-32, 1, 31]), small), tanh_int(np.array([-32, 1, 31]), build_lut(6, 8, 0.001))
(array([-127,    4,  123]), array([-4,  0,  4]))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SpecError
from .check import check_codes, check_int
from .fixed import bits_for_unsigned, round_half_up, round_shift
from .tanh_base import MAX_IN_BITS, MAX_OUT_BITS, _check_common, _exact, _max_mag, _out_scale, full_scale, range_out_scale
from .threshold import TanhThreshold, build_threshold, threshold_int

__all__ = [
    "MAX_IN_BITS", "MAX_OUT_BITS", "full_scale", "range_out_scale", "TanhLUT", "TanhPWL", "TanhThreshold", "Tanh",
    "TANH_KINDS", "build_lut", "build_pwl", "build_threshold", "build_tanh", "tanh_int", "exact_codes", "TanhReport", "error_report",
]

@dataclass(frozen=True)
class TanhLUT:
    """Direct tanh table on ``|x| >> drop_bits``.

    Parameters
    ----------
    in_bits, out_bits : int
        Signed input and output widths.
    alpha_scale : float
        tanh argument per input code.
    drop_bits : int
        Low bits of ``|x|`` dropped from the index.
    table : tuple of int
        ``table[i]`` in ``0..T``; indices ``>= len(table)`` output ``T``.
    out_scale : float or None
        Real value of one output code; ``None`` means ``1/T``.
    """

    in_bits: int
    out_bits: int
    alpha_scale: float
    drop_bits: int
    table: tuple[int, ...] = field(repr=False)
    out_scale: float | None = None
    kind: str = field(default="lut", init=False)

    def __post_init__(self):
        _check_common(self.in_bits, self.out_bits, self.alpha_scale, self.out_scale)
        object.__setattr__(self, "out_scale", _out_scale(self.out_scale, self.out_bits))
        check_int("tanh.drop_bits", self.drop_bits, 0, self.in_bits - 1)
        object.__setattr__(self, "table", tuple(self.table))
        max_len = (_max_mag(self.in_bits) >> self.drop_bits) + 1
        if not 1 <= len(self.table) <= max_len:
            raise SpecError("tanh.table", f"must have 1..{max_len} entries, got {len(self.table)}")
        check_codes("tanh.table", self.table, 0, full_scale(self.out_bits))

    @property
    def index_bits(self) -> int:
        """Width of the ROM address."""
        return bits_for_unsigned(len(self.table) - 1)

    @property
    def rom_bits(self) -> int:
        return len(self.table) * (self.out_bits - 1)


@dataclass(frozen=True)
class TanhPWL:
    """Piecewise-linear tanh on ``2**len(slope)`` uniform segments of ``|x|``.

    Segment ``i = |x| >> seg_shift`` covers ``2**seg_shift`` codes; with the
    offset ``o = |x| & (2**seg_shift - 1)`` the output magnitude is
    ``min(T, round_shift(intercept[i] + slope[i] * o, frac))``; ``|x|`` past
    the last segment outputs ``T``.

    Parameters
    ----------
    in_bits, out_bits : int
        Signed input and output widths.
    alpha_scale : float
        tanh argument per input code.
    seg_shift : int
        log2 of the segment width in input codes.
    frac : int
        Fractional bits of slope and intercept (in output LSBs).
    slope, intercept : tuple of int
        Non-negative coefficients, one per segment.
    out_scale : float or None
        Real value of one output code; ``None`` means ``1/T``.
    """

    in_bits: int
    out_bits: int
    alpha_scale: float
    seg_shift: int
    frac: int
    slope: tuple[int, ...] = field(repr=False)
    intercept: tuple[int, ...] = field(repr=False)
    out_scale: float | None = None
    kind: str = field(default="pwl", init=False)

    def __post_init__(self):
        _check_common(self.in_bits, self.out_bits, self.alpha_scale, self.out_scale)
        object.__setattr__(self, "out_scale", _out_scale(self.out_scale, self.out_bits))
        object.__setattr__(self, "slope", tuple(self.slope))
        object.__setattr__(self, "intercept", tuple(self.intercept))
        check_int("tanh.seg_shift", self.seg_shift, 0, self.in_bits - 1)
        check_int("tanh.frac", self.frac, 0, 32)
        n = len(self.slope)
        if n < 1 or n & (n - 1):
            raise SpecError("tanh.slope", f"segment count must be a power of two, got {n}")
        if len(self.intercept) != n:
            raise SpecError("tanh.intercept", f"must have {n} entries like tanh.slope, got {len(self.intercept)}")
        top = full_scale(self.out_bits) << self.frac
        check_codes("tanh.slope", self.slope, 0, top)
        check_codes("tanh.intercept", self.intercept, 0, top)

    @property
    def segments(self) -> int:
        return len(self.slope)

    @property
    def slope_bits(self) -> int:
        """Unsigned width of the slope ROM words."""
        return bits_for_unsigned(max(self.slope))

    @property
    def intercept_bits(self) -> int:
        """Unsigned width of the intercept ROM words."""
        return bits_for_unsigned(max(self.intercept))

    @property
    def rom_bits(self) -> int:
        return self.segments * (self.slope_bits + self.intercept_bits)


Tanh = TanhLUT | TanhPWL | TanhThreshold

#: The tanh kinds, as the CLI and spec files name them.
TANH_KINDS = ("lut", "pwl", "threshold")


def build_lut(in_bits: int, out_bits: int, alpha_scale: float, drop_bits: int = 0,
              out_scale: float | None = None) -> TanhLUT:
    """Correctly rounded table of ``tanh(a * |x|) / s``, saturated at ``T``.

    With ``drop_bits = k`` the index is ``|x| >> k`` and each entry is the
    rounded value at the centre of its interval of ``2**k`` codes, except
    entry 0, which is 0 so that the table is odd (input 0 gives 0). The table
    stops before the first entry equal to ``T`` (kept if it is entry 0).

    >>> build_lut(4, 4, 0.5).table
    (0, 3, 5, 6)
    """
    _check_common(in_bits, out_bits, alpha_scale, out_scale)
    if not isinstance(drop_bits, (int, np.integer)) or not 0 <= drop_bits < in_bits:
        raise SpecError("tanh.drop_bits", f"must be an integer in 0..{in_bits - 1}, got {drop_bits!r}")
    scale = _out_scale(out_scale, out_bits)
    t_max = full_scale(out_bits)
    idx = np.arange((_max_mag(in_bits) >> drop_bits) + 1, dtype=np.int64)
    centre = idx * (1 << drop_bits) + ((1 << drop_bits) - 1) / 2.0
    entries = np.minimum(round_half_up(_exact(centre, alpha_scale, scale)), t_max)
    entries[0] = 0
    at_top = np.flatnonzero(entries >= t_max)
    n = len(entries) if at_top.size == 0 else max(1, int(at_top[0]))
    return TanhLUT(in_bits, out_bits, float(alpha_scale), drop_bits, tuple(int(v) for v in entries[:n]), scale)


def _saturation_mag(in_bits: int, out_bits: int, alpha_scale: float, out_scale: float) -> int:
    """First ``|x|`` whose correctly rounded output is ``T`` (or past the range)."""
    mags = np.arange(_max_mag(in_bits) + 1, dtype=np.int64)
    top = np.flatnonzero(round_half_up(_exact(mags, alpha_scale, out_scale)) >= full_scale(out_bits))
    return int(top[0]) if top.size else _max_mag(in_bits) + 1


def _pwl_magnitude(mag: np.ndarray, seg_shift, frac, slope, intercept, out_bits) -> np.ndarray:
    """Output magnitude of a PWL tanh for ``|x|`` codes (the golden datapath)."""
    t_max = full_scale(out_bits)
    seg = mag >> seg_shift
    inside = seg < len(slope)
    seg_c = np.where(inside, seg, 0)
    off = mag & ((1 << seg_shift) - 1)
    acc = np.asarray(intercept, dtype=np.int64)[seg_c] + np.asarray(slope, dtype=np.int64)[seg_c] * off
    y = np.minimum(round_shift(acc, frac), t_max)
    return np.where(inside, y, t_max)


def build_pwl(in_bits: int, out_bits: int, alpha_scale: float, segments: int = 16,
              guard_bits: int = 6, out_scale: float | None = None) -> TanhPWL:
    """Piecewise-linear tanh with ``segments`` uniform power-of-two segments.

    The segments span ``[0, x_sat)``, ``x_sat`` being the first input whose
    correctly rounded output is full scale, rounded up to ``segments`` times a
    power of two. Per segment the line starts as the minimax line (chord moved
    by half the largest deviation: tanh is concave on ``x >= 0``), then the
    quantized intercept is searched around it to minimize the worst rounded
    error on the segment's codes; the first segment's intercept rounds to 0,
    so that input 0 gives code 0 (the function is odd). ``frac = seg_shift +
    guard_bits``.

    >>> pwl = build_pwl(in_bits=12, out_bits=8, alpha_scale=4 / 2048, segments=16)
    >>> pwl.segments, pwl.seg_shift
    (16, 7)
    >>> error_report(pwl).worst_ulp < 1.0
    True
    """
    _check_common(in_bits, out_bits, alpha_scale, out_scale)
    if not isinstance(segments, (int, np.integer)) or segments < 1 or segments & (segments - 1):
        raise SpecError("tanh.segments", f"must be a power of two >= 1, got {segments!r}")
    scale = _out_scale(out_scale, out_bits)
    x_sat = _saturation_mag(in_bits, out_bits, alpha_scale, scale)
    seg_shift = 0
    while segments << seg_shift < x_sat and seg_shift < in_bits - 1:
        seg_shift += 1
    frac = seg_shift + guard_bits
    one = 1 << frac
    width = 1 << seg_shift
    t_max = full_scale(out_bits)
    slopes, intercepts = [], []
    for i in range(segments):
        mags = np.arange(i * width, (i + 1) * width, dtype=np.int64)
        off = mags - i * width
        exact = _exact(mags, alpha_scale, scale)
        # Chord through the segment's end points, shifted to the minimax line.
        m = (exact[-1] - exact[0]) / max(width - 1, 1)
        dev = exact - (exact[0] + m * off)
        b = exact[0] + (dev.max() + dev.min()) / 2
        s_q = max(0, min(t_max * one, int(round(m * one))))
        b_q0 = int(round(b * one))
        best = None
        # Segment 0's intercept must round to 0 (odd tanh: code 0 at input 0).
        b_top = one // 2 - 1 if i == 0 else t_max * one
        for db in range(-(one // 2), one // 2 + 1, max(1, one // 32)):
            b_q = max(0, min(b_top, b_q0 + db))
            y = _pwl_magnitude(off, seg_shift, frac, (s_q,), (b_q,), out_bits)
            err = float(np.max(np.abs(y - exact)))
            if best is None or err < best[0]:
                best = (err, b_q)
        slopes.append(s_q)
        intercepts.append(best[1])
    return TanhPWL(in_bits, out_bits, float(alpha_scale), seg_shift, frac, tuple(slopes), tuple(intercepts), scale)


def build_tanh(kind: str, in_bits: int, out_bits: int, alpha_scale: float, *,
               segments: int = 16, drop_bits: int = 0, out_scale: float | None = None) -> Tanh:
    """Build a ``lut``, ``pwl`` or ``threshold`` tanh by name (the CLI's entry point)."""
    if kind == "lut":
        return build_lut(in_bits, out_bits, alpha_scale, drop_bits, out_scale)
    if kind == "pwl":
        return build_pwl(in_bits, out_bits, alpha_scale, segments, out_scale=out_scale)
    if kind == "threshold":
        return build_threshold(in_bits, out_bits, alpha_scale, out_scale)
    raise SpecError("tanh.kind", f"must be one of {', '.join(TANH_KINDS)}, got {kind!r}")


def tanh_int(x, t: Tanh) -> np.ndarray:
    """The fixed-point tanh of signed input codes ``x`` (golden model).

    Inputs outside the signed ``in_bits`` range raise ``ValueError``.

    >>> pwl = build_pwl(8, 6, 0.05, segments=4)
    >>> tanh_int(np.array([-128, -10, 0, 10, 127]), pwl)
    array([-31, -14,   0,  14,  31])
    """
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise ValueError(f"tanh input must be integer codes, got dtype {x.dtype}")
    x = x.astype(np.int64)
    lo, hi = -_max_mag(t.in_bits), _max_mag(t.in_bits) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"tanh input codes must lie in {lo}..{hi} (in_bits={t.in_bits})")
    if t.kind == "threshold":
        return threshold_int(x, t)
    mag = np.abs(x)
    if t.kind == "lut":
        idx = mag >> t.drop_bits
        inside = idx < len(t.table)
        y = np.where(inside, np.asarray(t.table, dtype=np.int64)[np.where(inside, idx, 0)],
                     full_scale(t.out_bits))
    else:
        y = _pwl_magnitude(mag, t.seg_shift, t.frac, t.slope, t.intercept, t.out_bits)
    return np.where(x < 0, -y, y)


def exact_codes(x, t: Tanh) -> np.ndarray:
    """Unrounded ``tanh(a*x)/s`` of input codes ``x``: what ``t`` approximates, in its output codes.

    >>> exact_codes(np.array([0, 1]), build_lut(4, 4, 0.5)).round(3)
    array([0.   , 3.235])
    """
    return _exact(np.asarray(x), t.alpha_scale, t.out_scale)


@dataclass(frozen=True)
class TanhReport:
    """Error of a tanh approximation over every input code, in ULPs of its output format."""

    kind: str
    in_bits: int
    out_bits: int
    alpha_scale: float
    out_scale: float
    worst_ulp: float
    mean_ulp: float
    worst_input: int
    rom_bits: int
    rom_entries: int
    saturation_input: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def error_report(t: Tanh) -> TanhReport:
    """Worst and mean ``|approx - tanh(a*x)/s|`` over all ``2**in_bits`` codes.

    >>> r = error_report(build_lut(8, 8, 0.03))
    >>> r.worst_ulp <= 0.5, r.rom_entries
    (True, 104)
    """
    x = np.arange(-_max_mag(t.in_bits), _max_mag(t.in_bits), dtype=np.int64)
    err = np.abs(tanh_int(x, t) - exact_codes(x, t))
    worst = int(np.argmax(err))
    if t.kind == "threshold":
        entries, sat = len(t.thresholds), t.thresholds[-1]     # the first input that outputs T
    else:
        entries = len(t.table) if t.kind == "lut" else t.segments
        sat = (len(t.table) << t.drop_bits) if t.kind == "lut" else (t.segments << t.seg_shift)
    return TanhReport(t.kind, t.in_bits, t.out_bits, t.alpha_scale, t.out_scale, float(err[worst]), float(err.mean()),
                      int(x[worst]), t.rom_bits, entries, int(sat))
