"""hardyt.hw: Amaranth cores (DyT, LayerNorm baseline), the AXI4-Stream top,
Verilog/.mem/manifest emission and tool discovery."""
from .axis_top import AxisTop
from .cores import build_core, random_dyt_spec, random_layernorm_spec
from .dyt_core import DyTCore
from .emit import emit, load_manifest
from .layernorm_core import LayerNormCore
from .pipeline import lane_stream

__all__ = ["AxisTop", "build_core", "random_dyt_spec", "random_layernorm_spec", "DyTCore", "LayerNormCore",
           "lane_stream", "emit", "load_manifest"]
