"""Export a converted model into the flows FPGA users run: ONNX, and QONNX for FINN.

``hardyt export`` (``hardyt.scripts.cmd_export``) is the command line;
docs/export.md is the how-to.
"""
from .build import float_onnx, layer_qonnx, qonnx_model, save_model
from .converted import Converted, load_converted

__all__ = ["Converted", "load_converted", "float_onnx", "qonnx_model", "layer_qonnx", "save_model"]
