# amaranth: UnusedElaboratable=no
"""The DyT engine's coefficient port fed fuzzed frames while it streams, in Amaranth's simulator.

Frames of every kind (valid, random words, truncated, oversized, a flipped bit, beats swapped, a random
table or header resealed with a good checksum) go to ``s_axis_coef`` with random gaps while random
tokens of random layers stream through with random idle and backpressure. A software model of the
loader (:func:`expect`) says what each frame must do; a monitor watching the engine every cycle checks:

* every frame ends with the status the model gives it (bad ones by their code);
* a token starts only on a bank whose content is exactly that of a frame that loaded (status 1) — never
  one written by a frame since — and the bank in use changes only at a token's first beat;
* every output element equals the table lookup of its token's bank (bit-exact), and the table a loaded
  frame wrote is the one the model decodes from its words (and, for intact frames, the spec's).

Shared by ``tests/test_faults.py`` (a few hundred frames) and ``bench/faults.py`` (100,000).
"""
from __future__ import annotations

from collections import Counter
from unittest import mock

import numpy as np
from amaranth.sim import Simulator

from hardyt.hw.datapath import engine as engine_module
from hardyt.hw.datapath.coef_loader import CoefLoader
from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.hw.datapath.engine import DyTEngine
from hardyt.hw.datapath.engine_set import engine_shape, layer_frame, layer_table
from hardyt.sim.coef_fuzz import KINDS, expect, make_frame, sign_extend


def layer_specs():
    """Three folded layers of 5-bit inputs (short frames: 10 beats), C = 8, P = 2."""
    return [random_dyt_spec(8, 2, 5, 8, alpha=a, seed=i, name=f"l{i}") for i, a in enumerate((0.05, 0.2, 0.6))]


class _Recorder(CoefLoader):
    """The engine's loader, remembered for the monitor (white-box: its banks, writes and status)."""
    made: list = []

    def __init__(self, shape):
        super().__init__(shape)
        _Recorder.made.append(self)


