"""hardyt.sim: cocotb drivers, monitors, scoreboards, the testbench modules and the runner.

The cocotb test modules are ``cocotb_dyt``, ``cocotb_bulk`` and ``cocotb_engine``
(named so that nobody takes them for pytest files); their old names
``test_dyt``, ``test_bulk`` and ``test_engine`` import the same modules.
"""
from hardyt.quant.moved import alias_modules

alias_modules({f"{__name__}.test_{m}": f"{__name__}.cocotb_{m}" for m in ("dyt", "bulk", "engine")})
