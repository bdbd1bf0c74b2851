"""``hardyt export``: QONNX equals the golden model bit for bit, ONNX equals the float model, bad input is refused."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
import torch

from hardyt.hw.datapath.cores import random_dyt_spec
from hardyt.quant.contract.fixed import signed_range
from hardyt.quant.export import Converted, layer_qonnx, load_converted, qonnx_model, save_model
from hardyt.quant.export.thresholds import quantizer_thresholds
from hardyt.scripts.cli import main

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    """The bundled ViT converted once, small (every layer replaced, default formats)."""
    out = tmp_path_factory.mktemp("conv") / "bundled"
    os.environ["TQDM_DISABLE"] = "1"
    assert main(["convert", "--calib-size", "32", "--steps", "2", "--eval-size", "32", "--out", str(out)]) == 0
    return out


def _every_code(spec):
    lo, hi = signed_range(spec.in_bits)
    return np.repeat(np.arange(lo, hi + 1)[:, None], spec.channels, axis=1)


def _run_layer(spec, path):
    codes = _every_code(spec)
    save_model(layer_qonnx(spec, rows=len(codes)), path)
    onnx.checker.check_model(onnx.load(path))
    return execute_onnx(ModelWrapper(str(path)), {"codes": codes.astype(np.float32)})["y"], spec.reference(codes)


def test_every_bundled_layer_bit_exact(bundled, tmp_path):
    conv = load_converted(bundled)
    assert len(conv.specs) == 9
    for name, spec in conv.specs.items():
        got, want = _run_layer(spec, tmp_path / f"{spec.name}.onnx")
        assert np.array_equal(got, want), name


@pytest.mark.parametrize("tanh", ["lut", "pwl"])
def test_channel_affine_negative_gamma_bit_exact(tmp_path, tanh):
    spec = random_dyt_spec(16, 2, 8, 8, tanh=tanh, affine="channel", seed=1)
    assert min(spec.affine.gamma) < 0 < max(spec.affine.gamma)
    got, want = _run_layer(spec, tmp_path / "layer.onnx")
    assert np.array_equal(got, want)


def test_quantizer_thresholds_round_ties_up():
    """At every threshold and one float32 step below it, the MultiThreshold code is the contract's code."""
    for scale in (0.05, 0.1, 1 / 3, 0.0123456):
        thr = quantizer_thresholds(scale, 8)[0]
        x = np.concatenate([thr, np.nextafter(thr, np.float32(-np.inf)), ((np.arange(-128, 128) + 0.5) * scale)
                            .astype(np.float32)])
        mt = -128 + (x[:, None] >= thr[None, :]).sum(1)
        want = np.clip(np.floor(x.astype(np.float64) / scale + 0.5), -128, 127)
        assert np.array_equal(mt, want)


def _check_against_emulation(conv, path, x):
    """Each DyT layer's QONNX nodes, on the input the graph gave them, equal FixedDyT exactly; logits agree.

    The float parts (attention, MLP) round differently in onnxruntime and torch, so an input near a
    quantizer threshold may land one code apart: such flips are counted and must be rare and +-1.
    """
    from hardyt.quant.conversion.fixed_dyt import FixedDyT
    from hardyt.quant.conversion.pipeline import dyt_layers

    ctx = execute_onnx(ModelWrapper(str(path)), {"images": x.numpy()}, return_full_exec_context=True)
    graph = {n.name: n for n in onnx.load(path).graph.node}
    fixed = conv.fixed_model()
    for m in dyt_layers(fixed).values():
        m.record = []
    with torch.no_grad():
        emulated = fixed(x).numpy()
    flips = total = 0
    for name, spec in conv.specs.items():
        x_in = ctx[graph[f"{name}.quant"].input[0]]
        with torch.no_grad():
            want = FixedDyT(spec)(torch.from_numpy(x_in)).numpy()
        assert np.array_equal(ctx[graph[f"{name}.scale"].output[0]], want), name
        diff = ctx[f"{name}.q"].reshape(-1, spec.channels) - torch.cat(dyt_layers(fixed)[name].record).numpy()
        assert np.abs(diff).max() <= 1, name
        flips, total = flips + int((diff != 0).sum()), total + diff.size
    assert flips <= 0.002 * total, f"{flips} of {total} input codes differ from torch's"
    err = np.abs(ctx["logits"] - emulated).max() / np.abs(emulated).max()
    assert err < (1e-5 if flips == 0 else 1e-2), (err, flips)


