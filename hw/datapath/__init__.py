"""hardyt.hw.datapath: the Amaranth cores — DyT, the LayerNorm baseline, the AXI4-Stream top, the DyT engine —
and the stage builder that counts their latency."""
