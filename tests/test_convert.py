"""LayerNorm → DyT conversion on small random models and synthetic calibration data."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hardyt.quant import HardytError, convert, golden
from hardyt.quant.conversion.augment import augment_batch, shift_radius
from hardyt.quant.conversion.fit import fit_dyt
from hardyt.quant.conversion.pipeline import dyt_layers, to_float
from hardyt.quant.contract.fixed import FixedFormat, quantize
from hardyt.quant.conversion.fixed_dyt import FixedDyT
from hardyt.quant.conversion.fold import fold_all
from hardyt.quant.conversion.partial import partial_convert, select_kept
from hardyt.quant.contract.spec import DyTSpec

torch.set_num_threads(1)
FAST = {"steps": 10, "rows_per_batch": 64}


class Block(nn.Module):
    """A pre-LN transformer block with timm's names."""

    def __init__(self, d):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, x):
        q, k, v = self.qkv(self.norm1(x)).chunk(3, -1)
        x = x + self.proj(torch.softmax(q @ k.transpose(1, 2) / 4, -1) @ v)
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    def __init__(self, d=16, depth=2, classes=5):
        super().__init__()
        self.embed = nn.Linear(16, d)
        self.pos = nn.Parameter(torch.randn(1, 9, d))
        self.blocks = nn.Sequential(*[Block(d) for _ in range(depth)])
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, classes)

    def forward(self, x):  # x: (B, 1, 12, 12) -> 9 patches of 4x4
        p = x.unfold(2, 4, 4).unfold(3, 4, 4).reshape(x.shape[0], 9, 16)
        x = self.blocks(self.embed(p) + self.pos)
        return self.head(self.norm(x)[:, 0])


def _model(seed=0):
    torch.manual_seed(seed)
    m = TinyViT().eval()
    with torch.no_grad():  # LayerNorm affines away from the identity, as in trained models
        for mod in m.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.2)
    return m


def _calib(n=4, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 1, 12, 12, generator=g) for _ in range(n)]


@pytest.fixture(scope="module")
def converted_fixed():
    model = _model()
    calib = _calib()
    conv, report = convert(model, calib, fixed_point=True, **FAST)
    return model, calib, conv, report


def test_every_layernorm_replaced_and_input_untouched():
    model = _model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kinds = [type(m) for m in model.modules()]
    conv, report = convert(model, _calib(), **FAST)
    assert [type(m) for m in model.modules()] == kinds
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not any(isinstance(m, nn.LayerNorm) for m in conv.modules())
    assert [layer["name"] for layer in report["layers"]] == \
        ["blocks.0.norm1", "blocks.0.norm2", "blocks.1.norm1", "blocks.1.norm2", "norm"]
    assert report["folded"] == 5
    assert report["layers"][0]["folded_into"] == ["blocks.0.qkv"]
    assert report["layers"][-1]["folded_into"] == ["head"]


def test_reconstruction_lowers_kl():
    model, calib = _model(), _calib()
    _, seq = convert(model, calib, method="sequential", rows_per_batch=64)
    _, rec = convert(model, calib, method="reconstruct", steps=40, rows_per_batch=64)
    assert rec["kl"] < seq["kl"]


def test_fixed_point_equals_golden_bit_for_bit(converted_fixed):
    _, calib, conv, report = converted_fixed
    layers = dyt_layers(conv)
    assert len(layers) == 5 and all(isinstance(m, FixedDyT) for m in layers.values())
    seen = {}

    def hook(name):
        def f(m, inp, out):
            seen[name] = (inp[0].detach().reshape(-1, m.spec.channels), out.detach().reshape(-1, m.spec.channels))
        return f

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    with torch.no_grad():
        conv(calib[0])
    for h in handles:
        h.remove()
    for name, m in layers.items():
        spec = DyTSpec.from_dict(next(r["spec"] for r in report["layers"] if r["name"] == name))
        assert spec == m.spec
        x, y = seen[name]
        codes = quantize(x.double().numpy(), FixedFormat(spec.in_bits), spec.in_scale)
        expect = golden(codes, spec)
        assert np.abs(codes).max() > 0
        got = y.double().numpy() / spec.out_scale
        assert np.array_equal(np.rint(got).astype(np.int64), expect), name
        assert np.allclose(got, expect, atol=1e-3)


