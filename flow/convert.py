"""The convert step: a loaded model → a converted directory (LayerNorm → calibrated fixed-point DyT)."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .convert_record import ConvertReport
from .converted import RECORD_IMAGES, ConvertedDir, write_converted
from .model_source import LoadedModel, accuracy_check, describe, evaluate, load_model_source
from .options import ConvertConfig

__all__ = ["ConvertResult", "convert_model", "validation_split"]


@dataclass
class ConvertResult:
    """What the convert step wrote: the directory and its report (None on a torchrun rank other than 0)."""

    directory: ConvertedDir
    report: ConvertReport

    def summary(self) -> str:
        """The lines ``hardyt convert`` prints: accuracy of the three models, then fixed vs float."""
        from .convert_report import fidelity_summary, teacher_summary
        r, acc = self.report, self.report.accuracy
        return (f"LayerNorm {100 * acc['ln_float']:.2f} %  DyT float {100 * acc['dyt_float']:.2f} %  "
                f"DyT fixed {100 * acc['dyt_fixed']:.2f} %  ({len(r.layers)} DyT layers, {r.folded} folded, "
                f"{len(r.kept_layernorms)} LayerNorm kept, {r.total_seconds:.0f} s) -> {self.directory.path}\n"
                + teacher_summary(r) + "\n" + fidelity_summary(r, warnings=True))


def convert_model(config: ConvertConfig, loaded: LoadedModel | None = None, log=None) -> ConvertResult | None:
    """Convert ``loaded`` (default: load ``config.source``), evaluate LayerNorm / DyT float / DyT fixed on the
    test split and write ``config.out``. ``log`` (a callable) gets the preprocessing line before the
    calibration starts; warnings go to stderr as they arise; under torchrun only rank 0 evaluates and
    writes (the others return None)."""
    from hardyt.quant.conversion.distributed import init_from_env, is_main
    from hardyt.quant.conversion.fixed_dyt import to_float
    from hardyt.quant.conversion.partial import partial_convert
    from hardyt.quant.conversion.pipeline import convert

    options = config.library_options()
    options["device"] = str(init_from_env(config.device))  # joins the process group under torchrun
    t0 = time.perf_counter()
    loaded = loaded or load_model_source(config.source)
    if log:
        log(f"preprocessing: {describe(loaded.preprocess)}")
    batches = loaded.calibration()
    test, test_idx = loaded.test()
    val, test_idx = validation_split(config, loaded, test, test_idx)
    if config.max_drop is not None:
        converted, lib_report = partial_convert(loaded.model, batches, *(val[:2] if val else (None, None)),
                                                max_drop=config.max_drop, fixed_point=config.formats(), **options)
    else:
        converted, lib_report = convert(loaded.model, batches, fixed_point=config.formats(), **options)
    t_convert = time.perf_counter() - t0
    if not is_main():
        return None
    float_model = to_float(converted)
    acc = evaluate({"ln_float": loaded.model, "dyt_float": float_model, "dyt_fixed": converted}, test, test_idx)
    check, warning = accuracy_check(acc["ln_float"], loaded.expected, len(test_idx))
    if warning:
        print(f"hardyt convert: warning: {warning}", file=sys.stderr, flush=True)
    src = config.source
    report = ConvertReport.from_dict(
        {"command": config.command, "checkpoint": str(src.checkpoint or "bundled"), "format": loaded.format,
         "data": src.data, "test_samples": len(test_idx), "preprocessing": loaded.preprocess.to_dict(),
         "accuracy": acc, "accuracy_check": check, **lib_report,
         "warnings": lib_report["warnings"] + ([warning] if warning else []),
         "splits": _splits(lib_report, f"{src.data} (test split)", len(test_idx)),
         "convert_seconds": t_convert, "total_seconds": time.perf_counter() - t0})
    directory = write_converted(Path(config.out), loaded.model, float_model, converted, report,
                                next(iter(batches))[:RECORD_IMAGES])
    return ConvertResult(directory, report)


def validation_split(config: ConvertConfig, loaded: LoadedModel, test, test_idx):
    """``(validation, test indices)``: the labelled images ``--max-drop`` decides on and the test images left.

    ``--val-size N``: N images of the test split drawn with ``seed + 1`` (as ``hardyt explore`` does), the
    rest reported; ``--val-data SPEC``: that set's test split (N images of it with ``--val-size``); neither:
    None (the held-out calibration images decide). ``validation`` is ``(x, y, record)``.
    """
    import torch

    from hardyt.quant.errors import HardytError
    from hardyt.quant.zoo.data import open_dataset, subset
    if config.val_data:
        ds = open_dataset(config.val_data, "test", loaded.preprocess, labels=True)
        idx = subset(len(ds), config.val_size)
        x, y = ds.batch(idx)
        return (x, y, {"split": "validation", "source": f"{config.val_data} (test split)", "samples": len(idx)}), \
            test_idx
    if not config.val_size:
        return None, test_idx
    if len(test) <= config.val_size:
        raise HardytError(f"{config.source.data}: {len(test)} test images: --val-size {config.val_size} leaves "
                          "none to test on")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(config.source.seed + 1)).tolist()
    val, rest = order[:config.val_size], order[config.val_size:]
    x, y = test.batch(val)
    rest = rest if config.source.eval_size is None else rest[:config.source.eval_size]
    return (x, y, {"split": "validation", "source": f"{config.source.data} (test split, disjoint from the test "
                   "images reported)", "samples": len(val)}), rest


def _splits(lib_report: dict, test_source: str, test_samples: int) -> dict:
    """Which split decided what (the referee; ``--max-drop``'s split) and which was only reported."""
    teacher = lib_report.get("teacher") or {}
    decided = [{"split": "referee", "source": "held-out calibration images", "samples": teacher.get("samples"),
                "decides": "early stopping, adapted vs frozen weights"}]
    part = lib_report.get("partial")
    if part:
        decided.append(part["decided_on"] | {"decides": "--max-drop: which LayerNorms are kept"})
    return {"decided": decided, "reported": {"split": "test", "source": test_source, "samples": test_samples}}
