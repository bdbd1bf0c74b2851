"""A JSON object on disk, a dataclass in code: known keys as typed fields, every other key kept.

Reports and manifests are interface: their keys never change, and a key this
code does not know (written by a newer hardyt, or added by another step)
survives a read and a write unchanged, in its place.

>>> from dataclasses import dataclass
>>> @dataclass
... class Point(Record):
...     x: int = None
>>> p = Point.from_dict({"x": 1, "note": "kept"})
>>> p.x, p.extra, p.to_dict()
(1, {'note': 'kept'}, {'x': 1, 'note': 'kept'})
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields

from hardyt.quant.errors import HardytError

__all__ = ["Record"]


def _default(f):
    return f.default_factory() if f.default_factory is not MISSING else None if f.default is MISSING else f.default


@dataclass
class Record:
    """Base of the flow's JSON records.

    Members
    -------
    extra : dict
        Every key of the JSON object that is not a field, in its place on the way out.
    """

    extra: dict = field(default_factory=dict, repr=False, kw_only=True)
    _order: tuple = field(default=(), repr=False, compare=False, kw_only=True)

    # Fields holding nested records: name -> (Record class, is a list)
    NESTED = {}

    @classmethod
    def known(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in ("extra", "_order")]

    @classmethod
    def from_dict(cls, d: dict, where: str = "record"):
        """The record of JSON object ``d`` (``where`` names it in errors)."""
        if not isinstance(d, dict):
            raise HardytError(f"{where}: expected a JSON object, got {type(d).__name__}")
        names = set(cls.known())
        values = {}
        for k in names & d.keys():
            sub = cls.NESTED.get(k)
            v = d[k]
            if sub is not None and v is not None:
                v = [sub.from_dict(e, f"{where}: {k}") for e in v] if isinstance(v, list) else sub.from_dict(v, where)
            values[k] = v
        return cls(**values, extra={k: v for k, v in d.items() if k not in names}, _order=tuple(d))

    def to_dict(self) -> dict:
        """The JSON object: the keys read in their order, then fields set since, then new extras."""
        values = {}
        for f in fields(self):
            name, v = f.name, getattr(self, f.name)
            if name in ("extra", "_order"):
                continue
            if name not in self._order and v == _default(f):
                continue  # a section this record never had, still at its default
            values[name] = [e.to_dict() for e in v] if isinstance(v, list) and v and isinstance(v[0], Record) \
                else v.to_dict() if isinstance(v, Record) else v
        values.update(self.extra)
        ordered = {k: values[k] for k in self._order if k in values}
        return ordered | {k: v for k, v in values.items() if k not in ordered}
