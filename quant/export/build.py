"""Whole-model and one-layer ONNX/QONNX graphs of a converted model, checked and written atomically.

- :func:`float_onnx`: the converted model with float DyT (``Mul(alpha)`` →
  ``Tanh`` → ``Mul(gamma)`` → ``Add(beta)`` where not folded), plain ONNX.
- :func:`qonnx_model`: the same graph with every DyT layer in the hardware's
  integers (:mod:`hardyt.quant.export.qonnx_layer`); kept LayerNorms are ONNX
  ``LayerNormalization``; all else float, as after a Brevitas export.
- :func:`layer_qonnx`: one DyT layer alone, integer codes ``(N, C)`` in and out.
"""
from __future__ import annotations

from pathlib import Path

import onnx
import torch
from onnx import helper

from ..contract.spec import DyTSpec
from ..errors import HardytError
from ..files import atomic_write_bytes
from .converted import Converted
from .qonnx_layer import QONNX_DOMAIN, Nodes, core_nodes, real_nodes, value_info
from .trace import MARKER_DOMAIN, MARKER_OP, trace

__all__ = ["float_onnx", "qonnx_model", "layer_qonnx", "annotate", "save_model"]

_LAYOUT = {2: "NC", 3: "NWC", 4: "NHWC"}   # channels last: DyT normalizes the last dimension


def float_onnx(conv: Converted) -> onnx.ModelProto:
    """The float converted model as plain ONNX, batch size dynamic."""
    return trace(conv.float_model, torch.zeros(conv.input_shape(batch=2)))


def annotate(model: onnx.ModelProto, datatypes: dict[str, str]) -> onnx.ModelProto:
    """Infer every tensor's shape (QONNX executes only shaped graphs) and add datatype annotations (``INT8`` ...)."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    wrapper = ModelWrapper(model).transform(InferShapes())
    for name, dt in datatypes.items():
        wrapper.set_tensor_datatype(name, DataType[dt])
    return wrapper.model


def _with_qonnx_opset(model: onnx.ModelProto) -> None:
    keep = [o for o in model.opset_import if o.domain not in (MARKER_DOMAIN, QONNX_DOMAIN)]
    del model.opset_import[:]
    model.opset_import.extend(keep + [helper.make_opsetid(QONNX_DOMAIN, 1)])


def qonnx_model(conv: Converted, batch: int = 1) -> onnx.ModelProto:
    """The converted model with every DyT layer as QONNX integer nodes, for ``batch`` images (static)."""
    names = list(conv.specs)
    model = trace(conv.float_model, torch.zeros(conv.input_shape(batch)), marked=names, dynamic_batch=False)
    g = Nodes()
    nodes, seen = [], set()
    for node in model.graph.node:
        if node.domain != MARKER_DOMAIN or node.op_type != MARKER_OP:
            nodes.append(onnx.NodeProto())
            nodes[-1].CopyFrom(node)
            continue
        attrs = {a.name: a.i for a in node.attribute}
        name = names[attrs["layer"]]
        seen.add(name)
        start = len(g.nodes)
        real_nodes(g, conv.specs[name], node.input[0], node.output[0], prefix=name,
                   layout=_LAYOUT.get(attrs["rank"], ""))
        nodes.extend(g.nodes[start:])
    if seen != set(names):
        raise HardytError(f"export: DyT layer(s) {sorted(set(names) - seen)} do not run in the traced forward pass")
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(g.initializers)
    _with_qonnx_opset(model)
    return annotate(model, g.datatypes)


def layer_qonnx(spec: DyTSpec, rows: int = 1) -> onnx.ModelProto:
    """One DyT layer: ``codes`` ``(rows, C)`` (``INT{in_bits}`` as float) → ``y`` output codes."""
    g = Nodes()
    core_nodes(g, spec, "codes", "y", prefix=spec.name, layout="NC")
    graph = helper.make_graph(g.nodes, f"{spec.name}_dyt", [value_info("codes", [rows, spec.channels])],
                              [value_info("y", [rows, spec.channels])], g.initializers)
    model = helper.make_model(graph, producer_name="hardyt",
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(QONNX_DOMAIN, 1)])
    return annotate(model, {"codes": f"INT{spec.in_bits}", **g.datatypes})


def save_model(model: onnx.ModelProto, path) -> Path:
    """Check ``model`` with ``onnx.checker`` and write it atomically to ``path``."""
    path = Path(path)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise HardytError(f"{path}: the exported graph fails onnx.checker: {str(e).splitlines()[0]}") from None
    if not path.parent.is_dir():
        raise HardytError(f"{path}: cannot write: directory {path.parent} does not exist")
    return atomic_write_bytes(path, model.SerializeToString())
