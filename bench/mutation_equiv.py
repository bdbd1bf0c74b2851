"""Is a mutant of bench/mutation.py the original? The equivalence checks, cheapest first, and the invariants.

:func:`equivalence` tries, until one proves it:

1. the unbounded induction over paired signals
   (:func:`hardyt.hw.formal.equiv.equivalent_by_induction`: decides most in seconds);
2. the induction over single-bit pairs
   (:func:`hardyt.hw.formal.equiv_assumed.equivalent_assuming`): the netlists split
   into one-bit nets, so that a mutated bit is unpaired alone and not its whole word;
   for the mutants listed in :data:`INVARIANTS`, under invariants of the core: each
   proven by SymbiYosys k-induction on the core (and on the mutant, ``gate``), then
   assumed. The table says which states the core never reaches and why the plain
   induction, which starts from any state, could not close (a mutant listed without
   invariants has the nets its bit reaches unpaired from the first round);
3. the bounded miter (:func:`hardyt.hw.formal.equiv.equivalent`: it finds a difference
   the induction cannot name).

For a mutant none of them decides, :func:`full_rate` says where a difference would have to hide:
the induction again with ``m_axis_tready`` held high (the sink never stalls). Equal there, the
mutant can differ only under backpressure; that is a note on a survivor, never a verdict.

The invariants are keyed by the ``mutate`` command (the mutant, whatever its
number in a run) and written over probes of the flattened core (``Probe`` paths
as in the formal harness, without its ``dut.``).
"""
from __future__ import annotations

from pathlib import Path

from hardyt.hw.formal.equiv import equivalent, equivalent_by_induction
from hardyt.hw.formal.equiv_assumed import equivalent_assuming
from hardyt.hw.formal.harness import Probe

#: Tag and pipeline control registers of the test engine (bench/mutation.py ``cores``): a bank's tag
#: is {usable, layer, last_beat, affine [3], shift [4], top [10:5]}; ``ctrl_*`` carry affine and top.
_ENGINE_CTRL = [Probe(f"p_{s}_{f}", f"axis.core.ctrl_{s}.{f}", w) for s in ("t", "r", "prod", "acc")
                for f, w in (("affine", 1), ("top", 6))]
_ENGINE_TAGS = [Probe("p_tag0", "axis.core.loader.tag0", 11), Probe("p_tag1", "axis.core.loader.tag1", 11),
                Probe("p_cur", "axis.core.cur", 11), Probe("p_pend", "axis.core.loader.pending", 11),
                Probe("p_hok", "axis.core.loader.header_ok", 1), Probe("p_fsm", "axis.core.loader.fsm_state", 3)]


def _cone(tag: str, bit: int, field: str, fbit: int | None) -> list[str]:
    """Single-bit nets of bank ``tag``'s bit ``bit`` (``field`` bit ``fbit``; None: one bit), of its copies in
    the token register and the four pipeline control words (bit ``bit - 1``): seeded unpaired, one round for all."""
    c = "dut.axis.core"
    field = field if fbit is None else f"{field}_{fbit}"   # a one-bit field is not split: no index
    nets = [f"{c}.loader.{tag}_{bit}", f"{c}.loader.{tag}.{field}", f"{c}.cur_{bit}", f"{c}.cur.{field}",
            f"{c}.tag_{bit}", f"{c}.tag.{field}", f"{c}.ctrl_{bit - 1}", f"{c}.ctrl.{field}"]
    nets += [n for s in ("t", "r", "prod", "acc") for n in (f"{c}.ctrl_{s}_{bit - 1}", f"{c}.ctrl_{s}.{field}")]
    # The bank-tag multiplexer's copies (one per field read) and the registers' next values.
    nets += [f"{c}.${n}_{bit}" for n in (21, 22, 24, 25, 27, 28, 55, 56, 58, 59, 71)]
    nets += [f"{c}.${n}_{bit - 1}" for n in (74, 79, 86, 91)]
    b = int(tag[-1])
    nets += [n for p in (c, f"{c}.loader") for n in (f"{p}.banks[{b}].{field}", f"{p}.banks[{b}]_{bit}",
                                                      f"{p}.banks_{11 * b + bit}")]
    return nets


def _affine_top_bit_clear(bit: int) -> list[str]:
    """Every tag, token register and pipeline control word with ``affine`` set has ``top[bit]`` clear; so
    has the frame in progress once its affine beat was checked (GAMMA 6, BETA 7, CHECK 5, ``header_ok``):
    the loader takes only output widths ``2 .. out_bits`` (``top[k]`` is ``out_bits > k + 1``)."""
    tb = 5 + bit
    return ([f"!(p_fsm == 3'd5 || p_fsm == 3'd6 || p_fsm == 3'd7) || !p_hok || !p_pend[3] || !p_pend[{tb}]"]
            + [f"!{p}[3] || !{p}[{tb}]" for p in ("p_tag0", "p_tag1", "p_cur")]
            + [f"!p_{s}_affine || !p_{s}_top[{bit}]" for s in ("t", "r", "prod", "acc")])


