"""Atomic output: nothing hardyt writes is ever seen half-written.

Every file is written to a hidden temporary beside its target and renamed
over it; a directory of outputs is built in a hidden temporary directory and
renamed into place.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import HardytError

__all__ = ["atomic_write_bytes", "atomic_write_text", "save_json_atomic", "prepare_out_dir", "atomic_output_dir"]


def _why(e: OSError) -> str:
    return e.strerror or str(e)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise HardytError(f"{path}: cannot write: {_why(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise HardytError(f"{path}: cannot write: {_why(e)}") from None
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def load_json_object(path, what: str = "file") -> dict:
    """The JSON object in ``path``; unreadable, invalid or not-an-object is a :class:`HardytError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise HardytError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HardytError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise HardytError(f"{path}: {what} must be a JSON object, got {type(data).__name__}")
    return data


def save_json_atomic(path, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def prepare_out_dir(path) -> Path:
    """Create output directory ``path`` (and parents); clear error if impossible."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HardytError(f"{path}: output path exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HardytError(f"{path}: cannot create output directory: {_why(e)}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise HardytError(f"{path}: output directory is not writable")
    return path


@contextlib.contextmanager
def atomic_output_dir(path):
    """Yield a temporary directory; on success move its files into ``path``.

    Files already in ``path`` with other names are kept; files of the same
    name are replaced one by one with ``os.replace`` (each atomically). On an
    exception nothing in ``path`` changes.
    """
    path = prepare_out_dir(path)
    tmp = Path(tempfile.mkdtemp(prefix=".hardyt-", dir=path))
    try:
        yield tmp
        for item in sorted(tmp.rglob("*")):
            if item.is_file():
                dest = path / item.relative_to(tmp)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
