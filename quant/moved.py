"""Old import paths of moved modules, kept working: ``import old.name`` gives the module at its new place.

A module that moves keeps its old dotted name as an alias (names are
interface). The alias is resolved on first import by a meta-path finder, so
nothing is imported early, and there is no file at the old path: a move is a
pure rename in git, which other branches' edits of the old path follow when
they merge. ``sys.modules`` then holds the *same* module object under both
names, so ``hardyt.hw.dyt_core is hardyt.hw.datapath.dyt_core`` and state (caches,
registries) is never duplicated.

>>> import sys, types
>>> sys.modules["_moved_demo_new"] = types.ModuleType("_moved_demo_new")
>>> alias_modules({"_moved_demo_old": "_moved_demo_new"})
>>> import _moved_demo_old
>>> _moved_demo_old is sys.modules["_moved_demo_new"], _moved_demo_old.__name__
(True, '_moved_demo_new')
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__all__ = ["alias_modules"]


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name by importing the new one; leaves the module's own spec as it was."""

    def __init__(self, target: str):
        self.target = target
        self._spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__  # the import system overwrites __spec__ with the alias's: put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec


class _AliasFinder(importlib.abc.MetaPathFinder):
    def __init__(self):
        self.aliases: dict[str, str] = {}

    def find_spec(self, name, path=None, target=None):
        if name not in self.aliases:
            return None
        return importlib.util.spec_from_loader(name, _AliasLoader(self.aliases[name]))


_FINDER = _AliasFinder()


def alias_modules(aliases: dict[str, str]) -> None:
    """Make each old module name (key) import the module named by its value: now if that is already
    imported, else on first use. An old name is set as an attribute of its package only where the package
    has no attribute of that name (``hardyt.hw.emit`` stays the function ``emit``; ``import
    hardyt.hw.emit`` still gives the module)."""
    _FINDER.aliases.update(aliases)
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for old, new in aliases.items():
        if new in sys.modules and old not in sys.modules:
            sys.modules[old] = sys.modules[new]
            parent, _, child = old.rpartition(".")
            if parent in sys.modules and not hasattr(sys.modules[parent], child):
                setattr(sys.modules[parent], child, sys.modules[new])
