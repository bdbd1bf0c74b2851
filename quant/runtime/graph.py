"""Running and editing arbitrary torch models: the utilities every conversion stage uses.

A model is anything callable on a calibration batch (``model(**batch)`` for a
dict, else ``model(batch)``) whose output is a tensor, a tuple or an object
with ``.logits``; LayerNorms are found by running it, in execution order.
"""
from __future__ import annotations

import contextlib
import contextvars

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HardytError

__all__ = ["run_model", "model_logits", "selected_output", "is_logits", "get_module", "set_module", "hooks", "Stop", "layer_norm_names",
           "capture", "kl_to", "token_mask", "token_rows"]


def run_model(model: nn.Module, batch):
    """``model(**batch)`` for a dict batch, else ``model(batch)``."""
    return model(**batch) if isinstance(batch, dict) else model(batch)


_OUTPUT = contextvars.ContextVar("hardyt_output", default=None)


@contextlib.contextmanager
def selected_output(pick):
    """While active, :func:`model_logits` returns ``pick(model output)`` (``convert(..., output=pick)``).

    ``None`` keeps the default choice. Lets a user name the tensor that matters
    (a pooled embedding, a hidden state) when it is not the model's first output.
    """
    token = _OUTPUT.set(pick)
    try:
        yield
    finally:
        _OUTPUT.reset(token)


def is_logits(model: nn.Module, batch) -> bool:
    """Whether the output :func:`model_logits` reads is a classifier's: a ``(batch, classes)`` tensor
    returned as such or as ``.logits``, with no ``output`` callable selecting another tensor.

    A plain 2-D tensor whose rows all have unit length is a normalized
    embedding (sentence encoders return them), not logits.
    """
    if _OUTPUT.get() is not None:
        return False
    with torch.no_grad():
        out = run_model(model, batch)
    if isinstance(out, torch.Tensor):
        return out.ndim == 2 and not torch.allclose(out.float().norm(dim=1), torch.ones(()), atol=1e-3)
    logits = out.get("logits") if isinstance(out, dict) else getattr(out, "logits", None)
    return isinstance(logits, torch.Tensor) and logits.ndim == 2


def model_logits(model: nn.Module, batch) -> torch.Tensor:
    """The output of one batch that conversion compares: ``output(...)`` when selected
    (:func:`selected_output`), else a tensor output, ``.logits``, or the first element."""
    out = run_model(model, batch)
    pick = _OUTPUT.get()
    if pick is not None:
        got = pick(out)
        if not isinstance(got, torch.Tensor):
            raise HardytError(f"convert: output(...) returned {type(got).__name__}, expected the tensor to compare")
        return got
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, dict) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if hasattr(out, "to_tuple") and isinstance(out.to_tuple()[0], torch.Tensor):
        return out.to_tuple()[0]
    raise HardytError(f"model output: expected a tensor, a tuple or an output with .logits, got {type(out).__name__}")


def get_module(root: nn.Module, name: str) -> nn.Module:
    return root.get_submodule(name)


def set_module(root: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule ``name`` (dotted path) of ``root``."""
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


class Stop(Exception):
    """Raised by a hook to end a forward pass once what was needed is captured."""


@contextlib.contextmanager
def hooks(modules, fn):
    handles = [m.register_forward_hook(fn(name)) for name, m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def layer_norm_names(model: nn.Module, batch) -> list[str]:
    """Names of every ``nn.LayerNorm`` in the order a forward pass runs them."""
    lns = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)]
    order: list[str] = []

    def hook(name):
        def f(_m, _i, _o):
            if name not in order:
                order.append(name)
        return f

    with torch.no_grad(), hooks(lns, hook):
        run_model(model, batch)
    # LayerNorms the forward pass never ran are not part of the model's function.
    return order


def token_mask(batch) -> torch.Tensor | None:
    """The tokens that count in a batch: a dict batch's ``attention_mask`` (``(B, T)``, Hugging Face's
    convention) as booleans, else ``None`` (every row counts).

    Padding tokens are computed but never read (attention masks them as keys,
    pooling skips them); in a text batch padded to its longest sentence they are
    often half the rows, with activations unlike any real token's. Fits, clip
    searches, feature terms and per-layer checks read only the tokens that count.
    """
    mask = batch.get("attention_mask") if isinstance(batch, dict) else None
    return mask.bool() if isinstance(mask, torch.Tensor) and mask.ndim == 2 else None


def token_rows(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``(..., C)`` activations as ``(rows, C)``, keeping only the tokens ``mask`` marks when
    ``x`` is ``(B, T, C)`` with the mask's ``(B, T)`` (any other shape: every row).

    >>> x = torch.arange(12.0).reshape(2, 2, 3)
    >>> token_rows(x, torch.tensor([[True, False], [True, True]])).tolist()
    [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0], [9.0, 10.0, 11.0]]
    >>> token_rows(x, None).shape
    torch.Size([4, 3])
    """
    if mask is not None and x.ndim == 3 and x.shape[:2] == mask.shape:
        return x[mask.to(x.device)]
    return x.reshape(-1, x.shape[-1])


def _row_index(n_rows: int, take: int, seed: int) -> torch.Tensor:
    if take >= n_rows:
        return torch.arange(n_rows)
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_rows, generator=g)[:take].sort().values


def capture(model: nn.Module, names: list[str], batches: list, *, rows_per_batch: int | None = None,
            outputs: bool = False, seed: int = 0) -> dict:
    """Inputs (and outputs) of modules ``names`` as ``(rows, C)`` float tensors.

    The same ``seed`` picks the same token rows in every model of the same
    structure, so inputs of one model pair with outputs of another. Padding
    tokens (:func:`token_mask`) are left out. The forward pass stops after
    the last module that ran.
    """
    got = {n: ([], []) for n in names}
    remaining = set()
    state = {"b": 0, "mask": None}

    def hook(name):
        def f(_m, inp, out):
            x = token_rows(inp[0].detach(), state["mask"])
            idx = _row_index(x.shape[0], rows_per_batch or x.shape[0], seed * 7919 + state["b"])
            got[name][0].append(x[idx].float())
            if outputs:
                got[name][1].append(token_rows(out.detach(), state["mask"])[idx].float())
            remaining.discard(name)
            if not remaining:
                raise Stop
        return f

    modules = [(n, model.get_submodule(n)) for n in names]
    with torch.no_grad(), hooks(modules, hook):
        for b, batch in enumerate(batches):
            state["b"], state["mask"] = b, token_mask(batch)
            remaining.update(names)
            try:
                run_model(model, batch)
            except Stop:
                pass
    return {n: (torch.cat(xs), torch.cat(ys) if ys else None) for n, (xs, ys) in got.items()}



def kl_to(teacher_logits: torch.Tensor, logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) of the softmax distributions at ``temperature``, mean over samples."""
    c = logits.shape[-1]
    return F.kl_div(F.log_softmax(logits.float() / temperature, -1).reshape(-1, c),
                    F.log_softmax(teacher_logits.float() / temperature, -1).reshape(-1, c),
                    log_target=True, reduction="batchmean") * temperature ** 2


