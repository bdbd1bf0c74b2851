"""Scoreboard: output beats against the golden model, compared as integers.

>>> import numpy as np
>>> sb = Scoreboard(np.array([[1, 2], [3, 4]]), np.array([[10, 20], [30, 40]]),
...                 np.array([False, True]), np.array([[0, 1], [2, 3]]))
>>> r = sb.check(np.array([[10, 20], [30, 41]]), np.array([False, True]))
>>> r.checked, r.mismatches
(4, 1)
>>> print(r.mismatch_lines[0])
beat 1 lane 1 channel 3: input 4 expected 40 got 41
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Scoreboard", "ScoreResult"]


@dataclass
class ScoreResult:
    checked: int = 0            # elements compared
    mismatches: int = 0         # elements (and tlast flags) that differ
    missing: int = 0            # expected beats that never came out
    extra: int = 0              # beats that came out but were not expected
    mismatch_lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0 and self.missing == 0 and self.extra == 0

    def summary(self, limit: int = 10) -> str:
        head = (f"{self.checked} elements checked, {self.mismatches} mismatches, "
                f"{self.missing} beats missing, {self.extra} extra")
        return "\n".join([head, *self.mismatch_lines[:limit]])


class Scoreboard:
    """Expected stream: inputs ``x`` and outputs ``expected`` ``(n, P)``, ``last`` ``(n,)``,
    and the channel of every element ``(n, P)`` (for the mismatch report)."""

    def __init__(self, x, expected, last, channels):
        self.x = np.asarray(x, dtype=np.int64)
        self.expected = np.asarray(expected, dtype=np.int64)
        self.last = np.asarray(last, dtype=bool)
        self.channels = np.asarray(channels, dtype=np.int64)

    @classmethod
    def from_spec(cls, spec, x_beats, last):
        from hardyt.quant.contract.stream import lane_channels
        x_beats = np.asarray(x_beats, dtype=np.int64)
        last = np.asarray(last, dtype=bool)
        return cls(x_beats, spec.reference_stream(x_beats, last), last,
                   lane_channels(last, spec.lanes, spec.channels))

    def check(self, got, got_last) -> ScoreResult:
        got = np.asarray(got, dtype=np.int64).reshape(-1, self.expected.shape[1])
        got_last = np.asarray(got_last, dtype=bool)
        n = min(len(got), len(self.expected))
        r = ScoreResult(checked=n * self.expected.shape[1],
                        missing=max(0, len(self.expected) - len(got)),
                        extra=max(0, len(got) - len(self.expected)))
        bad = got[:n] != self.expected[:n]
        bad_last = got_last[:n] != self.last[:n]
        r.mismatches = int(bad.sum() + bad_last.sum())
        for k, lane in zip(*np.nonzero(bad)):
            r.mismatch_lines.append(f"beat {k} lane {lane} channel {self.channels[k, lane]}: "
                                    f"input {self.x[k, lane]} expected {self.expected[k, lane]} "
                                    f"got {got[k, lane]}")
            if len(r.mismatch_lines) >= 50:
                break
        for k in np.nonzero(bad_last)[0][:10]:
            r.mismatch_lines.append(f"beat {k}: tlast expected {int(self.last[k])} got {int(got_last[k])}")
        if r.missing:
            r.mismatch_lines.append(f"{r.missing} expected beats never came out (first missing: beat {n})")
        if r.extra:
            r.mismatch_lines.append(f"{r.extra} unexpected extra beats after beat {n - 1}")
        return r
