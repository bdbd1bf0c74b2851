"""How many reconstruction steps, split how, within what time: more data buys more steps.

By default (``steps=None``) the reconstruction plans ``max(STEPS_MIN,
PASSES x batches)`` steps — 1200 on a 1024-image set, about three passes
over a large one — within ``time_budget`` seconds of compute (default :data:`TIME_BUDGET`;
:func:`compute_seconds`): the steps shrink to fit the budget as it is measured,
and the adapted phase stops early when the held-out check stops improving
(:mod:`.guard`). ``steps=N`` runs N steps with no time budget unless one is
given. A share of the steps and of the budget (:data:`FROZEN_SHARE`) goes to
the frozen phase, the rest to the second phase (:mod:`.guard`): the adapted
weights', or, with frozen weights or adapted ones not kept, the frozen
conversion's continued — so ``freeze_weights=True`` runs the same steps, in
the same two phases, as the default's fallback.

>>> plan_steps(steps=None, time_budget=None, adapt=True, train_samples=896, batch=64).total
1200
>>> p = plan_steps(steps=None, time_budget=None, adapt=True, train_samples=59000, batch=64)
>>> (p.frozen_steps, p.adapt_steps, p.seconds)
(692, 2074, 480.0)
>>> p = plan_steps(steps=40, time_budget=None, adapt=False, train_samples=896, batch=64)
>>> (p.frozen_steps, p.adapt_steps)
(10, 30)
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

__all__ = ["STEPS_MIN", "PASSES", "TIME_BUDGET", "FROZEN_SHARE", "Plan", "plan_steps", "compute_seconds"]

STEPS_MIN = 1200      # steps at least: a small calibration set is revisited, augmented afresh each time
#                       (600 → 1200 chosen on validation: docs/conversion.md, "How the default was chosen")
PASSES = 3            # passes over a large calibration set
TIME_BUDGET = 480.0   # seconds of reconstruction by default (the whole conversion stays within 10 minutes)
FROZEN_SHARE = 0.25   # of the steps, DyT's parameters only, before the weights adapt
FROZEN_FEATURE_WEIGHT = 1.0  # the frozen phase's feature weight (measured best with frozen weights)


def compute_seconds() -> float:
    """Seconds of compute so far: this process's CPU time over torch's thread count.

    The budget is counted in these, not in wall time, so that the steps a
    conversion runs do not depend on what else the machine is doing: on an
    idle machine they are wall seconds; on a loaded one the wall time is longer.
    """
    import torch
    return time.process_time() / max(1, torch.get_num_threads())


@dataclass(frozen=True)
class Plan:
    """The reconstruction's steps per phase and its time budget (``seconds``; None: none)."""

    frozen_steps: int
    adapt_steps: int   # the second phase: the weights adapt, or (frozen, or not kept) the frozen phase continues
    seconds: float | None
    why: str
    frozen_feature_weight: float = FROZEN_FEATURE_WEIGHT
    frozen_share: float = 1.0  # of the budget, for the frozen phase

    @property
    def total(self) -> int:
        return self.frozen_steps + self.adapt_steps

    def remaining(self, spent: float, share: float = 1.0) -> float | None:
        """The budget left after ``spent`` seconds, times ``share`` (None without a budget)."""
        return None if self.seconds is None else max(0.0, self.seconds - spent) * share

    def as_report(self) -> dict:
        return {"frozen_steps": self.frozen_steps, "adapt_steps": self.adapt_steps, "time_budget": self.seconds,
                "why": self.why}


def plan_steps(*, steps: int | None, time_budget: float | None, adapt: bool, train_samples: int,
               batch: int, frozen_feature_weight: float = FROZEN_FEATURE_WEIGHT) -> Plan:
    """The plan for ``steps`` (None: follow the data); ``adapt`` (whether weights adapt) only names the second phase."""
    if steps is None:
        batches = math.ceil(train_samples / max(batch, 1))
        total = max(STEPS_MIN, PASSES * batches)
        seconds = TIME_BUDGET if time_budget is None else time_budget
        why = f"max({STEPS_MIN}, {PASSES} passes over {train_samples} samples in batches of {batch}) within {seconds:g} s"
    else:
        total, seconds = steps, time_budget
        why = f"steps={steps}" + ("" if seconds is None else f" within {seconds:g} s")
    why += f"; {FROZEN_SHARE:.0%} frozen, then " + ("the weights adapt" if adapt else "more frozen steps")
    frozen = total - round(total * (1 - FROZEN_SHARE))
    return Plan(frozen, total - frozen, seconds, why, frozen_feature_weight, FROZEN_SHARE)