def fuzz_engine(frames: int, seed: int, *, tokens: int | None = None, max_cycles: int = 10**8) -> dict:
    """Run ``frames`` fuzzed frames (kinds uniform) against a streaming workload; counts and violations."""
    rng = np.random.default_rng(seed)
    specs = layer_specs()
    shape = engine_shape(specs)
    tables = [list(layer_table(s, shape)) for s in specs]
    _Recorder.made = []
    with mock.patch.object(engine_module, "CoefLoader", _Recorder):
        dut = DyTEngine(shape)
        sim = Simulator(dut)
    loader = _Recorder.made[-1]
    kinds = [KINDS[int(k)] for k in rng.integers(len(KINDS), size=frames)]
    goods = [layer_frame(s, i, shape) for i, s in enumerate(specs)]
    plan = [make_frame(k, rng, goods) for k in kinds]
    want = [expect(f, shape) for f in plan]
    for f, k, (status, layer, table) in zip(plan, kinds, want):
        if k == "valid":
            assert status == 1 and table == [int(v) for v in tables[layer]], "the model disagrees with the spec"
    beats = shape.beats
    n_tokens = tokens if tokens is not None else max(8, frames // 2)
    tok_layers = rng.integers(len(specs), size=n_tokens)
    x = rng.integers(-16, 16, (n_tokens * beats, shape.lanes))
    st = {"statuses": [], "violations": [], "outputs": [], "token_tables": {}, "done": False, "extra_frames": 0}

    async def coef_source(ctx):
        k = 0
        while k < len(plan) or not st["done"]:
            if k < len(plan):
                words = plan[k]
            else:  # keep valid frames coming until every token got its layer
                words = layer_frame(specs[k % len(specs)], k % len(specs), shape)
                plan.append(words)
                want.append(expect(words, shape))
                st["extra_frames"] += 1
            for j, w in enumerate(words):
                while rng.random() < 0.2:
                    await ctx.tick()
                ctx.set(dut.coef.valid, 1)
                ctx.set(dut.coef.payload, {"data": w, "last": int(j == len(words) - 1)})
                ready = 0
                while not ready:
                    _, _, ready = await ctx.tick().sample(dut.coef.ready)
                ctx.set(dut.coef.valid, 0)
            k += 1
            while rng.random() < 0.3:
                await ctx.tick()

    async def producer(ctx):
        for h in range(n_tokens * beats):
            while rng.random() < 0.2:
                await ctx.tick()
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.layer_select, int(tok_layers[h // beats]))
            ctx.set(dut.i.payload, {"data": [int(v) for v in x[h]], "last": int(h % beats == beats - 1)})
            ready = 0
            while not ready:
                _, _, ready = await ctx.tick().sample(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        while len(st["outputs"]) < n_tokens * beats:
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if ready and valid:
                st["outputs"].append([int(payload.data[j]) for j in range(shape.lanes)])
        st["done"] = True

    async def monitor(ctx):
        await _monitor(ctx, dut, loader, shape, want, st, max_cycles)

    sim.add_clock(1e-8)
    for p in (coef_source, producer):
        sim.add_testbench(p, background=True)
    sim.add_testbench(monitor, background=True)
    sim.add_testbench(consumer)
    sim.run()
    return _verdict(kinds, want, st, x, tok_layers, beats, shape)


async def _monitor(ctx, dut, loader, shape, want, st, max_cycles):
    """Every cycle: frame outcomes against the model, the banks' content, which bank each token starts on."""
    bad = st["violations"]
    table_of, clean = [None, None], [False, False]   # each bank: the table its last load put there; unwritten since
    writes, target, frame, h, start, prev_active, prev_first, cycle = {}, None, 0, 0, None, None, False, 0
    mask = (1 << shape.in_bits) - 1
    sigs = (dut.i.valid, dut.i.ready, dut.layer_select, loader.active, loader.banks, loader.we, loader.waddr,
            loader.wdata, loader.done, loader.status)
    async for _, _, iv, ir, sel, active, banks, we, waddr, wdata, done, status in ctx.tick().sample(*sigs):
        cycle += 1
        if start is not None:  # the token that started on the previous edge runs on the bank now active
            t, layer, snap = start
            if snap[active] != (1, layer):
                bad.append(f"token {t}: started on bank {active} holding {snap[active]}, wanted layer {layer}")
            if not clean[active]:
                bad.append(f"token {t}: bank {active} was written after its last load")
            st["token_tables"][t] = table_of[active]
            start = None
        if prev_active is not None and active != prev_active and not prev_first:
            bad.append(f"cycle {cycle}: the active bank changed inside a token")
        prev_first = False
        if we:
            target = waddr >> shape.in_bits
            clean[target] = False
            writes[waddr & mask] = sign_extend(int(wdata), shape.table_bits)
        if done:
            code = int(getattr(status, "value", status))
            expected, _, table = want[frame]
            st["statuses"].append(code)
            if code != expected:
                bad.append(f"frame {frame}: status {code}, the model says {expected}")
            if code == 1:
                if [writes.get(u) for u in range(mask + 1)] != table:
                    bad.append(f"frame {frame}: the table written is not the frame's")
                table_of[target], clean[target] = table, True
            writes, frame = {}, frame + 1
        if iv and ir:
            if h % shape.beats == 0:
                snap = [(int(banks[b].usable), int(banks[b].layer)) for b in range(2)]
                start, prev_first = (h // shape.beats, int(sel), snap), True
            h += 1
        prev_active = active
        st["cycles"] = cycle
        if cycle > max_cycles:
            bad.append(f"no progress after {max_cycles} cycles")
            return


def _verdict(kinds, want, st, x, tok_layers, beats, shape) -> dict:
    """Counts by frame kind and status, elements compared, mismatches, violations."""
    got = np.array(st["outputs"], dtype=np.int64).reshape(-1, shape.lanes)
    mask, mismatches = (1 << shape.in_bits) - 1, 0
    for t in range(len(tok_layers)):
        table = st["token_tables"].get(t)
        if table is None:
            st["violations"].append(f"token {t}: no bank recorded")
            continue
        xs = x[t * beats:(t + 1) * beats]
        mismatches += int((np.asarray(table)[xs & mask] != got[t * beats:(t + 1) * beats]).sum())
    done = len(st["statuses"])
    all_kinds = kinds + ["valid"] * st["extra_frames"]
    by_kind = {k: dict(Counter(s for k2, s in zip(all_kinds, st["statuses"]) if k2 == k)) for k in KINDS}
    return {"frames": done, "extra_valid_frames": st["extra_frames"], "by_kind": by_kind,
            "tokens": len(tok_layers), "elements": int(got.size), "mismatches": mismatches,
            "violations": len(st["violations"]), "first_violations": st["violations"][:10],
            "cycles": st.get("cycles", 0)}


def verilator_run(tmp, frames: int, simulator: str = "verilator", seed: int = 1) -> dict:
    """The engine of :func:`layer_specs` emitted and run in ``simulator`` with ``frames`` fuzzed frames."""
    from hardyt.hw.emission.engine_emit import emit_engine
    from hardyt.sim.engine_runner import run_engine_sim

    d = tmp / "engine"
    emit_engine(layer_specs(), d, "fuzz_engine")
    r = run_engine_sim(d, simulator, vectors=frames, seed=seed, testcase="test_fuzzed_frames")
    t = r["tests"].get("fuzzed_frames", {})
    return {"ok": r["ok"], "frames": t.get("frames", 0), "elements": t.get("elements", 0),
            "mismatches": t.get("mismatches", 0), "report": t.get("report", []) or r.get("failures", []),
            "build_seconds": r["build_seconds"], "sim_seconds": r["sim_seconds"]}
