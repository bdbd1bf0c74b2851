"""Every parser of outside data fed mutated bytes (hypothesis): a :class:`HardytError` naming the file, or a
value; never another exception, never a hang. Shared by ``tests/test_faults.py`` and ``bench/faults.py``.

Each target writes one valid file (its seed), and the mutations are applied to it: byte flips, overwrites,
truncation, deleted, duplicated or inserted spans and, for JSON, a value anywhere in the tree replaced by
another JSON value or a key removed.
"""
from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HANG_SECONDS = 10

# --- mutations ------------------------------------------------------------------------------

_pos = st.floats(0, 1, allow_nan=False)
BYTE_OPS = st.one_of(
    st.tuples(st.just("flip"), _pos, st.integers(0, 7)),
    st.tuples(st.just("set"), _pos, st.integers(0, 255)),
    st.tuples(st.just("cut"), _pos),
    st.tuples(st.just("delete"), _pos, st.integers(1, 64)),
    st.tuples(st.just("dup"), _pos, st.integers(1, 64)),
    st.tuples(st.just("insert"), _pos, st.binary(min_size=1, max_size=16)),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12)
    | st.sampled_from([0, 1, -1, 2**31, "", "lut", "pwl", "channel", "folded", "dyt", "layernorm", "x.v"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
JSON_OPS = st.one_of(st.tuples(st.just("replace"), _pos, JSON_VALUES), st.tuples(st.just("drop"), _pos))


def apply_bytes(data: bytes, op, region: int | None = None) -> bytes:
    """One byte mutation; positions are fractions of ``region`` (default: the whole length)."""
    n = len(data) if region is None else min(region, len(data))
    i = min(int(op[1] * n), max(n - 1, 0))
    kind = op[0]
    if kind == "flip" and data:
        return data[:i] + bytes([data[i] ^ (1 << op[2])]) + data[i + 1:]
    if kind == "set" and data:
        return data[:i] + bytes([op[2]]) + data[i + 1:]
    if kind == "cut":
        return data[:i]
    if kind == "delete":
        return data[:i] + data[i + op[2]:]
    if kind == "dup":
        return data[:i] + data[i:i + op[2]] + data[i:]
    if kind == "insert":
        return data[:i] + op[2] + data[i:]
    return data


def _nodes(tree, path=()):
    yield path
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        yield from _nodes(v, (*path, k))


def apply_json(tree, op):
    """One structural mutation: the node at fraction ``op[1]`` of the tree replaced (or removed)."""
    nodes = list(_nodes(tree))
    path = nodes[min(int(op[1] * len(nodes)), len(nodes) - 1)]
    if not path:
        return op[2] if op[0] == "replace" else {}
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    if op[0] == "replace":
        parent[path[-1]] = op[2]
    else:
        del parent[path[-1]]
    return tree


# --- the targets ------------------------------------------------------------------------------

@dataclass
class Target:
    """A parser: ``make(tmp)`` writes its seed files and returns ``(file to mutate, call)``."""
    name: str
    make: Callable
    is_json: bool = True
    region: Callable | None = None      # bytes of the seed mutations land in (default: all)


def _spec(tmp: Path):
    from hardyt.quant.contract.spec_io import load_spec
    from hardyt.hw.datapath.cores import random_dyt_spec

    path = tmp / "layer.spec.json"
    random_dyt_spec(8, 2, 8, 8, tanh="pwl", affine="channel", name="layer").save(path)
    return path, lambda: load_spec(path)


def _manifest(tmp: Path):
    from hardyt.hw.emission.emit import emit, load_manifest
    from hardyt.hw.datapath.cores import random_dyt_spec

    d = tmp / "core"
    path = emit(random_dyt_spec(4, 2, 6, 6, name="core"), d)
    return path, lambda: load_manifest(d)


def _converted(tmp: Path, what: str):
    """A converted directory (tiny ViT, ``config.json`` or ``report.json`` mutated)."""
    from hardyt.hw.datapath.cores import random_dyt_spec
    from hardyt.quant.zoo.vit import VisionTransformer
    from hardyt.flow import explore
    from hardyt.flow.options import ExploreConfig, ModelSource
    from hardyt.quant.export import load_converted
    from safetensors.torch import save_file

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import TINY_VIT

    d = tmp / "conv"
    d.mkdir(exist_ok=True)
    model = VisionTransformer(**TINY_VIT)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"hardyt": "converted", "source_config": TINY_VIT, "dyt_layers": {},
                                               "kept_layernorms": ["norm"]}))
    random_dyt_spec(16, 2, 8, 8, name="norm").save(d / "norm_unused.spec.json")
    (d / "report.json").write_text(json.dumps({"checkpoint": "vit.safetensors", "options": {
        "method": "reconstruct", "steps": 5, "alpha_shift": 0, "augment": "shift"}, "layers": []}))
    if what == "config":
        return d / "config.json", lambda: load_converted(d)
    return d / "report.json", lambda: explore._source(ExploreConfig(source=ModelSource(checkpoint=str(d))))


