"""``hardyt prove``: SymbiYosys proofs bound to the emitted Verilog, and proofs that fail.

Every core kind is proven (DyT LUT and PWL cores, an engine with channel
affine, a LayerNorm core), and two cores altered in their emitted Verilog —
one changing ``m_axis_tdata`` while the sink stalls, one dropping a beat
whose ``tready`` it raised — are rejected with a counterexample trace.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hardyt.hw.datapath.cores import random_dyt_spec, random_layernorm_spec
from hardyt.hw.emission.emit import emit, load_manifest
from hardyt.hw.emission.engine_emit import emit_engine
from hardyt.hw.formal.prove import PROPERTIES, prove_core
from hardyt.scripts.cli import main


def _emit(spec, d: Path) -> Path:
    emit(spec, d)
    return d


def _assert_proven(r: dict, kind: str, mode: str, props: set):
    assert r["kind"] == kind and r["ok"], r
    assert {p["property"] for p in r["properties"]} == props
    for p in r["properties"]:
        assert p["result"] == "proven" and p["mode"] == mode and p["seconds"] > 0, p
        assert mode == "prove" or p["depth"] >= r["latency"] + 2, p


CORE = {"axis", "conservation", "drain", "latency"}


@pytest.mark.parametrize("tanh,affine,lanes", [("lut", "folded", 1), ("pwl", "channel", 2)])
def test_dyt_core_proven_by_induction(tanh, affine, lanes, tmp_path):
    d = _emit(random_dyt_spec(4, lanes, 8, 8, tanh=tanh, affine=affine, alpha_shift=affine == "channel"),
              tmp_path / "core")
    r = prove_core(d)
    _assert_proven(r, "dyt", "prove", CORE)
    assert json.loads((d / "prove.json").read_text()) == r
    assert not (d / "formal").exists()                    # nothing kept when every property holds
    load_manifest(d)                                      # prove.json is not mistaken for a manifest


def test_engine_proven_by_induction(tmp_path):
    from test_engine import layer_set
    emit_engine(layer_set(2, "mixed"), tmp_path / "eng")
    r = prove_core(tmp_path / "eng")
    _assert_proven(r, "dyt-engine", "prove", CORE | {"token_bank", "load_isolation", "bad_frame"})


def test_threshold_engine_load_isolation_covers_beats_in_flight(tmp_path):
    # A threshold engine's beats read their bank in every compare stage, after the handshake:
    # load_isolation also asserts that the loader writes no bank a beat in those stages holds.
    from hardyt.hw.formal.harness import harness
    from hardyt.hw.formal.prove import core_facts
    specs = [random_dyt_spec(4, 2, 4, 4, tanh="threshold", alpha=0.5, name="a"),
             random_dyt_spec(4, 2, 4, 4, tanh="threshold", alpha=0.2, seed=1, name="b")]
    emit_engine(specs, tmp_path / "eng")
    facts = core_facts(load_manifest(tmp_path / "eng"))
    assert len(facts.engine["readers"]) == 4 and harness(facts).count("not read in flight") == 4
    r = prove_core(tmp_path / "eng", properties=["load_isolation"])
    _assert_proven(r, "dyt-engine", "prove", {"load_isolation"})


def test_layernorm_axis_proven_by_induction(tmp_path):
    d = _emit(random_layernorm_spec(2, 2, 6, 6, seed=0), tmp_path / "ln")
    r = prove_core(d, properties=["axis"])
    _assert_proven(r, "layernorm", "prove", {"axis"})


@pytest.mark.slow
def test_layernorm_proven(tmp_path):
    # Conservation by induction over the core's invariants (LayerNormCore.formal_facts); drain and
    # latency bounded, each past latency + 2 tokens, with the reason recorded: minutes of CPU.
    d = _emit(random_layernorm_spec(2, 2, 6, 6, seed=0), tmp_path / "ln")
    r = prove_core(d)
    assert r["ok"], r
    assert {p["property"] for p in r["properties"]} == CORE
    for p in r["properties"]:
        bmc = p["property"] in ("drain", "latency")
        assert p["result"] == "proven" and p["mode"] == ("bmc" if bmc else "prove"), p
        if bmc:
            assert p["depth"] >= r["latency"] + 2 * r["beats_per_token"] and p["bounded_because"], p
    assert json.loads((d / "prove.json").read_text()) == r


def _altered(tmp_path: Path, old: str, new: str) -> Path:
    d = _emit(random_dyt_spec(4, 2, 8, 8), tmp_path / "core")
    v = d / "dyt.v"
    text = v.read_text()
    assert text.count(old) == 1, old
    v.write_text(text.replace(old, new))
    return d


def test_tdata_changing_while_stalled_is_rejected(tmp_path):
    # The right value at the handshake, its complement while the sink stalls.
    d = _altered(tmp_path, "assign m_axis_tdata = o__payload[15:0];",
                 "assign m_axis_tdata = m_axis_tready ? o__payload[15:0] : ~o__payload[15:0];")
    r = prove_core(d, properties=["axis"])
    (p,) = r["properties"]
    assert not r["ok"] and p["result"] == "failed", p
    assert Path(p["trace"]).is_file() and p["trace"].endswith(".vcd")
    assert re.search(r"hardyt_formal\.sv:\d+$", p["assertion"])


def test_dropped_beat_is_rejected(tmp_path, capsys):
    # s_axis_tready stays high but a beat with tdata[0] and tlast set never reaches the pipeline.
    d = _altered(tmp_path, ".i__valid(s_axis_tvalid),", ".i__valid(s_axis_tvalid & ~(s_axis_tdata[0] & s_axis_tlast)),")
    assert main(["prove", str(d), "--property", "drain"]) == 1
    out, err = capsys.readouterr()
    assert "drain: failed" in out and "error:" in err
    trace = re.search(r"trace: (\S+)", out).group(1)
    assert Path(trace).is_file()
    assert json.loads((d / "prove.json").read_text())["ok"] is False


def test_unknown_property_is_one_line_error(tmp_path, capsys):
    d = _emit(random_layernorm_spec(2, 2, 6, 6, seed=0), tmp_path / "ln")
    with pytest.raises(Exception) as e:
        prove_core(d, properties=["token_bank"])
    assert "no property token_bank for a layernorm core" in str(e.value)


def test_cli_offers_every_property():
    from hardyt.scripts.cmd_prove import PROPERTY_NAMES
    assert set(PROPERTY_NAMES) == set(PROPERTIES)


def test_equivalence_miter(tmp_path):
    # The emitted netlist is equivalent to itself; one that complements tdata while the sink stalls is not.
    from hardyt.hw.formal.equiv import equivalent
    d = _emit(random_dyt_spec(4, 2, 8, 8), tmp_path / "core")
    same = tmp_path / "same.v"
    shutil.copy(d / "dyt.v", same)
    assert equivalent(d, same)["result"] == "equivalent"
    bad = _altered(tmp_path / "bad", "assign m_axis_tdata = o__payload[15:0];",
                   "assign m_axis_tdata = m_axis_tready ? o__payload[15:0] : ~o__payload[15:0];")
    r = equivalent(d, bad / "dyt.v")
    assert r["result"] == "differs" and r["cycle"] >= 1 and Path(r["trace"]).is_file(), r


def test_equivalence_by_induction(tmp_path):
    # A LUT/folded core reads no per-channel constant: its channel counter tied low changes nothing,
    # proven without a bound; inverting an output bit is not proven equal.
    from hardyt.hw.formal.equiv import equivalent_by_induction, netlist_prep
    from hardyt.hw.tools.toolchain import yosys_cmd
    d = _emit(random_dyt_spec(4, 1, 8, 8), tmp_path / "core")
    prep = "; ".join(netlist_prep(load_manifest(d)))
    subprocess.run([*yosys_cmd(), "-q", "-p", f"{prep}; mutate -list 400 -seed 1 -o m.txt"], cwd=d, check=True)
    cmds = (d / "m.txt").read_text().splitlines()
    beat = next(c for c in cmds if "-mode const0" in c and "-wire core.beat -wirebit 0" in c)
    out = next(c for c in cmds if "-mode inv" in c and "-wire m_axis_tdata " in c)
    r = equivalent_by_induction(d, beat)
    assert r["result"] == "equivalent" and "core.beat" in r["unpaired"], r
    r = equivalent_by_induction(d, out)
    assert r["result"] == "unproven" and any(p.startswith("m_axis_tdata") for p in r["unproven_pairs"]), r


def test_equivalence_at_full_rate_only(tmp_path):
    # The output buffer's second slot holds a beat only while the sink stalls: a bit of it forced to 0 is
    # proven equal with m_axis_tready held high, and not without.
    from hardyt.hw.formal.equiv import equivalent_by_induction, netlist_prep
    from hardyt.hw.tools.toolchain import yosys_cmd
    d = _emit(random_dyt_spec(4, 1, 8, 8), tmp_path / "core")
    prep = "; ".join(netlist_prep(load_manifest(d)))
    subprocess.run([*yosys_cmd(), "-q", "-p", f"{prep}; mutate -list 400 -seed 1 -o m.txt"], cwd=d, check=True)
    tail = next(c for c in (d / "m.txt").read_text().splitlines()
                if "-mode const0" in c and "-wire core.obuf.tail " in c)
    r = equivalent_by_induction(d, tail, held_high=("m_axis_tready",))
    assert r["result"] == "equivalent" and r["held_high"] == ["m_axis_tready"], r
    r = equivalent_by_induction(d, tail)
    assert r["result"] == "unproven" and "held_high" not in r, r
    with pytest.raises(ValueError, match="no port 'm_axis_ready'"):
        equivalent_by_induction(d, tail, held_high=("m_axis_ready",))


def test_equivalence_under_invariants(tmp_path):
    # A threshold core's first compare stage reads two even thresholds (seed 4: 0xde, 0x22): its B bit 0
    # tied low is equal only in the states the core reaches. Proven with that invariant; refused when the
    # invariant is false, or when the mutant differs.
    from hardyt.hw.formal.equiv import netlist_prep
    from hardyt.hw.formal.equiv_assumed import equivalent_assuming
    from hardyt.hw.formal.harness import Probe
    from hardyt.hw.tools.toolchain import yosys_cmd
    d = _emit(random_dyt_spec(4, 2, 8, 8, tanh="threshold", seed=4), tmp_path / "core")
    line = next(k for k, text in enumerate((d / "dyt.v").read_text().splitlines(), 1)
                if "$signed(x_s1_0) >= $signed(" in text)
    prep = "; ".join(netlist_prep(load_manifest(d)))
    listed = subprocess.run([*yosys_cmd(), "-p", f"{prep}; select -list t:$ge"], cwd=d, check=True,
                            capture_output=True, text=True).stdout
    cell = re.search(rf"^dyt/(\S+\$ge\$dyt\.v:{line}\$\d+)$", listed, re.M).group(1)
    tied = f"mutate -mode const0 -module dyt -cell {cell} -port B -portbit 0"
    probes = [Probe("p_thr1", "core.thr1_rom0.rom.data", 16)]
    even = ["p_thr1[0] == 1'b0 && p_thr1[8] == 1'b0"]
    r = equivalent_assuming(d, tied, probes, even, work=tmp_path / "even")
    assert r["result"] == "equivalent" and r["proofs"]["gold"]["result"] == "proven", r
    r = equivalent_assuming(d, tied, probes, ["p_thr1 == 16'h0"], work=tmp_path / "false")
    assert r["result"] == "unproven" and r["proofs"]["gold"]["result"] == "failed", r
    subprocess.run([*yosys_cmd(), "-q", "-p", f"{prep}; mutate -list 400 -seed 1 -o m.txt"], cwd=d, check=True)
    xored = next(c for c in (d / "m.txt").read_text().splitlines()   # an output bit xor-ed with another
                 if "-mode cnot1" in c and "-wire m_axis_tdata " in c)
    assert equivalent_assuming(d, xored, probes, even, work=tmp_path / "xor")["result"] == "unproven"


def test_single_bit_pairs_when_the_mutant_holds_a_pair_apart(tmp_path):
    # A folded LUT core reads no channel: its control word's channel bit, inverted where it is read, is the
    # original. That pair differs in every state, so the induction's base case fails for all pairs;
    # equivalent_assuming then proves the pairs one by one first (equiv_simple) and closes.
    from hardyt.hw.formal.equiv import netlist_prep
    from hardyt.hw.formal.equiv_assumed import equivalent_assuming
    from hardyt.hw.tools.toolchain import yosys_cmd
    d = _emit(random_dyt_spec(2, 1, 4, 4, seed=1), tmp_path / "core")
    prep = "; ".join(netlist_prep(load_manifest(d)))
    subprocess.run([*yosys_cmd(), "-q", "-p", f"{prep}; mutate -list 400 -seed 1 -o m.txt"], cwd=d, check=True)
    inverted = next(c for c in (d / "m.txt").read_text().splitlines()
                    if "-mode inv" in c and "-port Q" in c and "-wire core.ctrl_t -wirebit 2 " in c)
    r = equivalent_assuming(d, inverted, [], [], work=tmp_path / "w")
    assert r["result"] == "equivalent", r
    assert "equiv_simple" in (tmp_path / "w" / "equiv.ys").read_text()


def test_tool_wrappers_written_by_threads_at_once(tmp_path, monkeypatch):
    """Dask's in-process workers are threads of one process: the first proofs on a fresh machine write the
    solver wrappers from several threads at once, and each must get complete, runnable wrappers."""
    from concurrent.futures import ThreadPoolExecutor

    from hardyt.hw.formal.prove import tool_dir

    import os
    import time

    monkeypatch.setenv("HARDYT_CACHE", str(tmp_path))
    replace = os.replace

    def slow_replace(src, dst):     # a slow file system: the threads' writes overlap
        time.sleep(0.05)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", slow_replace)
    with ThreadPoolExecutor(8) as pool:
        roots = list(pool.map(lambda _: tool_dir(), range(8)))
    assert len(set(roots)) == 1
    wrappers = sorted(p.name for p in roots[0].iterdir())
    assert wrappers == ["yices-smt2", "yosys", "yosys-smtbmc", "yosys-witness"]
    assert subprocess.run([str(roots[0] / "yosys"), "-V"], capture_output=True).returncode == 0
