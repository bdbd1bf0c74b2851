"""Library option errors in the words of the command line."""
from __future__ import annotations

from contextlib import contextmanager

from hardyt.quant.errors import HardytError, SpecError

__all__ = ["flag_errors"]


@contextmanager
def flag_errors():
    """Turn a bad option (a :class:`SpecError` naming a field, e.g. ``self_distill_lr``) into an error
    naming the flag the user typed (``--self-distill-lr``)."""
    try:
        yield
    except SpecError as e:
        raise HardytError(f"--{e.field.replace('_', '-')}: {e.message}") from None