#: mutate command -> probes, invariants of the core (``gold``) and of the mutant (``gate``), and why.
INVARIANTS = {
    r"mutate -mode const0 -module dyt -cell $flatten\core.$ge$dyt.v:372$6 -port B -portbit 0 "
    r"-src dyt.v:372.17-372.56": {
        "probes": [Probe("p_thr1", "core.thr1_rom0.rom.data", 16)],
        "gold": ["p_thr1[0] == 1'b0 && p_thr1[8] == 1'b0"],
        "why": "the first compare stage's thresholds (0xde, 0x22) are even: the bit forced to 0 is 0 in every "
               "word its ROM's read register holds"},
    r"mutate -mode cnot1 -module layernorm -cell $flatten\core.\apply.$procmux$1580 -port B -portbit 4 "
    r"-ctrlbit 15 -src layernorm.v:1209.9-1209.17 -src layernorm.v:1209.5-1211.8": {
        "probes": [Probe("p_gamma", "core.apply.gamma_rom.rom.data", 16)],
        "gold": ["p_gamma[15] == 1'b0"],
        "why": "lane 1's gammas (0x17, 0x09) are positive: the control bit (the gamma ROM's read register, "
               "bit 15) is never set"},
    r"mutate -mode const0 -module eng -cell $flatten\axis.\core.\loader.$procmux$1586 -port B -portbit 10 "
    r"-src eng.v:2254.23-2254.23 -src eng.v:2242.5-2265.12": {
        "probes": _ENGINE_TAGS + _ENGINE_CTRL, "gold": _affine_top_bit_clear(5), "gate": _affine_top_bit_clear(5),
        "unpaired": _cone("tag0", 10, "top", 5) + ["dut.axis.core.loader.$126_10", "p_tag0_10", "p_cur_10"]
        + [f"p_{s}_top_5" for s in ("t", "r", "prod", "acc")],
        "why": "bank 0's tag gets top[5] = 0 on loading: top[5] (out_bits > 6) is 0 in every frame the loader "
               "takes (out_bits <= 6), and read only with affine set"},
    r"mutate -mode inv -module eng -cell $flatten\axis.\core.\loader.$procmux$1478 -port Y -portbit 4 "
    r"-src eng.v:2285.23-2285.23 -src eng.v:2273.5-2296.12": {
        "probes": [], "gold": [], "unpaired": _cone("tag1", 4, "shift", None) + ["dut.axis.core.loader.$127_4"],
        "why": "bank 1's tag gets its shift bit inverted: the set has one channel affine shift, so the "
               "engine never reads the field (single-bit pairs: the rest of the tag stays paired)"},
}


def _tag(row: dict) -> str:
    """The mutant's id as a directory name."""
    return row["id"].replace("/", "_")


def _verdict(r: dict) -> dict:
    """What a results row keeps of an induction that did not prove the mutant equal."""
    return {k: r[k] for k in ("result", "seconds", "unproven_pairs", "error") if k in r}


def equivalence(core: Path, row: dict, scratch: Path, timeout: float, induction_timeout: float) -> dict:
    """Is the mutant ``row`` of ``core`` the original? Induction, then induction over single-bit pairs (under
    invariants, for the listed mutants), then the bounded miter (``timeout`` seconds)."""
    ind = equivalent_by_induction(core, row["cmd"], work=scratch / f"induct-{_tag(row)}", timeout=induction_timeout)
    if ind["result"] == "equivalent":
        return ind
    tried = {"induction": _verdict(ind)}
    r = single_bit(core, row, scratch, induction_timeout)
    if r["result"] == "equivalent":
        return r
    tried["invariants" if row["cmd"] in INVARIANTS else "single-bit pairs"] = r
    return (equivalent(core, row["verilog"], work=scratch / f"equiv-{_tag(row)}", timeout=timeout)
            | {"method": "bmc"} | tried)


def single_bit(core: Path, row: dict, scratch: Path, timeout: float) -> dict:
    """The induction over single-bit pairs, under the mutant's :data:`INVARIANTS` if listed (then at least
    1800 s: the engine's take minutes a round)."""
    inv = INVARIANTS.get(row["cmd"])
    work = scratch / f"assume-{_tag(row)}"
    if inv is None:
        r = equivalent_assuming(core, row["cmd"], [], [], work=work, timeout=timeout)
        return r | {"method": "induction over single-bit pairs"}
    r = equivalent_assuming(core, row["cmd"], inv["probes"], inv["gold"], inv.get("gate", ()), work=work,
                            timeout=max(timeout, 1800), unpaired=inv.get("unpaired", ()))
    return r | ({"why": inv["why"]} if r["result"] == "equivalent" else {})


def full_rate(core: Path, row: dict, scratch: Path, timeout: float) -> dict:
    """The induction of :func:`equivalence` with the sink never stalling: is the mutant equal at full rate?"""
    return _verdict(equivalent_by_induction(core, row["cmd"], work=scratch / f"full-rate-{_tag(row)}",
                                            timeout=timeout, held_high=("m_axis_tready",)))
