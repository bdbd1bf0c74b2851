"""hardyt.hw.tools: Yosys and nextpnr runs (and their cache by content), and the Dask job layer every tool
sweep goes through."""