def test_fixed_point_every_code_matches_golden():
    """The layer's integer table on every input code and channel, shifts and pwl included."""
    from hardyt.quant.conversion.fixed_dyt import make_spec
    formats = {"in_bits": 6, "out_bits": 8, "tanh": "pwl", "segments": 8, "drop_bits": 0, "gamma_bits": 8,
               "beta_bits": 16, "affine_out_bits": 8, "lanes": None}
    gamma, beta = np.linspace(-1.5, 2.0, 8), np.linspace(-0.3, 0.4, 8)
    spec = make_spec("x.norm", 0.7, 0.05, formats, channels=8, alpha_shift=[0, 1, 2, 0, 3, 1, 0, 2],
                     gamma=gamma, beta=beta)
    assert spec.name == "x_norm" and spec.affine.mode == "channel"
    codes = np.repeat(np.arange(-32, 32)[:, None], 8, axis=1)
    m = FixedDyT(spec)
    assert np.array_equal(m.integer(torch.from_numpy(codes)).numpy(), golden(codes, spec))


def test_alpha_shift_option(converted_fixed):
    model, calib, _, _ = converted_fixed
    conv, report = convert(model, calib, fixed_point={"in_bits": 6}, alpha_shift=2, **FAST)
    for layer in report["layers"]:
        spec = DyTSpec.from_dict(layer["spec"])
        assert spec.alpha_shift is not None and max(spec.alpha_shift) <= 2
        assert spec.in_bits == 6 and spec.tanh.in_bits == 6 + max(spec.alpha_shift)
    with torch.no_grad():
        assert torch.isfinite(conv(calib[0])).all()


def test_folding_is_exact():
    model, calib = _model(), _calib()
    conv, report = convert(model, calib, fold=False, **FAST)
    assert report["folded"] == 0
    assert all(layer["spec"]["affine"]["mode"] == "channel" for layer in report["layers"])
    folded = to_float(conv)
    result = fold_all(folded, [layer["name"] for layer in report["layers"]], calib[0])
    assert all(r["into"] for r in result.values())
    assert all(m.weight is None for m in dyt_layers(folded).values())
    x = torch.cat(calib)
    with torch.no_grad():
        a, b = conv(x), folded(x)
    assert float((a - b).abs().max() / a.abs().max()) < 1e-5


class KwargModel(nn.Module):
    """Takes ``pixel_values=``, returns a tuple or a transformers ModelOutput."""

    def __init__(self, output):
        super().__init__()
        self.vit = _model()
        self.output = output

    def forward(self, pixel_values):
        logits = self.vit(pixel_values)
        if self.output == "tuple":
            return (logits, None)
        from transformers.modeling_outputs import ImageClassifierOutput
        return ImageClassifierOutput(logits=logits)


@pytest.mark.parametrize("output", ["tuple", "model_output"])
def test_dict_batches_and_output_kinds(output):
    model = KwargModel(output).eval()
    calib = [{"pixel_values": b} for b in _calib(2)]
    conv, report = convert(model, calib, fixed_point=True, **FAST)
    assert len(report["layers"]) == 5 and report["calib_samples"] == 32
    out = conv(pixel_values=calib[0]["pixel_values"])
    logits = out[0] if output == "tuple" else out.logits
    assert logits.shape == (16, 5)