def _npz_activations(tmp: Path):
    from hardyt.hw.datapath.cores import random_dyt_spec
    from hardyt.sim.runner import check_activations

    spec = random_dyt_spec(4, 2, 8, 8, name="layer")
    path = tmp / "layer.inputs.npz"
    np.savez(path, x=np.arange(-8, 8).reshape(4, 4))
    return path, lambda: check_activations(path, spec)


def _npz_data(tmp: Path):
    from hardyt.quant.zoo.readers import npz_reader

    path = tmp / "data.npz"
    np.savez(path, x=np.arange(4 * 28 * 28, dtype=np.uint8).reshape(4, 28, 28), y=np.arange(4))

    def call():
        reader = npz_reader(path, "train", True)
        return len(reader), reader.labels(np.arange(len(reader)))
    return path, call


def _safetensors(tmp: Path):
    import torch
    from safetensors.torch import save_file

    from hardyt.quant.zoo.load import load_state_dict

    path = tmp / "vit.safetensors"
    save_file({"a.weight": torch.ones(3, 2), "b.bias": torch.zeros(4)}, str(path))
    return path, lambda: load_state_dict(path)


def _header_bytes(path: Path) -> int:
    return 8 + int.from_bytes(path.read_bytes()[:8], "little")


def _hf_preprocessor(tmp: Path):
    from hardyt.quant.zoo.preprocess import recorded

    d = tmp / "hf"
    d.mkdir(exist_ok=True)
    path = d / "preprocessor_config.json"
    path.write_text(json.dumps({"do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
                                "do_rescale": True, "rescale_factor": 1 / 255, "resample": 2, "do_resize": True,
                                "size": {"height": 224, "width": 224}, "do_center_crop": True,
                                "crop_size": {"height": 224, "width": 224}}))
    return path, lambda: recorded(d, "hf")


def _timm_sidecar(tmp: Path):
    from hardyt.quant.zoo.preprocess import recorded

    ckpt = tmp / "vit.safetensors"
    path = tmp / "vit.json"
    path.write_text(json.dumps({"config": {"embed_dim": 16}, "normalization": {"mean": [0.5], "std": [0.25]},
                                "pretrained_cfg": {"mean": [0.5], "std": [0.25], "input_size": [1, 28, 28],
                                                   "crop_pct": 0.9, "interpolation": "bicubic"},
                                "test_accuracy": 0.9}))
    return path, lambda: recorded(ckpt, "timm")


TARGETS = [Target(".spec.json", _spec), Target("manifest", _manifest),
           Target("config.json (converted)", lambda t: _converted(t, "config")),
           Target("report.json (converted)", lambda t: _converted(t, "report")),
           Target(".npz activations", _npz_activations, is_json=False),
           Target(".npz data set", _npz_data, is_json=False),
           Target("safetensors header", _safetensors, is_json=False, region=_header_bytes),
           Target("preprocessor_config.json", _hf_preprocessor),
           Target("timm sidecar", _timm_sidecar)]


# --- the property ------------------------------------------------------------------------------

class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang


def outcome(path: Path, call) -> str | None:
    """``None`` when ``call`` returned or raised a :class:`HardytError` naming ``path``; else what went wrong."""
    from hardyt.quant.errors import HardytError

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_SECONDS)
    try:
        call()
    except HardytError as e:
        text = str(e)
        if path.name not in text and str(path.parent) not in text:
            return f"HardytError not naming {path.name}: {text}"
        if "\n" in text:
            return f"HardytError of several lines: {text!r}"
    except Hang:
        return f"no answer within {HANG_SECONDS} s"
    except Exception as e:  # noqa: BLE001 - the finding
        return f"{type(e).__name__}: {str(e)[:200]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return None


def fuzz(target: Target, tmp: Path, examples: int, seed: int | None = None) -> dict:
    """Feed ``examples`` mutations of ``target``'s seed file (``seed``: hypothesis's, ``None``: derandomized);
    ``{"inputs": n, "findings": [what went wrong, ...]}``."""
    tmp.mkdir(parents=True, exist_ok=True)
    path, call = target.make(tmp)
    original = path.read_bytes()
    region = target.region(path) if target.region else None
    count = {"inputs": 0, "findings": []}
    ops = st.lists(BYTE_OPS, min_size=1, max_size=4)
    if target.is_json:
        ops = st.one_of(ops, st.lists(JSON_OPS, min_size=1, max_size=3).map(lambda o: ("json", o)))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=seed is None,
              suppress_health_check=list(HealthCheck), phases=("generate",))
    @given(ops)
    def run(mutation):
        if isinstance(mutation, tuple) and mutation[0] == "json":
            tree = json.loads(original)
            for op in mutation[1]:
                tree = apply_json(tree, op)
            data = json.dumps(tree).encode()
        else:
            data = original
            for op in mutation:
                data = apply_bytes(data, op, region)
        path.write_bytes(data)
        count["inputs"] += 1
        problem = outcome(path, call)
        if problem is not None:
            count["findings"].append(problem)

    if seed is not None:
        run = hypothesis.seed(seed)(run)
    run()
    path.write_bytes(original)
    return count
