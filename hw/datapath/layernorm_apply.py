"""The output side of :class:`hardyt.hw.datapath.layernorm_core.LayerNormCore`: normalize, then gamma/beta."""
from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hardyt.quant.contract.layernorm import LayerNormSpec

from .arith import hdl_narrow, hdl_partials, hdl_product, hdl_whole
from .stages import CountedLatency, Stages, carry, lane_stream, lane_words, lanes_layout, rom

__all__ = ["LayerNormApply", "head_layout"]


def head_layout(spec: LayerNormSpec, token: data.StructLayout) -> data.StructLayout:
    """What the output side reads with a beat: valid, its beat index and its token's statistics."""
    return data.StructLayout({"valid": 1, "beat": range(max(2, spec.beats)), **{n: f.shape for n, f in token}})


class LayerNormApply(CountedLatency, wiring.Component):
    """One beat of a token whose statistics are known, normalized and scaled::

        [head (RAM read)] ─► [x] ─► [C*x] ─► [D = C*x - S1] ─► [D*r1 partials] ─► [p]
          ─► [q = p >>> (s - 1)] ─► [z = sat((q + 1) >>> 1)] ─► [gamma*z partials]
          ─► [acc = gamma*z + beta] ─► y = sat(round(acc, A)) ─► o

    Every stage advances on ``o.ready`` (the output buffer has room).

    Parameters
    ----------
    spec : LayerNormSpec
    token : StructLayout
        The statistics' layout (:func:`hardyt.hw.datapath.layernorm_parts.token_layout`).

    Members
    -------
    head : In(head_layout(spec, token))
        The beat read from the token buffer this cycle (when ``valid`` and ``o.ready``).
    word : In(StructLayout({"data": ArrayLayout(signed(in_bits), P), "last": 1}))
        The token buffer's read data: that beat, one cycle later.
    o : Out(lane_stream(out_bits, P))
        Output beats; ``ready`` is every stage's enable.
    """

    def __init__(self, spec: LayerNormSpec, token: data.StructLayout):
        self.spec = spec
        super().__init__({
            "head": In(head_layout(spec, token)),
            "word": In(lane_stream(spec.in_bits, spec.lanes).members["payload"].shape),
            "o": Out(lane_stream(spec.out_bits, spec.lanes)),
        })

    def elaborate(self, platform):
        spec, P = self.spec, self.spec.lanes
        m = Module()
        self.stages = stages = Stages(m, enable=self.o.ready, prefix="o_")
        reg = stages.reg
        side = stages.step({n: self.head[n] for n in ("valid", "beat", "s1", "r1", "shift_m1")}, 1)  # RAM read
        word = reg(self.word, "word")           # block RAM clock-to-out is slow: register it again
        side = stages.step(side, 2)
        side["last"] = word.last
        cx = [reg(hdl_product(v, spec.channels), f"cx{j}") for j, v in enumerate(word.data)]
        side = stages.step(side, 3)
        d = [reg(v - side["s1"], f"d{j}") for j, v in enumerate(cx)]
        side = stages.step(carry(side, ("s1",)), 4)
        prods = [{n: reg(v, n) for n, v in hdl_partials(f"p{j}", d[j], side["r1"]).items()} for j in range(P)]
        side = stages.step(carry(side, ("r1",)), 5)
        p = [reg(hdl_whole(prods[j], f"p{j}"), f"p{j}") for j in range(P)]
        side = stages.step(side, 6)
        gamma, beta = self._affine_words(m, side["beat"])
        q = [reg(v >> side["shift_m1"], f"q{j}") for j, v in enumerate(p)]
        side = stages.step(carry(side, ("shift_m1", "beat")), 7)
        z = [reg(hdl_narrow(v, 1, spec.z_bits), f"z{j}", signed(spec.z_bits)) for j, v in enumerate(q)]
        gamma, beta = reg(gamma, "gamma_w"), reg(beta, "beta_w")
        side = stages.step(side, 8)
        gz = [{n: reg(v, n) for n, v in hdl_partials(f"gz{j}", z[j], gamma[j]).items()} for j in range(P)]
        beta = [reg(v, f"beta{j}") for j, v in enumerate(beta)]
        side = stages.step(side, 9)
        acc = [reg(hdl_whole(gz[j], f"gz{j}") + beta[j], f"acc{j}") for j in range(P)]
        side = stages.step(side, 10)

        m.d.comb += [self.o.valid.eq(side["valid"]), self.o.payload.last.eq(side["last"])]
        m.d.comb += [self.o.payload.data[j].eq(hdl_narrow(v, spec.affine_shift, spec.out_bits))
                     for j, v in enumerate(acc)]
        self.count_latency(stages.count)
        return m

    def _affine_words(self, m, beat):
        """gamma/beta words of ``beat``, one cycle later (ROMs enabled with the stages). They are
        registered once more by the caller, so that no RAM output feeds a multiplier directly."""
        spec = self.spec
        words = {}
        for name, values, bits in (("gamma", spec.gamma, spec.gamma_bits), ("beta", spec.beta, spec.beta_bits)):
            m.submodules[f"{name}_rom"] = memory = rom(name, spec.lanes * bits, lane_words(values, spec.lanes, bits))
            port = memory.read_port(domain="sync")
            m.d.comb += [port.addr.eq(beat), port.en.eq(self.o.ready)]
            words[name] = data.View(lanes_layout(bits, spec.lanes), port.data)
        return words["gamma"], words["beta"]

