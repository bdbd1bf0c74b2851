"""Library option errors in the words of the command line; flags several commands share."""
from __future__ import annotations

from contextlib import contextmanager

from hardyt.quant.errors import HardytError, SpecError

__all__ = ["flag_errors", "add_sweep_flags"]


@contextmanager
def flag_errors():
    """Turn a bad option (a :class:`SpecError` naming a field, e.g. ``self_distill_lr``) into an error
    naming the flag the user typed (``--self-distill-lr``)."""
    try:
        yield
    except SpecError as e:
        raise HardytError(f"--{e.field.replace('_', '-')}: {e.message}") from None


def add_sweep_flags(p) -> None:
    """``--scheduler`` and ``--workers``: where a command's tool jobs run (:mod:`hardyt.hw.sweep`)."""
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="tcp://HOST:PORT of a Dask scheduler for the tool jobs (default: a local in-process cluster)")
    p.add_argument("--workers", type=int, default=1, help="local cluster workers (default 1)")
