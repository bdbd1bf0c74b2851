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

from hardyt.hw import engine as engine_module
from hardyt.hw.coef_frame import COEF_BITS, MAGIC, checksum, entries_per_beat, frame_beats
from hardyt.hw.coef_loader import CoefLoader
from hardyt.hw.cores import random_dyt_spec
from hardyt.hw.engine import DyTEngine
from hardyt.hw.engine_set import engine_shape, layer_frame, layer_table

MASK = (1 << COEF_BITS) - 1
KINDS = ("valid", "random", "truncated", "oversized", "bit flip", "swapped beats", "resealed table",
         "resealed header")


def layer_specs():
    """Three folded layers of 5-bit inputs (short frames: 10 beats), C = 8, P = 2."""
    return [random_dyt_spec(8, 2, 5, 8, alpha=a, seed=i, name=f"l{i}") for i, a in enumerate((0.05, 0.2, 0.6))]


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def expect(words, shape) -> tuple[int, int | None, list | None]:
    """The model of the loader: ``(status, layer, table)`` of one frame (``tlast`` on its last word)."""
    head = words[0]
    if (head & 0xFF) != MAGIC or (head >> 8 & 0xFF) >= shape.layers or (head >> 16) >= shape.beats:
        return 2, None, None
    if len(words) != frame_beats(shape.in_bits, shape.table_bits):
        return 3, None, None
    if checksum(words[:-1]) != words[-1]:
        return 4, None, None
    k, bits = entries_per_beat(shape.table_bits), shape.table_bits
    table = [_signed(words[1 + u // k] >> (u % k) * bits & ((1 << bits) - 1), bits) for u in range(1 << shape.in_bits)]
    return 1, head >> 8 & 0xFF, table


def make_frame(kind: str, rng, specs, shape) -> list[int]:
    """One frame of ``kind`` (see :data:`KINDS`)."""
    i = int(rng.integers(len(specs)))
    good = layer_frame(specs[i], i, shape)
    n = len(good)
    if kind == "valid":
        return good
    if kind == "random":
        words = [int(w) for w in rng.integers(0, 1 << 32, int(rng.integers(1, 2 * n)), dtype=np.uint64)]
        if rng.random() < 0.5:  # a good magic, to get past the header now and then
            words[0] = (words[0] & ~0xFF & MASK) | MAGIC
        return words
    if kind == "truncated":
        return good[:int(rng.integers(1, n))]
    if kind == "oversized":
        return good + [int(w) for w in rng.integers(0, 1 << 32, int(rng.integers(1, 8)), dtype=np.uint64)]
    f = list(good)
    if kind == "bit flip":
        j = int(rng.integers(n))
        f[j] ^= 1 << int(rng.integers(32))
        return f
    if kind == "swapped beats":
        a, b = rng.choice(n, 2, replace=False)
        f[a], f[b] = f[b], f[a]
        return f
    if kind == "resealed table":
        f[1:-1] = [int(w) for w in rng.integers(0, 1 << 32, n - 2, dtype=np.uint64)]
    elif kind == "resealed header":
        f[0] = (MAGIC if rng.random() < 0.8 else int(rng.integers(256))) | int(rng.integers(4)) << 8 \
            | int(rng.integers(6)) << 16
    return f[:-1] + [checksum(f[:-1])]


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
    plan = [make_frame(k, rng, specs, shape) for k in kinds]
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
            writes[waddr & mask] = _signed(int(wdata), shape.table_bits)
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
