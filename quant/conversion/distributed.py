"""torch.distributed for the calibration: who am I, my rows of a batch, summed gradients.

Data parallel, as DDP: every rank holds the whole model and runs the same
optimizer steps; each step's calibration batch is split by rows (rank ``r``
takes rows ``r, r + world, ...``) and the gradients are summed over ranks
weighted by each rank's row count, so the step equals the single-process
step on the whole batch up to float rounding. Works in any process group
the caller initialized (gloo on CPU, nccl on GPU); :func:`init_from_env`
starts one under ``torchrun``.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

from ..errors import HardytError

__all__ = ["rank_world", "is_main", "init_from_env", "pick_device", "shard_rows", "all_sum", "sum_gradients"]


def rank_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialized default process group, else ``(0, 1)``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process writes the outputs (rank 0, or no process group)."""
    return rank_world()[0] == 0


def pick_device(device: str | None) -> torch.device:
    """``device`` checked (``cpu``, ``cuda``, ``cuda:N``); ``None``: CUDA when present, else CPU.

    >>> pick_device("cpu")
    device(type='cpu')
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise HardytError(f"device must be cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise HardytError(f"device must be cpu, cuda or cuda:N, got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HardytError(f"device {device!r}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise HardytError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return dev


def init_from_env(device: str | None) -> torch.device:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1), join the process group; return this rank's device.

    nccl for CUDA (rank ``LOCAL_RANK``'s GPU), gloo on CPU. Without
    ``torchrun``, or if the group is already initialized, only picks the device.
    """
    dev = pick_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev


def shard_rows(batch, rank: int, world: int):
    """Rows ``rank::world`` of every tensor of a batch (a tensor, a dict, a tuple or list).

    >>> shard_rows(torch.arange(5), 1, 2)
    tensor([1, 3])
    """
    if world == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        return batch[rank::world] if batch.ndim else batch
    if isinstance(batch, dict):
        return {k: shard_rows(v, rank, world) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_rows(v, rank, world) for v in batch)
    return batch


def all_sum(values: list[float], device=None) -> list[float]:
    """Element-wise sum of ``values`` over the ranks (the values themselves without a group)."""
    if rank_world()[1] == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def sum_gradients(params: list[torch.Tensor]) -> None:
    """Sum the gradients of ``params`` over the ranks, in one flat buffer (no-op without a group)."""
    if rank_world()[1] == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n
