"""What a core's resources depend on, read from its spec alone: the cost model's features.

Two things set what a core costs:

- its **structure** (:func:`structure`): the core's kind (LayerNorm, DyT
  with a LUT over every signed code, a LUT over ``|x|``, or PWL; folded or
  channel affine), the widths, lanes, channels and the shape of each ROM.
  Cores of one structure elaborate to the same registers, multipliers and
  memories; Yosys decides block RAM or logic from a memory's shape, so DSP,
  BRAM and FF counts are those of the structure.
- for a ROM built as logic, its **contents** (:func:`rom_logic`): a table
  of ``2**a`` words becomes, per output bit, a function of ``a`` address
  bits; a bit that is constant costs nothing, a staircase with few steps
  costs few LUTs. Cores of one structure differ in LUTs by this alone.

:func:`roms` lists the ROMs a DyT core builds, as :mod:`hardyt.hw.datapath.dyt_core`
builds them (which table, its words, width and read ports), and
:func:`features` turns a spec into the vector :data:`FEATURES` the cost
model fits. Everything here is a pure function of the spec dict.
"""
from __future__ import annotations

import numpy as np

from hardyt.quant.contract.fixed import bits_for_unsigned
from hardyt.quant.contract.spec_io import spec_from_dict
from hardyt.quant.contract.tanh import tanh_int
from hardyt.quant.contract.threshold import threshold_stages

from ..datapath.dyt_core import SIGNED_ROM_MAX_BITS

__all__ = ["LUT_INPUTS", "FREE_MUX_LEVELS", "FEATURES", "rom_logic", "roms", "kind", "structure", "features"]

#: Inputs of one LUT of each target: ECP5 has LUT4s, UltraScale+ LUT6s.
LUT_INPUTS = {"ecp5": 4, "xilinx": 6}

#: The cost model's features (see :func:`features`).
FEATURES = ("one", "lane_bits", "rom_logic", "rom_bits")


#: Mux levels above a LUT that a slice builds without LUTs: ECP5's PFUMX and L6MUX21 (5- and 6-input
#: functions from two and four LUT4s), UltraScale+'s MUXF7 and MUXF8.
FREE_MUX_LEVELS = 2


def rom_logic(words, width: int, lut_inputs: int = 4) -> int:
    """How many LUTs a ROM of ``words`` (``width`` bits each) takes as logic: a decision-diagram count.

    Per output bit, the table is cut into blocks of ``2**lut_inputs``
    entries: each distinct block that is not constant is one LUT (shared by
    the addresses that hold the same block). Above them, each distinct larger
    block (``2**(lut_inputs + l)`` entries) whose two halves differ is a 2:1
    mux: the first :data:`FREE_MUX_LEVELS` levels are the slice's own muxes,
    each level above costs one LUT per such block. A constant bit costs
    nothing; a staircase with few steps has few distinct blocks. Words past
    the end read as the last word (the cores hold the address there).

    >>> rom_logic([5] * 64, 3)                       # constant: no logic
    0
    >>> rom_logic(range(16), 4)                      # each bit: one LUT4 of the 4 address bits
    4
    >>> rom_logic([0] * 16 + [1] * 16, 1)            # the 5th address bit: a slice mux, no LUT
    0
    >>> rom_logic([0] * 64 + [1] * 64, 1)            # the 7th: one LUT
    1
    >>> rom_logic(list(range(16)) * 2, 4)            # both halves alike: no mux
    4
    """
    w = np.asarray(list(words), dtype=np.int64)
    a = max(lut_inputs, int(np.ceil(np.log2(max(len(w), 1)))))
    w = np.concatenate([w, np.full((1 << a) - len(w), w[-1] if len(w) else 0, dtype=np.int64)])
    total = 0
    for b in range(width):
        bits = ((w >> b) & 1).astype(np.uint8)
        leaves = bits.reshape(-1, 1 << lut_inputs)
        total += len({r.tobytes() for r in leaves if r.min() != r.max()})
        for level in range(lut_inputs + FREE_MUX_LEVELS + 1, a + 1):
            blocks = bits.reshape(-1, 1 << level)
            half = 1 << (level - 1)
            total += len({r.tobytes() for r in blocks if (r[:half] != r[half:]).any()})
    return total


