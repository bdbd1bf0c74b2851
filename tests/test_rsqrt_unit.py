# amaranth: UnusedElaboratable=no
"""RsqrtUnit on its own in Amaranth's simulator: every input against ``rsqrt_int``."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from hardyt.hw.datapath.rsqrt_unit import RsqrtUnit
from hardyt.quant.contract.layernorm import random_layernorm_spec
from hardyt.quant.contract.rsqrt import rsqrt_int


def run_rsqrt(unit: RsqrtUnit, ws) -> tuple[np.ndarray, np.ndarray]:
    """One ``w`` per cycle; ``(r1, e)`` collected ``unit.latency`` cycles later."""
    got_r1, got_e = [], []

    async def bench(ctx):
        for t in range(len(ws) + unit.latency):
            ctx.set(unit.w, int(ws[t]) if t < len(ws) else 0)
            await ctx.tick()
            # After edge t the result of the w set in cycle t + 1 - latency is at the outputs.
            if t + 1 >= unit.latency:
                got_r1.append(ctx.get(unit.r1))
                got_e.append(ctx.get(unit.e))

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got_r1[:len(ws)]), np.array(got_e[:len(ws)])


@pytest.mark.parametrize("shape", [(4, 1, 4, 4), (8, 2, 6, 6)])
def test_every_w_of_a_small_layer(shape):
    """Every W a layer of this shape can produce (1 .. C^2 * xmax^2 + eps_q): 1025 and 65537 codes."""
    spec = random_layernorm_spec(*shape)
    unit = RsqrtUnit(spec)
    ws = np.arange(1, spec.bounds["w"] + 1, dtype=np.int64)
    r1, e = run_rsqrt(unit, ws)
    want_r1, want_e = rsqrt_int(ws, spec)
    np.testing.assert_array_equal(r1, want_r1)
    np.testing.assert_array_equal(e, want_e)


def test_every_normalized_input_of_a_vit_layer():
    """C = 768, 8-bit: every normalized input u (W in [2^R, 2^(R+2)), where u = W: every seed and
    every Newton step input), plus the bottom and the top 4096 codes of W's range."""
    spec = random_layernorm_spec(768, 8, 8, 8)
    R = spec.rsqrt_frac
    assert R % 2 == 0
    octave = np.arange(1 << R, 1 << (R + 2), dtype=np.int64)
    top = np.arange(spec.bounds["w"] - 4095, spec.bounds["w"] + 1, dtype=np.int64)
    ws = np.concatenate([octave, top, np.arange(1, 4097)])
    r1, e = run_rsqrt(RsqrtUnit(spec), ws)
    want_r1, want_e = rsqrt_int(ws, spec)
    np.testing.assert_array_equal(r1, want_r1)
    np.testing.assert_array_equal(e, want_e)


def test_latency_is_the_stages_it_builds():
    """Normalize (2), seed ROM (1), Newton step (6): 9 stages."""
    assert RsqrtUnit(random_layernorm_spec(4, 1, 4, 4)).latency == 9
