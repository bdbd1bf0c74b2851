"""Weights of a transformer exported to ONNX, back into a ``transformers`` model.

Packages often ship a model only as an ``.onnx`` file (PyTorch's exporter
output). Its LayerNorms and biases keep their PyTorch names as initializers;
the Linear weights become anonymous ``MatMul`` initializers (``onnx::MatMul_N``,
stored transposed). :func:`onnx_state_dict` names each one after the bias its
``MatMul`` output is added to (``X.bias`` → ``X.weight``), which recovers the
state dict of the module that was exported. :func:`load_onnx_bert` builds a
``transformers`` ``BertModel`` from it, wrapped in a :class:`SentenceEncoder`,
and proves the result: it runs the ONNX graph with onnxruntime and the torch
model on the same probe batch and accepts only a model whose output matches
(which also settles what the weights cannot tell: the number of attention
heads and the pooling).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from ..errors import HardytError
from .encoders import POOLING_MODES, SentenceEncoder
from .load import _first_line

__all__ = ["onnx_state_dict", "load_onnx_bert"]

PROBE_TOLERANCE = 1e-4   # max |torch - onnxruntime| / max |onnxruntime| on the probe (float32 agrees to ~1e-6)


def _load_graph(path: Path):
    import onnx
    if not path.is_file():
        raise HardytError(f"{path}: no such ONNX file")
    try:
        return onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - protobuf decode errors, truncated files
        raise HardytError(f"{path}: not a readable ONNX model ({_first_line(e)})") from None


def onnx_state_dict(path) -> dict[str, np.ndarray]:
    """The exported module's state dict from an ONNX file: named initializers plus named MatMul weights.

    A ``MatMul`` (or ``Gemm``) whose weight input is an anonymous initializer and whose output is
    added to a named ``X.bias`` initializer gives ``X.weight`` (transposed to PyTorch's
    ``(out, in)``). Anonymous initializers that cannot be named are left out; the caller's strict
    load then names the parameter they would have been.
    """
    from onnx import numpy_helper
    path = Path(path)
    graph = _load_graph(path).graph
    inits = {t.name: t for t in graph.initializer}
    state = {name: numpy_helper.to_array(t) for name, t in inits.items() if not name.startswith("onnx::")}
    for node in graph.node:  # the exporter stores equal tensors once and names the others by Identity nodes
        if node.op_type == "Identity" and node.input[0] in inits and not node.output[0].startswith("onnx::"):
            state[node.output[0]] = numpy_helper.to_array(inits[node.input[0]])
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2 or node.input[1] not in inits:
            continue
        weight = node.input[1]
        if weight in state:
            continue
        bias = _bias_of(node, consumers, state)
        if bias is None:
            continue
        w = numpy_helper.to_array(inits[weight])
        transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
        state[bias[:-len("bias")] + "weight"] = np.ascontiguousarray(w if transposed else w.T)
    return state


def _bias_of(node, consumers, state) -> str | None:
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2].endswith(".bias"):
        return node.input[2]
    for user in consumers.get(node.output[0], []):
        if user.op_type == "Add":
            named = [i for i in user.input if i in state and i.endswith(".bias")]
            if named:
                return named[0]
    return None


def _prefix(state: dict, path: Path, suffix: str) -> str:
    hits = [k[:-len(suffix)] for k in state if k.endswith(suffix)]
    if len(hits) != 1:
        raise HardytError(f"{path}: expected one initializer ending in {suffix} (a BERT encoder), found {len(hits)}")
    return hits[0]


def bert_config(state: dict, path: Path, num_heads: int, eps: float):
    """A ``BertConfig`` that the tensor shapes (and the given head count) determine."""
    from transformers import BertConfig
    vocab, hidden = state["embeddings.word_embeddings.weight"].shape
    layers = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    if not layers:
        raise HardytError(f"{path}: no encoder.layer.N weights: not a BERT encoder")
    if hidden % num_heads:
        raise HardytError(f"{path}: {num_heads} heads do not divide the width {hidden}")
    inter = state.get("encoder.layer.0.intermediate.dense.weight")
    return BertConfig(vocab_size=int(vocab), hidden_size=int(hidden), num_hidden_layers=max(layers) + 1,
                      num_attention_heads=num_heads,
                      intermediate_size=int(inter.shape[0]) if inter is not None else 4 * int(hidden),
                      max_position_embeddings=int(state["embeddings.position_embeddings.weight"].shape[0]),
                      type_vocab_size=int(state.get("embeddings.token_type_embeddings.weight", np.zeros((2,))).shape[0]),
                      layer_norm_eps=eps, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _bert(state: dict, path: Path, num_heads: int, eps: float):
    from transformers import BertModel
    config = bert_config(state, path, num_heads, eps)
    model = BertModel(config, add_pooling_layer="pooler.dense.weight" in state).eval()
    expected = dict(model.named_parameters())
    missing = [k for k in expected if k not in state]
    if missing:
        raise HardytError(f"{path}: the ONNX graph does not hold {', '.join(missing[:4])}"
                          f"{' ...' if len(missing) > 4 else ''} (weights that could not be named)")
    with torch.no_grad():
        for k, p in expected.items():
            if tuple(state[k].shape) != tuple(p.shape):
                raise HardytError(f"{path}: {k} has shape {tuple(state[k].shape)}, a BERT of this size needs "
                                  f"{tuple(p.shape)}")
            p.copy_(torch.from_numpy(np.array(state[k], dtype=np.float32)))
    return model


def _probe(path: Path, vocab: int, hidden: int, length: int, seed: int = 0):
    """A padded probe batch and the ONNX graph's output on it (onnxruntime).

    The output is the first float output of width ``hidden`` that is 2-d (the sentence embedding;
    sentence-transformers exports also return the token states and echo their inputs), else the
    first 3-d one (token states).
    """
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if "input_ids" not in names:
        raise HardytError(f"{path}: graph inputs {names}: expected input_ids (a BERT encoder's)")
    g = np.random.default_rng(seed)
    ids = g.integers(1, vocab, size=(3, length)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, length // 2 + 1:] = mask[2, 2:] = 0
    ids[mask == 0] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    outs = [o for o in session.run(None, {n: feeds[n] for n in names if n in feeds})
            if np.issubdtype(o.dtype, np.floating) and o.ndim in (2, 3) and o.shape[-1] == hidden]
    if not outs:
        raise HardytError(f"{path}: no float output of width {hidden} (sentence embedding or token states)")
    out = min(outs, key=lambda o: o.ndim)
    batch = {k: torch.from_numpy(v) for k, v in feeds.items() if k != "token_type_ids" or k in names}
    return batch, out


def load_onnx_bert(path, *, num_heads: int | None = None, pooling: str | None = None,
                   normalize: bool | None = None) -> SentenceEncoder:
    """A BERT sentence encoder exported to ONNX (e.g. by sentence-transformers) → :class:`SentenceEncoder`.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file; one output must be the sentence embedding (2-d) or the token states (3-d).
    num_heads, pooling, normalize
        What the weights do not determine; ``None`` tries every choice (heads of width 32, 64 or 128;
        ``mean``/``cls``/``max``; with and without L2 normalization) and keeps the one whose output
        equals the ONNX graph's on a probe batch (onnxruntime). No match is a :class:`HardytError`.
    """
    path = Path(path)
    raw = onnx_state_dict(path)
    prefix = _prefix(raw, path, "embeddings.word_embeddings.weight")
    state = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
    eps = _layer_norm_eps(path)
    vocab, hidden = state["embeddings.word_embeddings.weight"].shape
    dims = [d for d in (_head_dim_hint(path), 64, 32, 128) if d and hidden % d == 0]
    heads = [num_heads] if num_heads else list(dict.fromkeys(hidden // d for d in dims))
    poolings = [pooling] if pooling else list(POOLING_MODES)
    norms = [normalize] if normalize is not None else [False, True]
    batch, want = _probe(path, int(vocab), int(hidden),
                         min(12, len(state["embeddings.position_embeddings.weight"])))
    best = np.inf
    for h in heads:
        bert = _bert(state, path, h, eps)
        for mode in poolings:
            for norm in norms:
                model = SentenceEncoder(bert, mode, norm).eval()
                with torch.no_grad():
                    got = model(**batch) if want.ndim == 2 else bert(**batch).last_hidden_state
                if tuple(got.shape) != want.shape:
                    continue
                err = float(np.abs(got.numpy() - want).max() / max(np.abs(want).max(), 1e-12))
                if err <= PROBE_TOLERANCE:
                    return model
                best = min(best, err)
    raise HardytError(f"{path}: no BERT of heads {heads}, pooling {poolings}, normalize {norms} reproduces the "
                      f"ONNX graph's output (closest relative deviation {best:.3g}); give num_heads/pooling")


def _head_dim_hint(path: Path) -> int | None:
    """The head width the attention scaling reveals (a scalar constant: scores / sqrt(d), or q, k * d**-0.25)."""
    from onnx import numpy_helper
    graph = _load_graph(path).graph
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    consts.update({t.name: numpy_helper.to_array(t) for t in graph.initializer if not t.dims})
    for node in graph.node:
        c = next((consts[i] for i in node.input[1:] if i in consts), None) if node.op_type in ("Div", "Mul") else None
        if c is None or c.size != 1 or not np.issubdtype(c.dtype, np.floating) or float(c) <= 0:
            continue
        # scores / sqrt(d) (eager attention), or q and k each * d**-0.25 (exported scaled_dot_product_attention)
        d = float(c) ** 2 if node.op_type == "Div" else float(c) ** -4 if float(c) < 1 else 0.0
        if 8 <= d <= 256 and abs(d - round(d)) < 1e-2:
            return round(d)
    return None


def _layer_norm_eps(path: Path) -> float:
    """The epsilon of the graph's first ``LayerNormalization`` node (opset 17), else BERT's 1e-12."""
    for node in _load_graph(path).graph.node:
        if node.op_type == "LayerNormalization":
            for a in node.attribute:
                if a.name == "epsilon":
                    return float(a.f)
    return 1e-12
