"""Output directories replaced whole: built beside the target, fsynced, swapped in by one rename.

:func:`swap_in_directory` is the mechanism behind
:func:`hardyt.quant.files.atomic_output_dir` (see there for the promise).
The steps, for an output ``D``:

1. lock ``.D.lock`` beside ``D`` (``fcntl.flock``, not waiting: a second run
   writing ``D`` at the same time gets a clear error); remove the temporaries
   a killed run left beside ``D`` (``.D.XXXXXXXX.new`` / ``.old``);
2. check that an existing ``D`` may be replaced: empty, or holding
   :data:`MARKER` (written by hardyt) — a directory of the user's files is
   never deleted;
3. the caller fills ``.D.XXXXXXXX.new``; hardyt adds :data:`MARKER`, fsyncs
   every file and directory in it;
4. swap: ``renameat2(RENAME_EXCHANGE)`` exchanges the two directories in one
   step where the kernel and filesystem have it (Linux), else ``D`` is renamed
   to ``.D.XXXXXXXX.old`` and the new one to ``D`` (``D`` is briefly absent,
   never mixed; restored if the second rename fails); the parent is fsynced
   and the old directory removed.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import secrets
import shutil
from pathlib import Path

from .errors import HardytError

__all__ = ["MARKER", "swap_in_directory", "fsync_dir", "fsync_tree", "exchange"]

#: The file that marks a directory as a hardyt output (which the next run writing it may replace).
MARKER = ".hardyt-output"
_MARKER_TEXT = "written by hardyt: the next hardyt run writing this directory replaces it whole\n"
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def fsync_dir(path) -> None:
    """Make a directory's entries (a rename, a new file) durable; nothing where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root) -> None:
    """fsync every file and directory under ``root`` (``root`` included), deepest first."""
    for here, _dirs, files in os.walk(root, topdown=False):
        for name in files:
            fd = os.open(os.path.join(here, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(here)


def exchange(a, b) -> bool:
    """Exchange paths ``a`` and ``b`` atomically (Linux ``renameat2``); ``False`` where unsupported."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _lock(path: Path) -> int:
    """An exclusive lock on ``.NAME.lock`` beside ``path``: its descriptor, or a clear error if taken."""
    lock = path.with_name(f".{path.name}.lock")
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HardytError(f"{path}: another hardyt run is writing this output now (lock {lock}); "
                              "wait for it or choose another --out") from None
        try:  # the holder before us may have unlinked the file we opened: lock the file the name has now
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _unlock(path: Path, fd: int) -> None:
    path.with_name(f".{path.name}.lock").unlink(missing_ok=True)  # while holding it: see _lock
    os.close(fd)


def _remove_leftovers(path: Path) -> None:
    """Remove the temporaries of runs killed while writing ``path`` (we hold its lock)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{8}}\.(new|old)")
    for entry in os.scandir(path.parent):
        if pattern.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)


def _check_replaceable(path: Path) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise HardytError(f"{path}: output path exists and is not a directory")
    if any(path.iterdir()) and not (path / MARKER).is_file():
        raise HardytError(f"{path}: exists and was not written by hardyt (no {MARKER} in it): "
                          "move it away or choose another --out")


def _sibling(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.{kind}")


def _swap(new: Path, path: Path) -> None:
    """Put ``new`` at ``path``; the previous ``path`` is removed only once ``new`` is in place."""
    if not path.exists():
        os.rename(new, path)
    elif exchange(new, path):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the previous directory
    else:
        old = _sibling(path, "old")
        os.rename(path, old)
        try:
            os.rename(new, path)
        except BaseException:
            os.rename(old, path)
            raise
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(path.parent)


@contextlib.contextmanager
def swap_in_directory(path):
    """Yield an empty temporary directory beside ``path``; on success it replaces ``path`` whole."""
    path = Path(os.path.abspath(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _lock(path)
    except OSError as e:
        raise HardytError(f"{path}: cannot create output directory: {e.strerror or e}") from None
    try:
        _remove_leftovers(path)
        _check_replaceable(path)
        new = _sibling(path, "new")
        try:
            os.mkdir(new)
        except OSError as e:
            raise HardytError(f"{path}: cannot create output directory: {e.strerror or e}") from None
        try:
            yield new
            try:
                (new / MARKER).write_text(_MARKER_TEXT)
                fsync_tree(new)
                _swap(new, path)
            except OSError as e:
                raise HardytError(f"{path}: cannot write: {e.strerror or e}") from None
        finally:
            shutil.rmtree(new, ignore_errors=True)
    finally:
        _unlock(path, fd)
