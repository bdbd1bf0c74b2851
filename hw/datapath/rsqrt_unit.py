"""The reciprocal square root unit: ``hardyt.quant.contract.rsqrt.rsqrt_int`` as a pipeline.

::

    w ─► [e, lead: leading non-zero bit pair] ─► [u = top R + 2 bits of w << 2*lead]
      ─► [r0 = seed ROM(u)] ─► [r0^2 partials] ─► [a = round(r0^2, R)] ─► [u*a partials]
      ─► [c = 3*2^R - round(u*a, R)] ─► [r0*c partials] ─► [r1 = round(r0*c, R + 1)] ─► r1, e

Free running (one ``w`` per cycle, no stall); ``e`` travels alongside.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hardyt.quant.contract.fixed import bits_for_signed, bits_for_unsigned
from hardyt.quant.contract.layernorm import LayerNormSpec

from .arith import hdl_fit, hdl_partials, hdl_round_shift, hdl_whole
from .stages import CountedLatency, Stages, carry, rom

__all__ = ["RsqrtUnit", "rsqrt_widths"]


def rsqrt_widths(spec: LayerNormSpec) -> tuple[int, int]:
    """``(w_bits, r1_bits)``: ``w``'s width, even (the normalization shifts by bit pairs) and at
    least R + 2, and ``r1``'s, from the exact bounds of ``spec``."""
    wbits = max(bits_for_unsigned(spec.bounds["w"]), spec.rsqrt_frac + 2)
    return wbits + wbits % 2, bits_for_unsigned(spec.bounds["r1"])


class RsqrtUnit(CountedLatency, wiring.Component):
    """``(r1, e) = rsqrt_int(w)``: ``w^(-1/2) ~ r1 / 2^(R + e)``, one ``w`` per cycle.

    Parameters
    ----------
    spec : LayerNormSpec
        The rsqrt table (``rsqrt_index_bits``, ``rsqrt_frac`` = R) and the
        range of ``w`` (``spec.bounds``), which sizes every register.

    Members
    -------
    w : In(unsigned(w_bits))
        A positive integer (``w = 0`` gives no meaningful result).
    r1 : Out(unsigned(r1_bits))
        ``rsqrt_int(w)[0]``, ``latency`` cycles after ``w``.
    e : Out(range(w_bits // 2))
        ``rsqrt_int(w)[1]``, alongside ``r1``.

    Attributes
    ----------
    w_bits, r1_bits : int
        See :func:`rsqrt_widths`.
    latency : int
        Cycles from ``w`` to ``r1``: the stages :meth:`elaborate` builds.
    """

    def __init__(self, spec: LayerNormSpec):
        self.spec = spec
        self.w_bits, self.r1_bits = rsqrt_widths(spec)
        super().__init__({
            "w": In(unsigned(self.w_bits)),
            "r1": Out(unsigned(self.r1_bits)),
            "e": Out(range(self.w_bits // 2)),
        })

    def elaborate(self, platform):
        spec, nw = self.spec, self.w_bits
        R, T, bound = spec.rsqrt_frac, spec.rsqrt_index_bits, spec.bounds
        m = Module()
        stages = Stages(m, prefix="rs_")
        m.submodules.rsqrt_rom = seed_rom = rom("rsqrt", bits_for_unsigned(max(spec.rsqrt_table)),
                                                spec.rsqrt_table)
        seed_port = seed_rom.read_port(domain="sync")

        # e = index of the highest non-zero bit pair (w / 4^e in [1, 4)); lead = pairs above it.
        e, lead = Signal(range(nw // 2)), Signal(range(nw // 2))
        for k in range(nw // 2):
            with m.If(self.w[2 * k:2 * k + 2] != 0):
                m.d.comb += [e.eq(k), lead.eq(nw // 2 - 1 - k)]
        tok = stages.step({"w": self.w, "e": e, "lead": lead}, 4)
        # u = w / 4^e with R fractional bits, in [2^R, 4*2^R): the top R + 2 bits of w << 2*lead.
        tok = stages.step(carry(tok, ("w", "lead"), u=(tok["w"] << (2 * tok["lead"]))[nw - R - 2:nw]), 5)
        m.d.comb += seed_port.addr.eq(tok["u"][R + 2 - T:R + 2] - (1 << (T - 2)))
        tok = stages.step(tok, 6)                          # alongside the seed ROM's read register
        r0 = seed_port.data
        tok = stages.step(carry(tok, r0=r0, **hdl_partials("r0_sq", r0, r0)), 7)
        a = hdl_fit(hdl_round_shift(hdl_whole(tok, "r0_sq"), R), unsigned(bits_for_unsigned(bound["a"])))
        tok = stages.step(carry(tok, ("r0_sq_lo", "r0_sq_hi"), a=a), 8)
        tok = stages.step(carry(tok, ("u", "a"), **hdl_partials("ua", tok["u"], tok["a"])), 9)
        c_shape = (unsigned(bits_for_unsigned(bound["c_max"])) if bound["c_min"] >= 0
                   else signed(bits_for_signed(bound["c_min"], bound["c_max"])))
        c = hdl_fit((3 << R) - hdl_round_shift(hdl_whole(tok, "ua"), R), c_shape)
        tok = stages.step(carry(tok, ("ua_lo", "ua_hi"), c=c), 10)
        tok = stages.step(carry(tok, ("r0", "c"), **hdl_partials("r0c", tok["c"], tok["r0"])), 11)
        r1 = hdl_fit(hdl_round_shift(hdl_whole(tok, "r0c"), R + 1), unsigned(self.r1_bits))   # r0*(3 - u*r0^2)/2
        tok = stages.step(carry(tok, ("r0c_lo", "r0c_hi"), r1=r1), 12)
        m.d.comb += [self.r1.eq(tok["r1"]), self.e.eq(tok["e"])]
        self.count_latency(stages.count)
        return m
