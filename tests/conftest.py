"""Helpers shared by several test modules, grouped by what they test.

Plain helpers are imported (``from conftest import ...``); fixtures return helper functions.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.sim import Simulator

# --- models: a tiny timm-layout ViT checkpoint ------------------------------------------------

TINY_VIT = dict(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=16, depth=1, num_heads=2,
                mlp_ratio=2.0)
# what its sidecar records as the input normalization (hardyt convert needs one)
TINY_VIT_NORMALIZATION = {"mean": [0.5], "std": [0.25]}


def tiny_vit_files(tmp: Path, corrupt: str | None = None) -> Path:
    """``tmp/vit.safetensors`` (random weights, seed 0) and its sidecar ``tmp/vit.json`` (config, normalization).

    ``corrupt``: ``"missing_key"`` drops a LayerNorm weight, ``"shape"`` gives the head a
    wrong shape, ``"nan"`` puts a NaN in an MLP weight.
    """
    import torch
    from safetensors.torch import save_file

    from hardyt.quant.zoo.vit import VisionTransformer

    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in VisionTransformer(**TINY_VIT).state_dict().items()}
    if corrupt == "missing_key":
        del sd["blocks.0.norm1.weight"]
    elif corrupt == "shape":
        sd["head.weight"] = torch.zeros(10, 17)
    elif corrupt == "nan":
        sd["blocks.0.mlp.fc1.weight"][0, 0] = float("nan")
    elif corrupt is not None:
        raise AssertionError(f"unknown corruption {corrupt!r}")
    path = tmp / "vit.safetensors"
    save_file(sd, str(path))
    (tmp / "vit.json").write_text(json.dumps({"config": TINY_VIT, "normalization": TINY_VIT_NORMALIZATION}))
    return path



# -- Amaranth simulation of streaming cores (tests/test_dyt_core.py, tests/test_layernorm.py, test_engine.py) --

async def stream_put(ctx, stream, payload, *, idle=None, also=None) -> int:
    """Send one beat on an ``amaranth.lib.stream`` interface: ``valid`` held with ``payload`` until ``ready``.

    ``idle()`` is asked before the beat; while it says True the source idles a cycle. ``also``: other
    signals set with the payload (``[(signal, value)]``). Returns the clock edges it took; the beat was
    taken on the last one.
    """
    edges = 0
    while idle is not None and idle():
        await ctx.tick()
        edges += 1
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    for signal, value in also or ():
        ctx.set(signal, value)
    ready = 0
    while not ready:
        _, _, ready = await ctx.tick().sample(stream.ready)
        edges += 1
    ctx.set(stream.valid, 0)
    return edges


async def stream_get(ctx, stream, ready: bool = True):
    """One sink cycle on an ``amaranth.lib.stream`` interface: ``ready`` as given; the payload of the beat
    taken on this edge, or None."""
    ctx.set(stream.ready, ready)
    _, _, valid, payload = await ctx.tick().sample(stream.valid, stream.payload)
    return payload if ready and valid else None


def _run_stream(core, x, last, *, valid_p=1.0, ready_p=1.0, seed=0):
    """Drive beats ``x`` (beats, P) with ``last`` through ``core``.

    The producer idles with probability ``1 - valid_p`` before each beat;
    the consumer's ready is high with probability ``ready_p`` each cycle.
    Returns (outputs (beats, P), last flags, input handshake cycles, output
    handshake cycles).
    """
    rng = np.random.default_rng(seed)
    n, P = x.shape
    got, got_last, t_in, t_out = [], [], [], []

    # Each testbench counts its own clock edges from time 0: edge c ends cycle c.
    async def producer(ctx):
        cycle = 0
        for k in range(n):
            cycle += await stream_put(ctx, core.i, {"data": [int(v) for v in x[k]], "last": int(last[k])},
                                      idle=lambda: rng.random() > valid_p)
            t_in.append(cycle)

    async def consumer(ctx):
        cycle = 0
        while len(got) < n:
            payload = await stream_get(ctx, core.o, rng.random() < ready_p)
            cycle += 1
            if payload is not None:
                got.append([payload.data[j] for j in range(P)])
                got_last.append(payload.last)
                t_out.append(cycle)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return np.array(got, dtype=np.int64), np.array(got_last), t_in, t_out


def _ready_while_sink_toggles(core, fill_cycles: int) -> list[int]:
    """``i.ready`` sampled within the cycle while ``o.ready`` toggles 0, 1, 0, 1, after
    ``fill_cycles`` of input with the sink stalled (enough to fill the core)."""
    seen = []

    async def bench(ctx):
        ctx.set(core.i.valid, 1)
        ctx.set(core.o.ready, 0)
        for _ in range(fill_cycles):
            await ctx.tick()
        for ready in (0, 1, 0, 1):
            ctx.set(core.o.ready, ready)
            await ctx.delay(1e-9)
            seen.append(ctx.get(core.i.ready))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.fixture
def run_stream():
    """Drive a core's ``i`` and collect its ``o`` in Amaranth's simulator (see :func:`_run_stream`)."""
    return _run_stream


@pytest.fixture
def ready_while_sink_toggles():
    """``i.ready`` while ``o.ready`` toggles (see :func:`_ready_while_sink_toggles`)."""
    return _ready_while_sink_toggles
