"""What every core spec file shares: the JSON header, field errors, text and file I/O."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from ..errors import SpecError
from ..files import save_json_atomic
from .check import check_int

__all__ = ["check_header", "reading_fields", "SpecFile"]


def check_header(d, kind: str, label: str, version: int) -> None:
    """The part every core spec's JSON shares: an object, ``"hardyt": kind``, a version we read."""
    if not isinstance(d, dict):
        raise SpecError("spec", f"must be a JSON object, got {type(d).__name__}")
    if d.get("hardyt") != kind:
        raise SpecError("hardyt", f"not a {label} (expected \"hardyt\": \"{kind}\", got {d.get('hardyt')!r})")
    check_int("version", d.get("version"), 1)
    if d["version"] > version:
        raise SpecError("version", f"spec version {d['version']} is newer than this hardyt supports ({version}); "
                                   "upgrade hardyt")


@contextmanager
def reading_fields():
    """Missing keys and wrongly typed values of a spec's JSON as :class:`SpecError`."""
    try:
        yield
    except KeyError as e:
        raise SpecError(str(e.args[0]), "missing from the spec") from None
    except TypeError as e:
        raise SpecError("spec", f"malformed field: {e}") from None


class SpecFile:
    """JSON text and files for a core spec class with ``from_dict``/``to_dict``."""

    @classmethod
    def from_json(cls, text: str):
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise SpecError("spec", f"not valid JSON: {e}") from None
        return cls.from_dict(d)

    def save(self, path) -> Path:
        return save_json_atomic(path, self.to_dict())
