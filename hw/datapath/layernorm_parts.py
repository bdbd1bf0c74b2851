"""The input and statistics sides of :class:`hardyt.hw.datapath.layernorm_core.LayerNormCore`.

Both run free (no stall inside); each counts its stages (its ``latency``).
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hardyt.quant.contract.fixed import bits_for_signed, bits_for_unsigned, signed_range
from hardyt.quant.contract.layernorm import LayerNormSpec

from .arith import hdl_fit, hdl_partials, hdl_whole
from .stages import CountedLatency, Stages, carry, lanes_layout
from .rsqrt_unit import RsqrtUnit, rsqrt_widths

__all__ = ["LayerNormInput", "LayerNormStatistics", "sums_layout", "token_layout", "tree_registers"]


def tree_registers(lanes: int) -> int:
    """Register levels of a lane adder tree: one after every two adder levels, and one at the root.

    >>> [tree_registers(p) for p in (1, 2, 4, 8, 16, 32)]
    [1, 1, 1, 2, 2, 3]
    """
    levels = (lanes - 1).bit_length()
    return 1 + max(0, levels - 1) // 2


def sums_layout(spec: LayerNormSpec) -> data.StructLayout:
    """A token's sums ``S1 = sum(x)``, ``S2 = sum(x^2)`` (``valid`` for one cycle)."""
    xlo, xhi = signed_range(spec.in_bits)
    C = spec.channels
    return data.StructLayout({"valid": 1, "s1": signed(bits_for_signed(C * xlo, C * xhi)),
                              "s2": unsigned(bits_for_unsigned(C * xlo * xlo))})


def token_layout(spec: LayerNormSpec) -> data.StructLayout:
    """A token's statistics, the stats FIFO's word: ``S1``, ``r1`` and the shift ``s - 1``."""
    w_bits, r1_bits = rsqrt_widths(spec)
    shift_m1_max = spec.rsqrt_frac - spec.norm_frac - 1 + w_bits // 2
    return data.StructLayout({"s1": sums_layout(spec)["s1"].shape, "r1": unsigned(r1_bits),
                              "shift_m1": unsigned(bits_for_unsigned(shift_m1_max))})


class LayerNormInput(CountedLatency, wiring.Component):
    """Lane sums and per-token accumulation of accepted beats::

        [x] ─► [x, x^2] ─► adder trees (a register every two levels, one at the root) ─► [S1, S2]

    Parameters
    ----------
    spec : LayerNormSpec

    Members
    -------
    accept : In(1)
        A beat is taken this cycle (tokens are framed by count: ``C/P`` beats).
    x : In(ArrayLayout(signed(in_bits), P))
        Its lanes.
    sums : Out(sums_layout(spec))
        ``valid`` one cycle when a token's sums are complete.
    """

    def __init__(self, spec: LayerNormSpec):
        self.spec = spec
        super().__init__({
            "accept": In(1),
            "x": In(lanes_layout(spec.in_bits, spec.lanes)),
            "sums": Out(sums_layout(spec)),
        })

    def elaborate(self, platform):
        spec, B = self.spec, self.spec.beats
        m = Module()
        self.stages = stages = Stages(m, prefix="in_")
        beat = Signal(range(max(2, B)))          # beat index of the next input beat
        with m.If(self.accept):
            m.d.sync += beat.eq(Mux(beat == B - 1, 0, beat + 1))

        ctrl = stages.step({"valid": self.accept, "first": beat == 0, "end": beat == B - 1}, "a")
        x = [stages.reg(v, f"x{j}") for j, v in enumerate(self.x)]
        sq = [stages.reg(v * v, f"sq{j}", unsigned(2 * spec.in_bits)) for j, v in enumerate(x)]
        x = [stages.reg(v, f"x_b{j}") for j, v in enumerate(x)]
        ctrl = stages.step(ctrl, "b")

        def pair_sums(values):
            return [values[k] + values[k + 1] if k + 1 < len(values) else values[k]
                    for k in range(0, len(values), 2)]

        level = 0
        while len(x) > 1:                        # a register after every two adder levels ...
            x, sq, level = pair_sums(x), pair_sums(sq), level + 1
            if level % 2 == 0 and len(x) > 1:
                x = [stages.reg(v, f"sum_l{level}_{k}") for k, v in enumerate(x)]
                sq = [stages.reg(v, f"sumsq_l{level}_{k}") for k, v in enumerate(sq)]
                ctrl = stages.step(ctrl, f"l{level}")
        x, sq = stages.reg(x[0], "lane_sum"), stages.reg(sq[0], "lane_sumsq")     # ... and one at the root
        ctrl = stages.step(ctrl, "root")

        s1, s2 = Signal.like(self.sums.s1, name="acc1"), Signal.like(self.sums.s2, name="acc2")
        with m.If(ctrl["valid"]):
            m.d.sync += [s1.eq(Mux(ctrl["first"], 0, s1) + x), s2.eq(Mux(ctrl["first"], 0, s2) + sq)]
        done = stages.step(ctrl["valid"] & ctrl["end"], "done")     # alongside the accumulators
        m.d.comb += [self.sums.valid.eq(done), self.sums.s1.eq(s1), self.sums.s2.eq(s2)]
        self.count_latency(stages.count)
        return m


class LayerNormStatistics(CountedLatency, wiring.Component):
    """A token's statistics from its sums::

        [S1, S2] ─► [S1^2, C*S2 partials] ─► [W = C*S2 - S1^2 + eps_q] ─► RsqrtUnit ─► r1, e
        (S1 and valid travel alongside)                                   shift_m1 = R - Z - 1 + e

    Parameters
    ----------
    spec : LayerNormSpec

    Members
    -------
    sums : In(sums_layout(spec))
    valid : Out(1)
        ``token`` holds a token's statistics this cycle.
    token : Out(token_layout(spec))
    """

    def __init__(self, spec: LayerNormSpec):
        self.spec = spec
        self.rsqrt = RsqrtUnit(spec)
        super().__init__({
            "sums": In(sums_layout(spec)),
            "valid": Out(1),
            "token": Out(token_layout(spec)),
        })

    def elaborate(self, platform):
        spec, rsqrt = self.spec, self.rsqrt
        m = Module()
        m.submodules.rsqrt = rsqrt
        self.stages = stages = Stages(m, prefix="st_")
        tok = stages.step({"valid": self.sums.valid, "s1": self.sums.s1, "s2": self.sums.s2}, 1)
        tok = stages.step(carry(tok, ("s2",), **hdl_partials("s1_sq", tok["s1"], tok["s1"]),
                                **hdl_partials("c_s2", tok["s2"], spec.channels)), 2)
        w = hdl_whole(tok, "c_s2") - hdl_whole(tok, "s1_sq") + spec.eps_q
        tok = stages.step({"valid": tok["valid"], "s1": tok["s1"], "w": hdl_fit(w, unsigned(rsqrt.w_bits))}, 3)
        m.d.comb += rsqrt.w.eq(tok["w"])
        tok = stages.steps(carry(tok, ("w",)), rsqrt.latency, "rs")
        shift_m1 = spec.rsqrt_frac - spec.norm_frac - 1 + rsqrt.e
        m.d.comb += [self.valid.eq(tok["valid"]), self.token.s1.eq(tok["s1"]), self.token.r1.eq(rsqrt.r1),
                     self.token.shift_m1.eq(shift_m1)]
        self.count_latency(stages.count)
        return m
