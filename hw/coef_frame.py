"""The DyT engine's coefficient frame: one layer's tanh table as AXI4-Stream beats.

A frame is ``2 + ceil(2**in_bits / K)`` beats of :data:`COEF_BITS` bits
(``K = COEF_BITS // out_bits`` table entries per beat), ``tlast`` on the last:

======  ==========================================================================
beat    content
======  ==========================================================================
0       header: ``[7:0]`` :data:`MAGIC`, ``[15:8]`` layer index, ``[31:16]`` beats
        per token minus one (``C/P - 1`` of the layer)
1..N    the table: entry ``u`` (the output code of the input whose ``in_bits``-bit
        two's complement is ``u``) in bits ``[(u % K)*out_bits +: out_bits]`` of
        beat ``1 + u // K``; unused high bits zero
N+1     checksum: the sum of beats ``0..N`` modulo ``2**32``; ``tlast`` set
======  ==========================================================================

``in_bits`` and ``out_bits`` are the engine's (the widest of its layers); a
narrower layer's table holds its own outputs, sign-extended, and the entry of
an input code the layer cannot receive holds the output of the nearest code
it can (a narrower layer's codes arrive sign-extended, so those entries are
never read).

A frame is rejected (the engine keeps no part of it, :data:`STATUS` says why)
when the header has a wrong magic, a layer index the engine does not have or
more beats per token than it was sized for; when ``tlast`` comes before the
checksum beat (too short) or not on it (too long: the rest is dropped up to
``tlast``); or when the checksum differs.

>>> words = frame_words(layer=1, beats=2, table=[0, 1, -1, -2], out_bits=8, in_bits=2)
>>> [hex(w) for w in words]
['0x101d7', '0xfeff0100', '0xff0002d7']
>>> frame_beats(in_bits=8, out_bits=8)
66
"""
from __future__ import annotations

import numpy as np

from hardyt.quant.contract.stream import pack_lanes

__all__ = ["COEF_BITS", "MAGIC", "STATUS", "entries_per_beat", "frame_beats", "frame_words", "checksum",
           "load_cycles", "FRAME_FORMAT"]

#: Width of ``s_axis_coef_tdata``: a common DMA width.
COEF_BITS = 32
#: The header's low byte.
MAGIC = 0xD7
#: ``coef_status`` codes: the outcome of the last frame.
STATUS = {0: "none yet", 1: "loaded", 2: "bad header (magic, layer index or beats per token)",
          3: "bad length (tlast before or after the checksum beat)", 4: "bad checksum"}


def entries_per_beat(out_bits: int) -> int:
    """Table entries packed in one coefficient beat."""
    return COEF_BITS // out_bits


def frame_beats(in_bits: int, out_bits: int) -> int:
    """Beats of one frame: header, the table, checksum."""
    k = entries_per_beat(out_bits)
    return 2 + -(-(1 << in_bits) // k)


def load_cycles(in_bits: int, out_bits: int) -> int:
    """Cycles from a frame's header handshake to the set being usable, source always valid.

    One cycle per header, table entry (the engine writes one entry per cycle
    into each lane's RAM) and checksum, one to claim the bank.
    """
    return 3 + (1 << in_bits)


def checksum(words) -> int:
    """The frame's last beat: the sum of the others modulo ``2**32``."""
    return int(sum(int(w) for w in words)) & ((1 << COEF_BITS) - 1)


def frame_words(layer: int, beats: int, table, out_bits: int, in_bits: int) -> list[int]:
    """The beats of a frame (see the module docstring); ``table`` is the ``2**in_bits`` signed
    output codes in two's complement order of the input."""
    table = np.asarray(table, dtype=np.int64)
    assert len(table) == 1 << in_bits, len(table)
    k = entries_per_beat(out_bits)
    header = MAGIC | (layer << 8) | ((beats - 1) << 16)
    body = [pack_lanes(table[i:i + k], out_bits) for i in range(0, len(table), k)]
    return [header, *body, checksum([header, *body])]


FRAME_FORMAT = {
    "beat_bits": COEF_BITS,
    "header": {"magic": f"[7:0] = 0x{MAGIC:02x}", "layer": "[15:8]", "beats_per_token_minus_1": "[31:16]"},
    "table": "beats 1..N: entry u (output code for the input whose two's complement is u) in bits "
             "[(u % K)*out_bits +: out_bits] of beat 1 + u // K, K = entries_per_beat",
    "checksum": "beat N+1: sum of beats 0..N modulo 2**32, tlast set on it (and on no other beat)",
    "status": STATUS,
}
