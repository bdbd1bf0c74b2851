"""``hardyt explore`` on the tiny ViT: the front, the budget, the cache, 2 Dask workers, a failed synthesis job.

Synthesis is real (Yosys, Xilinx target: no place and route) but kept short:
16-channel cores, one lane, LUT tanh at 4 and 8 input bits only, and three
synthesis runs per exploration (the cost model covers the other cores).
"""
from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
from conftest import tiny_vit_files

from hardyt.quant.errors import HardytError
from hardyt.quant.outdir import MARKER
from hardyt.scripts.cli import main

CHOICES = (("lut", 4), ("lut", 8))
MAX_DROP = 1.0


def _npz(tmp, n=160):
    rng = np.random.default_rng(0)
    path = tmp / "data.npz"
    np.savez(path, x=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, n))
    return path


def _explore(tmp, out, cache, *extra) -> dict:
    checkpoint, data = tmp / "vit.safetensors", tmp / "data.npz"
    rc = main(["explore", str(checkpoint), "--data", str(data), "--calib-size", "32", "--val-size", "64",
               "--steps", "5", "--max-drop", str(MAX_DROP), "--target", "xilinx", "--lanes", "1",
               "--synth-budget", "3", "--conversions", "1", "--cache", str(cache), "--out", str(out), *extra])
    assert rc == 0
    return json.loads((out / "explore.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three explorations: 2 process workers (fresh cache), in-process (fresh cache), in-process again.

    Dask's process workers run torch on one thread (``OMP_NUM_THREADS=1``), and a conversion's floats depend on
    the thread count (reduction order): the in-process runs use one thread as well, so all three compute alike.
    """
    import torch
    from dask.distributed import LocalCluster

    from hardyt.quant.conversion import explore

    tmp = tmp_path_factory.mktemp("explore")
    tiny_vit_files(tmp)
    _npz(tmp)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(explore, "TANH_CHOICES", CHOICES)
        mp.setenv("TQDM_DISABLE", "1")
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None, silence_logs=50) as cluster:
            two = _explore(tmp, tmp / "two", tmp / "cache2", "--scheduler", cluster.scheduler_address)
        one = _explore(tmp, tmp / "one", tmp / "cache1")
        again = _explore(tmp, tmp / "again", tmp / "cache1")
    torch.set_num_threads(threads)
    return {"tmp": tmp, "two": two, "one": one, "again": again}


def test_front_is_monotone(runs):
    front = runs["one"]["front"]
    assert front
    for a, b in zip(front, front[1:]):
        assert a["lut"] + a["ff"] < b["lut"] + b["ff"] and a["accuracy"] < b["accuracy"]
    for p in front:
        assert set(p) >= {"accuracy", "lut", "ff", "dsp", "bram", "fmax_mhz", "layers"}
        assert set(p["layers"]) == {"blocks.0.norm1", "blocks.0.norm2", "norm"}


def test_pick_meets_the_budget_on_validation(runs):
    r = runs["one"]
    pick, ref = r["pick"], r["reference"]["validation_accuracy"]
    assert 100 * (ref - pick["accuracy"]) <= MAX_DROP + 1e-9
    assert 0.0 <= pick["test_accuracy"] <= 1.0
    within = [p for p in r["front"] if 100 * (ref - p["accuracy"]) <= MAX_DROP + 1e-9]
    assert pick["lut"] + pick["ff"] == min(p["lut"] + p["ff"] for p in within)
    # all-LayerNorm is a measured configuration: it bounds the front from above in accuracy
    assert max(p["accuracy"] for p in r["front"]) >= r["baselines"]["all_layernorm"]["accuracy"]


def test_second_run_hits_the_cache(runs):
    first, again = runs["one"]["synthesis"], runs["again"]["synthesis"]
    assert first["synthesized"] == first["runs"] == 3 and first["cached"] == 0
    assert again["synthesized"] == 0 and again["cached"] == 3
    assert runs["again"]["front"] == runs["one"]["front"]


def test_two_workers_give_the_same_front(runs):
    assert runs["two"]["synthesis"]["synthesized"] == 3
    assert runs["two"]["front"] == runs["one"]["front"]
    assert runs["two"]["pick"] == runs["one"]["pick"]


def test_pick_directory_feeds_rtl(runs, tmp_path):
    pick_dir = runs["tmp"] / "one" / "pick"
    layers = runs["one"]["pick"]["layers"]
    dyt = sorted(n.replace(".", "_") for n, c in layers.items() if c["core"] == "dyt")
    assert sorted(p.name.removesuffix(".spec.json") for p in pick_dir.glob("*.spec.json")) == dyt
    assert {"explore.md", "front.png", "explore.json"} <= {p.name for p in (runs["tmp"] / "one").iterdir()}
    if dyt:
        assert main(["rtl", str(pick_dir), "--out", str(tmp_path / "rtl")]) == 0
        assert sorted(p.name for p in (tmp_path / "rtl").iterdir()) == [MARKER, *dyt]


def test_failed_synthesis_job_is_named_and_others_kept(tmp_path, monkeypatch):
    from hardyt.hw import costs, synth as synth_mod
    from hardyt.hw.datapath.cores import random_dyt_spec
    from hardyt.hw.tools.sweep import dask_client

    specs = {f"layer{i} / dyt lut4": random_dyt_spec(4, 1, 4, 4, affine="channel", seed=i, name=f"layer{i}").to_dict()
             for i in range(3)}

    def fake_synth(directory, target, progress=True, seed=1):
        from hardyt.hw.emission.emit import load_manifest
        if load_manifest(directory)["spec"]["name"] == "layer1":
            raise synth_mod.ToolError("yosys failed: made to fail (log: none)")
        return {"lut": 10, "ff": 5, "dsp": 0, "bram": 0}

    monkeypatch.setattr(synth_mod, "synth", fake_synth)
    with dask_client(workers=2) as client, pytest.raises(HardytError) as err:
        costs.layer_costs(client, specs, "xilinx", tmp_path / "cache", budget="all", progress=False)
    assert "1 of 3 synthesis jobs failed" in str(err.value)
    assert "layer1 / dyt lut4: yosys failed: made to fail" in str(err.value)
    for label in ("layer0 / dyt lut4", "layer2 / dyt lut4"):
        assert costs.cached_report(specs[label], "xilinx", tmp_path / "cache")["lut"] == 10
    assert costs.cached_report(specs["layer1 / dyt lut4"], "xilinx", tmp_path / "cache") is None


def test_candidates_from_one_calibration(tmp_path, monkeypatch):
    """Each layer's candidates come from the one float calibration; a layer that does not fold gets channel affine."""
    import torch

    from hardyt.quant.conversion import explore
    from hardyt.quant.zoo.load import load_vit

    monkeypatch.setattr(explore, "TANH_CHOICES", CHOICES)
    model = load_vit(tiny_vit_files(tmp_path)).eval()
    x = torch.randn(64, 1, 28, 28)
    cal = explore.calibrate(model, [x[:32]], method="sequential")
    assert all(cal.folds[n] for n in cal.names)       # pre-LN ViT: every LayerNorm feeds Linear layers only
    cal.folds["norm"] = []                              # as if the final norm fed a residual sum
    cands = explore.candidates(cal, lanes=1)
    for name, layer in cands.items():
        affine = "channel" if name == "norm" else "folded"
        assert {c["in_bits"] for c, _ in layer} == {4, 8}
        for choice, spec in layer:
            assert choice["affine"] == affine == spec.affine.mode
            assert spec.in_bits == choice["in_bits"] and spec.tanh.out_bits == choice["out_bits"] <= spec.in_bits
            assert spec.alpha == pytest.approx(float(cal.student.get_submodule(name).alpha.detach()))
    specs = {(n, explore.label(c)): s for n, layer in cands.items() for c, s in layer}
    evaluate = explore.Evaluator(cal, specs, x[32:], torch.randint(0, 10, (32,)))
    config = {n: explore.label(cands[n][-1][0]) for n in cal.names}
    assert 0.0 <= evaluate(config) <= 1.0 and len(evaluate.seen) == 1
    float_model, fixed_model, folded = explore.pick_model(cal, {n: specs[(n, lab)] for n, lab in config.items()},
                                                          x[:32])
    assert "norm" not in folded                         # channel affine: nothing to fold
    assert all(folded[n]["into"] for n in cal.names if n != "norm")
    with torch.no_grad():   # the pick's model (folded into Linear) computes what the emulation computed
        assert torch.allclose(fixed_model(x[32:]), evaluate.model(config)(x[32:]), atol=1e-4)


def _synthetic_runs(lut_per_logic=0.75):
    """Cores of three structures (contents varied by alpha) with resources made from a known rule."""
    from hardyt.hw.datapath.cores import random_dyt_spec
    from hardyt.hw.costmodel.cost_features import features, structure

    base = {6: (100, 40, 0), 8: (300, 60, 0), 10: (150, 80, 2)}          # in_bits: (LUT offset, FF, BRAM)
    specs, reports = [], []
    for bits, (lut0, ff, bram) in base.items():
        for k in range(4):
            s = random_dyt_spec(16, 2, bits, bits - 1, alpha=(1.0 + 0.7 * k) / (1 << (bits - 1)),
                                name=f"l{k}").to_dict()
            logic = features(s)[2]
            lut = lut0 + (lut_per_logic * logic if bram == 0 else 0)
            specs.append(s)
            reports.append({"lut": lut, "ff": ff, "dsp": 0, "bram": bram, "fmax_mhz": 200.0 - bits})
    assert len({structure(s) for s in specs}) >= 3
    return specs, reports


def test_cost_model_recovers_a_known_rule():
    """Fitted on cores whose LUTs are an offset per structure plus w * rom_logic, the model finds w and
    predicts held-out cores of those structures exactly."""
    from hardyt.hw.costmodel.cost_features import structure
    from hardyt.hw.costmodel.cost_model import CostModel, holdout_error

    specs, reports = _synthetic_runs(0.75)
    fit_idx = [i for i in range(len(specs)) if i % 4 != 3]            # hold out one core of each structure
    model = CostModel.fit([specs[i] for i in fit_idx], [reports[i] for i in fit_idx])
    assert model.lut_per_logic == pytest.approx(0.75, rel=1e-6)
    for i in range(3, len(specs), 4):
        p, r = model.predict(specs[i]), reports[i]
        assert not p["across"]
        assert p["lut"] == round(r["lut"]) and p["ff"] == r["ff"] and p["bram"] == r["bram"]
        assert p["fmax_mhz"] == r["fmax_mhz"]
    err = holdout_error(specs, reports)
    assert err["within_structure"]["max_abs_pct"] < 0.5 and err["across_structures"] is None
    # a structure no run has is predicted across structures, and says so
    lone = [i for i in range(len(specs)) if structure(specs[i]) != structure(specs[0])]
    p = CostModel.fit([specs[i] for i in lone], [reports[i] for i in lone]).predict(specs[0])
    assert p["across"]


def test_cost_model_content_feature_tracks_the_table():
    """rom_logic: a table whose bits change more often costs more, a constant one nothing."""
    from hardyt.hw.costmodel.cost_features import rom_logic, roms
    from hardyt.hw.datapath.cores import random_dyt_spec

    assert rom_logic([0] * 256, 8) == 0
    steep = rom_logic([(i * 37) % 256 for i in range(256)], 8)
    stair = rom_logic([i // 32 for i in range(256)], 8)
    assert 0 < stair < steep
    # an LUT over every signed code: one ROM read by each lane; PWL: slope and intercept ROMs
    lut = roms(random_dyt_spec(16, 4, 8, 8, seed=0).to_dict())
    assert [(n, len(w), p) for n, w, _, p in lut] == [("tanh", 256, 4)]
    pwl = roms(random_dyt_spec(16, 4, 12, 12, tanh="pwl", seed=0).to_dict())
    assert [n for n, *_ in pwl] == ["slope", "intercept"]


def test_default_plan_covers_every_structure():
    from hardyt.hw.costmodel.cost_features import structure
    from hardyt.hw.costmodel.costs import synthesis_plan

    specs, _ = _synthetic_runs()
    by_label = {f"c{i}": s for i, s in enumerate(specs)}
    plan = synthesis_plan(by_label)
    assert {structure(by_label[lab]) for lab in plan} == {structure(s) for s in specs}
    assert len(plan) == len({structure(s) for s in specs})
    assert len(synthesis_plan(by_label, "all")) == len(specs)


def test_cores_in_the_cache_count_as_synthesized(tmp_path, monkeypatch):
    """A core an earlier run synthesized is used as it is (no tool, no prediction), and the model fits it."""
    from hardyt.hw import costs, synth as synth_mod
    from hardyt.hw.datapath.cores import random_dyt_spec
    from hardyt.hw.tools.sweep import dask_client

    specs = {f"layer{i} / dyt lut6": random_dyt_spec(8, 2, 6, 5, alpha=0.2 + 0.1 * i, name=f"layer{i}").to_dict()
             for i in range(3)}
    calls = []

    def fake_synth(directory, target, progress=True, seed=1):
        from hardyt.hw.emission.emit import load_manifest
        calls.append(load_manifest(directory)["spec"]["name"])
        return {"lut": 10 * len(calls), "ff": 5, "dsp": 0, "bram": 0}

    monkeypatch.setattr(synth_mod, "synth", fake_synth)
    with dask_client(workers=1) as client:
        one = costs.layer_costs(client, specs, "xilinx", tmp_path, progress=False)
        assert (one["runs"], one["synthesized"], one["estimated"], one["structures"]) == (1, 1, 2, 1)
        costs.layer_costs(client, specs, "xilinx", tmp_path, budget="all", progress=False)
        again = costs.layer_costs(client, specs, "xilinx", tmp_path, progress=False)
    assert len(calls) == 3
    assert (again["synthesized"], again["cached"], again["reused"], again["estimated"]) == (0, 1, 2, 0)
    assert sorted(c["lut"] for c in again["costs"].values()) == [10, 20, 30]
    assert again["model_error"]["within_structure"]["n"] == 3


def _fake_costs(fmax_of, layernorm_lut=1000):
    """A stand-in for :func:`hardyt.hw.costmodel.costs.layer_costs`: LUT+FF by input width, Fmax by ``fmax_of(label)``."""
    def layer_costs(client, specs, target, cache_dir, *, budget=None, seed=1, progress=True, **kw):
        costs = {}
        for label, spec in specs.items():
            bits = spec.get("in_bits", 8)
            lut = layernorm_lut if spec["hardyt"] == "layernorm" else 10 * 2 ** (bits - 2)
            costs[label] = {"lut": lut, "ff": 10, "dsp": 0, "bram": 0, "fmax_mhz": fmax_of(label, spec),
                            "synthesized": True}
        none = None
        return {"costs": costs, "runs": len(costs), "synthesized": 0, "cached": len(costs), "reused": 0,
                "estimated": 0, "structures": 1, "structures_synthesized": 1,
                "model_error": {"runs": 0, "lut_ff": none, "fmax_mhz": none, "within_structure": none,
                                "across_structures": none, "rows": []}}
    return layer_costs


@pytest.mark.parametrize("min_fmax", [None, 120])
def test_min_fmax_excludes_slower_cores(tmp_path, monkeypatch, min_fmax):
    """Cores: LayerNorm 100 MHz, 8-bit DyT 150 MHz, 4-bit DyT 80 MHz (cheapest). By default the floor is the
    LayerNorm core's 100 MHz, so no 4-bit core is chosen; ``--min-fmax 0`` lets them in; 120 excludes LayerNorm."""
    from hardyt.hw import costs
    from hardyt.quant.conversion import explore

    def fmax_of(label, spec):
        return 100.0 if spec["hardyt"] == "layernorm" else (80.0 if spec["in_bits"] == 4 else 150.0)

    tiny_vit_files(tmp_path)
    _npz(tmp_path)
    monkeypatch.setattr(explore, "TANH_CHOICES", CHOICES)
    monkeypatch.setattr(costs, "layer_costs", _fake_costs(fmax_of))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    extra = ["--max-drop", "100"] + ([] if min_fmax is None else ["--min-fmax", str(min_fmax)])
    r = _explore(tmp_path, tmp_path / "out", tmp_path / "cache", *extra)
    floor = {None: 100.0, 0: None, 120: 120.0}[min_fmax]
    assert r["fmax_floor_mhz"] == floor
    chosen = [p for p in r["front"]] + [r["pick"]]
    if floor is None:
        assert min(p["fmax_mhz"] for p in r["front"]) == 80.0          # the cheapest cores are on the front
    else:
        assert all(p["fmax_mhz"] >= floor for p in chosen)
        assert all(c.get("in_bits") != 4 for p in chosen for c in p["layers"].values())
    if floor == 120.0:
        assert all(c["core"] == "dyt" for p in chosen for c in p["layers"].values())
    for p in chosen:
        assert p["throughput_eps"] == p["fmax_mhz"] * 1e6 * 1                   # --lanes 1
    assert set(r["cost_model_error"]) >= {"lut_ff", "fmax_mhz"}


def _convert_accuracy(tmp, out, kept, layer_formats, x_val, y_val) -> float:
    """Top-1 on ``x_val`` of a fresh ``hardyt convert`` with these options (read back from its directory)."""
    from hardyt.quant.runtime.evaluate import accuracy
    from hardyt.quant.export.converted import load_converted

    formats = tmp / f"{out.name}.formats.json"
    formats.write_text(json.dumps(layer_formats))
    argv = ["convert", str(tmp / "vit.safetensors"), "--data", str(tmp / "data.npz"), "--calib-size", "32",
            "--seed", "0", "--steps", "5", "--lanes", "1", "--eval-size", "8", "--layer-formats", str(formats),
            "--out", str(out)]
    assert main(argv + (["--keep", ",".join(kept)] if kept else [])) == 0
    return accuracy(load_converted(out).fixed_model(), x_val, y_val)


def _explore_inputs(tmp, full=False):
    """explore's validation split (``_splits`` with the arguments :func:`_explore` gives)."""
    from hardyt.flow import explore as step
    from hardyt.flow.model_source import load_model, resolve_input
    from hardyt.flow.options import ExploreConfig, ModelSource

    config = ExploreConfig(source=ModelSource(checkpoint=str(tmp / "vit.safetensors"), data=str(tmp / "data.npz"),
                                              calib_size=32), val_size=64)
    model, fmt, path = load_model(config.source)
    pre, _ = resolve_input(config.source, model, fmt, path)
    batches, x_val, y_val, _, _ = step._splits(config, pre)
    return (x_val, y_val, model, batches) if full else (x_val, y_val)


def test_pick_accuracy_equals_a_fresh_convert_with_its_options(tmp_path, monkeypatch):
    """The pick's validation accuracy in explore.json is that of `hardyt convert` run with the pick's options
    (--keep, --layer-formats) on the same split; so is a front point's that keeps a LayerNorm."""
    from hardyt.hw import costs
    from hardyt.quant.conversion import explore

    tiny_vit_files(tmp_path)
    _npz(tmp_path)
    monkeypatch.setattr(explore, "TANH_CHOICES", CHOICES)
    monkeypatch.setattr(costs, "layer_costs", _fake_costs(lambda label, spec: 200.0))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    r = _explore(tmp_path, tmp_path / "out", tmp_path / "cache", "--conversions", "2", "--max-drop", "100",
                 "--every-family")
    x_val, y_val = _explore_inputs(tmp_path)
    pick = r["pick"]
    assert pick["measured_on"] == "pick/ as written" and pick["accuracy"] == pick["search_accuracy"]
    assert r["splits"]["decided_on"] == "validation"
    got = _convert_accuracy(tmp_path, tmp_path / "fresh", pick["kept"], pick["convert"]["layer_formats"], x_val, y_val)
    assert got == pick["accuracy"]
    fresh = json.loads((tmp_path / "fresh" / "norm.spec.json").read_text())
    assert fresh == json.loads((tmp_path / "out" / "pick" / "norm.spec.json").read_text())
    kept = [p for p in r["front"] if p["kept"] and len(p["kept"]) < 3]
    assert r["search"]["ranking"] and r["search"]["families"][1]["kept"] == [r["search"]["ranking"][-1]]
    for p in kept[:1]:
        got = _convert_accuracy(tmp_path, tmp_path / "fresh_kept", p["kept"], p["convert"]["layer_formats"],
                                x_val, y_val)
        assert abs(got - p["accuracy"]) <= 1 / len(y_val) + 1e-9     # the search's unfolded emulation: ties aside


@pytest.mark.parametrize("layernorm_lut", [1000, 5])
def test_bounded_search_picks_what_every_family_picks(tmp_path, monkeypatch, layernorm_lut):
    """By default a family keeping LayerNorms is converted only when it could be cheaper than the default
    conversion's pick: with LayerNorm cores dearer than that pick (1000 LUT) they are not converted and the
    pick is the same; with cheap ones (5 LUT) they are, and the families, front and pick are --every-family's."""
    from hardyt.hw import costs
    from hardyt.quant.conversion import explore

    tiny_vit_files(tmp_path)
    _npz(tmp_path)
    monkeypatch.setattr(explore, "TANH_CHOICES", CHOICES)
    monkeypatch.setattr(costs, "layer_costs", _fake_costs(lambda label, spec: 200.0, layernorm_lut))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    (tmp_path / "t").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "t"))
    flags = ("--conversions", "2", "--max-drop", "100")
    every = _explore(tmp_path, tmp_path / "every", tmp_path / "cache", *flags, "--every-family")
    bounded = _explore(tmp_path, tmp_path / "bounded", tmp_path / "cache", *flags)
    pruned = layernorm_lut == 1000
    assert bounded["search"]["bound"]["pruned"] is pruned and every["search"]["bound"] is None
    kept = [f["kept"] for f in bounded["search"]["families"]]
    assert kept == ([[], ["blocks.0.norm1", "blocks.0.norm2", "norm"]] if pruned
                    else [f["kept"] for f in every["search"]["families"]])
    assert len(kept) < len(every["search"]["families"]) or not pruned
    for key in ("layers", "lut_ff", "accuracy", "kept"):
        assert bounded["pick"][key] == every["pick"][key]
    if not pruned:
        assert [(p["lut_ff"], p["accuracy"]) for p in bounded["front"]] == \
            [(p["lut_ff"], p["accuracy"]) for p in every["front"]]
    assert ("Families keeping LayerNorms not converted" in (tmp_path / "bounded" / "explore.md").read_text()) \
        is pruned
    assert not list((tmp_path / "t").glob("hardyt-explore-pick-*"))     # the picks moved into --out, none left


@pytest.mark.slow   # 35 conversions: minutes on 2 shared cores
def test_explore_equals_the_exhaustive_search_on_three_layers_by_three_choices(tmp_path, monkeypatch):
    """3 LayerNorms x {LayerNorm, DyT 4-bit, DyT 8-bit}: each of the 27 configurations converted by the library
    on its own (keep, per-layer formats) and measured; the front and the pick of that exhaustive search are
    explore's (every subset of kept LayerNorms converted, each family's formats measured exactly)."""
    import itertools

    from hardyt.hw import costs
    from hardyt.quant.conversion import explore, families
    from hardyt.quant.runtime.evaluate import accuracy
    from hardyt.quant.conversion.pipeline import convert

    tiny_vit_files(tmp_path)
    _npz(tmp_path)
    monkeypatch.setattr(explore, "TANH_CHOICES", CHOICES)
    monkeypatch.setattr(families, "SQNR_FLOOR_DB", float("inf"))     # output width = input width: 2 DyT choices
    monkeypatch.setattr(costs, "layer_costs", _fake_costs(lambda label, spec: 200.0))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    budget = 3.0
    r = _explore(tmp_path, tmp_path / "out", tmp_path / "cache", "--conversions", "8", "--max-drop", str(budget),
                 "--every-family")
    assert [f["method"] for f in r["search"]["families"]] == ["exact"] * 8
    bounded = _explore(tmp_path, tmp_path / "bounded", tmp_path / "cache", "--conversions", "8", "--max-drop",
                       str(budget))     # the default: families keeping LayerNorms only if they could be picked

    x_val, y_val, model, batches = _explore_inputs(tmp_path, full=True)
    names = ["blocks.0.norm1", "blocks.0.norm2", "norm"]
    cost = {"layernorm": 1010, 4: 10 * 4 + 10, 8: 10 * 64 + 10}         # _fake_costs's rule
    points = []
    for config in itertools.product(["layernorm", 4, 8], repeat=3):
        kept = tuple(n for n, c in zip(names, config) if c == "layernorm")
        layers = {n: {"tanh": "lut", "in_bits": c, "out_bits": c, "affine_out_bits": c}
                  for n, c in zip(names, config) if c != "layernorm"}
        if kept == tuple(names):
            acc = accuracy(model.eval(), x_val, y_val)
        else:
            fixed, _ = convert(model, batches, fixed_point={"lanes": 1, "layers": layers}, keep=kept, steps=5, seed=0)
            acc = accuracy(fixed, x_val, y_val)
        points.append({"layers": dict(zip(names, config)), "accuracy": acc, "cost": sum(cost[c] for c in config)})
    front = explore.pareto(points)
    reference = next(p for p in points if p["cost"] == 3 * 1010)["accuracy"]
    pick = explore.pick_within(front, reference, budget)

    def config_of(p):
        return {n: "layernorm" if c["core"] == "layernorm" else c["in_bits"] for n, c in p["layers"].items()}

    assert [(p["lut_ff"], p["accuracy"]) for p in r["front"]] == [(p["cost"], p["accuracy"]) for p in front]
    for got in (r, bounded):
        assert config_of(got["pick"]) == pick["layers"] and got["pick"]["search_accuracy"] == pick["accuracy"]
