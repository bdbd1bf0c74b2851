"""A default that does no harm: the weights adapt only if that beats the frozen-weight conversion.

The reconstruction runs in phases, each keeping the best state on the
referee (held-out samples, :mod:`.referee`):

1. **frozen**: DyT's parameters only (every other weight as trained) —
   exactly the conversion ``freeze_weights=True`` returns (same steps, same
   seed; :func:`~hardyt.quant.conversion.schedule.plan_steps`);
2. **adapted**: from there, every weight adapts too (``adapt``), and stops
   when ``opts.patience`` checks in a row (default :data:`PATIENCE`; 0: it
   runs all its steps), and at least a quarter of the phase's steps
   (:func:`adapt_patience`), score worse than its start on the held-out check.
   Its starting point is the frozen result and its best state on the
   referee is kept: if that state beats the frozen result on the held-out
   check, it is returned;
3. **frozen, continued**: otherwise (and with ``freeze_weights``, in place
   of phase 2) the frozen result gets the rest of the plan's steps, DyT's
   parameters only — so the fallback is exactly the ``freeze_weights=True``
   conversion with the same options, and not a quarter of it.

The record (``report["teacher"]["weights"]``) says which was kept and why.
"""
from __future__ import annotations

import math
from dataclasses import replace

from .options import ConvertOptions
from .reconstruct import reconstruct
from .schedule import Plan, compute_seconds

__all__ = ["PATIENCE", "PATIENCE_SHARE", "adapt_patience", "guarded_reconstruct", "phase_record", "stop_reason"]

PATIENCE = ConvertOptions.patience  # the default: checks in a row worse than the start that stop the adapted phase
#: The share of the adapted phase's steps it runs, worse than its start, before it may stop: its rate is
#: highest at the start of the cosine schedule, and the held-out check may fall for a while before it rises
#: — the longer the phase, the longer (the whole training set's 2074-step phase was stopped at step 200).
PATIENCE_SHARE = 0.25


def adapt_patience(patience: int, steps: int, eval_every: int) -> int:
    """The checks in a row worse than its start that stop an adapted phase of ``steps`` steps: ``patience``,
    and no fewer than :data:`PATIENCE_SHARE` of the phase; 0 (never) stays 0.

    >>> adapt_patience(4, 900, 50), adapt_patience(4, 2074, 50), adapt_patience(4, 30, 5), adapt_patience(0, 900, 50)
    (5, 11, 4, 0)
    """
    return patience and max(patience, math.ceil(PATIENCE_SHARE * steps / eval_every))


def phase_record(name: str, out: dict) -> dict:
    held = out["held_out"] or {}
    return {"phase": name, "steps": out["steps_run"], "stopped": out["stopped"], "best_step": held.get("best_step"),
            "start_score": held.get("start"), "best_score": held.get("best"), "history": held.get("kl", [])}


def guarded_reconstruct(student, dyts: dict, data, teacher, opts, plan: Plan, *, weights: dict, referee,
                        objective: str, **kw) -> dict:
    """The phases above; returns ``{"losses", "held_out", "phases", "choice"}`` (the choice record for the report).

    ``kw`` goes to :func:`~hardyt.quant.conversion.reconstruct.reconstruct`
    (``feature_scale``, ``quant``, ``device``, ``progress``).
    """
    t0 = compute_seconds()
    frozen_opts = replace(opts, feature_weight=plan.frozen_feature_weight)
    out = reconstruct(student, dyts, data, teacher, replace(frozen_opts, steps=plan.frozen_steps), weights={},
                      referee=referee, objective=objective, budget=plan.remaining(0.0, plan.frozen_share), **kw)
    phases = [phase_record("frozen", out)]
    losses, held = list(out["losses"]), out["held_out"]
    frozen_spent = compute_seconds() - t0
    choice = {"kept": "frozen", "reason": "weights frozen (freeze_weights or nothing to adapt)"}
    if plan.adapt_steps and weights:
        adapted = reconstruct(student, dyts, data, teacher, replace(opts, steps=plan.adapt_steps), weights=weights,
                              referee=referee, objective=objective,
                              patience=adapt_patience(opts.patience, plan.adapt_steps, opts.eval_every),
                              budget=plan.remaining(compute_seconds() - t0), **kw)
        phases.append(phase_record("adapted", adapted))
        losses += adapted["losses"]
        kept = _adapted_choice(adapted, phases[-1]["history"], referee)
        if kept["kept"] == "adapted":
            return {"losses": losses, "held_out": adapted["held_out"], "phases": phases, "choice": kept}
        choice = kept  # reconstruct restored the best state: the frozen one, the weights included
    if plan.adapt_steps:  # the frozen conversion has the rest of the plan (freeze_weights=True runs the same)
        if weights and kw.get("progress") is not None:
            kw["progress"].total += plan.adapt_steps  # steps the plan's count did not hold
        # The budget the frozen-weight conversion would have: the rejected adapted phase's time is not
        # taken from it, so that the fallback equals --freeze-weights when the budget binds too.
        rest = reconstruct(student, dyts, data, teacher, replace(frozen_opts, steps=plan.adapt_steps), weights={},
                           referee=referee, objective=objective, budget=plan.remaining(frozen_spent), **kw)
        phases.append(phase_record("frozen, continued", rest))
        losses += rest["losses"]
        held = rest["held_out"] or held
    return {"losses": losses, "held_out": held, "phases": phases, "choice": choice}


def _adapted_choice(adapted: dict, hist: list, referee) -> dict:
    """Whether the adapted phase's best state beat its step 0 (the frozen result), and why, for the report."""
    held = adapted["held_out"]
    if held is None or held["best_step"] > 0:
        why = ("no held-out samples to check it against" if held is None else
               f"it beat the frozen-weight conversion on the held-out check ({referee.metric} "
               f"{held['best']:.4g} vs {held['start']:.4g})")
        return {"kept": "adapted", "reason": why}
    why = (f"adapting the weights never beat the frozen-weight conversion on the held-out check (best adapted "
           f"{referee.metric} {min(s for _, s in hist[1:]):.4g} vs frozen {hist[0][1]:.4g}; stopped by "
           f"{adapted['stopped']})" if len(hist) > 1 else "adapting the weights had no step to run")
    return {"kept": "frozen", "reason": why}


def stop_reason(phases: list[dict]) -> str | None:
    """Why the reconstruction stopped, in a few words (each phase's reason, its steps and its best step)."""
    if not phases:
        return None
    return "; ".join(f"{p['phase']}: {p['steps']} steps, stopped by {p['stopped']}, best state at step "
                     f"{p['best_step']}" for p in phases)
