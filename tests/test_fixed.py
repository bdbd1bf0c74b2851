"""Fixed-point helpers against plain-Python definitions."""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from hardyt.quant.contract.fixed import FixedFormat, Rounding, narrow, quantize, dequantize, round_shift, saturate


@given(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1, max_size=50), st.integers(0, 20))
def test_round_shift_is_round_half_up(values, shift):
    got = round_shift(np.array(values, dtype=np.int64), shift)
    for v, g in zip(values, got):
        # floor(v / 2**s + 1/2), computed exactly with Python integers
        expect = (2 * v + (1 << shift)) // (2 << shift) if shift else v
        assert g == expect


@given(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1, max_size=50), st.integers(1, 20))
def test_round_shift_floor(values, shift):
    got = round_shift(np.array(values), shift, Rounding.FLOOR)
    assert list(got) == [v >> shift for v in values]


@given(st.integers(1, 32), st.lists(st.integers(-(1 << 35), 1 << 35), min_size=1, max_size=20))
def test_saturate_never_wraps(bits, values):
    fmt = FixedFormat(bits)
    got = saturate(np.array(values), fmt)
    assert all(fmt.min_code <= g <= fmt.max_code for g in got)
    assert all(g == v for g, v in zip(got, values) if fmt.min_code <= v <= fmt.max_code)
    assert all(g == fmt.max_code for g, v in zip(got, values) if v > fmt.max_code)
    assert all(g == fmt.min_code for g, v in zip(got, values) if v < fmt.min_code)


def test_narrow_rounds_then_saturates():
    fmt = FixedFormat(4)
    assert list(narrow(np.array([14, 15, 16, -17, -18]), 1, fmt)) == [7, 7, 7, -8, -8]


def test_quantize_roundtrip_and_edges():
    fmt = FixedFormat(8, 5)
    codes = np.arange(-128, 128)
    assert np.array_equal(quantize(dequantize(codes, fmt), fmt), codes)
    assert list(quantize(np.array([np.nan, np.inf, -np.inf, 1e9]), fmt)) == [0, 127, -128, 127]


def test_unsigned_format():
    fmt = FixedFormat(8, 0, signed=False)
    assert (fmt.min_code, fmt.max_code) == (0, 255)
    assert list(saturate(np.array([-1, 300]), fmt)) == [0, 255]
