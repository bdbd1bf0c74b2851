"""hardyt's timm-layout ViT and checkpoint loading.

The reference forward below is timm's ``VisionTransformer`` math written out
op by op from the state dict (explicit ``q * scale @ k^T``, softmax, exact
GELU, LayerNorm eps 1e-6), so the module is checked against timm's
definition, not against itself.
"""
from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from hardyt.quant import HardytError, VisionTransformer, load_vit
from hardyt.quant.zoo.load import default_model_path, infer_config, load_hf

torch.set_num_threads(1)

CONFIGS = {
    "token": dict(img_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=24, depth=2, num_heads=3,
                  mlp_ratio=2.0),
    "avg_no_cls": dict(img_size=(16, 24), patch_size=8, in_chans=3, num_classes=5, embed_dim=16, depth=1,
                       num_heads=2, mlp_ratio=4.0, class_token=False, global_pool="avg", qkv_bias=False),
    "avg_cls_no_fc_norm": dict(img_size=16, patch_size=4, in_chans=2, num_classes=3, embed_dim=16, depth=3,
                               num_heads=4, mlp_ratio=1.5, global_pool="avg", fc_norm=False),
    "token_fc_norm": dict(img_size=16, patch_size=4, in_chans=1, num_classes=4, embed_dim=8, depth=1,
                          num_heads=1, mlp_ratio=3.0, global_pool="token", fc_norm=True),
}


def timm_reference(sd: dict, cfg: dict, x: torch.Tensor) -> torch.Tensor:
    """timm VisionTransformer.forward, written out from the state dict."""
    ln = lambda t, name: F.layer_norm(t, t.shape[-1:], sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)  # noqa: E731
    lin = lambda t, name: F.linear(t, sd[f"{name}.weight"], sd.get(f"{name}.bias"))  # noqa: E731
    p = cfg["patch_size"]
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=p).flatten(2).transpose(1, 2)
    if "cls_token" in sd:
        t = torch.cat([sd["cls_token"].expand(len(x), -1, -1), t], 1)
    t = t + sd["pos_embed"]
    b, n, c = t.shape
    h = cfg["num_heads"]
    for i in range(cfg["depth"]):
        pre = f"blocks.{i}."
        qkv = lin(ln(t, pre + "norm1"), pre + "attn.qkv").reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * (c // h) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        t = t + lin((attn @ v).transpose(1, 2).reshape(b, n, c), pre + "attn.proj")
        hidden = F.gelu(lin(ln(t, pre + "norm2"), pre + "mlp.fc1"))
        t = t + lin(hidden, pre + "mlp.fc2")
    if "norm.weight" in sd:
        t = ln(t, "norm")
    pooled = t[:, 0] if cfg.get("global_pool", "token") == "token" else t[:, int("cls_token" in sd):].mean(1)
    if "fc_norm.weight" in sd:
        pooled = ln(pooled, "fc_norm")
    return lin(pooled, "head")


def _random_model(cfg, seed=0):
    torch.manual_seed(seed)
    model = VisionTransformer(**cfg).eval()
    with torch.no_grad():  # non-trivial LayerNorm affine and biases, so every parameter matters
        for name, prm in model.named_parameters():
            prm.add_(torch.randn_like(prm) * (0.3 if name.endswith("bias") or "norm" in name else 0.05))
    return model


def _state(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def _save(model, path, cfg=None):
    if path.suffix == ".safetensors":
        save_file(_state(model), str(path))
    else:
        torch.save(_state(model), path)
    if cfg is not None:
        path.with_suffix(".json").write_text(json.dumps({k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in cfg.items()}))
    return path


def _images(cfg, n=3):
    size = cfg["img_size"] if isinstance(cfg["img_size"], tuple) else (cfg["img_size"],) * 2
    return torch.randn(n, cfg["in_chans"], *size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", CONFIGS)
def test_forward_matches_timm_math(name):
    cfg = CONFIGS[name]
    model = _random_model(cfg)
    x = _images(cfg)
    with torch.no_grad():
        torch.testing.assert_close(model(x), timm_reference(_state(model), cfg, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("name", CONFIGS)
def test_load_reproduces_outputs(tmp_path, name, suffix):
    cfg = CONFIGS[name]
    model = _random_model(cfg)
    path = _save(model, tmp_path / f"vit{suffix}", cfg)
    x = _images(cfg)
    for config in (None, cfg):  # the JSON beside the checkpoint, then an explicit config
        loaded = load_vit(path, config)
        assert not loaded.training
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_inferred_from_shapes(tmp_path, name):
    cfg = CONFIGS[name]
    model = _random_model(cfg)
    inferred = infer_config(_state(model))
    timm_defaults = dict(qkv_bias=True, class_token=True, global_pool="token")
    for key in ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "mlp_ratio",
                "qkv_bias", "class_token"):
        want = cfg.get(key, timm_defaults.get(key))
        if key == "img_size" and isinstance(want, tuple):
            assert key not in inferred  # non-square grids cannot be read off a flat pos_embed
            continue
        assert inferred[key] == want, key
    # only num_heads from JSON is enough
    path = _save(model, tmp_path / "vit.safetensors")
    path.with_suffix(".json").write_text(json.dumps({"num_heads": cfg["num_heads"], "global_pool":
                                                     cfg.get("global_pool", "token"),
                                                     **({"img_size": list(cfg["img_size"])}
                                                        if isinstance(cfg["img_size"], tuple) else {})}))
    x = _images(cfg)
    with torch.no_grad():
        assert torch.equal(load_vit(path)(x), model(x))


def test_num_heads_needed(tmp_path):
    path = _save(_random_model(CONFIGS["token"]), tmp_path / "vit.safetensors")
    with pytest.raises(HardytError, match="num_heads cannot be inferred"):
        load_vit(path)


def test_global_pool_needed_with_cls_token_and_fc_norm(tmp_path):
    path = _save(_random_model(CONFIGS["token_fc_norm"]), tmp_path / "vit.safetensors")
    with pytest.raises(HardytError, match="global_pool cannot be inferred.*class token and fc_norm"):
        load_vit(path, {"num_heads": 1})


def test_wrapped_and_prefixed_state_dict(tmp_path):
    cfg = CONFIGS["token"]
    model = _random_model(cfg)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": {f"module.{k}": v for k, v in _state(model).items()}, "epoch": 3}, path)
    x = _images(cfg)
    with torch.no_grad():
        assert torch.equal(load_vit(path, cfg)(x), model(x))


class _RunsCode:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_code_running_pickle_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"patch_embed.proj.weight": torch.zeros(1), "x": _RunsCode(marker)}, path)
    with pytest.raises(HardytError, match=r"evil\.pth.*(refused|could run code)"):
        load_vit(path, CONFIGS["token"])
    assert not marker.exists()
    raw = tmp_path / "raw.pt"  # a bare pickle (not a zip) too
    raw.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(HardytError, match=r"raw\.pt"):
        load_vit(raw, CONFIGS["token"])
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_truncated_file(tmp_path, suffix):
    path = _save(_random_model(CONFIGS["token"]), tmp_path / f"vit{suffix}", CONFIGS["token"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HardytError, match=f"vit\\{suffix}: not a readable"):
        load_vit(path)


def _corrupt(tmp_path, edit):
    sd = _state(_random_model(CONFIGS["token"]))
    edit(sd)
    path = tmp_path / "vit.safetensors"
    save_file(sd, str(path))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda sd: sd.pop("blocks.1.norm2.bias"), r"missing key\(s\) blocks\.1\.norm2\.bias"),
    (lambda sd: sd.update({"blocks.0.ls1.gamma": torch.ones(24)}), r"unexpected key\(s\) blocks\.0\.ls1\.gamma"),
    (lambda sd: sd.update({"head.weight": torch.zeros(10, 25)}), r"head\.weight has shape \(10, 25\).*\(10, 24\)"),
    (lambda sd: sd["blocks.0.mlp.fc1.weight"].__setitem__((0, 0), float("nan")), r"blocks\.0\.mlp\.fc1\.weight.*NaN"),
    (lambda sd: sd["pos_embed"].__setitem__((0, 0, 0), float("inf")), r"pos_embed.*NaN/Inf"),
    (lambda sd: sd.update({"head.bias": torch.zeros(10, dtype=torch.int64)}), r"head\.bias has dtype"),
])
def test_bad_weights(tmp_path, edit, message):
    path = _corrupt(tmp_path, edit)
    with pytest.raises(HardytError, match=r"vit\.safetensors: .*" + message):
        load_vit(path, CONFIGS["token"])


