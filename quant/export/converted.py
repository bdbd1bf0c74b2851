"""A ``hardyt convert`` output directory read back: the float model, its fixed-point twin, the specs.

The directory holds ``config.json`` (the source ViT's config, each DyT
layer's ``alpha_shift`` and ``folded`` flag, the kept LayerNorms),
``model.safetensors`` (the converted float model, gamma/beta folded into the
Linear layers where the conversion folded them) and one ``<layer>.spec.json``
per DyT layer. Every missing or malformed piece is a :class:`HardytError`
naming the file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..contract.spec import DyTSpec
from ..contract.names import layer_file
from ..contract.spec_io import load_spec
from ..conversion.fixed_dyt import FixedDyT
from ..runtime.graph import set_module
from ..conversion.modules import DyT, ShiftDyT
from ..errors import HardytError

__all__ = ["Converted", "load_converted", "converted_specs"]


@dataclass
class Converted:
    """A converted model.

    Members
    -------
    directory : Path
    float_model : nn.Module
        DyT layers in float (what ``--format onnx`` exports), eval mode.
    specs : dict of str to DyTSpec
        Each DyT layer's spec, by module name, in the model's order.
    kept : list of str
        LayerNorms the conversion kept (``--max-drop``).
    config : dict
        The source ViT's config (``img_size``, ``in_chans``, ...).
    """

    directory: Path
    float_model: nn.Module
    specs: dict[str, DyTSpec]
    kept: list[str]
    config: dict

    def fixed_model(self) -> nn.Module:
        """A copy whose DyT layers compute the hardware's integers (hardyt's fixed-point emulation)."""
        import copy
        model = copy.deepcopy(self.float_model)
        for name, spec in self.specs.items():
            set_module(model, name, FixedDyT(spec, model.get_submodule(name)))
        return model.eval()

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        size = self.config.get("img_size", 224)
        h, w = (size, size) if isinstance(size, int) else size
        return (batch, self.config.get("in_chans", 3), h, w)


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_bytes())
    except OSError as e:
        raise HardytError(f"{path}: cannot read: {e.strerror or e} (is {path.parent} a `hardyt convert` "
                          "output directory?)") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HardytError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(d, dict):
        raise HardytError(f"{path}: expected a JSON object")
    return d


def _dyt_module(name: str, spec: DyTSpec, folded: bool) -> nn.Module:
    if spec.alpha_shift is not None:
        return ShiftDyT(spec.channels, spec.alpha, spec.alpha_shift, affine=not folded)
    return DyT(spec.channels, spec.alpha, affine=not folded)


def converted_specs(directory) -> dict[str, DyTSpec]:
    """Each DyT layer's spec of a ``hardyt convert`` output directory, by module name, in
    ``config.json``'s order; reads no model (any converted model, timm or HF)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HardytError(f"{directory}: not a directory (expected a `hardyt convert` output)")
    config_path = directory / "config.json"
    config = _read_json(config_path)
    if config.get("hardyt") != "converted":
        raise HardytError(f"{config_path}: not a hardyt converted-model config (\"hardyt\": \"converted\" missing)")
    layers = config.get("dyt_layers")
    if not isinstance(layers, dict) or not all(isinstance(v, dict) for v in layers.values()):
        raise HardytError(f"{config_path}: dyt_layers missing or not an object of objects")
    specs = {}
    for name in layers:
        spec = load_spec(layer_file(directory, name, ".spec.json"))
        if not isinstance(spec, DyTSpec):
            raise HardytError(f"{directory}: layer {name} has a {type(spec).__name__}, not a DyT spec")
        specs[name] = spec
    return specs


def load_converted(directory) -> Converted:
    """Read a ``hardyt convert`` output directory (see the module docstring)."""
    import torch

    from ..zoo.load import load_state_dict
    from ..zoo.vit import VisionTransformer

    specs = converted_specs(directory)
    directory = Path(directory)
    config_path = directory / "config.json"
    config = _read_json(config_path)
    source, kept = config.get("source_config"), config.get("kept_layernorms", [])
    if not isinstance(source, dict) or "embed_dim" not in source:
        raise HardytError(f"{config_path}: source_config is not a timm-layout ViT config; export reads models "
                          "converted from timm-format checkpoints")
    if not isinstance(kept, list) or not all(isinstance(n, str) for n in kept):
        raise HardytError(f"{config_path}: kept_layernorms must be a list of module names")
    try:
        model = VisionTransformer(**source)
    except (TypeError, HardytError) as e:
        raise HardytError(f"{config_path}: source_config: {e}") from None
    for name, spec in specs.items():
        try:
            model.get_submodule(name)
        except AttributeError:
            raise HardytError(f"{config_path}: dyt_layers names {name!r}, which the ViT does not have") from None
        set_module(model, name, _dyt_module(name, spec, bool(config["dyt_layers"][name].get("folded"))))
    state = load_state_dict(directory / "model.safetensors")
    try:
        with torch.no_grad():
            model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise HardytError(f"{directory / 'model.safetensors'}: does not match config.json: "
                          f"{str(e).splitlines()[-1].strip()}") from None
    order = [n for n, m in model.named_modules() if n in specs]
    return Converted(directory, model.eval(), {n: specs[n] for n in order}, list(kept),
                     source)
