"""Simulator builds kept between runs, checked before they are reused.

cocotb's runner builds into a directory keyed by the design (``build_dir``)
and skips the build when its products look up to date by their timestamps: a
build killed while it linked, or a product corrupted since, would be run as
if it were good. After every successful build, :func:`stamp` records the
SHA-256 of the products (Icarus's ``sim.vvp``, Verilator's executable, named after the toplevel) in
:data:`STAMP`; :func:`check` runs before a build: a build directory without
a stamp, or whose products no longer match it, is removed with a warning and
built again. :func:`source_copy` puts the Verilog under a path keyed by its
content, checked against the key before it is reused. :func:`reserved` holds a build directory for one run at a
time (a lock beside it): a run never removes or rebuilds what another one is
building or running.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

from hardyt.quant.files import atomic_write_bytes, save_json_atomic

__all__ = ["STAMP", "PRODUCTS", "build_root", "products", "check", "stamp", "reserved", "source_copy"]

STAMP = ".hardyt-build.json"
#: What a build leaves for the test step to run, by simulator (Verilator's executable is named after the
#: toplevel: :func:`products` with ``top``; ``Vtop`` is only its C++ prefix).
PRODUCTS = {"icarus": ("sim.vvp",), "verilator": ("Vtop",)}


def build_root(cache) -> Path:
    """Where this environment's builds go: ``CACHE/build/<tag>``, the tag a hash of the cocotb install's path.

    A build's make files name files of the cocotb install that made it (its
    Verilator main, its VPI library): a build made by another environment
    — another checkout's ``.venv``, since moved or deleted — would fail in
    ``make`` or link the wrong cocotb, so it is never reused.
    """
    import cocotb

    tag = hashlib.sha256(str(Path(cocotb.__file__).resolve().parent).encode()).hexdigest()[:12]
    return Path(cache) / "build" / tag


def products(simulator: str, top: str | None = None) -> tuple:
    """The files a build of ``top`` leaves for the test step.

    >>> products("verilator", "hardyt_bulk"), products("icarus", "hardyt_bulk")
    (('hardyt_bulk',), ('sim.vvp',))
    """
    return (top,) if simulator == "verilator" and top else PRODUCTS[simulator]


def _digests(build_dir: Path, simulator: str, top: str | None) -> dict:
    return {name: hashlib.sha256((build_dir / name).read_bytes()).hexdigest()
            for name in products(simulator, top) if (build_dir / name).is_file()}


def check(build_dir, simulator: str, top: str | None = None) -> bool:
    """Whether ``build_dir`` (a build of ``top``) may be reused; if it exists and may not, it is removed
    (with a warning)."""
    build_dir = Path(build_dir)
    if not build_dir.exists():
        return False
    try:
        recorded = json.loads((build_dir / STAMP).read_text())
        same = recorded and recorded == _digests(build_dir, simulator, top)
        why = None if same else "products changed since the build"
    except (OSError, ValueError):
        why = "no record of a finished build (interrupted?)"
    if why is None:
        return True
    warnings.warn(f"{build_dir}: {why}; building again", stacklevel=2)
    shutil.rmtree(build_dir, ignore_errors=True)
    return False


def stamp(build_dir, simulator: str, top: str | None = None) -> None:
    """Record the products of the build (of ``top``) that just succeeded in ``build_dir``."""
    build_dir = Path(build_dir)
    digests = _digests(build_dir, simulator, top)
    if digests:
        save_json_atomic(build_dir / STAMP, digests)


@contextlib.contextmanager
def reserved(build_dir, simulator: str, top: str | None = None):
    """Hold ``build_dir`` for this run (waiting for another run of it to end), checked by :func:`check`."""
    build_dir = Path(build_dir)
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(build_dir.with_name(build_dir.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        check(build_dir, simulator, top)
        yield build_dir
    finally:
        os.close(fd)


def source_copy(manifest, cache: Path) -> tuple[Path, str]:
    """The Verilog under a path keyed by its content (shared, incremental builds), checked before reuse."""
    src = Path(manifest["dir"]) / manifest["verilog"]
    text = src.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    dst = cache / "src" / digest / manifest["verilog"]
    if dst.exists() and hashlib.sha256(dst.read_bytes()).hexdigest()[:16] != digest:
        warnings.warn(f"{dst}: cached source does not match its key (corrupted); written again", stacklevel=2)
    elif dst.exists():
        return dst, digest
    dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(dst, text)  # a temporary of its own: another thread may copy the same file
    return dst, digest
