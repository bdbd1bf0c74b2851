"""Which directories hold an emitted core: the one rule ``hardyt sim``, ``synth`` and ``demo`` share.

``hardyt rtl`` writes one core into a directory (``NAME.v``, ``.mem`` files and
the manifest ``NAME.json``), or, for a converted model, one such directory per
layer under ``--out``. A directory counts as holding a core when it has a
Verilog file or a JSON file other than a layer spec; whether that core is
complete is :func:`hardyt.hw.emission.emit.load_manifest`'s to say, so a broken layer is
reported, never silently left out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hardyt.quant.errors import HardytError

__all__ = ["holds_core", "layer_dirs", "core_dirs", "CoreResults"]


def holds_core(directory: Path) -> bool:
    """``directory`` has a Verilog file or a non-spec JSON file (a manifest, a synthesis report)."""
    return any(directory.glob("*.v")) or any(not p.name.endswith(".spec.json") for p in directory.glob("*.json"))


def layer_dirs(directory: Path) -> list[Path]:
    """The subdirectories of ``directory`` that hold a core, by name (hidden ones left out)."""
    return sorted(d for d in directory.iterdir() if d.is_dir() and not d.name.startswith(".") and holds_core(d))


def core_dirs(directory) -> list[Path]:
    """``directory`` itself if it holds a core, else its layer directories.

    Neither: ``[directory]``, so that loading its manifest says what is missing.
    A :class:`HardytError` if ``directory`` is not a directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise HardytError(f"{directory}: no such directory of emitted RTL")
    if holds_core(directory):
        return [directory]
    return layer_dirs(directory) or [directory]


@dataclass
class CoreResults:
    """Per emitted core directory: a step's result dict (``ok``, ...), or the error that stopped it."""

    root: Path
    results: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [Path(k).name for k in self.errors] + [Path(k).name for k, r in self.results.items() if not r["ok"]]
