"""Sentence encoders: a transformer plus pooling, as sentence-transformers lays them out.

A sentence-transformers directory holds a Hugging Face model (``config.json``
and the weights) as module 0, then ``1_Pooling/config.json`` (how token
states become one vector) and optionally a ``Normalize`` module, listed in
``modules.json``. :func:`load_sentence_transformer` reads that layout with
``transformers`` alone (local files only, never the hub, no
``sentence_transformers`` import) into a :class:`SentenceEncoder`: an
``nn.Module`` whose forward takes the tokenizer's batch
(``model(**batch)``) and returns the sentence embeddings, the output a user
of such a model reads — so ``convert(encoder, batches)`` compares
embeddings, and every LayerNorm inside (13 in a 6-layer BERT) is found.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import HardytError
from ..files import load_json_object
from .load import _first_line, model_directory

__all__ = ["POOLING_MODES", "SentenceEncoder", "load_sentence_transformer", "read_pooling", "load_tokenizer"]

POOLING_MODES = ("mean", "cls", "max")
_ST_KEYS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}


class SentenceEncoder(nn.Module):
    """A transformer encoder, pooled over the tokens, optionally L2-normalized.

    Parameters
    ----------
    encoder : nn.Module
        A ``transformers`` encoder (``BertModel``, ...) whose output has ``.last_hidden_state``
        (or is a tuple whose first element is the token states).
    pooling : str
        ``"mean"`` (over the tokens the attention mask keeps), ``"cls"`` (the first token)
        or ``"max"``.
    normalize : bool
        L2-normalize the pooled vector (sentence-transformers' ``Normalize`` module).

    Members
    -------
    encoder, pooling, normalize : as given.
    """

    def __init__(self, encoder: nn.Module, pooling: str = "mean", normalize: bool = False):
        super().__init__()
        if pooling not in POOLING_MODES:
            raise HardytError(f"pooling '{pooling}': expected one of {', '.join(POOLING_MODES)}")
        self.encoder, self.pooling, self.normalize = encoder, pooling, bool(normalize)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        kwargs = {"attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.encoder(input_ids=input_ids, **kwargs)
        states = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return pool(states, attention_mask, self.pooling, self.normalize)


def pool(states: torch.Tensor, mask: torch.Tensor, mode: str, normalize: bool) -> torch.Tensor:
    """(B, T, D) token states and a (B, T) mask → (B, D) sentence vectors."""
    m = mask.unsqueeze(-1).to(states.dtype)
    if mode == "cls":
        out = states[:, 0]
    elif mode == "max":
        out = states.masked_fill(m == 0, torch.finfo(states.dtype).min).amax(1)
    else:
        out = (states * m).sum(1) / m.sum(1).clamp_min(1e-9)
    return nn.functional.normalize(out, dim=-1) if normalize else out


def read_pooling(directory) -> tuple[str, bool]:
    """``(pooling mode, normalize)`` of a sentence-transformers directory.

    Without ``modules.json`` the directory is a plain Hugging Face encoder: mean pooling, no
    normalization (sentence-transformers' own default for such a directory).
    """
    directory = Path(directory)
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        return "mean", False
    modules = _read_json(modules_file)
    if not isinstance(modules, list):
        raise HardytError(f"{modules_file}: expected a list of modules")
    types = [str(m.get("type", "")) for m in modules if isinstance(m, dict)]
    normalize = any(t.endswith(".Normalize") for t in types)
    pooling_dirs = [m.get("path", "") for m in modules if isinstance(m, dict) and
                    str(m.get("type", "")).endswith(".Pooling")]
    unknown = [t for t in types if not t.endswith((".Transformer", ".Pooling", ".Normalize"))]
    if unknown:
        raise HardytError(f"{modules_file}: module type(s) {', '.join(unknown)} not supported "
                          "(a sentence encoder here is Transformer, Pooling, optional Normalize)")
    if not pooling_dirs:
        return "mean", normalize
    config_file = directory / pooling_dirs[0] / "config.json"
    config = load_json_object(config_file, "pooling config")
    modes = [mode for key, mode in _ST_KEYS.items() if config.get(key)]
    others = [k for k, v in config.items() if k.startswith("pooling_mode") and v and k not in _ST_KEYS]
    if len(modes) != 1 or others:
        raise HardytError(f"{config_file}: pooling {modes + others or 'none'} not supported "
                          f"(exactly one of {', '.join(_ST_KEYS)})")
    return modes[0], normalize


def load_sentence_transformer(directory) -> SentenceEncoder:
    """A local sentence-transformers (or plain Hugging Face encoder) directory → :class:`SentenceEncoder`.

    The transformer is read with ``transformers.AutoModel`` (``local_files_only=True``: never
    downloads); pooling and normalization from ``modules.json`` and ``1_Pooling/config.json``.
    """
    directory = _model_dir(directory)
    pooling, normalize = read_pooling(directory)
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    try:
        encoder = AutoModel.from_pretrained(str(directory), local_files_only=True)
    except Exception as e:  # noqa: BLE001 - transformers raises many types for a bad directory
        raise HardytError(f"{directory}: cannot load the transformer ({_first_line(e)})") from None
    return SentenceEncoder(encoder, pooling, normalize).eval()


def load_tokenizer(directory):
    """The tokenizer saved in a model directory (``transformers.AutoTokenizer``, local files only)."""
    directory = _model_dir(directory)
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except Exception as e:  # noqa: BLE001
        raise HardytError(f"{directory}: cannot load a tokenizer ({_first_line(e)})") from None


def _model_dir(directory) -> Path:
    return model_directory(directory, "sentence-transformers or Hugging Face")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HardytError(f"{path}: not valid JSON ({e})") from None
