"""The DyT engine's coefficient frame: a layer's tanh table or thresholds (and channel gamma/beta) as AXI4-Stream beats.

A frame is beats of :data:`COEF_BITS` bits, ``tlast`` on the last. Sections
hold entries packed ``K = COEF_BITS // bits`` per beat, entry ``i`` of a
section in bits ``[(i % K)*bits +: bits]`` of the section's beat ``i // K``
(unused high bits zero):

=========  =======================================================================
beats      content
=========  =======================================================================
1          header: ``[7:0]`` magic: :data:`MAGIC` (``0xD7``, the table only: a
           folded layer) or :data:`MAGIC_AFFINE` (``0xDA``, the table and the
           channel affine section); on a threshold engine :data:`MAGIC_THRESHOLD`
           (``0xE7``) or :data:`MAGIC_THRESHOLD_AFFINE` (``0xEA``); ``[15:8]``
           layer index; ``[31:16]`` beats per token minus one (``C/P - 1`` of the layer)
N          the table: ``2**in_bits`` entries of ``table_bits``; entry ``u`` is
           the tanh code of the input whose ``in_bits``-bit two's complement is ``u``;
           on a threshold engine instead the thresholds: ``2**table_bits - 1``
           entries of ``in_bits + 1`` bits in stage order (stage 0's one word,
           stage 1's two, ... stage ``i``'s word ``p`` is entry ``2**i - 1 + p``:
           :func:`hardyt.quant.contract.threshold.stage_words`)
(affine)   only after :data:`MAGIC_AFFINE`: one beat ``[7:0]`` shift, ``[15:8]``
           the layer's output bits; ``C`` entries of ``gamma_bits`` (gamma of
           channel ``c``); ``C`` entries of ``beta_bits`` (``beta[c]`` plus the
           rounding half ``2**(shift-1)``, 0 when shift is 0)
1          checksum: the sum of the beats before it modulo ``2**32``; ``tlast`` set
=========  =======================================================================

``in_bits``, ``table_bits``, ``gamma_bits`` and ``beta_bits`` are the
engine's (the widest of its layers; ``table_bits`` is its output width when
no layer has channel affine, so such frames are those of a table-only
engine); a narrower layer's entries hold its own values, sign-extended, and
the table entry of an input code the layer cannot receive holds the output of
the nearest code it can (a narrower layer's codes arrive sign-extended, so
those entries are never read). ``C`` is the layer's channel count.

A frame is rejected (the engine keeps no part of it, :data:`STATUS` says why)
when the header has an unknown magic (``0xDA`` included, on an engine built
without channel affine), a layer index the engine does not have or more beats
per token than it was sized for (bad header: the rest is dropped up to
``tlast``); when ``tlast`` comes before the checksum beat (too short) or not
on it (too long: the rest is dropped up to ``tlast``); when the affine beat's
shift or output bits are outside what the engine was built for (bad header,
given when the frame ends: the engine takes the frame to its checksum beat);
or when the checksum differs. A frame with several faults gets the first of:
bad header (beat 0), bad length, bad header (affine beat), bad checksum.

The checksum is a plain sum: any one beat changed is caught, beats exchanged
with each other are not (the sum does not see order; docs/hardware.md).

>>> words = frame_words(layer=1, beats=2, table=[0, 1, -1, -2], table_bits=8, in_bits=2)
>>> [hex(w) for w in words]
['0x101d7', '0xfeff0100', '0xff0002d7']
>>> frame_beats(in_bits=8, table_bits=8)
66
>>> aff = AffineSection(shift=2, out_bits=8, gamma=[3, -1], beta=[5, 0], gamma_bits=8, beta_bits=16)
>>> [hex(w) for w in frame_words(0, 1, [0, 1, -1, -2], 8, 2, aff)]
['0xda', '0xfeff0100', '0x802', '0xff03', '0x20007', '0xff0208e6']
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardyt.quant.contract.stream import pack_lanes

__all__ = ["COEF_BITS", "MAGIC", "MAGIC_AFFINE", "MAGIC_THRESHOLD", "MAGIC_THRESHOLD_AFFINE", "STATUS", "AffineSection",
           "entries_per_beat", "section_beats", "frame_beats", "frame_words", "threshold_frame_words", "checksum",
           "load_cycles", "FRAME_FORMAT", "THRESHOLD_FRAME_FORMAT"]

#: Width of ``s_axis_coef_tdata``: a common DMA width.
COEF_BITS = 32
#: The header's low byte: a table-only frame (a folded layer).
MAGIC = 0xD7
#: The header's low byte: a frame with the channel affine section.
MAGIC_AFFINE = 0xDA
#: The header's low byte on a threshold engine: thresholds only (a folded layer).
MAGIC_THRESHOLD = 0xE7
#: The header's low byte on a threshold engine: thresholds and the channel affine section.
MAGIC_THRESHOLD_AFFINE = 0xEA
#: ``coef_status`` codes: the outcome of the last frame.
STATUS = {0: "none yet", 1: "loaded",
          2: "bad header (magic, layer index, beats per token, or the affine beat's shift or output bits)",
          3: "bad length (tlast before or after the checksum beat)", 4: "bad checksum"}


@dataclass(frozen=True)
class AffineSection:
    """A channel affine layer's part of its frame: the layer's shift and output bits, gamma and
    ``beta + half`` per channel, packed at the engine's ``gamma_bits`` and ``beta_bits``."""

    shift: int
    out_bits: int
    gamma: list
    beta: list
    gamma_bits: int
    beta_bits: int

    def words(self) -> list[int]:
        half = (1 << self.shift) >> 1
        return ([self.shift | (self.out_bits << 8)] + _pack(self.gamma, self.gamma_bits)
                + _pack(np.asarray(self.beta, dtype=np.int64) + half, self.beta_bits))


