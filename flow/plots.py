"""PNG figures for reports (matplotlib, headless), written atomically.

A new figure comes from :func:`subplots`, and goes to disk through :func:`save_figure`;
callers outside this module (``hardyt convert``, ``bench/hardware.py``) use those two.
"""
from __future__ import annotations

import io

import numpy as np

from hardyt.quant.files import atomic_write_bytes
from hardyt.quant.contract.tanh import Tanh, exact_codes, tanh_int


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def subplots(*args, **kwargs):
    """``matplotlib.pyplot.subplots(*args, **kwargs)`` on the headless Agg backend: ``(fig, axes)``."""
    return _pyplot().subplots(*args, **kwargs)


def save_figure(fig, path) -> None:
    """Render ``fig`` to PNG in memory, then write it atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_tanh(t: Tanh, path) -> None:
    """Approximation against exact tanh, and its error in ULPs, over every code."""
    half = 1 << (t.in_bits - 1)
    x = np.arange(-half, half, dtype=np.int64)
    exact = exact_codes(x, t)
    approx = tanh_int(x, t)
    fig, (ax1, ax2) = subplots(2, 1, figsize=(7, 5.5), sharex=True)
    ax1.plot(x, exact, lw=1, label="tanh(a·x)/s exact")
    ax1.step(x, approx, lw=0.8, where="mid", label=f"{t.kind} ({t.out_bits}-bit)")
    ax1.set_ylabel("output code")
    ax1.legend(loc="upper left")
    ax1.set_title(f"{t.kind}: in {t.in_bits} bits, out {t.out_bits} bits, alpha·lsb = {t.alpha_scale:.4g}")
    ax2.plot(x, approx - exact, lw=0.6)
    ax2.axhline(0.5, color="k", ls=":", lw=0.8)
    ax2.axhline(-0.5, color="k", ls=":", lw=0.8)
    ax2.set_ylabel("error (ULP)")
    ax2.set_xlabel("input code")
    save_figure(fig, path)


def plot_sqnr(layers: list[dict], floor: float, path) -> None:
    """Per-layer SQNR of the fixed-point DyT against float, with the warning floor."""
    fig, ax = subplots(figsize=(max(6, 0.45 * len(layers) + 2), 3.8))
    xs = np.arange(len(layers))
    vals = [max(-10.0, min(r["sqnr_db"], 99.0)) for r in layers]
    ax.bar(xs, vals, color=["C0" if v >= floor else "C3" for v in vals])
    ax.axhline(floor, color="k", ls=":", lw=1, label=f"floor {floor:g} dB")
    ax.set_ylabel("SQNR (dB)")
    ax.set_xticks(xs, [r["name"] for r in layers], rotation=60, ha="right", fontsize=8)
    ax.legend(loc="lower right")
    ax.set_title("fixed-point DyT vs float DyT, per layer (red: below the floor)")
    save_figure(fig, path)


def plot_resources(cores: dict[str, dict], path, title: str = "") -> None:
    """Grouped bars of LUT, FF, DSP and BRAM per core (log scale: DyT's zeros stay visible as gaps)."""
    keys = ("lut", "ff", "dsp", "bram")
    fig, ax = subplots(figsize=(7, 4))
    width = 0.8 / len(cores)
    for j, (label, r) in enumerate(cores.items()):
        xs = np.arange(len(keys)) + j * width
        vals = [max(r[k], 0) for k in keys]
        bars = ax.bar(xs, [v if v else 0.8 for v in vals], width, label=label)
        for b, v in zip(bars, vals):
            ax.annotate(str(v), (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom",
                        fontsize=8)
    ax.set_xticks(np.arange(len(keys)) + width * (len(cores) - 1) / 2, [k.upper() for k in keys])
    ax.set_yscale("log")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend()
    save_figure(fig, path)
