"""The Verilog top level: a core behind AXI4-Stream port names.

Lane ``j`` of a beat sits at ``tdata[j*W +: W]`` (lane 0 in the lowest bits,
little end first), so a beat of channels ``c..c+P-1`` reads left to right
from the most significant lane down. ``aresetn`` is active low and
synchronous to ``aclk``.
"""
from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxisTop"]


class AxisTop(wiring.Component):
    """A streaming core (``i``/``o`` lane streams) with AXI4-Stream ports.

    Parameters
    ----------
    core : wiring.Component
        A core with members ``i`` and ``o`` (lane streams, see
        :func:`hardyt.hw.datapath.stages.lane_stream`) and a ``latency`` attribute.

    Members
    -------
    aclk, aresetn : In(1)
        Clock and active-low synchronous reset.
    s_axis_tdata : In(P * in_bits)
    s_axis_tvalid, s_axis_tlast : In(1)
    s_axis_tready : Out(1)
    m_axis_tdata : Out(P * out_bits)
    m_axis_tvalid, m_axis_tlast : Out(1)
    m_axis_tready : In(1)
    """

    def __init__(self, core):
        self.core = core
        super().__init__(self.ports(core))

    @staticmethod
    def ports(core) -> dict:
        """The top's signature members for ``core`` (a subclass adds its own)."""
        in_width = len(core.i.payload.data.as_value())
        out_width = len(core.o.payload.data.as_value())
        return {
            "aclk": In(1),
            "aresetn": In(1),
            "s_axis_tdata": In(in_width),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(out_width),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
        }

    @property
    def latency(self) -> int:
        """The core's latency (counted by its elaboration)."""
        return self.core.latency

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.core = core = self.core
        m.d.comb += [
            ClockSignal("sync").eq(self.aclk),
            ResetSignal("sync").eq(~self.aresetn),
            core.i.payload.data.eq(self.s_axis_tdata),
            core.i.payload.last.eq(self.s_axis_tlast),
            core.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(core.i.ready),
            self.m_axis_tdata.eq(core.o.payload.data),
            self.m_axis_tlast.eq(core.o.payload.last),
            self.m_axis_tvalid.eq(core.o.valid),
            core.o.ready.eq(self.m_axis_tready),
        ]
        return m
