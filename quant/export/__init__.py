"""Export a converted model into the flows FPGA users run: ONNX, QONNX for FINN, hls4ml projects.

``hardyt export`` (``hardyt.scripts.cmd_export``) is the command line;
docs/export.md is the how-to.
"""
from .build import float_onnx, layer_qonnx, qonnx_model, save_model
from .converted import Converted, converted_specs, load_converted

__all__ = ["Converted", "load_converted", "converted_specs", "float_onnx", "qonnx_model", "layer_qonnx", "save_model"]
