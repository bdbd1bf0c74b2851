# amaranth: UnusedElaboratable=no
"""Verilog emission: files, manifest, determinism, lint, and the ROMs really read from .mem files."""
import json
import subprocess

import numpy as np
import pytest

from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.datapath.dyt_core import SIGNED_ROM_MAX_BITS, DyTCore
from hardyt.hw.emission.emit import MANIFEST_KEYS, emit, load_manifest
from hardyt.hw.tools.toolchain import iverilog_cmd, verilator_cmd, verilator_env
from hardyt.quant.errors import HardytError
from hardyt.quant.contract.spec_io import load_spec
from hardyt.quant.contract.fixed import signed_range
from hardyt.quant.contract.stream import pack_lanes, unpack_lanes
from hardyt.quant.contract.tanh import tanh_int

SPECS = {
    # 8-bit tanh input: one ROM over every signed code. With alpha shifts the
    # tanh input is wider: a table on |x|.
    "lut_folded_p1": dict(channels=4, lanes=1, tanh="lut", affine="folded"),
    "lut_channel_shift_p2": dict(channels=4, lanes=2, tanh="lut", affine="channel", alpha_shift=True),
    "pwl_channel_shift_p4": dict(channels=8, lanes=4, tanh="pwl", affine="channel", alpha_shift=True, segments=8),
    # One input code per segment (seg_shift 0) and C == P: no 0-bit signals may reach the Verilog.
    "pwl_seg0_one_beat": dict(channels=2, lanes=2, tanh="pwl", affine="folded", segments=128, alpha=0.05),
}


def make(kind):
    return random_dyt_spec(in_bits=8, out_bits=8, seed=5, name=kind, **SPECS[kind])


@pytest.fixture(scope="module", params=sorted(SPECS))
def emitted(request, tmp_path_factory):
    spec = make(request.param)
    d = tmp_path_factory.mktemp(request.param)
    return spec, d, emit(spec, d)


def test_files_and_manifest(emitted):
    spec, d, path = emitted
    m = load_manifest(d)
    assert path == d / f"{spec.name}.json"
    assert set(MANIFEST_KEYS) <= set(m)
    assert m["top"] == m["name"] == spec.name and m["core"] == "dyt"
    assert m["latency"] == DyTCore(spec).latency
    assert m["s_axis_tdata_width"] == spec.lanes * spec.in_bits
    assert m["m_axis_tdata_width"] == spec.lanes * spec.out_bits
    assert load_spec(d / f"{spec.name}.spec.json") == spec
    assert m["spec"] == spec.to_dict()
    text = (d / m["verilog"]).read_text()
    for mem in m["mems"]:
        assert f'"{mem}"' in text
        words = (d / mem).read_text().split()
        assert len(words) == m["roms"][mem]["depth"]
    for port in ("aclk", "aresetn", "s_axis_tdata", "s_axis_tvalid", "s_axis_tready", "s_axis_tlast",
                 "m_axis_tdata", "m_axis_tvalid", "m_axis_tready", "m_axis_tlast"):
        assert f"input {port}" in text or f"output {port}" in text or f"] {port};" in text


def test_tanh_rom_file_holds_the_table(emitted):
    spec, d, _ = emitted
    t = spec.tanh
    words = [int(w, 16) for w in (d / f"{spec.name}_{'slope' if t.kind == 'pwl' else 'tanh'}.mem").read_text().split()]
    if t.kind == "lut" and t.in_bits <= SIGNED_ROM_MAX_BITS:
        # The word at the address made of code x's two's complement bits is the golden tanh of x.
        lo, hi = signed_range(t.in_bits)
        assert len(words) == 1 << t.in_bits
        for x in range(lo, hi + 1):
            assert unpack_lanes(words[x % (1 << t.in_bits)], 1, t.out_bits) == [int(tanh_int(x, t))], x
    elif t.kind == "lut":
        assert words == list(t.table)
    else:
        assert words == list(t.slope)


