"""Every doctest of every module of the package runs and passes (no hand-kept list: the modules are found
by walking the source folders, as ``pytest --doctest-modules`` would)."""
import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"quant": "hardyt.quant", "hw": "hardyt.hw", "sim": "hardyt.sim", "flow": "hardyt.flow",
           "scripts": "hardyt.scripts"}


def _modules() -> list[str]:
    out = []
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            out.append(".".join([package, *parts]))
    return out


MODULES = _modules()


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} doctest examples failed"


def test_the_walk_finds_the_doctests():
    """The walk covers the package: the modules known to hold examples are among those found."""
    for name in ("hardyt.quant.contract.fixed", "hardyt.quant.conversion.fidelity", "hardyt.flow.record",
                 "hardyt.quant.moved", "hardyt.hw.emission.emit"):
        assert name in MODULES
    assert len(MODULES) > 100