def roms(spec_dict: dict) -> list[tuple[str, list, int, int]]:
    """The ROMs of a DyT core: ``(name, words, width, read ports)``, as :class:`~hardyt.hw.datapath.dyt_core.DyTCore`
    builds them (per-lane tables are read by every lane; beat ROMs once per beat).

    >>> from hardyt.hw.datapath.cores import random_dyt_spec
    >>> [(n, len(w), b, p) for n, w, b, p in roms(random_dyt_spec(8, 4, 6, 5, seed=0).to_dict())]
    [('tanh', 64, 5, 4)]
    """
    spec = spec_from_dict(spec_dict)
    t, p = spec.tanh, spec.lanes
    out = []
    if spec.alpha_shift is not None:
        out.append(("alpha_shift", list(spec.alpha_shift), bits_for_unsigned(max(spec.alpha_shift)), 1))
    if t.kind == "lut" and t.in_bits <= SIGNED_ROM_MAX_BITS:
        codes = np.arange(1 << t.in_bits, dtype=np.int64)
        codes[codes >= 1 << (t.in_bits - 1)] -= 1 << t.in_bits
        out.append(("tanh", list(tanh_int(codes, t) & ((1 << t.out_bits) - 1)), t.out_bits, p))
    elif t.kind == "lut":
        out.append(("tanh", list(t.table), t.out_bits - 1, p))
    elif t.kind == "threshold":
        mask = (1 << t.word_bits) - 1
        out += [(f"thr{i}", [v & mask for v in words], t.word_bits, p)
                for i, words in enumerate(threshold_stages(t)) if i]
    else:
        icpt = [c + ((1 << t.frac) >> 1) for c in t.intercept]
        out += [("slope", list(t.slope), t.slope_bits, p), ("intercept", icpt, bits_for_unsigned(max(icpt)), p)]
    if spec.affine.mode == "channel":
        a = spec.affine
        out += [("gamma", list(a.gamma), a.gamma_bits, 1), ("beta", list(a.beta), a.beta_bits, 1)]
    return out


def kind(spec_dict: dict) -> str:
    """The core's kind: ``layernorm``, ``lut_signed`` (a ROM over every signed code), ``lut_abs``, ``pwl``,
    ``threshold``; DyT kinds end in ``+channel`` with channel affine.

    >>> from hardyt.hw.datapath.cores import random_dyt_spec
    >>> kind(random_dyt_spec(8, 4, 10, 8, seed=0, affine="channel").to_dict())
    'lut_abs+channel'
    """
    if spec_dict["hardyt"] == "layernorm":
        return "layernorm"
    t = spec_dict["tanh"]
    if t["kind"] in ("pwl", "threshold"):
        k = t["kind"]
    else:
        k = "lut_signed" if t["in_bits"] <= SIGNED_ROM_MAX_BITS else "lut_abs"
    return k + ("+channel" if spec_dict["affine"]["mode"] == "channel" else "")


def structure(spec_dict: dict) -> tuple:
    """What shapes the gates of a core, ROM contents aside: cores alike in this differ only in LUTs.

    The kind, channels, lanes, widths and each ROM's shape (address bits, word
    width): Yosys maps a memory to block RAM or logic by its shape.

    >>> s = {"hardyt": "layernorm", "channels": 4, "lanes": 1, "in_bits": 8, "out_bits": 8}
    >>> structure(s)
    ('layernorm', 4, 1, 8, 8)
    """
    if spec_dict["hardyt"] == "layernorm":
        return ("layernorm", spec_dict["channels"], spec_dict["lanes"], spec_dict["in_bits"], spec_dict["out_bits"])
    shapes = tuple((name, int(np.ceil(np.log2(max(len(w), 2)))), width) for name, w, width, _ in roms(spec_dict))
    return (kind(spec_dict), spec_dict["channels"], spec_dict["lanes"], spec_dict["in_bits"],
            spec_from_dict(spec_dict).out_bits, shapes)


def features(spec_dict: dict, target: str = "ecp5") -> np.ndarray:
    """The cost model's features of a core (:data:`FEATURES`).

    ``lane_bits``: lanes times input plus output width (the registers and
    muxes of every lane); ``rom_logic``: :func:`rom_logic` of each ROM times
    its read ports (each port is its own copy of the logic); ``rom_bits``:
    the ROMs' bits times read ports / 64 (a ROM too big for logic goes to
    block RAM: its size, not its contents, then counts).

    >>> from hardyt.hw.datapath.cores import random_dyt_spec
    >>> features(random_dyt_spec(8, 4, 6, 5, seed=0).to_dict()).tolist()[:2]
    [1.0, 44.0]
    """
    spec = spec_from_dict(spec_dict)
    lane_bits = spec.lanes * (spec.in_bits + spec.out_bits)
    if spec_dict["hardyt"] == "layernorm":
        return np.array([1.0, lane_bits, 0.0, 0.0])
    k = LUT_INPUTS.get(target, 4)
    logic = sum(ports * rom_logic(w, width, k) for _, w, width, ports in roms(spec_dict))
    bits = sum(ports * (1 << int(np.ceil(np.log2(max(len(w), 2))))) * width for _, w, width, ports in roms(spec_dict))
    return np.array([1.0, lane_bits, float(logic), bits / 64])
