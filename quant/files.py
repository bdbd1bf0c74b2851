"""Atomic output: nothing hardyt writes is ever seen half-written.

A file is written to a hidden temporary beside its target, fsynced and
renamed over it, then its directory is fsynced (SQLite's and git's recipe: a
write survives a crash whole or not at all). An output directory is built
whole in a hidden temporary sibling, every file and directory in it fsynced,
and swapped in by one rename (:func:`atomic_output_dir`): a reader sees the
previous complete directory or the new complete one, never a mix.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from .errors import HardytError
from .outdir import fsync_dir, fsync_tree, swap_in_directory

__all__ = ["atomic_write_bytes", "atomic_write_text", "save_json_atomic", "prepare_out_dir", "atomic_output_dir",
           "fsync_dir", "fsync_tree"]


def _why(e: OSError) -> str:
    return e.strerror or str(e)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, fsync and a rename."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise HardytError(f"{path}: cannot write: {_why(e)}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise HardytError(f"{path}: cannot write: {_why(e)}") from None
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def load_json_object(path, what: str = "file") -> dict:
    """The JSON object in ``path``; unreadable, invalid or not-an-object is a :class:`HardytError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except OSError as e:
        raise HardytError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
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
    """Yield a temporary directory to fill; on success it replaces ``path`` whole.

    ``path`` appears complete or not at all: the temporary is a hidden sibling
    of ``path``, fsynced and swapped in by one rename (the previous ``path``
    is kept until the swap has succeeded, then removed). Two runs writing the
    same ``path`` at once: the second one gets a :class:`HardytError` (a lock
    on a hidden sibling file). An existing ``path`` is replaced only if it is
    empty or was written by hardyt (it holds :data:`hardyt.quant.outdir.MARKER`):
    a directory of other files is an error, never deleted. On an exception
    (Ctrl-C and ``SIGTERM`` included) ``path`` is unchanged and the temporary
    removed; after a ``SIGKILL`` the next run writing ``path`` removes it.
    """
    with swap_in_directory(path) as tmp:
        yield tmp
