"""Progress bars as batch users expect them: a tqdm bar on a terminal, one line per stage in a log.

A bar redrawn with carriage returns fills a log file or a cluster job's
stdout with kilobytes per stage. :func:`progress` takes tqdm's arguments;
when stderr is not a terminal (or ``HARDYT_PROGRESS=lines``) it prints one
line when the stage ends instead — ``convert: 620/620 step in 94.7 s`` —
and ``TQDM_DISABLE=1`` (or ``disable=True``) prints nothing.
"""
from __future__ import annotations

import os
import sys
import time

__all__ = ["progress", "LineBar"]


class LineBar:
    """tqdm's interface (iterate, ``update``, ``set_postfix``, ``write``, context manager), one line at the end."""

    def __init__(self, iterable=None, desc: str = "", total=None, unit: str = "it", disable: bool = False,
                 file=None, **_ignored):
        self.iterable, self.desc, self.unit, self.disable = iterable, desc, unit, disable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n, self.postfix, self.file = 0, "", file
        self._t0, self._closed = time.perf_counter(), False

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __len__(self):
        return self.total or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh=True) -> None:
        self.postfix = s

    def set_description(self, desc=None, refresh=True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        pass

    def write(self, s: str, file=None, end: str = "\n") -> None:
        print(s, end=end, file=file or self.file or sys.stderr, flush=True)

    def close(self) -> None:
        if self._closed or self.disable:
            self._closed = True
            return
        self._closed = True
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        extra = f" ({self.postfix})" if self.postfix else ""
        self.write(f"{self.desc}: {count} {self.unit} in {time.perf_counter() - self._t0:.1f} s{extra}")


def _disabled(kwargs) -> bool:
    return bool(kwargs.get("disable")) or os.environ.get("TQDM_DISABLE", "") not in ("", "0")


def progress(iterable=None, **kwargs):
    """``tqdm(iterable, **kwargs)`` on a terminal, else a :class:`LineBar` (one line when the stage ends)."""
    mode = os.environ.get("HARDYT_PROGRESS", "auto")
    stream = kwargs.get("file") or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    if mode == "lines" or (mode == "auto" and not tty):
        return LineBar(iterable, **(kwargs | {"disable": _disabled(kwargs)}))
    from tqdm import tqdm
    return tqdm(iterable, **kwargs)
