"""Weights besides DyT's, streamed calibration data, devices and torch.distributed (2 processes, gloo)."""
from __future__ import annotations

import copy
import os
import socket
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset

from hardyt.quant import HardytError, convert
from test_convert import FAST, _calib, _model

torch.set_num_threads(1)


def _params_equal(a, b, **tol) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k], sb[k], **tol) for k in sa)


class Source:
    """A re-iterable calibration source that counts how often it is read."""

    def __init__(self, batches):
        self.batches, self.passes = batches, 0

    def __iter__(self):
        self.passes += 1
        yield from self.batches


def test_weights_adapt_by_default_and_freeze_keeps_them():
    model, calib = _model(), _calib()
    conv, report = convert(model, calib, fold=False, **FAST)
    changes = report["weights"]["relative_change"]
    assert report["weights"]["adapted"] == "all" and changes["head.weight"] > 0
    assert not any(".norm" in n for n in changes)  # DyT's own parameters are not "other weights"
    frozen, report = convert(model, calib, fold=False, freeze_weights=True, **FAST)
    assert report["weights"] == {"adapted": "frozen", "lr": 0.0, "tensors": 0, "max_change": 0.0,
                                 "relative_change": {}}
    original = model.state_dict()
    for name, value in frozen.state_dict().items():
        if name in original and ".norm" not in name and not name.startswith("norm."):
            assert torch.equal(value, original[name]), name
    _, report = convert(model, calib, fold=False, adapt="consumers", **FAST)
    assert {n.rsplit(".", 1)[0] for n in report["weights"]["relative_change"]} == \
        {"blocks.0.qkv", "blocks.0.fc1", "blocks.1.qkv", "blocks.1.fc1", "head"}
    with pytest.raises(HardytError, match="adapt"):
        convert(model, calib, adapt="some")


def test_streams_a_reiterable_source_and_reads_it_again():
    model, calib = _model(), _calib(3)
    source = Source(calib)
    streamed, report = convert(model, source, steps=7, rows_per_batch=64)
    listed, _ = convert(model, calib, steps=7, rows_per_batch=64)
    assert _params_equal(streamed, listed, rtol=0, atol=0)
    assert source.passes >= 3  # 7 steps over 3 batches: passes re-read the source
    assert report["calib_samples"] == 48
    once, _ = convert(model, (b for b in calib), steps=7, rows_per_batch=64)  # a generator is read once, kept
    assert _params_equal(once, listed, rtol=0, atol=0)
    loader = DataLoader(TensorDataset(torch.cat(calib)), batch_size=16, collate_fn=lambda rows: torch.stack(
        [r[0] for r in rows]))
    from_loader, _ = convert(model, loader, steps=7, rows_per_batch=64)
    assert _params_equal(from_loader, listed, rtol=0, atol=0)


def test_holdout_keeps_the_best_state_on_held_out_batches():
    model, calib = _model(), _calib(4)
    _, report = convert(model, calib, holdout=16, eval_every=5, steps=20, rows_per_batch=64, guard=False)
    steps = [s for s, _ in report["held_out"]["kl"]]
    assert steps == [0, 5, 10, 15, 20]
    best = min(report["held_out"]["kl"], key=lambda sk: sk[1])
    assert report["held_out"]["best_step"] == best[0]
    assert report["held_out_samples"] == 16
    with pytest.raises(HardytError, match="nothing left"):
        convert(model, calib, holdout=64, steps=5)


def test_bad_device_is_a_clear_error():
    model, calib = _model(), _calib(1)
    with pytest.raises(HardytError, match="device must be"):
        convert(model, calib, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(HardytError, match="CUDA is not available"):
            convert(model, calib, device="cuda:0")
    _, report = convert(model, calib, device="cpu", **FAST)
    assert report["device"] == "cpu" and report["world_size"] == 1


OPTIONS = dict(FAST, steps=12)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        conv, report = convert(_model(), _calib(), **OPTIONS)
        if rank == 0:
            torch.save({"state": conv.state_dict(), "world": report["world_size"], "kl": report["kl"]}, out)
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(tmp_path / "rank0.pt")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(r, 2, port, out)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    for p in procs:
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0, 0]
    got = torch.load(out, weights_only=True)
    single, report = convert(_model(), _calib(), **OPTIONS)
    assert got["world"] == 2 and report["world_size"] == 1
    want = single.state_dict()
    assert got["state"].keys() == want.keys()
    for k, v in want.items():
        g = got["state"][k]
        if k.endswith("qkv.bias"):
            # The key bias shifts every score of a query equally: softmax ignores it, its exact gradient is
            # zero, and Adam turns the float noise of its gradient (which differs with the reduction
            # order) into steps. It changes no output, so the outputs are compared below instead.
            c = v.shape[0] // 3
            g, v = torch.cat([g[:c], g[2 * c:]]), torch.cat([v[:c], v[2 * c:]])
        assert torch.allclose(g, v, rtol=1e-4, atol=1e-5), k
    two = copy.deepcopy(single)
    two.load_state_dict(got["state"])
    with torch.no_grad():
        for batch in _calib():
            assert torch.allclose(two(batch), single(batch), rtol=1e-4, atol=1e-5)
    assert got["kl"] == pytest.approx(report["kl"], rel=1e-3)
