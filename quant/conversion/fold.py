"""Fold a DyT layer's gamma/beta into the Linear layers it feeds.

``W @ (gamma * t + beta) + b == (W * gamma) @ t + (W @ beta + b)``: when
every consumer of a DyT output is a Linear (possibly through a linear
selection such as the class-token slice), the hardware only computes the
tanh. Consumers are found by watching a forward pass (a Linear whose input
shares storage with the layer's output); each fold is then checked on a
calibration batch and undone if it changed the logits, which is what
happens when the output also feeds a residual sum (post-LN models).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..runtime.graph import model_logits, run_model, set_module
from .modules import DyT

__all__ = ["find_consumers", "fold_into", "fold_all"]


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def find_consumers(model: nn.Module, names: list[str], batch) -> dict[str, list[str]]:
    """For each module in ``names``, the Linear layers whose input is (a view of) its output."""
    # Outputs are held until the pass ends so that no later tensor reuses their memory.
    produced: dict[int, tuple[str, torch.Tensor]] = {}
    found: dict[str, list[str]] = {n: [] for n in names}
    handles = []

    def out_hook(name):
        def f(_m, _i, out):
            produced[_storage(out)] = (name, out)
        return f

    def in_hook(lin_name):
        def f(_m, inp):
            x = inp[0]
            hit = produced.get(_storage(x))
            if hit and x.shape[-1] == hit[1].shape[-1] and lin_name not in found[hit[0]]:
                found[hit[0]].append(lin_name)
        return f

    for name in names:
        handles.append(model.get_submodule(name).register_forward_hook(out_hook(name)))
    for lin_name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            handles.append(m.register_forward_pre_hook(in_hook(lin_name)))
    try:
        with torch.no_grad():
            run_model(model, batch)
    finally:
        for h in handles:
            h.remove()
    return found


def fold_into(model: nn.Module, name: str, consumers: list[str]) -> None:
    """Fold DyT ``name``'s gamma/beta into ``consumers`` (in place) and drop its affine."""
    dyt = model.get_submodule(name)
    gamma, beta = dyt.weight.detach().double(), dyt.bias.detach().double()
    with torch.no_grad():
        for lin_name in consumers:
            lin = model.get_submodule(lin_name)
            w = lin.weight.double()
            bias = w @ beta + (lin.bias.double() if lin.bias is not None else 0.0)
            lin.weight.copy_((w * gamma).to(lin.weight.dtype))
            if lin.bias is None:
                lin.bias = nn.Parameter(bias.to(lin.weight.dtype), requires_grad=lin.weight.requires_grad)
            else:
                lin.bias.copy_(bias.to(lin.bias.dtype))
        dyt.register_parameter("weight", None)
        dyt.register_parameter("bias", None)


def _relative_change(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))


def fold_all(model: nn.Module, names: list[str], batch, *, tol: float = 1e-4) -> dict[str, dict]:
    """Fold every foldable DyT in ``names``; return ``{name: {"into": [...], "change": rel}}``.

    A fold is kept when the logits of ``batch`` change by less than ``tol``
    relative to their largest magnitude; otherwise it is undone and the layer
    keeps a per-channel affine (``into`` is empty).
    """
    consumers = find_consumers(model, names, batch)
    with torch.no_grad():
        reference = model_logits(model, batch)
    result = {}
    for name in names:
        into = consumers[name]
        dyt = model.get_submodule(name)
        if not into or not isinstance(dyt, DyT) or dyt.weight is None:
            result[name] = {"into": [], "change": 0.0}
            continue
        saved = {n: copy.deepcopy(model.get_submodule(n)) for n in [name, *into]}
        fold_into(model, name, into)
        with torch.no_grad():
            change = _relative_change(reference, model_logits(model, batch))
        if change < tol:
            result[name] = {"into": into, "change": change}
        else:
            for n, m in saved.items():
                set_module(model, n, m)
            result[name] = {"into": [], "change": change}
    return result
