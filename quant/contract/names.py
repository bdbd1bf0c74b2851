"""The one rule that turns a layer's module name into a file (and Verilog) name, and back to its files.

A layer is named by its module path in the model (``blocks.0.norm1``,
``encoder.layer.3.layernorm_before``, any string a framework allows). Every
file about it — ``<stem>.spec.json``, ``<stem>.inputs.npz``, its emitted
core's directory and Verilog module — uses :func:`layer_stem`, a legal
Verilog identifier: every character outside ``[A-Za-z0-9_]`` becomes ``_``,
and a name that would start with a digit gets the prefix ``m_``.

Directories written before this rule named files ``name.replace(".", "_")``;
the two agree on names of letters, digits, ``_`` and ``.`` that start with a
letter (every timm and Hugging Face ViT), and :func:`layer_file` reads
either.
"""
from __future__ import annotations

import re
from pathlib import Path

__all__ = ["layer_stem", "layer_file"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def layer_stem(name: str) -> str:
    """The file stem and Verilog identifier of layer ``name``.

    >>> layer_stem("blocks.0.norm1"), layer_stem("3x"), layer_stem("stage-1.ln")
    ('blocks_0_norm1', 'm_3x', 'stage_1_ln')
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    return ident if _IDENT.fullmatch(ident) else f"m_{ident}"


def layer_file(directory, name: str, suffix: str) -> Path:
    """``directory / (layer_stem(name) + suffix)``, or the file an older hardyt wrote for ``name`` if only
    that exists (``name.replace(".", "_")``)."""
    directory = Path(directory)
    path = directory / f"{layer_stem(name)}{suffix}"
    legacy = directory / f"{str(name).replace('.', '_')}{suffix}"
    return legacy if not path.exists() and legacy.exists() else path
