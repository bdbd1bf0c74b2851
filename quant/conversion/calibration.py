"""The calibration set as :func:`convert` reads it: streamed, re-iterable, split over ranks.

A calibration set of any size never sits in memory: only bounded prefixes
do. The first samples are the **referee** (:func:`referee_size` of them,
held out of everything: no fit, clip search or step ever sees them; the
converted model is judged on them against the model given); the next
``fit_samples`` serve the closed-form fits and the clip search; the
reconstruction streams over every sample past the referee, pass after pass. The source is
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

__all__ = ["Calibration", "batch_tensors", "batch_samples", "referee_size", "REFEREE_SHARE", "REFEREE_MIN",
           "REFEREE_MAX"]

REFEREE_SHARE = 1 / 8   # of the calibration set, held out as the referee (docs/conversion.md, "The referee")
REFEREE_MIN = 64        # at least this many held-out samples ...
REFEREE_MAX = 1024      # ... and at most this many (each check runs the model over all of them)


def referee_size(samples: int, requested: int = 0) -> int:
    """Samples held out as the referee from a calibration set of ``samples``.

    ``requested`` > 0 is taken as it is; else :data:`REFEREE_SHARE` of the
    set, at least :data:`REFEREE_MIN` and at most :data:`REFEREE_MAX`, and
    never more than half the set (the rest calibrates).

    >>> referee_size(1024), referee_size(60000), referee_size(200), referee_size(24), referee_size(1024, 300)
    (128, 1024, 64, 12, 300)
    """
    if requested:
        return requested
    return min(max(REFEREE_MIN, round(samples * REFEREE_SHARE)), REFEREE_MAX, samples // 2)


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


def _rows(batch, start: int, stop: int | None = None):
    """Rows ``start:stop`` of every tensor of a batch (a tensor, a dict, a tuple or list)."""
    if isinstance(batch, torch.Tensor):
        return batch[start:stop] if batch.ndim else batch
    if isinstance(batch, dict):
        return {k: _rows(v, start, stop) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(_rows(v, start, stop) for v in batch)
    return batch


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
        Samples held out as the referee (:attr:`holdout`, at batch
        granularity); 0: :func:`referee_size` of the set.
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
        self.skip, self.split = 0, 0  # referee: whole leading batches, or the first rows of the only batch
        self.samples, self.batches = self.count()
        if not self.samples:
            raise HardytError("calibration set is empty: no samples to calibrate on")
        want = referee_size(self.samples, holdout)
        self.holdout = self._prefix(want) if want else []
        if self.batches > len(self.holdout):
            self.skip = len(self.holdout)
        elif not holdout and self.samples > want:  # one batch holds them all: its first rows are the referee
            self.split = want
            self.holdout = [_rows(self.holdout[0], 0, want)]
        else:
            raise HardytError(f"calibration set: nothing left to reconstruct on after holding out {want} samples")
        self.fit = self._fit_prefix(fit_samples)
        _check_not_constant(self.fit)

    def _prefix(self, n: int) -> list:
        out, total = [], 0
        for b in self._batches(self.source, 0):
            if total >= n:
                break
            out.append(b)
            total += batch_samples(b)
        return out

    def _fit_prefix(self, n: int) -> list:
        out, total = [], 0
        for b in self._rest(self.source):
            out.append(b)
            total += batch_samples(b)
            if total >= n:
                break
        return out

    @staticmethod
    def _batches(source, skip: int):
        return itertools.islice((b for b in source if not _empty(b)), skip, None)

    def _rest(self, source):
        """The batches past the referee (the first one trimmed when the referee split it)."""
        for i, b in enumerate(self._batches(source, self.skip)):
            yield _rows(b, self.split) if i == 0 and self.split else b

    def _sharded_source(self):
        src = self.source
        if self.world > 1 and isinstance(src, DataLoader) and src.batch_sampler is not None:
            return DataLoader(src.dataset, batch_sampler=_RowShard(src.batch_sampler, self.rank, self.world),
                              num_workers=src.num_workers, collate_fn=src.collate_fn, pin_memory=src.pin_memory)
        return None

    def shards(self):
        """One pass over this rank's rows of every batch past the hold-out."""
        pre = self._sharded_source() if not self.split else None
        if pre is not None:
            yield from self._batches(pre, self.skip)
            return
        for b in self._rest(self.source):
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
