"""The referee: every conversion judged against the model the user gave, on samples nothing else saw.

The first samples of the calibration set are held out of every fit, clip
search and step (:func:`~hardyt.quant.conversion.calibration.referee_size`
of them). On them the LayerNorm model (the teacher) and the converted one
are compared:

* the output the user reads (``output=``, else the logits or first output):
  mean per-sample ``cosine`` (a token output's padding tokens left out); for
  a classifier also ``kl`` (teacher to converted, mean over samples) and
  ``top1_agreement``;
* per layer, the cosine of each DyT output to its LayerNorm's output at the
  same place (rows of the last dimension, each model on its own activations,
  so a layer's number includes the drift of the layers before it).

:meth:`Referee.score` is what early stopping and the frozen-vs-adapted
choice minimize: the KL for a classifier, ``1 - cosine`` otherwise. Below
:data:`REFEREE_FLOORS` the report carries a warning naming what to do
(docs/conversion.md, "The referee").
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .calibration import REFEREE_MIN, batch_samples
from .fidelity import output_agreement
from .fixed_dyt import to_float
from ..runtime.graph import hooks, model_logits, token_mask, token_rows

__all__ = ["REFEREE_FLOORS", "Referee", "referee_warnings", "referee_summary", "teacher_section"]

# Below these the converted model has lost the teacher's function (docs/conversion.md, "The referee").
REFEREE_FLOORS = {"cosine": 0.9, "top1_agreement": 0.9}


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.zeros(())).device


def _on(batch, device):
    from .reconstruct import to_device
    return to_device(batch, device)


class Referee:
    """The held-out batches and the teacher's outputs on them (computed once, kept on the CPU).

    Parameters
    ----------
    teacher : nn.Module
        The model the user gave (LayerNorm).
    batches : list
        The held-out batches (never seen by any fit or step).
    classifier : bool
        Whether the output is a classifier's logits (KL and top-1 agreement).
    """

    def __init__(self, teacher: nn.Module, batches: list, classifier: bool):
        self.teacher, self.batches, self.classifier = teacher, batches, classifier
        self.metric = "KL" if classifier else "1 - cosine"  # what score() returns
        self.samples = sum(batch_samples(b) for b in batches)
        self.masks = [token_mask(b) for b in batches]   # a token output is compared on real tokens only
        dev = _device_of(teacher)
        with torch.no_grad():
            self.targets = [model_logits(teacher, _on(b, dev)).detach().cpu() for b in batches]

    def measure(self, model: nn.Module) -> dict:
        """``samples``, ``cosine``, ``kl`` and ``top1_agreement`` (the last two ``None`` if not a classifier)."""
        dev = _device_of(model)
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                outs = [model_logits(model, _on(b, dev)).detach().cpu() for b in self.batches]
        finally:
            model.train(was)
        return output_agreement(zip(self.targets, outs), self.classifier, self.masks)

    def score(self, model: nn.Module) -> float:
        """Lower is better: the KL for a classifier, else ``1 - cosine``."""
        m = self.measure(model)
        return m["kl"] if self.classifier else 1.0 - m["cosine"]

    def layer_cosines(self, model: nn.Module, names: list[str]) -> dict[str, float]:
        """Per layer: mean cosine over rows (padding tokens left out) of ``model``'s layer output to the
        teacher's LayerNorm output."""
        seen = {"t": {}, "s": {}}
        sums = dict.fromkeys(names, 0.0)
        rows = dict.fromkeys(names, 0)

        def keep(kind):
            def make(name):
                def f(_m, _i, out):
                    seen[kind][name] = out.detach()
                return f
            return make

        t_mods = [(n, self.teacher.get_submodule(n)) for n in names]
        s_mods = [(n, model.get_submodule(n)) for n in names]
        dt, ds = _device_of(self.teacher), _device_of(model)
        with torch.no_grad(), hooks(t_mods, keep("t")), hooks(s_mods, keep("s")):
            for b in self.batches:
                model_logits(self.teacher, _on(b, dt))
                model_logits(model, _on(b, ds))
                mask = token_mask(b)
                for n in names:
                    t, s = (token_rows(seen[k][n], mask).double().cpu() for k in ("t", "s"))
                    cos = F.cosine_similarity(t, s, dim=1, eps=1e-30)
                    sums[n] += float(cos.sum())
                    rows[n] += len(cos)
        return {n: sums[n] / max(rows[n], 1) for n in names}


