"""HDL arithmetic on Amaranth values: the rounding rule, saturation, products.

The ``hdl_`` names are the hardware twins of the NumPy functions in
:mod:`hardyt.quant.contract.fixed` (``round_shift``, saturation): they build
logic, and are bit-exact with them.

Products are built for ECP5-class FPGAs: a constant with few set bits or a
factor of few bits becomes shifted adds (no DSP block); a wide product is
split at bit :data:`MUL_BITS` into partial products of one 18x18 multiplier
each (:func:`hdl_partials`), registered, and summed one stage later
(:func:`hdl_whole`): a multiplier's output is slow, and an adder behind it in
the same cycle would set the core's Fmax.
"""
from __future__ import annotations

from amaranth.hdl import Mux

from hardyt.quant.contract.fixed import signed_range

__all__ = ["MUL_BITS", "hdl_round_shift", "hdl_clamp", "hdl_saturate", "hdl_narrow", "hdl_fit", "hdl_shift_add",
           "hdl_product", "hdl_partials", "hdl_whole"]

#: Operand bits one ECP5 MULT18X18D multiplies (17 unsigned, or signed with the sign in bit 17).
MUL_BITS = 17


def hdl_round_shift(v, s: int):
    """``v / 2**s`` rounded half up (``round_shift``): add half, shift right."""
    return (v + (1 << (s - 1))) >> s if s else v


def hdl_clamp(v, lo, hi):
    """``v`` clamped to ``lo .. hi`` (constants, or values set at run time)."""
    return Mux(v > hi, hi, Mux(v < lo, lo, v))


def hdl_saturate(v, bits: int):
    """``v`` clamped to the signed ``bits``-bit range."""
    return hdl_clamp(v, *signed_range(bits))


def hdl_narrow(v, s: int, bits: int):
    """``saturate(round_shift(v, s), bits)``, the saturation decided on ``v`` itself (in
    parallel with the rounding adder, not after it)."""
    lo, hi = signed_range(bits)
    half = (1 << s) >> 1
    return Mux(v >= ((hi + 1) << s) - half, hi, Mux(v < (lo << s) - half, lo, hdl_round_shift(v, s)))


def hdl_fit(value, shape):
    """The low ``shape.width`` bits of ``value`` as ``shape`` (its range is known to fit)."""
    return value[:shape.width].as_signed() if shape.signed else value[:shape.width]


def hdl_shift_add(a, b):
    """``a*b`` as a balanced adder tree of shifted ``b``, one per set bit of ``a`` (a constant
    or a few-bit value, signed or not): adders, not a multiplier block."""
    if isinstance(a, int):
        terms = [b << k for k in range(a.bit_length()) if a >> k & 1]
    else:
        top = len(a) - 1
        terms = [Mux(a[k], -(b << k) if a.shape().signed and k == top else b << k, 0) for k in range(len(a))]
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def hdl_product(a, b, adder_bits: int = 3):
    """``a*b``: shifted adds when ``b`` is a constant with at most ``adder_bits`` set bits
    (C = 192, 384, 768, ...) or ``a`` has at most ``adder_bits`` bits, else a multiplier."""
    if isinstance(b, int) and bin(b).count("1") <= adder_bits:
        return hdl_shift_add(b, a)
    return hdl_shift_add(a, b) if len(a) <= adder_bits else a * b


def hdl_partials(name: str, a, b) -> dict:
    """``a*b`` split at bit :data:`MUL_BITS` of ``a``: ``{name_lo, name_hi}`` (see :func:`hdl_whole`)."""
    if len(a) <= MUL_BITS:
        return {f"{name}_lo": hdl_product(a, b)}
    hi = a[MUL_BITS:].as_signed() if a.shape().signed else a[MUL_BITS:]
    return {f"{name}_lo": hdl_product(a[:MUL_BITS], b), f"{name}_hi": hdl_product(hi, b)}


def hdl_whole(values: dict, name: str):
    """The product whose partials ``values`` holds under ``name`` (see :func:`hdl_partials`)."""
    lo, hi = values[f"{name}_lo"], values.get(f"{name}_hi")
    return lo if hi is None else (hi << MUL_BITS) + lo
