"""torch → ONNX through ``torch.onnx.export`` (the torch.export-based exporter), DyT layers optionally marked.

With ``marked``, each DyT layer is traced as one placeholder node
``hardyt.DyTMarker(x, layer=i, rank=r)`` (a torch custom op translated to a
custom ONNX op), which :mod:`hardyt.quant.export.build` replaces by QONNX
nodes; everything else is what the exporter makes of the float model.
"""
from __future__ import annotations

import copy
import logging
import warnings

import onnx
import torch
from onnx.defs import OpSchema
from torch import nn

from ..runtime.graph import set_module
from ..errors import HardytError

__all__ = ["MARKER_DOMAIN", "MARKER_OP", "trace"]

MARKER_DOMAIN, MARKER_OP = "hardyt", "DyTMarker"
OPSET = 18


@torch.library.custom_op("hardyt::dyt_marker", mutates_args=())
def _dyt_marker(x: torch.Tensor, layer: int, rank: int) -> torch.Tensor:
    return x.clone()


@_dyt_marker.register_fake
def _(x, layer, rank):
    return torch.empty_like(x)


def _marker_schema() -> None:
    # onnxscript builds a node only for an op with a schema; the marker never leaves hardyt.
    if not onnx.defs.has(MARKER_OP, MARKER_DOMAIN):
        onnx.defs.register_schema(OpSchema(
            MARKER_OP, MARKER_DOMAIN, 1, inputs=[OpSchema.FormalParameter("x", "T")],
            outputs=[OpSchema.FormalParameter("y", "T")], type_constraints=[("T", ["tensor(float)"], "")],
            attributes=[OpSchema.Attribute("layer", OpSchema.AttrType.INT, ""),
                        OpSchema.Attribute("rank", OpSchema.AttrType.INT, "")]))


def _marker_onnx(x, layer: int, rank: int):
    import onnxscript
    return onnxscript.values.Opset(MARKER_DOMAIN, 1)[MARKER_OP](x, layer=layer, rank=rank)


class _Marker(nn.Module):
    def __init__(self, index: int):
        super().__init__()
        self.index = index

    def forward(self, x):
        return torch.ops.hardyt.dyt_marker(x, self.index, x.dim())


def trace(model: nn.Module, example: torch.Tensor, marked: list[str] | None = None, *,
          dynamic_batch: bool = True) -> onnx.ModelProto:
    """ONNX of ``model`` on inputs like ``example``: ``images`` → ``logits``.

    ``marked`` names the DyT modules to trace as marker nodes (``layer`` = index in the list).
    ``dynamic_batch=False`` fixes the batch size to ``example``'s (QONNX and FINN need static shapes).
    """
    model = copy.deepcopy(model).eval()
    table = None
    if marked:
        _marker_schema()
        for i, name in enumerate(marked):
            set_module(model, name, _Marker(i))
        table = {torch.ops.hardyt.dyt_marker.default: _marker_onnx}
    quiet = logging.getLogger("torch.onnx._internal.exporter._registration")   # "torchvision is not installed"
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=OPSET, input_names=["images"],
                                        output_names=["logits"], verbose=False, report=False,
                                        dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}}
                                        if dynamic_batch else None,
                                        custom_translation_table=table)
        except Exception as e:  # noqa: BLE001 - the exporter's errors are many; one line says which
            raise HardytError(f"torch.onnx.export failed: {type(e).__name__}: {str(e).splitlines()[0]}") from None
        finally:
            quiet.setLevel(level)
    return program.model_proto
