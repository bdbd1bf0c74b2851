"""One fixed-point tanh table and its error report (``hardyt tanh``)."""
from __future__ import annotations

from hardyt.quant.contract.tanh import TANH_KINDS, build_tanh, error_report

from .plots import plot_tanh

__all__ = ["TANH_KINDS", "tanh_report"]


def tanh_report(kind: str, in_bits: int, out_bits: int, alpha_scale: float, *, segments: int = 16,
                drop_bits: int = 0, plot=None) -> dict:
    """Worst and mean error in output ULPs over every input code, ROM bits and the table's shape; ``plot``:
    a PNG path for the approximation and its error."""
    t = build_tanh(kind, in_bits, out_bits, alpha_scale, segments=segments, drop_bits=drop_bits)
    if plot:
        plot_tanh(t, plot)
    d = error_report(t).as_dict()
    if kind == "lut":
        return d | {"drop_bits": t.drop_bits, "index_bits": t.index_bits}
    if kind == "threshold":
        return d | {"stages": t.stages, "word_bits": t.word_bits}
    return d | {"segments": t.segments, "seg_shift": t.seg_shift, "frac": t.frac, "slope_bits": t.slope_bits,
                "intercept_bits": t.intercept_bits}
