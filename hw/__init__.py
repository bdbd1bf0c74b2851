"""hardyt.hw: Amaranth cores (DyT, LayerNorm baseline, the DyT engine), Verilog/.mem/manifest emission,
tool runs on Dask, the cost model — four sub-rooms by job:

* :mod:`.datapath` — the Amaranth components and their stage builder;
* :mod:`.emission` — Verilog, ``.mem`` ROM files, manifests, FuseSoC cores;
* :mod:`.tools` — Yosys/nextpnr runs, their cache, the Dask job layer;
* :mod:`.costmodel` — every candidate core's cost, from runs and a model.

Every module's old path (``hardyt.hw.dyt_core``, ``hardyt.hw.synth``,
``hardyt.hw.pipeline``, ...) imports the same module object at its new place
(:mod:`hardyt.quant.moved`).
"""
from hardyt.quant.moved import alias_modules

from .datapath.axis_top import AxisTop
from .datapath.cores import build_core, random_dyt_spec, random_layernorm_spec
from .datapath.dyt_core import DyTCore
from .datapath.layernorm_core import LayerNormCore
from .datapath.stages import lane_stream
from .emission.emit import emit, load_manifest

__all__ = ["AxisTop", "build_core", "random_dyt_spec", "random_layernorm_spec", "DyTCore", "LayerNormCore",
           "lane_stream", "emit", "load_manifest"]

# after the imports above: modules they loaded are registered under their old names at once
alias_modules({f"{__name__}.{old}": f"{__name__}.{new}" for old, new in {
    "arith": "datapath.arith",
    "pipeline": "datapath.stages",
    "dyt_core": "datapath.dyt_core",
    "layernorm_core": "datapath.layernorm_core",
    "layernorm_parts": "datapath.layernorm_parts",
    "layernorm_apply": "datapath.layernorm_apply",
    "rsqrt_unit": "datapath.rsqrt_unit",
    "axis_top": "datapath.axis_top",
    "engine": "datapath.engine",
    "coef_loader": "datapath.coef_loader",
    "coef_frame": "datapath.coef_frame",
    "engine_set": "datapath.engine_set",
    "cores": "datapath.cores",
    "emit": "emission.emit",
    "engine_emit": "emission.engine_emit",
    "fusesoc": "emission.fusesoc",
    "synth": "tools.synth",
    "toolchain": "tools.toolchain",
    "sweep": "tools.sweep",
    "synth_cache": "tools.synth_cache",
    "costs": "costmodel.costs",
    "cost_features": "costmodel.cost_features",
    "cost_model": "costmodel.cost_model",
}.items()})