def test_bundled_cli_qonnx_and_onnx(bundled, tmp_path):
    conv = load_converted(bundled)
    torch.manual_seed(0)
    x = torch.randn(conv.input_shape(4))
    q = tmp_path / "model_qonnx.onnx"
    assert main(["export", str(bundled), "--format", "qonnx", "--batch", "4", "--out", str(q)]) == 0
    onnx.checker.check_model(onnx.load(q))
    _check_against_emulation(conv, q, x)

    import onnxruntime as ort
    f = tmp_path / "model.onnx"
    assert main(["export", str(bundled), "--format", "onnx", "--out", str(f)]) == 0
    onnx.checker.check_model(onnx.load(f))
    got = ort.InferenceSession(str(f)).run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        want = conv.float_model(x).numpy()
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_whole_model_channel_affine_shifts_kept_layernorm(tmp_path):
    """Unfolded layers (negative gamma on some channels), per-channel alpha shifts and a kept LayerNorm."""
    from hardyt.quant.conversion.fixed_dyt import formats_from, make_spec
    from hardyt.quant.conversion.pipeline import convert, to_float
    from hardyt.quant.zoo.vit import VisionTransformer

    torch.manual_seed(0)
    vit = VisionTransformer(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=16, depth=1,
                            num_heads=2, mlp_ratio=2.0).eval()
    x = torch.randn(64, 1, 28, 28)
    fixed, report = convert(vit, [x[:32], x[32:]], fixed_point=True, steps=2, fold=False, alpha_shift=2,
                            keep=["norm"], progress=False)
    model, specs = to_float(fixed), {}
    for layer in report["layers"]:
        dyt = model.get_submodule(layer["name"])
        with torch.no_grad():
            dyt.weight[::3] *= -1
        specs[layer["name"]] = make_spec(layer["name"], layer["alpha"], layer["in_scale"], formats_from(True),
                                         channels=16, alpha_shift=layer["alpha_shift"],
                                         gamma=dyt.weight.detach().numpy(), beta=dyt.bias.detach().numpy())
        assert specs[layer["name"]].affine.mode == "channel" and min(specs[layer["name"]].affine.gamma) < 0
    conv = Converted(tmp_path, model, specs, report["kept_layernorms"], vit.config)
    path = tmp_path / "q.onnx"
    save_model(qonnx_model(conv, batch=8), path)
    graph = onnx.load(path)
    onnx.checker.check_model(graph)
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("LayerNormalization") == 1 and ops.count("MultiThreshold") == 3 * len(specs)
    _check_against_emulation(conv, path, torch.randn(8, 1, 28, 28) * 2)


def _no_files(directory):
    return not [p.name for p in directory.iterdir()] if directory.is_dir() else True


def test_bad_inputs(bundled, tmp_path, capsys):
    out = tmp_path / "o" / "x.onnx"
    (tmp_path / "o").mkdir()
    cases = [
        ([str(tmp_path / "missing"), "--format", "onnx"], "not a directory"),
        ([str(tmp_path / "o"), "--format", "onnx"], "config.json"),
        ([str(bundled), "--format", "qonnx", "--layer", "blocks.9.norm1"], "no such DyT layer"),
        ([str(bundled), "--format", "onnx", "--layer", "norm"], "needs --format qonnx"),
    ]
    for args, message in cases:
        assert main(["export", *args, "--out", str(out)]) == 1
        assert message in capsys.readouterr().err
        assert _no_files(tmp_path / "o")
    assert main(["export", str(bundled), "--format", "qonnx", "--layer", "norm",
                 "--out", str(tmp_path / "nodir" / "x.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["export", str(bundled), "--format", "qonnx", "--layer", "norm",
                 "--out", str(blocker / "x.onnx")]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert main(["export", str(bundled), "--format", "qonnx", "--layer", "norm", "--out", str(tmp_path / "o")]) == 1
    assert "is a directory" in capsys.readouterr().err
    assert _no_files(tmp_path / "o")