def entries_per_beat(bits: int) -> int:
    """Entries of ``bits`` packed in one coefficient beat."""
    return COEF_BITS // bits


def section_beats(entries: int, bits: int) -> int:
    """Beats of a section of ``entries`` entries of ``bits``."""
    return -(-entries // entries_per_beat(bits))


def _pack(values, bits: int) -> list[int]:
    values = np.asarray(values, dtype=np.int64)
    k = entries_per_beat(bits)
    return [pack_lanes(values[i:i + k], bits) for i in range(0, len(values), k)]


def frame_beats(in_bits: int, table_bits: int, channels: int = 0, gamma_bits: int = 0, beta_bits: int = 0, *,
                entries: int | None = None) -> int:
    """Beats of one frame: header, the table, (with ``channels``) the affine section, checksum.

    ``entries``: a section of that many entries of ``table_bits`` instead of
    ``2**in_bits`` (a threshold engine's ``2**b - 1`` thresholds of ``in_bits + 1``).

    >>> frame_beats(16, 17, entries=255), frame_beats(8, 9, entries=255)
    (257, 87)
    """
    beats = 2 + section_beats((1 << in_bits) if entries is None else entries, table_bits)
    if channels:
        beats += 1 + section_beats(channels, gamma_bits) + section_beats(channels, beta_bits)
    return beats


def load_cycles(in_bits: int, channels: int = 0, *, entries: int | None = None) -> int:
    """Cycles from a frame's header handshake to the set being usable, source always valid.

    One cycle per header, table entry (the engine writes one entry per cycle
    into each lane's RAM) and checksum, one to claim the bank; with the affine
    section (``channels``), one for its first beat and one per gamma and beta.
    ``entries``: a section of that many entries instead of ``2**in_bits``.
    On a threshold engine the bank is claimed only once the beats still in
    its pipeline that read it have left (none when the stream is idle).

    >>> load_cycles(8), load_cycles(8, channels=96), load_cycles(16, entries=255)
    (259, 452, 258)
    """
    entries = (1 << in_bits) if entries is None else entries
    return 3 + entries + (1 + 2 * channels if channels else 0)


def checksum(words) -> int:
    """The frame's last beat: the sum of the others modulo ``2**32``."""
    return int(sum(int(w) for w in words)) & ((1 << COEF_BITS) - 1)


def frame_words(layer: int, beats: int, table, table_bits: int, in_bits: int,
                affine: AffineSection | None = None) -> list[int]:
    """The beats of a frame (see the module docstring); ``table`` is the ``2**in_bits`` signed
    tanh codes in two's complement order of the input; ``affine`` the channel affine section."""
    table = np.asarray(table, dtype=np.int64)
    assert len(table) == 1 << in_bits, len(table)
    return _frame(MAGIC if affine is None else MAGIC_AFFINE, layer, beats, _pack(table, table_bits), affine)


def threshold_frame_words(layer: int, beats: int, words, in_bits: int,
                          affine: AffineSection | None = None) -> list[int]:
    """A threshold engine's frame: ``words`` are the thresholds in stage order (``2**b - 1`` of them),
    packed at ``in_bits + 1`` bits.

    >>> [hex(w) for w in threshold_frame_words(0, 1, [0, -2, 2], in_bits=2)]
    ['0xe7', '0xb0', '0x197']
    """
    return _frame(MAGIC_THRESHOLD if affine is None else MAGIC_THRESHOLD_AFFINE, layer, beats,
                  _pack(words, in_bits + 1), affine)


def _frame(magic: int, layer: int, beats: int, body: list[int], affine: AffineSection | None) -> list[int]:
    header = magic | (layer << 8) | ((beats - 1) << 16)
    body = body + ([] if affine is None else affine.words())
    return [header, *body, checksum([header, *body])]


FRAME_FORMAT = {
    "beat_bits": COEF_BITS,
    "header": {"magic": f"[7:0] = 0x{MAGIC:02x} (table only) or 0x{MAGIC_AFFINE:02x} (table and affine section)",
               "layer": "[15:8]", "beats_per_token_minus_1": "[31:16]"},
    "table": "2**in_bits entries of table_bits: entry u (tanh code for the input whose two's complement is u) in bits "
             "[(u % K)*table_bits +: table_bits] of table beat u // K, K = 32 // table_bits",
    "affine": f"only after magic 0x{MAGIC_AFFINE:02x}: one beat [7:0] shift, [15:8] the layer's output bits; then C "
              "entries of gamma_bits (gamma of channel c), then C entries of beta_bits (beta[c] + 2**(shift-1), "
              "or beta[c] when shift is 0), packed as the table (K = 32 // bits); C = the layer's channels",
    "checksum": "last beat: sum of the beats before it modulo 2**32, tlast set on it (and on no other beat)",
    "status": STATUS,
}

#: What a threshold engine's manifest says of its frames instead (merged over :data:`FRAME_FORMAT`).
THRESHOLD_FRAME_FORMAT = {
    "header": {"magic": f"[7:0] = 0x{MAGIC_THRESHOLD:02x} (thresholds only) or 0x{MAGIC_THRESHOLD_AFFINE:02x} "
                        "(thresholds and affine section)", "layer": "[15:8]", "beats_per_token_minus_1": "[31:16]"},
    "table": "none: the thresholds take its place",
    "thresholds": "2**table_bits - 1 entries of threshold_bits = in_bits + 1 (signed), in stage order: stage i's word "
                  "p (p = the i output bits found so far, most significant first) is entry 2**i - 1 + p; packed as "
                  "the table (K = 32 // threshold_bits). The output code is the number of thresholds the input "
                  "reaches, minus 2**(table_bits-1)",
    "affine": f"only after magic 0x{MAGIC_THRESHOLD_AFFINE:02x}: as after 0x{MAGIC_AFFINE:02x}",
}