def test_reemission_is_byte_identical(emitted, tmp_path):
    spec, d, _ = emitted
    emit(spec, tmp_path)
    first = sorted(p.name for p in d.iterdir())
    assert first == sorted(p.name for p in tmp_path.iterdir())
    for name in first:
        assert (d / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_verilator_lint_clean(emitted):
    """-Wall clean; emit.py explains the waivers for Yosys's generated part."""
    spec, d, m = emitted
    r = subprocess.run([*verilator_cmd(), "--lint-only", "-Wall", f"{spec.name}.v"], cwd=d,
                       env=verilator_env(), capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr


def _tb(name, n, wi, wo, pause):
    """Icarus testbench: prints "I cycle" per input and "O cycle data" per output handshake."""
    valid, ready = ("($random & 1)", "($random & 3) != 0") if pause else ("1", "1")
    return f"""
module tb;
reg aclk = 0, aresetn = 0; always #5 aclk = ~aclk;
reg [{wi}:0] inm [0:{n - 1}];
reg [{wi - 1}:0] s_axis_tdata = 0; reg s_axis_tvalid = 0, s_axis_tlast = 0, m_axis_tready = 0;
wire s_axis_tready, m_axis_tvalid, m_axis_tlast; wire [{wo - 1}:0] m_axis_tdata;
{name} dut(.aclk(aclk), .aresetn(aresetn), .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid),
  .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast), .m_axis_tdata(m_axis_tdata),
  .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast));
integer i = 0, o = 0, cyc = 0;
initial begin
  $readmemh("tb_in.hex", inm);
  repeat (3) @(posedge aclk); aresetn <= 1;
  while (o < {n} && cyc < 20000) begin
    @(posedge aclk); cyc = cyc + 1;
    if (m_axis_tvalid && m_axis_tready) begin
      $display("O %0d %h", cyc, {{m_axis_tlast, m_axis_tdata}}); o = o + 1;
    end
    if (s_axis_tvalid && s_axis_tready) begin $display("I %0d", cyc); i = i + 1; end
    s_axis_tvalid <= (i < {n}) && {valid};
    {{s_axis_tlast, s_axis_tdata}} <= inm[i < {n} ? i : 0];
    m_axis_tready <= {ready};
  end
  $finish;
end
endmodule
"""


def _pack(rows, bits, last):
    return [(int(l) << (len(r) * bits)) | pack_lanes(r, bits) for r, l in zip(rows, last)]


@pytest.mark.parametrize("pause", [True, False], ids=["random_valid_ready", "full_rate"])
def test_icarus_runs_emitted_verilog_bit_exact(emitted, tmp_path, pause):
    """The emitted top in Icarus, ROMs read by $readmemh from copies of the .mem files.

    With random valid/ready: every beat equals the golden model. At full rate:
    also one beat per cycle and the manifest's latency.
    """
    spec, d, path = emitted
    m = load_manifest(d)
    for f in [m["verilog"], *m["mems"]]:
        (tmp_path / f).write_bytes((d / f).read_bytes())
    rng = np.random.default_rng(0)
    n = 60
    x = rng.integers(-128, 128, (n, spec.lanes))
    last = (rng.random(n) < 0.2).astype(int)
    (tmp_path / "tb_in.hex").write_text("".join(f"{w:x}\n" for w in _pack(x, spec.in_bits, last)))
    (tmp_path / "tb.v").write_text(_tb(spec.name, n, m["s_axis_tdata_width"], m["m_axis_tdata_width"], pause))
    subprocess.run([*iverilog_cmd(), "-g2012", "-o", "tb.vvp", "tb.v", m["verilog"]], cwd=tmp_path, check=True)
    r = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=tmp_path, capture_output=True, text=True, check=True)
    lines = [ln.split() for ln in r.stdout.splitlines()]
    t_in = [int(ln[1]) for ln in lines if ln[0] == "I"]
    t_out = [int(ln[1]) for ln in lines if ln[0] == "O"]
    got = [int(ln[2], 16) for ln in lines if ln[0] == "O"]
    assert got == _pack(spec.reference_stream(x, last), spec.out_bits, last)
    if not pause:
        assert np.all(np.diff(t_in) == 1) and np.all(np.diff(t_out) == 1)
        assert t_out[0] - t_in[0] == m["latency"]


def test_load_manifest_errors(tmp_path, emitted):
    with pytest.raises(HardytError, match="no hardyt manifest"):
        load_manifest(tmp_path)
    spec, d, _ = emitted
    m = load_manifest(d)
    for f in [m["verilog"], *m["mems"], f"{spec.name}.json"]:
        (tmp_path / f).write_bytes((d / f).read_bytes())
    (tmp_path / m["mems"][0]).unlink()
    with pytest.raises(HardytError, match="missing emitted file"):
        load_manifest(tmp_path)
    with pytest.raises(HardytError, match="not a directory"):
        load_manifest(tmp_path / "nope")


def test_emit_refuses_file_as_out_dir(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(HardytError, match="not a directory"):
        emit(make("lut_folded_p1"), f)


@pytest.mark.parametrize("kw", [
    dict(channels=2, lanes=1, in_bits=6, out_bits=2, tanh="lut", affine="channel", alpha=5.0),   # 1-entry table
    dict(channels=3, lanes=3, in_bits=10, out_bits=4, tanh="lut", affine="channel"),             # C == P
    dict(channels=4, lanes=2, in_bits=2, out_bits=2, tanh="pwl", affine="folded", segments=16),  # 2-bit codes
    dict(channels=6, lanes=3, in_bits=8, out_bits=10, tanh="pwl", affine="channel", segments=1),
    dict(channels=4, lanes=2, in_bits=9, out_bits=6, tanh="lut", affine="folded", drop_bits=8),
], ids=["one_entry", "c_eq_p", "two_bit", "one_segment", "max_drop"])
def test_lint_clean_on_corner_shapes(kw, tmp_path):
    emit(random_dyt_spec(seed=1, alpha_shift=True, **kw), tmp_path)
    r = subprocess.run([*verilator_cmd(), "--lint-only", "-Wall", "dyt.v"], cwd=tmp_path,
                       env=verilator_env(), capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr
