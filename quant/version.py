"""The installed hardyt version, as every room records it (manifests, reports, ``--version``)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["hardyt_version"]


def hardyt_version() -> str:
    """The distribution's version, or ``0+unknown`` when running from a source tree that is not installed."""
    try:
        return version("hardyt")
    except PackageNotFoundError:
        return "0+unknown"
