"""tanh tables: exhaustive correctness over every input code."""
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from hardyt.quant import SpecError
from hardyt.quant.contract.tanh import (build_lut, build_pwl, build_tanh, error_report, full_scale, range_out_scale,
                                        tanh_int)

# alpha * LSB chosen so that saturation lands inside, at, and far beyond the range.
SAT_FRACTIONS = (0.02, 0.3, 1.0, 3.0)


def exact(x, a, out_bits):
    return full_scale(out_bits) * math.tanh(a * x)


@pytest.mark.parametrize("in_bits", range(2, 11))
@pytest.mark.parametrize("out_bits", (2, 3, 5, 8, 12, 16))
def test_full_index_lut_is_correctly_rounded(in_bits, out_bits):
    """Every input code of every full-index table is within 0.5 ULP."""
    codes = np.arange(-(1 << (in_bits - 1)), 1 << (in_bits - 1))
    for frac in SAT_FRACTIONS:
        a = 4.0 * frac / (1 << (in_bits - 1))
        lut = build_lut(in_bits, out_bits, a)
        got = tanh_int(codes, lut)
        for x, y in zip(codes.tolist(), got.tolist()):
            assert abs(y - exact(x, a, out_bits)) <= 0.5 + 1e-9, (in_bits, out_bits, a, x, y)
        assert error_report(lut).worst_ulp <= 0.5 + 1e-9


def test_lut_saturation_cut_and_symmetry():
    lut = build_lut(10, 8, 0.01)
    t = full_scale(8)
    assert lut.table[-1] < t                               # no stored entry is full scale
    assert round(t * math.tanh(0.01 * len(lut.table))) == t  # the first cut entry would be
    x = np.arange(-511, 512)
    assert np.array_equal(tanh_int(-x, lut), -tanh_int(x, lut))
    assert tanh_int(np.array([-512]), lut)[0] == -t


@pytest.mark.parametrize("drop", (1, 2, 3))
def test_truncated_index_uses_interval_centre(drop):
    in_bits, out_bits, a = 10, 8, 3.0 / 512
    lut = build_lut(in_bits, out_bits, a, drop_bits=drop)
    assert lut.table[0] == 0  # odd: input 0 gives 0
    for i, entry in enumerate(lut.table[1:], 1):
        centre = i * (1 << drop) + ((1 << drop) - 1) / 2
        assert entry == math.floor(exact(centre, a, out_bits) + 0.5)
    # error bounded by rounding plus half an interval of slope; entry 0 by its interval's end
    bound = max(0.5 + full_scale(out_bits) * a * ((1 << drop) - 1) / 2, exact((1 << drop) - 1, a, out_bits))
    assert error_report(lut).worst_ulp <= bound + 1e-9
    assert len(lut.table) <= (1 << (in_bits - 1 - drop)) + 1


@pytest.mark.parametrize("in_bits,segments", [(12, 16), (12, 32), (16, 16), (16, 32)])
def test_pwl_within_one_ulp_at_8_bit_out(in_bits, segments):
    pwl = build_pwl(in_bits, 8, 4.0 / (1 << (in_bits - 1)), segments)
    r = error_report(pwl)
    assert r.worst_ulp <= 1.0
    assert pwl.segments == segments


def test_pwl_is_odd_and_saturates():
    pwl = build_pwl(12, 10, 6.0 / 2048, 8)
    x = np.arange(1, 2048)
    assert np.array_equal(tanh_int(-x, pwl), -tanh_int(x, pwl))
    assert tanh_int(np.array([-2048]), pwl)[0] == -full_scale(10)
    assert np.all(np.abs(tanh_int(x, pwl)) <= full_scale(10))


def test_error_report_covers_every_code():
    lut = build_lut(6, 4, 0.2)
    r = error_report(lut)
    x = np.arange(-32, 32)
    errs = np.abs(tanh_int(x, lut) - full_scale(4) * np.tanh(0.2 * x))
    assert r.worst_ulp == pytest.approx(errs.max())
    assert r.mean_ulp == pytest.approx(errs.mean())
    assert r.rom_bits == len(lut.table) * 3


