"""Every doctest example in the listed modules runs and passes."""
import doctest
import importlib

import pytest

MODULES = [
    "hardyt.quant.fixed",
    "hardyt.quant.tanh",
    "hardyt.quant.spec",
    "hardyt.quant.golden_model",
    "hardyt.quant.stream",
    "hardyt.quant.evaluate",
    "hardyt.quant.partial",
    "hardyt.quant.calibrate",
    "hardyt.hw.dyt_core",
    "hardyt.hw.emit",
    "hardyt.hw.cores",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
