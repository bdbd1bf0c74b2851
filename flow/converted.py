"""The converted directory: what ``hardyt convert`` (and ``explore``'s pick) writes, and its one reader.

A converted directory holds ``model.safetensors`` + ``config.json`` (the
converted float model), one ``<layer>.spec.json`` per DyT layer (what
``hardyt rtl`` builds), ``<layer>.inputs.npz`` (``x``: the integer input codes
the layer saw, for simulation), ``report.json`` / ``report.md`` and plots.
File names follow :func:`hardyt.quant.contract.names.layer_stem`.
:func:`write_converted` is its only writer, :class:`ConvertedDir` its only reader.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hardyt.quant.contract.names import layer_file
from hardyt.quant.contract.spec_io import load_spec
from hardyt.quant.errors import HardytError
from hardyt.quant.files import atomic_output_dir, atomic_write_text, load_json_object, save_json_atomic

from .convert_record import ConvertReport, LayerRecord  # noqa: F401 - LayerRecord: the records of report()

__all__ = ["LayerRecord", "ConvertReport", "ConvertedDir", "write_converted", "RECORD_IMAGES"]

RECORD_IMAGES = 8  # images whose DyT input codes are saved per layer (a few hundred tokens)


@dataclass(frozen=True)
class ConvertedDir:
    """A converted directory on disk, read on demand.

    Members
    -------
    path : Path
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    def _json(self, name: str) -> dict:
        return load_json_object(self.path / name, f"a `hardyt convert` output's {name}")

    def report(self) -> ConvertReport:
        """``report.json``."""
        return ConvertReport.from_dict(self._json("report.json"), str(self.path / "report.json"))

    def layer_order(self) -> list[str]:
        """The DyT layers' module names in the model's order (``config.json``), or ``[]`` if it says none."""
        try:
            layers = self._json("config.json").get("dyt_layers")
        except HardytError:
            return []
        return list(layers) if isinstance(layers, dict) else []

    def specs(self, layers=None) -> list:
        """The layer specs (``None`` or ``["all"]``: every one), in the model's order when ``config.json`` says it
        (else by name).

        A name in ``layers`` may be a module name or a spec name; an unknown one is a :class:`HardytError`.
        """
        files = sorted(self.path.glob("*.spec.json"))
        if not files:
            raise HardytError(f"{self.path}: no *.spec.json layer specs (is it a `hardyt convert` output?)")
        specs = {}
        for f in files:
            spec = load_spec(f)
            specs[spec.name] = spec
        order = self.layer_order()
        by_module = {n: layer_file(self.path, n, ".spec.json").name[:-len(".spec.json")] for n in order}
        rank = {stem: i for i, stem in enumerate(by_module.values())}
        ordered = sorted(specs.values(), key=lambda s: rank.get(s.name, len(rank)))
        if not layers or list(layers) == ["all"]:
            return ordered
        unknown = [n for n in layers if n not in specs and by_module.get(n) not in specs]
        if unknown:
            raise HardytError(f"{self.path}: no layer {', '.join(unknown)}; layers are: {', '.join(specs)}")
        wanted = {n if n in specs else by_module[n] for n in layers}
        return [s for s in ordered if s.name in wanted]

    def inputs(self, name: str) -> Path | None:
        """The captured input codes of layer ``name`` (module or spec name), if the directory holds them."""
        path = layer_file(self.path, name, ".inputs.npz")
        return path if path.is_file() else None

    def models(self):
        """The float model, its fixed-point twin and specs: :class:`hardyt.quant.export.Converted`."""
        from hardyt.quant.export import load_converted
        return load_converted(self.path)


def _converted_config(model, report: ConvertReport) -> dict:
    vit = getattr(model, "config", None)
    vit = vit if isinstance(vit, dict) else getattr(vit, "to_dict", lambda: None)()
    return {"hardyt": "converted", "source_config": vit,
            "dyt_layers": {layer.name: {"alpha_shift": layer.alpha_shift, "folded": layer.folded,
                                        "folded_into": layer.folded_into} for layer in report.layers},
            "kept_layernorms": report.kept_layernorms}


def _save_layer_files(converted, report: ConvertReport, images, tmp: Path) -> None:
    import torch

    from hardyt.quant.contract.spec import DyTSpec
    from hardyt.quant.conversion.fixed_dyt import dyt_layers
    from hardyt.quant.runtime.graph import model_logits

    layers = dyt_layers(converted)
    for m in layers.values():
        m.record = []
    try:
        with torch.no_grad():
            model_logits(converted, images)
        for layer in report.layers:
            spec = DyTSpec.from_dict(layer.spec)
            spec.save(layer_file(tmp, layer.name, ".spec.json"))
            codes = torch.cat(layers[layer.name].record).numpy().astype(np.int64)
            np.savez(layer_file(tmp, layer.name, ".inputs.npz"), x=codes)
    finally:
        for m in layers.values():
            m.record = None


def write_converted(out, model, float_model, converted, report, record_images,
                    markdown: str | None = None) -> ConvertedDir:
    """Every file of a converted directory, all or none (written in a temporary directory, then renamed).

    ``report``: a :class:`ConvertReport` (or its dict); ``markdown``: the text
    of ``report.md`` (default: :func:`hardyt.flow.convert_report.render_markdown`).
    """
    from safetensors.torch import save_file

    from .convert_report import plot_alpha, render_markdown
    from .plots import plot_sqnr

    report = report if isinstance(report, ConvertReport) else ConvertReport.from_dict(report)
    as_dict = report.to_dict()
    with atomic_output_dir(Path(out)) as tmp:
        state = {k: v.detach().contiguous() for k, v in float_model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        save_json_atomic(tmp / "config.json", _converted_config(model, report))
        _save_layer_files(converted, report, record_images, tmp)
        plot_alpha(report, tmp / "alpha.png")
        plot_sqnr(as_dict["layers"], report.fidelity["sqnr_floor_db"], tmp / "sqnr.png")
        save_json_atomic(tmp / "report.json", as_dict)
        atomic_write_text(tmp / "report.md", render_markdown(report) if markdown is None else markdown)
    return ConvertedDir(Path(out))
