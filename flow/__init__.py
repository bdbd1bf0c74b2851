"""hardyt.flow: the end-to-end flow as a library — typed artifacts and step functions.

As FINN's builder has it: each step is ``step(input, config) -> output``
with a dataclass config, and the command line (``hardyt.scripts``) only
parses flags into those configs, calls one step and prints.

Steps::

    load_model_source(ModelSource)              -> LoadedModel
    convert_model(ConvertConfig[, LoadedModel]) -> ConvertResult (ConvertedDir + ConvertReport)
    emit_cores(ConvertedDir | SPEC.json, EmitConfig) -> EmittedCores (CoreManifest each)
    simulate(DIR, SimConfig)                    -> SimResults
    prove(DIR, ProveConfig)                     -> ProveResults
    synthesize(DIR, SynthConfig)                -> SynthResults
    export_model(ConvertedDir, ExportConfig)    -> Exported
    run_explore(ExploreConfig)                  -> ExploreResult (+ the search's state)
    run_demo(DemoConfig)                        -> DemoResult: the steps above in sequence

Artifacts, one reader and one writer each: the converted directory
(:class:`ConvertedDir`, :func:`write_converted`, report :class:`ConvertReport`),
the emitted-core manifest (:class:`CoreManifest`, :func:`read_manifest`), the
explore result (:class:`ExploreResult`, :func:`read_explore`).

Names resolve on first use, so ``import hardyt.flow`` loads neither torch nor
amaranth.
"""
from __future__ import annotations

import importlib

_NAMES = {
    "SEED": "options", "ModelSource": "options", "ConvertConfig": "options", "EmitConfig": "options",
    "SimConfig": "options", "ProveConfig": "options", "SynthConfig": "options", "ExportConfig": "options", "ExploreConfig": "options",
    "DemoConfig": "options", "from_args": "options",
    "LoadedModel": "model_source", "load_model_source": "model_source",
    "ConvertReport": "convert_record", "LayerRecord": "convert_record", "ConvertedDir": "converted",
    "write_converted": "converted",
    "CoreManifest": "manifest", "read_manifest": "manifest",
    "ExploreResult": "explore_result", "read_explore": "explore_result",
    "ConvertResult": "convert", "convert_model": "convert",
    "EmittedCores": "emit", "emit_cores": "emit", "emit_spec": "emit",
    "SimResults": "sim", "simulate": "sim",
    "ProveResults": "prove", "prove": "prove",
    "SynthResults": "synth", "synthesize": "synth",
    "Exported": "export", "export_model": "export",
    "run_explore": "explore",
    "DemoResult": "demo", "run_demo": "demo",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
