"""One DyT layer as QONNX nodes, in the hardware's integer arithmetic.

Codes ``q`` in, codes out (:func:`core_nodes`)::

    q ─► MultiThreshold(tanh table, per-channel alpha shifts absorbed) ─► t          folded: output t
         (a threshold tanh without alpha shifts: its own thresholds, as they are)
                                 channel: t ─► Mul(|gamma|) ─► Add(sign·beta) ─► MultiThreshold(narrowing) ─► Mul(sign)

A real input first goes through the input quantizer, a ``MultiThreshold``
with exact thresholds (:func:`~hardyt.quant.export.thresholds.quantizer_thresholds`),
and the codes come out through ``Mul(out_scale)`` (:func:`real_nodes`).

Negative gamma: the narrowing ``sat(round_shift(g*t + b))`` is monotonic in
``t`` but decreasing where ``g < 0``, and FINN's ``AbsorbMulIntoMultiThreshold``
takes only non-negative factors. So the ``Mul`` carries ``|g|``, the ``Add``
``sign·b``, the threshold rows of negative channels compute the negated code
(rounded the way the contract's rounding of ``-acc`` asks) and a ``Mul`` by
the signs (±1, what FINN's ``FactorOutMulSignMagnitude`` produces) restores it.
Every value stays an integer below 2**24, exact in float32.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from ..contract.fixed import signed_range
from ..contract.spec import ChannelAffine, DyTSpec
from ..contract.tanh import tanh_int
from ..errors import HardytError
from .thresholds import EXACT_INT, NEVER, quantizer_thresholds, requant_thresholds, step_thresholds

__all__ = ["QONNX_DOMAIN", "Nodes", "core_nodes", "real_nodes", "tanh_rows", "value_info"]

QONNX_DOMAIN = "qonnx.custom_op.general"


class Nodes:
    """Nodes, initializers and QONNX datatype annotations being built for one graph."""

    def __init__(self):
        self.nodes, self.initializers, self.datatypes = [], [], {}

    def const(self, name: str, value) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def multithreshold(self, name, inp, thresholds, out, *, out_bias: int, bits: int, layout: str) -> str:
        self.nodes.append(helper.make_node(
            "MultiThreshold", [inp, self.const(f"{name}.thresholds", thresholds)], [out], name=name,
            domain=QONNX_DOMAIN, out_dtype=f"INT{bits}", out_bias=float(out_bias), data_layout=layout))
        self.datatypes[out] = f"INT{bits}"
        return out

    def binary(self, op: str, name: str, inp: str, value, out: str) -> str:
        self.nodes.append(helper.make_node(op, [inp, self.const(f"{name}.param", value)], [out], name=name))
        return out


def tanh_rows(spec: DyTSpec) -> np.ndarray:
    """``tanh_int(q << alpha_shift[c])`` for every input code ``q`` (one row, or one per channel)."""
    lo, hi = signed_range(spec.in_bits)
    q = np.arange(lo, hi + 1, dtype=np.int64)
    shifts = np.zeros((1, 1), np.int64) if spec.alpha_shift is None else \
        np.asarray(spec.alpha_shift, np.int64)[:, None]
    return tanh_int(q[None, :] << shifts, spec.tanh)


def _affine_nodes(g: Nodes, spec: DyTSpec, prefix: str, t: str, out: str, layout: str) -> str:
    a: ChannelAffine = spec.affine
    gamma, beta = np.asarray(a.gamma, np.int64), np.asarray(a.beta, np.int64)
    sign = np.where(gamma < 0, -1, 1)
    t_max = int(np.abs(tanh_rows(spec)).max())
    if int((np.abs(gamma) * t_max + np.abs(beta)).max()) >= EXACT_INT:
        raise HardytError(f"{spec.name}: the affine accumulator exceeds float32's exact integers (2**24)")
    acc = g.binary("Add", f"{prefix}.beta", g.binary("Mul", f"{prefix}.gamma", t, np.abs(gamma), f"{prefix}.gt"),
                   sign * beta, f"{prefix}.acc")
    lo, _ = signed_range(a.out_bits)
    y = g.multithreshold(f"{prefix}.narrow", acc, requant_thresholds(sign, a.shift, a.out_bits), f"{prefix}.c",
                         out_bias=lo, bits=a.out_bits + 1, layout=layout)
    g.datatypes[out] = f"INT{a.out_bits}"
    return g.binary("Mul", f"{prefix}.sign", y, sign, out)


def core_nodes(g: Nodes, spec: DyTSpec, inp: str, out: str, *, prefix: str, layout: str) -> str:
    """The integer DyT of codes ``inp`` (``INT{in_bits}``) into codes ``out`` (the golden model's)."""
    lo, _ = signed_range(spec.in_bits)
    t_lo, t_hi = signed_range(spec.tanh.out_bits)
    folded = not isinstance(spec.affine, ChannelAffine)
    t = out if folded else f"{prefix}.t"
    if spec.tanh.kind == "threshold" and spec.alpha_shift is None:
        # Level -T (thresholds[0], the smallest code) is the MultiThreshold's out_bias; a level no code
        # reaches (2**(in_bits-1)) is NEVER.
        thr = np.asarray(spec.tanh.thresholds[1:], dtype=np.float64)
        thr = np.where(thr > signed_range(spec.in_bits)[1], NEVER, thr).astype(np.float32)[None, :]
    else:
        thr = step_thresholds(tanh_rows(spec), lo=lo, out_min=t_lo + 1, out_max=t_hi, name=f"{spec.name} tanh")
    g.multithreshold(f"{prefix}.tanh", inp, thr, t, out_bias=t_lo + 1, bits=spec.tanh.out_bits, layout=layout)
    return t if folded else _affine_nodes(g, spec, prefix, t, out, layout)


def real_nodes(g: Nodes, spec: DyTSpec, inp: str, out: str, *, prefix: str, layout: str) -> str:
    """Real input ``inp`` → input quantizer → :func:`core_nodes` → ``Mul(out_scale)`` → real ``out``."""
    lo, _ = signed_range(spec.in_bits)
    q = g.multithreshold(f"{prefix}.quant", inp, quantizer_thresholds(spec.in_scale, spec.in_bits), f"{prefix}.q",
                         out_bias=lo, bits=spec.in_bits, layout=layout)
    codes = core_nodes(g, spec, q, f"{prefix}.codes", prefix=prefix, layout=layout)
    return g.binary("Mul", f"{prefix}.scale", codes, np.float32(spec.out_scale), out)


def value_info(name: str, shape) -> "helper.ValueInfoProto":
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
