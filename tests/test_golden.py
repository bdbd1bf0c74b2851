"""The golden model against an independent plain-Python reference, and spec validation."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hardyt.quant import ChannelAffine, DyTSpec, FoldedAffine, HardytError, SpecError, golden, load_spec
from hardyt.quant.contract.spec import SPEC_VERSION
from hardyt.quant.contract.tanh import TanhLUT, build_lut, build_pwl, range_out_scale


def slow_reference(x_row, spec):
    """One token, element by element, with Python ints only (written from docs/fixed_point.md)."""
    t = spec.tanh
    top = 2 ** (t.out_bits - 1) - 1
    out = []
    for c, x in enumerate(x_row):
        if spec.alpha_shift is not None:
            x = x * 2 ** spec.alpha_shift[c]
        m = -x if x < 0 else x
        if t.kind == "lut":
            i = m // 2 ** t.drop_bits
            y = t.table[i] if i < len(t.table) else top
        else:
            seg = m // 2 ** t.seg_shift
            if seg < len(t.slope):
                acc = t.intercept[seg] + t.slope[seg] * (m % 2 ** t.seg_shift)
                y = min(top, (acc + 2 ** (t.frac - 1)) // 2 ** t.frac if t.frac else acc)
            else:
                y = top
        y = -y if x < 0 else y
        a = spec.affine
        if a.mode == "channel":
            acc = a.gamma[c] * y + a.beta[c]
            if a.shift:
                acc = (acc + 2 ** (a.shift - 1)) // 2 ** a.shift
            y = max(-(2 ** (a.out_bits - 1)), min(2 ** (a.out_bits - 1) - 1, acc))
        out.append(y)
    return out


@st.composite
def specs(draw):
    in_bits = draw(st.integers(2, 12))
    out_bits = draw(st.integers(2, 12))
    lanes = draw(st.sampled_from([1, 2, 4]))
    channels = lanes * draw(st.integers(1, 6))
    alpha_shift = None
    extra = 0
    if draw(st.booleans()):
        alpha_shift = draw(st.lists(st.integers(0, 3), min_size=channels, max_size=channels))
        extra = max(alpha_shift)
    tin = in_bits + extra
    alpha_scale = draw(st.floats(0.05, 8.0)) / 2 ** (tin - 1)
    in_scale = draw(st.floats(1e-3, 1.0))
    alpha = alpha_scale / in_scale
    if draw(st.booleans()):
        tanh = build_lut(tin, out_bits, alpha * in_scale, draw(st.integers(0, min(3, tin - 1))))
    else:
        tanh = build_pwl(tin, out_bits, alpha * in_scale, draw(st.sampled_from([1, 2, 4, 8])))
    affine = FoldedAffine()
    if draw(st.booleans()):
        gb, bb = draw(st.integers(2, 12)), draw(st.integers(2, 20))
        g = st.integers(-(2 ** (gb - 1)), 2 ** (gb - 1) - 1)
        b = st.integers(-(2 ** (bb - 1)), 2 ** (bb - 1) - 1)
        affine = ChannelAffine(draw(st.lists(g, min_size=channels, max_size=channels)),
                               draw(st.lists(b, min_size=channels, max_size=channels)),
                               gb, bb, draw(st.integers(0, 12)), draw(st.integers(2, 12)), 0.01)
    return DyTSpec(channels, lanes, in_bits, in_scale, alpha, tanh, affine, alpha_shift, "h")


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_golden_equals_slow_reference(data):
    spec = data.draw(specs())
    lo, hi = -(2 ** (spec.in_bits - 1)), 2 ** (spec.in_bits - 1) - 1
    code = st.one_of(st.sampled_from([lo, hi, lo + 1, hi - 1, 0, -1, 1]), st.integers(lo, hi))
    rows = data.draw(st.lists(st.lists(code, min_size=spec.channels, max_size=spec.channels),
                              min_size=1, max_size=4))
    rows.append([lo] * spec.channels)     # saturation extremes always included
    rows.append([hi] * spec.channels)
    got = golden(np.array(rows, dtype=np.int64), spec)
    assert got.dtype == np.int64
    for row, g in zip(rows, got.tolist()):
        assert g == slow_reference(row, spec)
    # spec JSON round trip preserves behaviour
    again = DyTSpec.from_json(spec.to_json())
    assert again == spec


def test_stream_matches_token_layout():
    spec = DyTSpec(6, 2, 8, 0.1, 1.0, build_lut(8, 8, 0.1),
                   ChannelAffine(range(1, 7), range(6), 8, 8, 2, 8, 0.1))
    x = np.random.default_rng(0).integers(-128, 128, size=(5, 6))
    beats = x.reshape(15, 2)
    last = np.tile([0, 0, 1], 5)
    assert np.array_equal(spec.reference_stream(beats, last).reshape(5, 6), golden(x, spec))


def _spec_dict(**changes):
    d = DyTSpec(4, 2, 6, 0.05, 2.0, build_lut(6, 8, 0.1)).to_dict()
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return d


@pytest.mark.parametrize("changes,field", [
    (dict(in_bits=0), "in_bits"),
    (dict(in_bits=-4), "in_bits"),
    (dict(channels=0), "channels"),
    (dict(lanes=3), "lanes"),                       # C = 4 is not a multiple of P = 3
    (dict(tanh__out_bits=1), "tanh.out_bits"),
    (dict(tanh__in_bits=0), "tanh.in_bits"),
    (dict(tanh__table=[0] * 40), "tanh.table"),     # more entries than indices
    (dict(tanh__table=[0, 300]), "tanh.table[1]"),  # entry beyond full scale
    (dict(alpha=float("nan")), "alpha"),
    (dict(tanh__alpha_scale=float("nan")), "tanh.alpha_scale"),
    (dict(in_scale=-1.0), "in_scale"),
    (dict(version=SPEC_VERSION + 1), "version"),
    (dict(hardyt="other"), "hardyt"),
    (dict(affine__mode="nope"), "affine.mode"),
    (dict(alpha_shift=[0, 1]), "alpha_shift"),
])
def test_bad_specs_name_the_field(changes, field):
    with pytest.raises(SpecError) as e:
        DyTSpec.from_dict(_spec_dict(**changes))
    assert e.value.field == field
    assert field in str(e.value)


def test_channel_affine_table_size_mismatch():
    with pytest.raises(SpecError, match="affine.gamma"):
        DyTSpec(4, 2, 6, 0.05, 2.0, build_lut(6, 8, 0.1), ChannelAffine([1, 2], [0, 0], 8, 8, 0, 8, 0.1))


def test_missing_key_and_bad_json(tmp_path):
    d = _spec_dict()
    del d["tanh"]["table"]
    with pytest.raises(SpecError, match="table"):
        DyTSpec.from_dict(d)
    p = tmp_path / "broken.json"
    p.write_text("{ not json")
    with pytest.raises(SpecError, match="broken.json"):
        load_spec(p)
    with pytest.raises(HardytError, match="missing.json"):
        load_spec(tmp_path / "missing.json")


def test_save_load_roundtrip(tmp_path):
    spec = DyTSpec(4, 2, 6, 0.05, 2.0, build_pwl(6, 8, 0.1, 4))
    spec.save(tmp_path / "s.json")
    assert load_spec(tmp_path / "s.json") == spec
    assert json.loads((tmp_path / "s.json").read_text())["version"] == 2   # the oldest that holds a pwl tanh
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]   # no temporary left behind


def test_golden_rejects_bad_input():
    spec = DyTSpec(4, 2, 6, 0.05, 2.0, build_lut(6, 8, 0.1))
    with pytest.raises(HardytError, match="channels=4"):
        golden(np.zeros((2, 3), dtype=np.int64), spec)
    with pytest.raises(HardytError, match="-32..31"):
        golden(np.full((1, 4), 40), spec)
    with pytest.raises(HardytError, match="integer"):
        golden(np.zeros((1, 4)), spec)


def test_alpha_scale_must_match():
    with pytest.raises(SpecError, match="tanh.alpha_scale"):
        DyTSpec(4, 2, 6, 0.05, 3.0, build_lut(6, 8, 0.1))
    assert math.isclose(DyTSpec(4, 2, 6, 0.05, 2.0, build_lut(6, 8, 0.1)).out_scale, 1 / 127)


def test_version_1_spec_file_loads_with_its_meaning():
    """A version-1 file has no tanh.out_scale: its tanh code T means 1.0, as it always did."""
    path = Path(__file__).parent / "data" / "dyt_v1.spec.json"
    spec = load_spec(path)
    assert json.loads(path.read_text())["version"] == 1 < SPEC_VERSION
    assert spec.tanh.out_scale == 1 / 7 and spec.tanh.table == (0, 3, 5, 6)
    assert spec.out_scale == 0.015625
    # tanh codes 0, 3 | 6, -7; channel 0: 64 t >> 6; channel 1: (-32 t + 256) >> 6, rounded half up
    assert golden(np.array([[0, 1], [3, -8]]), spec).tolist() == [[0, 3], [6, 8]]
    assert DyTSpec.from_dict(spec.to_dict()) == spec   # rewritten as the current version, same meaning
    assert spec.to_dict()["version"] == 2 < SPEC_VERSION and spec.to_dict()["tanh"]["out_scale"] == 1 / 7


def test_current_version_needs_tanh_out_scale():
    d = DyTSpec(4, 2, 6, 0.05, 2.0, build_lut(6, 8, 0.1)).to_dict()
    del d["tanh"]["out_scale"]
    with pytest.raises(SpecError, match="out_scale"):
        DyTSpec.from_dict(d)


def test_out_scale_is_recorded_and_round_trips():
    t = build_lut(6, 8, 0.01, out_scale=range_out_scale(6, 8, 0.01))
    spec = DyTSpec(4, 2, 6, 0.05, 0.2, t)
    assert spec.out_scale == t.out_scale == pytest.approx(math.tanh(0.32) / 127)
    assert DyTSpec.from_json(spec.to_json()) == spec