def test_tanh_int_rejects_out_of_range():
    lut = build_lut(6, 8, 0.1)
    with pytest.raises(ValueError, match="-32..31"):
        tanh_int(np.array([32]), lut)


@pytest.mark.parametrize("kwargs,field", [
    (dict(in_bits=0, out_bits=8, alpha_scale=0.1), "tanh.in_bits"),
    (dict(in_bits=-3, out_bits=8, alpha_scale=0.1), "tanh.in_bits"),
    (dict(in_bits=8, out_bits=1, alpha_scale=0.1), "tanh.out_bits"),
    (dict(in_bits=8, out_bits=8, alpha_scale=float("nan")), "tanh.alpha_scale"),
    (dict(in_bits=8, out_bits=8, alpha_scale=-1.0), "tanh.alpha_scale"),
    (dict(in_bits=8, out_bits=8, alpha_scale=0.1, drop_bits=8), "tanh.drop_bits"),
])
def test_bad_lut_parameters(kwargs, field):
    with pytest.raises(SpecError) as e:
        build_lut(**kwargs)
    assert e.value.field == field


def test_bad_pwl_segments():
    with pytest.raises(SpecError, match="tanh.segments"):
        build_pwl(12, 8, 0.001, segments=12)


def _tanh_error_sweep():
    """The configurations of bench/tanh_error.py (the sweep the docs quote)."""
    path = Path(__file__).parents[1] / "bench" / "tanh_error.py"
    spec = importlib.util.spec_from_file_location("bench_tanh_error", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.configs())


@pytest.mark.parametrize("name,build", _tanh_error_sweep())
@pytest.mark.parametrize("out_range", ("full", "layer"))
def test_every_swept_tanh_is_odd(name, build, out_range):
    """Code 0 at input 0 and f(-x) = -f(x): the golden model calls tanh odd (docs/fixed_point.md)."""
    t = build()
    if out_range == "layer":
        kw = {"lut": lambda: {"drop_bits": t.drop_bits}, "pwl": lambda: {"segments": t.segments},
              "threshold": dict}[t.kind]()
        t = build_tanh(t.kind, t.in_bits, t.out_bits, t.alpha_scale,
                       out_scale=range_out_scale(t.in_bits, t.out_bits, t.alpha_scale), **kw)
    x = np.arange(0, 1 << (t.in_bits - 1))
    assert tanh_int(np.array([0]), t)[0] == 0, name
    assert np.array_equal(tanh_int(-x, t), -tanh_int(x, t)), name


@pytest.mark.parametrize("kind,in_bits", [("lut", 8), ("lut", 10), ("pwl", 12), ("pwl", 16)])
@pytest.mark.parametrize("arg_range", (0.004, 0.1, 1.0, 4.0))
def test_layer_range_output_uses_every_code(kind, in_bits, arg_range):
    """The output format spans tanh over the input range: full scale at the largest input, error in own ULPs."""
    a = arg_range / (1 << (in_bits - 1))
    s = range_out_scale(in_bits, 8, a)
    t = build_tanh(kind, in_bits, 8, a, out_scale=s)
    assert t.out_scale == s
    assert tanh_int(np.array([-(1 << (in_bits - 1))]), t)[0] == -full_scale(8)
    x = np.arange(-(1 << (in_bits - 1)), 1 << (in_bits - 1))
    err = np.abs(tanh_int(x, t) - np.tanh(a * x) / s)
    assert error_report(t).worst_ulp == pytest.approx(err.max())
    assert err.max() <= (0.5 if kind == "lut" else 1.0) + 1e-9
    # The old +-1 format on the same linear-region layer keeps only a few codes.
    if arg_range <= 0.1:
        old = build_tanh(kind, in_bits, 8, a)
        assert np.abs(tanh_int(x, old)).max() <= round(127 * math.tanh(arg_range)) + 1
