"""Load trained ViTs: timm-format checkpoints into hardyt's own ViT, HF directories.

``load_vit(path, config=None)`` reads a timm ``VisionTransformer`` state dict
from ``.safetensors`` or ``.pth``/``.pt``/``.bin`` (``torch.load`` with
``weights_only=True``: a pickle that would run code is refused). The
architecture comes from ``config`` (timm keyword arguments), else from
``<stem>.json`` beside the checkpoint, completed by what the tensor shapes
determine; only ``num_heads`` cannot be inferred. Every problem (unreadable
file, missing or unexpected key, wrong shape, NaN/Inf weight) is a
:class:`HardytError` naming the file and key.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

from ..errors import HardytError
from ..files import load_json_object

__all__ = ["load_vit", "load_hf", "load_state_dict", "infer_config", "read_config", "default_model_path",
           "CONFIG_KEYS"]

CONFIG_KEYS = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads",
               "mlp_ratio", "qkv_bias", "class_token", "global_pool", "fc_norm")
TORCH_SUFFIXES = (".pth", ".pt", ".bin")


def default_model_path() -> Path:
    """The bundled Fashion-MNIST ViT (``quant/zoo/pretrained/vit_fmnist.safetensors``)."""
    return Path(__file__).parent / "pretrained" / "vit_fmnist.safetensors"


def load_vit(path, config: dict | None = None):
    """timm-format ViT checkpoint → :class:`hardyt.quant.vit.VisionTransformer` in eval mode."""
    import torch

    from .vit import VisionTransformer

    path = Path(path)
    state = load_state_dict(path)
    if config is None:
        meta = path.with_suffix(".json")
        config = read_config(meta) if meta.exists() else {}
        source = meta if meta.exists() else path
    else:
        source = "config"
    config = _check_keys(dict(config), source)
    config = {**infer_config(state, path), **config}
    for key, example in (("num_heads", 4), ("global_pool", '"avg"')):
        if key not in config:
            why = " (the weights hold a class token and fc_norm)" if key == "global_pool" else ""
            raise HardytError(f"{path}: {key} cannot be inferred from the weights{why}; give it in "
                              f"{path.with_suffix('.json')} or the config (e.g. {{\"{key}\": {example}}})")
    try:
        model = VisionTransformer(**config)
    except HardytError as e:
        raise HardytError(f"{source}: {e}") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = ([f"missing key(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"] if missing else []) + \
                ([f"unexpected key(s) {', '.join(unexpected[:5])}{' ...' if len(unexpected) > 5 else ''}"]
                 if unexpected else [])
        raise HardytError(f"{path}: does not match a timm ViT with config {config}: {'; '.join(parts)}")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise HardytError(f"{path}: key {k} has shape {tuple(state[k].shape)}, the config needs {tuple(v.shape)}")
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    return model.eval()


def load_state_dict(path) -> dict:
    """Tensors of a ``.safetensors`` / ``.pth`` checkpoint, checked to be finite floating point."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise HardytError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
            raise HardytError(f"{path}: not a readable safetensors file ({_first_line(e)})") from None
    elif path.suffix in TORCH_SUFFIXES:
        import pickle
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise HardytError(f"{path}: refused to load: the pickle holds more than tensors and could run code "
                              f"(loaded with weights_only=True; {_first_line(e)}); convert it to safetensors") from None
        except Exception as e:  # noqa: BLE001 - truncated zip, garbage: all mean "not a checkpoint"
            raise HardytError(f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})") from None
    else:
        raise HardytError(f"{path}: unknown checkpoint format '{path.suffix}' "
                          f"(expected .safetensors or {', '.join(TORCH_SUFFIXES)})")
    state = _unwrap(state, path)
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise HardytError(f"{path}: key {k} is a {type(v).__name__}, not a tensor")
        if not v.is_floating_point():
            raise HardytError(f"{path}: key {k} has dtype {v.dtype}, expected floating point weights")
        if not torch.isfinite(v).all():
            bad = int((~torch.isfinite(v)).sum())
            raise HardytError(f"{path}: key {k} holds {bad} NaN/Inf value(s)")
    return state


def _unwrap(state, path: Path) -> dict:
    # training checkpoints wrap the weights ({"model": ...} in DeiT, {"state_dict": ...} in timm's train script)
    if isinstance(state, dict):
        for key in ("state_dict", "model", "module"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not state:
        raise HardytError(f"{path}: not a state dict (got {type(state).__name__}{' (empty)' if not state else ''})")
    return {(k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k): v
            for k, v in state.items()}


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def read_config(path) -> dict:
    """timm keyword arguments from a JSON file: the object itself, or its ``"config"`` member."""
    data = load_json_object(path, "config")
    return data["config"] if isinstance(data.get("config"), dict) else data


def _check_keys(config: dict, source) -> dict:
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise HardytError(f"{source}: unknown config key(s) {', '.join(unknown)} "
                          f"(timm VisionTransformer arguments: {', '.join(CONFIG_KEYS)})")
    return config


def infer_config(state: dict, path="checkpoint") -> dict:
    """timm keyword arguments that a ViT state dict's shapes determine (everything but ``num_heads``)."""
    w = state.get("patch_embed.proj.weight")
    if w is None or w.ndim != 4:
        raise HardytError(f"{path}: no 4-d patch_embed.proj.weight: not a timm ViT checkpoint")
    embed_dim, in_chans, ph, pw = (int(s) for s in w.shape)
    config = {"embed_dim": embed_dim, "in_chans": in_chans, "patch_size": ph if ph == pw else [ph, pw],
              "class_token": "cls_token" in state, "qkv_bias": "blocks.0.attn.qkv.bias" in state,
              "num_classes": int(state["head.weight"].shape[0]) if "head.weight" in state else 0}
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    config["depth"] = max(blocks) + 1 if blocks else 0
    fc1 = state.get("blocks.0.mlp.fc1.weight")
    if fc1 is not None:
        config["mlp_ratio"] = fc1.shape[0] / embed_dim
    pos = state.get("pos_embed")
    if pos is not None and pos.ndim == 3:
        side = math.isqrt(max(0, pos.shape[1] - int(config["class_token"])))
        if side * side == pos.shape[1] - int(config["class_token"]) and ph == pw:
            config["img_size"] = side * ph
    config["fc_norm"] = "fc_norm.weight" in state
    # Pooling leaves no trace in the weights, except: no class token means average pooling, and
    # a class token without fc_norm is timm's default token pooling. A class token *and* fc_norm
    # (timm's default for avg pooling, but allowed with token pooling) stays undetermined.
    if not config["class_token"]:
        config["global_pool"] = "avg"
    elif not config["fc_norm"]:
        config["global_pool"] = "token"
    return config


def load_hf(directory):
    """A local Hugging Face ``ViTForImageClassification`` directory, in eval mode (never downloads)."""
    directory = model_directory(directory, "Hugging Face model")
    try:
        from transformers import ViTForImageClassification
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise HardytError(f"loading Hugging Face models needs transformers ({e})") from None
    hf_logging.set_verbosity_error()
    try:
        model = ViTForImageClassification.from_pretrained(str(directory), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many types for a bad directory
        raise HardytError(f"{directory}: cannot load as ViTForImageClassification ({_first_line(e)})") from None
    return model.eval()


def model_directory(directory, what: str) -> Path:
    """``directory`` as a Path if it is a directory holding ``config.json``; else a :class:`HardytError`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HardytError(f"{directory}: not a directory (a {what} directory holds config.json and the weights)")
    if not (directory / "config.json").is_file():
        raise HardytError(f"{directory}: no config.json: not a {what} directory")
    return directory
