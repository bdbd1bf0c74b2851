"""Every input code on every channel of a core, in Verilator bulk mode, in parts on Dask.

A DyT core's output depends on the channel and the input code only, so the
``2**in_bits`` tokens of :func:`hardyt.sim.stimulus.exhaustive_tokens` (channel
``c`` of token ``t`` holds code ``lo + (t + c) mod 2**in_bits``) cover its
whole input space: ``2**in_bits * C`` elements. The sweep is cut into parts of
at most :data:`PART_ELEMENTS` elements (at least one per Dask worker); each
part is one bulk-mode run (:func:`hardyt.sim.runner.run_sim` with ``part``),
checked element by element in HDL against the golden model, with random
pauses on both sides.
"""
from __future__ import annotations

import time

from hardyt.hw.emission.emit import load_manifest
from hardyt.quant.contract.spec_io import spec_from_dict
from hardyt.quant.errors import HardytError

from .runner import run_sim

__all__ = ["PART_ELEMENTS", "sweep_parts", "run_exhaustive"]

#: The most elements one bulk run of the sweep holds (memory files of 2**25 lines at most).
PART_ELEMENTS = 1 << 25


def sweep_parts(spec, workers: int = 1) -> int:
    """How many parts the sweep of ``spec`` is cut into: enough to keep each within
    :data:`PART_ELEMENTS`, at least one per worker, at most one per token.

    >>> from hardyt.hw.datapath.cores import random_dyt_spec
    >>> sweep_parts(random_dyt_spec(768, 1, 16, 8, tanh="pwl"), 1), sweep_parts(random_dyt_spec(4, 1, 8, 8), 2)
    (2, 2)
    """
    elements = (1 << spec.in_bits) * spec.channels
    return min(1 << spec.in_bits, max(workers, -(-elements // PART_ELEMENTS)))


def run_exhaustive(directory, *, simulator: str = "verilator", client=None, workers: int = 1, seed: int = 1,
                   cache=None, pause: bool = True) -> dict:
    """Simulate every code on every channel of the core in ``directory``; the summed numbers.

    ``client``: a Dask client the parts are submitted to (``workers`` is then
    only the minimum number of parts); without one the parts run here, one
    after the other. Returns ``ok``, ``elements`` (must be ``2**in_bits * C``),
    ``mismatches``, ``parts``, ``report`` (first mismatch per failing part),
    ``seconds`` (wall) and ``part_seconds``.
    """
    manifest = load_manifest(directory)
    spec = spec_from_dict(manifest["spec"])
    if manifest["core"] != "dyt":
        raise HardytError(f"{directory}: the exhaustive sweep is for DyT cores (elementwise); "
                          f"got a {manifest['core']} core (its exhaustive tokens run in `hardyt sim`)")
    n = sweep_parts(spec, workers)
    kw = {"simulator": simulator, "mode": "bulk", "seed": seed, "cache": cache, "pause": pause, "vectors": 1}
    t0 = time.perf_counter()
    if client is None:
        results = [run_sim(directory, part=(k, n), **kw) for k in range(n)]
    else:
        # A build per worker: parts of one build run one after the other (its lock), so side by side
        # they each need their own.
        futures = [client.submit(run_sim, directory, part=(k, n), slot=k % workers, pure=False, **kw)
                   for k in range(n)]
        results = client.gather(futures)
    space = (1 << spec.in_bits) * spec.channels
    # Each run also streams a full-rate prefix (the throughput test): count the sweep once.
    elements = sum(r["tests"].get("bulk", {}).get("elements", 0) for r in results)
    out = {"dir": manifest["dir"], "space": space, "parts": n, "elements": elements,
           "mismatches": sum(r["mismatches"] for r in results),
           "report": [line for r in results for line in r["report"]],
           "failures": [f for r in results for f in r["failures"]],
           "seconds": round(time.perf_counter() - t0, 1),
           "part_seconds": [round(r["build_seconds"] + r["sim_seconds"], 1) for r in results]}
    out["ok"] = all(r["ok"] for r in results) and elements == space and out["mismatches"] == 0
    return out
