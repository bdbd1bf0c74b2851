"""Every doctest example in the listed modules runs and passes."""
import doctest
import importlib

import pytest

MODULES = [
    "hardyt.quant.contract.fixed",
    "hardyt.quant.contract.tanh",
    "hardyt.quant.contract.spec",
    "hardyt.quant.contract.golden_dyt",
    "hardyt.quant.contract.stream",
    "hardyt.quant.conversion.evaluate",
    "hardyt.quant.conversion.partial",
    "hardyt.quant.contract.check",
    "hardyt.quant.contract.layernorm",
    "hardyt.quant.contract.rsqrt",
    "hardyt.quant.contract.spec_io",
    "hardyt.quant.conversion.augment",
    "hardyt.quant.conversion.weights",
    "hardyt.quant.conversion.distributed",
    "hardyt.quant.conversion.options",
    "hardyt.quant.zoo.preprocess",
    "hardyt.quant.zoo.transforms",
    "hardyt.hw.pipeline",
    "hardyt.hw.layernorm_parts",
    "hardyt.hw.emit",
    "hardyt.hw.coef_frame",
    "hardyt.hw.engine_set",
    "hardyt.hw.cores",
    "hardyt.hw.costs",
    "hardyt.hw.synth_cache",
    "hardyt.hw.cost_features",
    "hardyt.hw.cost_model",
    "hardyt.hw.sweep",
    "hardyt.quant.conversion.explore",
    "hardyt.scripts.explore_report",
    "hardyt.scripts.cmd_explore",
    "hardyt.quant.export.thresholds",
]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no doctest examples"
    assert result.failed == 0
