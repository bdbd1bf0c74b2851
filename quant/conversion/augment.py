"""Label-free variants of calibration batches (the reconstruction's augmentation).

Not the training augmentation of :mod:`hardyt.quant.zoo.train`: these never
see a label and keep every image's content (translation, flip, blend).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import SpecError

__all__ = ["AUGMENTS", "check_augment", "shift_radius", "augment_batch"]

AUGMENTS = ("flip", "shift", "mixup")


def check_augment(mode) -> str:
    """``mode`` if it is ``""`` or ``+``-joined :data:`AUGMENTS`, else a :class:`SpecError` naming ``augment``.

    >>> check_augment("flip+shift")
    'flip+shift'
    """
    parts = set(mode.split("+")) - {""} if isinstance(mode, str) else {None}
    if not parts <= set(AUGMENTS):
        raise SpecError("augment", f"must be '+'-joined {', '.join(AUGMENTS)} or '', got {mode!r}", source="convert")
    return mode


def shift_radius(h: int, w: int) -> int:
    """Largest translation of the ``shift`` augmentation: 1/14 of the shorter side, at least 1.

    >>> shift_radius(28, 28), shift_radius(224, 224), shift_radius(8, 8)
    (2, 16, 1)
    """
    return max(1, round(min(h, w) / 14))


def augment_batch(batch, mode: str, gen: torch.Generator, part: tuple[int, int, int] | None = None):
    """A label-free variant of an image batch: ``flip`` (horizontal, half the
    samples), ``shift`` (each sample translated by up to :func:`shift_radius`
    pixels each way, edges replicated) and/or ``mixup`` (each sample blended
    with another, weight U(0.5, 1)); ``+``-separated. Non-image batches are
    returned unchanged.

    ``part = (rank, world, total)``: the batch is rows ``rank::world`` of a
    batch of ``total`` samples; flip and shift draw for all ``total`` and
    apply this rank's draws, so the ranks together augment as one process
    would (mixup blends within the rows given)."""
    rank, world, total = part or (0, 1, None)

    def one(x):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim != 4:
            return x
        n = x.shape[0]
        draws = total or n
        if "flip" in mode:
            flip = (torch.rand(draws, generator=gen) < 0.5)[rank::world]
            x = torch.where(flip[:, None, None, None].to(x.device), x.flip(-1), x)
        if "shift" in mode:
            h, w = x.shape[-2:]
            r = shift_radius(h, w)
            padded = F.pad(x, (r, r, r, r), mode="replicate")
            dy, dx = torch.randint(0, 2 * r + 1, (2, draws), generator=gen)[:, rank::world].tolist()
            x = torch.stack([padded[i, :, a:a + h, b:b + w] for i, (a, b) in enumerate(zip(dy, dx))])
        if "mixup" in mode:
            lam = (0.5 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)).to(x.device)
            x = lam * x + (1 - lam) * x[torch.randperm(n, generator=gen).to(x.device)]
        return x
    if isinstance(batch, dict):
        return {k: one(v) for k, v in batch.items()}
    return one(batch)