def referee_warnings(section: dict) -> list[str]:
    """Warnings for ``report["teacher"]``: a referee too small, or the converted model below a floor."""
    out = []
    n = section["samples"]
    if n < REFEREE_MIN:
        out.append(f"held-out check: only {n} calibration samples held out as the referee (fewer than "
                   f"{REFEREE_MIN}): its numbers are noisy; give more calibration data")
    checked = section["fixed"] or section["float"]
    if checked is None:
        return out
    layers = sorted(section["layers"], key=lambda r: r["cosine"])[:3]
    worst = ", ".join(f"{r['name']} ({r['cosine']:.3f})" for r in layers)
    for key, floor in section["floors"].items():
        value = checked.get(key)
        if value is not None and value < floor:
            out.append(f"held-out check: the converted model's output {key} with the LayerNorm model is "
                       f"{value:.4f} on {n} held-out samples, below the {floor:g} floor: it has lost the model's "
                       f"function. Freeze the other weights (freeze_weights=True, --freeze-weights), keep the "
                       f"LayerNorms it matches worst as LayerNorm (keep=[...], --max-drop; lowest per-layer "
                       f"cosine: {worst}), or give more calibration data")
    return out


def referee_summary(report: dict) -> str:
    """``report["teacher"]`` in one line or two, as ``hardyt convert`` prints it."""
    t = report.get("teacher")
    if not t or t["float"] is None:
        return "vs LayerNorm model: no held-out samples (calibration set too small)"

    def one(m):
        extra = "" if m["kl"] is None else f", KL {m['kl']:.4f}, top-1 agreement {100 * m['top1_agreement']:.2f} %"
        return f"cosine {m['cosine']:.4f}{extra}"

    line = f"vs LayerNorm model ({t['samples']} held-out calibration samples): float DyT {one(t['float'])}"
    if t["fixed"]:
        line += f"; fixed {one(t['fixed'])}"
    worst = min(t["layers"], key=lambda r: r["cosine"], default=None)
    if worst:
        line += f"; lowest layer cosine {worst['cosine']:.4f} ({worst['name']})"
    if t.get("weights"):
        line += f"\nweights: {t['weights']['kept']} kept — {t['weights']['reason']}"
    if t.get("stopped"):
        line += f"\nreconstruction: {t['stopped']}"
    return line


def teacher_section(referee, student, fixed: bool, names: list[str], data, objective: str) -> dict:
    """``report["teacher"]``: the converted model (float DyT and, if built, fixed point) against the
    LayerNorm model on the referee's held-out samples."""
    section = {"samples": data.holdout_samples, "share": data.holdout_samples / max(data.samples, 1),
               "calib_samples_used": data.samples - data.holdout_samples, "objective": objective,
               "classifier": objective == "kl", "floors": dict(REFEREE_FLOORS), "float": None, "fixed": None,
               "layers": []}
    if referee is None:
        return section
    float_model = to_float(student) if fixed else student
    section["float"] = referee.measure(float_model)
    cos_float = referee.layer_cosines(float_model, names) if names else {}
    cos = cos_float
    if fixed:
        section["fixed"] = referee.measure(student)
        cos = referee.layer_cosines(student, names) if names else {}
    section["layers"] = [{"name": n, "cosine": cos[n], "cosine_float": cos_float[n]} for n in names]
    return section
