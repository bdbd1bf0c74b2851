"""The calibration set as :func:`convert` reads it: streamed, re-iterable, split over ranks.

A calibration set of any size never sits in memory: only a bounded prefix
does (the closed-form fits and the clip search use the first
``fit_samples``; early stopping holds out the first ``holdout``), and the
reconstruction streams over the rest, pass after pass. The source is
anything iterable more than once (a list of batches, a torch ``DataLoader``,
a dataset object); a one-shot iterator or generator is read into a list
first, since it cannot be read twice. Under torch.distributed each rank
computes on its rows of every batch; a ``DataLoader`` with a batch sampler
is re-made per rank so that each rank also *reads* only its rows.
"""
from __future__ import annotations

import itertools

import torch
from torch.utils.data import DataLoader

from ..errors import HardytError
from .distributed import shard_rows

__all__ = ["Calibration", "batch_tensors", "batch_samples"]


def batch_tensors(batch) -> list[torch.Tensor]:
    """The tensors of a batch (a tensor, the values of a dict, the items of a tuple or list)."""
    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, dict):
        return [v for v in batch.values() if isinstance(v, torch.Tensor)]
    if isinstance(batch, (tuple, list)):
        return [v for v in batch if isinstance(v, torch.Tensor)]
    return []


def batch_samples(batch) -> int:
    """Samples in a batch: the first tensor's leading dimension (1 for a scalar)."""
    ts = batch_tensors(batch)
    return ts[0].shape[0] if ts and ts[0].ndim else 1


def _empty(batch) -> bool:
    return all(t.shape[:1] == (0,) for t in batch_tensors(batch))


class _RowShard:
    """A batch sampler yielding rows ``rank::world`` of each of another's batches."""

    def __init__(self, sampler, rank: int, world: int):
        self.sampler, self.rank, self.world = sampler, rank, world

    def __iter__(self):
        for idx in self.sampler:
            yield list(idx)[self.rank::self.world]

    def __len__(self):
        return len(self.sampler)


class Calibration:
    """A calibration source: the bounded prefixes, and the rank's rows of every other batch.

    Parameters
    ----------
    calib : iterable of batches, or a tensor (split into batches of 64)
    fit_samples : int
        The first batches up to this many samples are kept in memory for
        the closed-form fits and the clip search (the same on every rank).
    holdout : int
        The first batches up to this many samples are held out of the
        reconstruction (early stopping); 0: none.
    rank, world : int
        This process's rank and the number of processes.
    """

    def __init__(self, calib, *, fit_samples: int, holdout: int = 0, rank: int = 0, world: int = 1):
        if isinstance(calib, torch.Tensor):
            calib = list(calib.split(64)) if calib.ndim else [calib]
        try:
            it = iter(calib)
        except TypeError:
            raise HardytError(f"calibration data: expected an iterable of batches, got {type(calib).__name__}") \
                from None
        self.source = list(it) if it is calib else calib
        self.rank, self.world = rank, world
        self.holdout = self._prefix(holdout) if holdout else []
        self.skip = len(self.holdout)
        self.fit = self._prefix(fit_samples)
        if not self.fit:
            raise HardytError("calibration set is empty: no samples to calibrate on")
        if self.holdout and next(self._batches(self.source, self.skip), None) is None:
            raise HardytError(f"calibration set: nothing left to reconstruct on after holding out {holdout} samples")
        _check_not_constant(self.fit)

    def _prefix(self, n: int) -> list:
        out, total = [], 0
        for b in self._batches(self.source, 0):
            out.append(b)
            total += batch_samples(b)
            if total >= n:
                break
        return out

    @staticmethod
    def _batches(source, skip: int):
        return itertools.islice((b for b in source if not _empty(b)), skip, None)

    def _sharded_source(self):
        src = self.source
        if self.world > 1 and isinstance(src, DataLoader) and src.batch_sampler is not None:
            return DataLoader(src.dataset, batch_sampler=_RowShard(src.batch_sampler, self.rank, self.world),
                              num_workers=src.num_workers, collate_fn=src.collate_fn, pin_memory=src.pin_memory)
        return None

    def shards(self):
        """One pass over this rank's rows of every batch past the hold-out."""
        pre = self._sharded_source()
        if pre is not None:
            yield from self._batches(pre, self.skip)
            return
        for b in self._batches(self.source, self.skip):
            yield shard_rows(b, self.rank, self.world)

    @property
    def holdout_samples(self) -> int:
        return sum(batch_samples(b) for b in self.holdout)

    def count(self) -> tuple[int, int]:
        """Samples and batches of the whole set (one pass reading it, no model computation)."""
        samples = batches = 0
        for b in self._batches(self.source, 0):
            samples, batches = samples + batch_samples(b), batches + 1
        return samples, batches

    def cycle(self):
        """This rank's rows of the training batches, pass after pass, endlessly."""
        while True:
            empty = True
            for b in self.shards():
                empty = False
                yield b
            if empty:
                raise HardytError("calibration set: no batches left to reconstruct on")


def _check_not_constant(batches: list) -> None:
    """Constant data gives every LayerNorm the same input: nothing to fit alpha on."""
    ranges = {}
    for b in batches:
        for i, t in enumerate(batch_tensors(b)):
            if not t.numel():
                continue
            lo, hi = float(t.min()), float(t.max())
            a, z = ranges.get(i, (lo, hi))
            ranges[i] = (min(a, lo), max(z, hi))
    if ranges and all(lo == hi for lo, hi in ranges.values()):
        raise HardytError(f"calibration set is constant (every value is {next(iter(ranges.values()))[0]:g}): "
                          "alpha cannot be calibrated on it")
