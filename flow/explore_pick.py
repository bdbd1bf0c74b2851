"""``hardyt explore``'s pick: written as ``hardyt convert`` writes it, measured from there, reproducible.

:func:`write_pick` writes a configuration of one family (a conversion with
some LayerNorms kept) as a converted directory with its
``layer_formats.json``, reads it back (:func:`hardyt.quant.export.converted.load_converted`)
and measures it on validation and once on test; :func:`convert_record` is
the ``hardyt convert`` command that reproduces a point.
"""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.errors import HardytError
from hardyt.quant.files import save_json_atomic

from .converted import RECORD_IMAGES, write_converted

__all__ = ["write_pick", "convert_record", "render_pick"]


def write_pick(e: dict, pick: dict, max_drop: float):
    """The pick's converted directory (a temporary one) and its accuracies measured from it."""
    import tempfile

    from hardyt.quant.runtime.evaluate import accuracy
    from hardyt.quant.conversion.explore import pick_model
    from hardyt.quant.export.converted import load_converted

    from .explore_search import core_label

    j = pick["family"]
    kept, fam, _ = e["families"][j]
    labels = {n: core_label(n, lab, j) for n, lab in pick["layers"].items() if lab != "layernorm"}
    chosen = {n: e["specs"][lab] for n, lab in labels.items()}
    float_model, fixed_model, folded = pick_model(fam, chosen, e["batches"][0])
    layer_formats = {n: e["formats"][lab] for n, lab in labels.items()}
    by_name = {layer["name"]: layer for layer in fam.report["layers"]}
    layers = [by_name[n] | {"spec_name": s.name, "in_scale": s.in_scale, "clip": s.in_scale * 2 ** (s.in_bits - 1),
                            "folded": bool(folded.get(n, {}).get("into")),
                            "folded_into": folded.get(n, {}).get("into", []),
                            "fold_change": folded.get(n, {}).get("change"), "spec": s.to_dict()}
              for n, s in chosen.items()]
    convert = convert_record(e, kept, layer_formats)
    report = fam.report | {"checkpoint": str(e["args"].source.checkpoint or "bundled"), "data": e["args"].source.data,
                           "layers": layers, "kept_layernorms": list(kept),
                           "folded": sum(layer["folded"] for layer in layers), "convert_options": convert}
    directory = Path(tempfile.mkdtemp(prefix="hardyt-explore-pick-")) / "pick"
    write_converted(directory, e["model"], float_model, fixed_model, report,
                                e["batches"][0][:RECORD_IMAGES], markdown=render_pick(report, pick,
                                                                                                max_drop))
    save_json_atomic(directory / "layer_formats.json", layer_formats)
    try:   # measured on the directory as written (the model `hardyt export` and the user load)
        model, where = load_converted(directory).fixed_model(), "pick/ as written"
    except HardytError:   # not a timm-layout ViT: the model that was written, in memory
        model, where = fixed_model, "the pick's model in memory (pick/ holds a non-timm model)"
    (x_val, y_val), (x_test, y_test) = e["validation"], e["test"]
    return directory, {"search_accuracy": pick["accuracy"],
                       "accuracy": accuracy(model, x_val, y_val, progress=True, desc="pick (validation)"),
                       "test_accuracy": accuracy(model, x_test, y_test, progress=True, desc="pick (test)"),
                       "measured_on": where, "convert": convert}


def convert_record(e: dict, kept, layer_formats: dict) -> dict:
    """The ``hardyt convert`` options that reproduce a point (the pick's ``layer_formats.json`` beside)."""
    args = e["args"]
    src = args.source
    flags = [str(src.checkpoint)] if src.checkpoint else []
    flags += ["--data", src.data, "--calib-size", str(src.calib_size), "--seed", str(src.seed)]
    flags += [f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in e["options"].items()
              if k in ("steps", "method", "alpha_shift", "augment") and v is not False]
    if args.lanes:
        flags += ["--lanes", str(args.lanes)]
    if kept:
        flags += ["--keep", ",".join(kept)]
    flags += ["--layer-formats", "pick/layer_formats.json"]
    return {"keep": list(kept), "layer_formats": layer_formats,
            "command": "hardyt convert " + " ".join(flags)}


def render_pick(report: dict, pick: dict, max_drop: float) -> str:
    lines = [f"# Converted by `hardyt explore` (--max-drop {max_drop} pt)", "",
             f"Validation top-1 in the search {100 * pick['accuracy']:.2f} %. Reproduce with `hardyt convert`: "
             f"`{report['convert_options']['command']}`. See ../explore.md.", "",
             "| layer | choice |", "|---|---|"]
    lines += [f"| {n} | {'layernorm' if lab == 'layernorm' else lab} |" for n, lab in pick["layers"].items()]
    if report["kept_layernorms"]:
        lines += ["", "LayerNorms kept (served by the LayerNorm core; no spec file here): "
                  + ", ".join(f"`{n}`" for n in report["kept_layernorms"])]
    return "\n".join(lines) + "\n"