class PostLN(nn.Module):
    """A BERT-like post-LN encoder (LayerNorm after each residual sum)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.embed = nn.Embedding(50, 16)
        layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=False)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(16, 3)

    def forward(self, input_ids):
        return self.head(self.encoder(self.embed(input_ids))[:, 0])


def test_post_ln_model_converts():
    model = PostLN().eval()
    g = torch.Generator().manual_seed(0)
    calib = [{"input_ids": torch.randint(0, 50, (8, 10), generator=g)} for _ in range(3)]
    conv, report = convert(model, calib, fixed_point=True, **FAST)
    names = [layer["name"] for layer in report["layers"]]
    assert names == ["encoder.layers.0.norm1", "encoder.layers.0.norm2",
                     "encoder.layers.1.norm1", "encoder.layers.1.norm2"]
    # Each output feeds a residual sum too: folding is not exact, the affine stays per channel.
    modes = {layer["name"]: layer["spec"]["affine"]["mode"] for layer in report["layers"]}
    assert modes["encoder.layers.0.norm1"] == "channel"
    assert not any(isinstance(m, nn.LayerNorm) for m in conv.modules())
    with torch.no_grad():
        assert torch.isfinite(conv(**calib[0])).all()


def test_closed_form_fits_use_the_first_fit_samples():
    # A large calibration set feeds the reconstruction; the closed-form fits and
    # the clip search see only the leading batches past the referee's, so they match a run on those.
    model, calib = _model(), _calib(4)
    _, subset = convert(model, calib[:3], method="sequential", rows_per_batch=64, holdout=16)
    _, bounded = convert(model, calib, method="sequential", rows_per_batch=64, fit_samples=20, holdout=16)
    _, full = convert(model, calib, method="sequential", rows_per_batch=64, holdout=16)
    key = [(layer["alpha"], layer["in_scale"]) for layer in subset["layers"]]
    assert [(layer["alpha"], layer["in_scale"]) for layer in bounded["layers"]] == key
    assert [(layer["alpha"], layer["in_scale"]) for layer in full["layers"]] != key
    assert bounded["calib_samples"] == 64
    with pytest.raises(HardytError, match="fit_samples"):
        convert(model, calib, fit_samples=0)


def test_shift_augmentation_translates_each_image():
    x = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = augment_batch(x, "shift", torch.Generator().manual_seed(1))
    r = shift_radius(28, 28)
    padded = torch.nn.functional.pad(x, (r, r, r, r), mode="replicate")
    offsets = [next((a, b) for a in range(2 * r + 1) for b in range(2 * r + 1)
                    if torch.equal(padded[i, :, a:a + 28, b:b + 28], y[i])) for i in range(6)]
    assert len(set(offsets)) > 1  # drawn per image, not once per batch
    assert augment_batch([1, 2], "shift", torch.Generator()) == [1, 2]  # not an image batch: unchanged


def test_empty_and_constant_calibration_rejected():
    model = _model()
    with pytest.raises(HardytError, match="empty"):
        convert(model, [])
    with pytest.raises(HardytError, match="empty"):
        convert(model, [torch.zeros(0, 1, 12, 12)])
    with pytest.raises(HardytError, match="constant"):
        convert(model, [torch.full((8, 1, 12, 12), 0.3)] * 2)
    with pytest.raises(HardytError, match="no nn.LayerNorm"):
        convert(nn.Sequential(nn.Flatten(), nn.Linear(144, 3)), _calib(1))
    with pytest.raises(HardytError, match="method"):
        convert(model, _calib(1), method="magic")
    with pytest.raises(HardytError, match="augment.*rotate"):
        convert(model, _calib(1), augment="flip+rotate")


def test_fit_recovers_a_dyt():
    torch.manual_seed(0)
    x = torch.randn(4000, 6) * 3
    y = 1.7 * torch.tanh(0.4 * x) - 0.2
    fit = fit_dyt(x, y)
    assert abs(fit.alpha - 0.4) < 0.02 and fit.error < 1e-3
    assert torch.allclose(fit.gamma, torch.full((6,), 1.7), atol=0.05)


def test_partial_replacement_keeps_fewest():
    assert select_kept(["a", "b"], [0.9, 0.9, 0.9], 0.0) == []
    assert select_kept(["a", "b"], [0.9, 0.7, 0.6], 1.0) == ["a", "b"]
    model, calib = _model(), _calib()
    x = torch.cat(_calib(2, seed=5))
    with torch.no_grad():
        y = model(x).argmax(-1)
    conv, report = partial_convert(model, calib, x, y, max_drop=100.0, **FAST)
    part = report["partial"]
    assert part["kept"] == [] and len(part["curve"]) == 6 and part["curve"][0] == 1.0
    assert sorted(part["order"]) == sorted(part["costs"])
    assert [t["converted"] for t in part["tried"]] == [5] and 0 <= part["tried"][0]["accuracy"] <= 1
    conv, report = partial_convert(model, calib, x, y, max_drop=0.0, **FAST)
    part = report["partial"]
    kept = part["kept"]
    # Weights adapt: full conversions searched upward; every try above the pick broke the budget.
    best = len(part["order"]) - len(kept)
    assert best in {t["converted"] for t in part["tried"]}
    assert all(t["accuracy"] < part["curve"][0] for t in part["tried"] if t["converted"] > best)
    assert report["kept_layernorms"] == [n for n in report["partial"]["order"] if n in kept] or \
        sorted(report["kept_layernorms"]) == sorted(kept)
    assert sum(isinstance(m, nn.LayerNorm) for m in conv.modules()) == len(kept)