@pytest.mark.parametrize("config, message", [
    ({**CONFIGS["token"], "num_head": 3}, "unknown config key.*num_head"),
    ({**CONFIGS["token"], "num_heads": 5}, "not divisible by num_heads 5"),
    ({**CONFIGS["token"], "img_size": 35}, r"pos_embed has shape \(1, 17, 24\).*\(1, 26, 24\)"),
    ({**CONFIGS["token"], "global_pool": "max"}, "global_pool"),
])
def test_bad_config(tmp_path, config, message):
    path = _save(_random_model(CONFIGS["token"]), tmp_path / "vit.safetensors")
    with pytest.raises(HardytError, match=message):
        load_vit(path, config)


def test_bad_paths(tmp_path):
    with pytest.raises(HardytError, match="nope.safetensors: no such checkpoint"):
        load_vit(tmp_path / "nope.safetensors")
    (tmp_path / "w.ckpt").write_bytes(b"x")
    with pytest.raises(HardytError, match=r"w\.ckpt: unknown checkpoint format"):
        load_vit(tmp_path / "w.ckpt")
    path = _save(_random_model(CONFIGS["token"]), tmp_path / "vit.safetensors")
    path.with_suffix(".json").write_text("{not json")
    with pytest.raises(HardytError, match=r"vit\.json: not valid JSON"):
        load_vit(path)


def test_bundled_model():
    path = default_model_path()
    assert path.stat().st_size <= 5 * 2**20
    meta = json.loads(path.with_suffix(".json").read_text())
    # The target (recorded, and re-measured below).
    assert meta["test_accuracy"] >= 0.90 and meta["test_samples"] == 10000
    assert meta["command"].startswith("hardyt train") and meta["normalization"]["std"]
    model = load_vit(path)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in model.modules()) == 2 * meta["config"]["depth"] + 1
    from hardyt.quant.zoo.data import load_dataset
    x, y = load_dataset("fashion-mnist", "test")
    with torch.no_grad():
        correct = sum(int((model(xb).argmax(-1) == yb).sum()) for xb, yb in zip(x.split(1000), y.split(1000)))
    assert correct == round(meta["test_accuracy"] * meta["test_samples"])  # the record is what the file does


def test_load_hf(tmp_path):
    from transformers import ViTConfig, ViTForImageClassification
    config = ViTConfig(image_size=16, patch_size=4, num_channels=1, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32, num_labels=3)
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(tmp_path / "hf")
    model = load_hf(tmp_path / "hf")
    assert not model.training
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert model(x).logits.shape == (2, 3)
    with pytest.raises(HardytError, match="no config.json"):
        load_hf(tmp_path)
    with pytest.raises(HardytError, match="not a directory"):
        load_hf(tmp_path / "missing")
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(HardytError, match="cannot load as ViTForImageClassification"):
        load_hf(tmp_path / "hf")
