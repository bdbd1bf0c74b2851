"""torch.distributed for the calibration: who am I, my rows of a batch, summed gradients.

Data parallel, as DDP: every rank holds the whole model and runs the same
optimizer steps; each step's calibration batch is split by rows (rank ``r``
takes rows ``r, r + world, ...``) and the gradients are summed over ranks
weighted by each rank's row count, so the step equals the single-process
step on the whole batch up to float rounding. Works in any process group
the caller initialized (gloo on CPU, nccl on GPU); :func:`init_from_env`
starts one under ``torchrun``.

Faults: every collective waits at most :func:`dist_timeout` seconds for the
other ranks (``$HARDYT_DIST_TIMEOUT``, default 300). A rank that dies makes
the collectives of the others fail (its connections close, or the timeout
passes); each survivor then stops with one :class:`HardytError` naming the
rank(s) that no longer answer (:func:`lost_ranks`, through the process
group's store), before anything is written. Under ``torchrun`` the agent
also sees the death and sends ``SIGTERM`` to the other ranks (then
``SIGKILL`` after 30 s): :func:`init_from_env` turns that ``SIGTERM`` into
the same one-line error.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from datetime import timedelta

import torch
import torch.distributed as dist

from ..contract.check import env_seconds
from ..errors import HardytError

__all__ = ["rank_world", "is_main", "init_from_env", "pick_device", "shard_rows", "all_sum", "sum_gradients",
           "dist_timeout", "lost_ranks", "DIST_TIMEOUT"]

#: Seconds a collective waits for the other ranks before the group is taken for broken.
DIST_TIMEOUT = 300.0
#: Seconds the survivors of a failed collective wait for each other before naming who is lost.
_ROLL_CALL = 3.0


def dist_timeout() -> float:
    """The collectives' timeout in seconds: ``$HARDYT_DIST_TIMEOUT``, else :data:`DIST_TIMEOUT`."""
    return env_seconds("HARDYT_DIST_TIMEOUT", DIST_TIMEOUT)


def lost_ranks(wait: float = _ROLL_CALL) -> list[int] | None:
    """After a failed collective: the ranks that did not also report the failure within ``wait`` seconds
    (each survivor reports itself in the process group's store); ``None`` if the store is unreachable."""
    rank, world = rank_world()
    found: list = []

    def roll_call():
        store = dist.distributed_c10d._get_default_store()
        store.set(f"hardyt/stopped/{rank}", "1")
        deadline = time.monotonic() + wait
        while True:
            missing = [r for r in range(world) if not store.check([f"hardyt/stopped/{r}"])]
            if not missing or time.monotonic() > deadline:
                found.append(missing)
                return
            time.sleep(0.1)

    # The store's own timeout is the group's: a store that went down with its rank would block for minutes.
    t = threading.Thread(target=roll_call, daemon=True)
    t.start()
    t.join(wait + 2.0)
    return found[0] if found else None


def _loss(rank: int, world: int, what: str) -> HardytError:
    lost = lost_ranks()
    who = ("rank " if len(lost) == 1 else "ranks ") + ", ".join(map(str, lost)) if lost else None
    say = f"lost {who} (no answer within {_ROLL_CALL:g} s)" if who else \
        ("no rank lost: the whole group was stopped" if lost == [] else "lost a rank (the group's store is gone with it)")
    return HardytError(f"rank {rank} of {world}: {what}; {say}; stopped, nothing written")


def _collective(fn, what: str):
    """Run collective ``fn``; a broken group (a rank died, or the timeout passed) is one HardytError."""
    try:
        return fn()
    except RuntimeError as e:  # gloo: connection closed or timed out; nccl: DistBackendError
        rank, world = rank_world()
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise _loss(rank, world, f"{what} failed ({first})") from None


def _on_sigterm(signum, frame):
    rank, world = rank_world()
    raise _loss(rank, world, "stopped by SIGTERM (torchrun tears the group down when a rank fails)")


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
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=timedelta(seconds=dist_timeout()))
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_sigterm)
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
    _collective(lambda: dist.all_reduce(t), "all_reduce of a sum")
    return t.tolist()


def sum_gradients(params: list[torch.Tensor]) -> None:
    """Sum the gradients of ``params`` over the ranks, in one flat buffer (no-op without a group)."""
    if rank_world()[1] == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    _collective(lambda: dist.all_reduce(flat), "all_reduce of the gradients")
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n
