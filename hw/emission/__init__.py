"""hardyt.hw.emission: a core (or the engine) as files — Verilog, ``.mem`` ROMs, the manifest, a FuseSoC core."""
