"""``hardyt sim``: prove an emitted core bit-exact against the golden model.

::

    hardyt sim DIR [--simulator icarus|verilator] [--vectors N] [--waves]
                   [--mode cocotb|bulk] [--seed K] [--activations FILE.npz|CONVERTED_DIR]
                   [--exhaustive] [--scheduler tcp://HOST:PORT] [--workers N]

DIR is one directory written by ``hardyt rtl`` or a ``hardyt rtl`` output of
a converted model (one subdirectory per layer: each is simulated, as a Dask
job of its own, :mod:`hardyt.hw.sweep`). The
Verilog and ``.mem`` files are simulated as they are in DIR; expected values
come from the spec in DIR's manifest. Activations (the inputs a LayerNorm saw
in the model) are used when given, or when a layer directory or DIR holds
``<layer>.inputs.npz`` as ``hardyt convert`` writes it; ``--activations
CONVERTED_DIR`` picks each layer's file from a converted model's directory.
Exits 1 on any mismatch, protocol violation, throughput or latency miss.
``--exhaustive`` simulates every input code on every channel of each DyT core
(:mod:`hardyt.sim.exhaustive`: Verilator bulk mode, in parts over the Dask
workers).

On a DyT engine directory (``hardyt rtl CONVERTED_DIR --engine``) it runs the
model's layers in order: layer 0's coefficients load, each layer streams
(its real activations when found, else random codes) while the next one
loads, and every output is compared with the golden model of its layer.
"""
from __future__ import annotations

from pathlib import Path

from hardyt.quant.errors import HardytError

from .emitted import core_dirs
from .flags import add_sweep_flags

_VECTORS = {"cocotb": 1000, "bulk": 100_000}


def add_parser(sub):
    p = sub.add_parser("sim", help="simulate emitted RTL (Icarus/Verilator, cocotb) and check it bit-exact",
                       description="Simulate the Verilog and .mem files of an emitted core (or of every layer "
                                   "of a `hardyt rtl` output) and compare every output with the golden model.")
    p.add_argument("dir", metavar="DIR", help="a `hardyt rtl` output: one core, or one subdirectory per layer")
    p.add_argument("--simulator", choices=("icarus", "verilator"), default="icarus", help="default icarus")
    p.add_argument("--vectors", type=int, metavar="N",
                   help=f"cocotb: random elements, on top of the exhaustive and corner tests (default "
                        f"{_VECTORS['cocotb']}); bulk: elements in all, at least (default {_VECTORS['bulk']})")
    p.add_argument("--waves", action="store_true", help="dump waveforms (paths printed)")
    p.add_argument("--mode", choices=("cocotb", "bulk"), default="cocotb",
                   help="cocotb: Python drivers and scoreboard, every test (default); "
                        "bulk: stimulus and expected values from memory files, checked in HDL (fast)")
    p.add_argument("--seed", type=int, default=1, help="stimulus and pause seed (default 1)")
    p.add_argument("--activations", metavar="FILE.npz|CONVERTED_DIR",
                   help="real input codes (a <layer>.inputs.npz, or the `hardyt convert` directory holding "
                        "one per layer): cocotb mode sends the first N elements, bulk mode all of them")
    p.add_argument("--exhaustive", action="store_true",
                   help="DyT cores: every input code on every channel (2**in_bits x C elements, up to 16-bit "
                        "inputs), Verilator bulk mode, in parts over the Dask workers (bulk mode already "
                        "includes it when it fits 4M elements)")
    add_sweep_flags(p)
    p.set_defaults(func=run)


def _activations_for(core: Path, root: Path, given: Path | None, spec_name: str) -> Path | None:
    if given is not None and given.is_file():
        return given
    from hardyt.hw.emit import verilog_name
    names = {f"{spec_name}.inputs.npz", f"{verilog_name(spec_name)}.inputs.npz"}
    places = [given] if given is not None else [core, root]
    found = [d / n for d in places for n in sorted(names) if (d / n).is_file()]
    return found[0] if found else None


def _run_engine(core: Path, root: Path, given: Path | None, manifest: dict, args, vectors: int) -> dict:
    """A DyT engine: the model's layers in order, each with its activations when found."""
    from hardyt.sim.engine_runner import run_engine_sim

    if args.mode != "cocotb":
        raise HardytError(f"{core}: a DyT engine is simulated in cocotb mode only (--mode bulk is for cores)")
    if given is not None and given.is_file():
        raise HardytError(f"--activations {given}: an engine runs every layer; give the converted directory")
    found = {layer["name"]: _activations_for(core, root, given, layer["name"]) for layer in manifest["layers"]}
    return run_engine_sim(core, simulator=args.simulator, vectors=vectors, seed=args.seed,
                          activations={n: p for n, p in found.items() if p is not None}, waves=args.waves)


def _fmt_rate(r: dict) -> str:
    bpc, lat = r["beats_per_cycle"], r["latency"]
    rate = "not measured" if bpc is None else f"{bpc:.3f} beats/cycle (sink always ready)"
    latency = "not measured" if lat is None else f"{lat} cycles"
    return f"throughput {rate}, latency {latency} (manifest {r['manifest_latency']})"


def report_lines(name: str, r: dict, limit: int = 10) -> list[str]:
    """What ``hardyt sim`` prints for one core."""
    verdict = "PASS" if r["ok"] else "FAIL"
    lines = [f"{name}: {verdict} ({r['simulator']}, {r['mode']}): {r['elements']} elements checked, "
             f"{r['mismatches']} mismatches, {r['cycles']} cycles; {_fmt_rate(r)}"]
    tests = ", ".join(f"{t} {v.get('elements', 0)}" for t, v in r["tests"].items() if v.get("elements"))
    if tests:
        lines.append(f"  elements per test: {tests}")
    if r.get("layers"):
        real = r.get("activations", {})
        lines.append(f"  layers in order: {', '.join(r['layers'])}; real activations for {len(real)} of "
                     f"{len(r['layers'])}")
        lines += [f"  layer {n}: {v['elements']} elements, {v['mismatches']} mismatches"
                  for n, v in r.get("per_layer", {}).items()]
    lines += [f"  skipped: {s}" for s in r.get("skipped", [])]
    lines += [f"  failed: {f}" for f in r["failures"][:limit]]
    lines += [f"  mismatch: {m}" for m in r["report"][:limit]]
    if r.get("waves"):
        lines.append(f"  waves: {', '.join(r['waves'])}")
    if r.get("run_dir"):
        lines.append(f"  logs: {r['run_dir']}")
    return lines


def _sim_core(core: Path, root: Path, given: Path | None, args, vectors: int) -> dict:
    """Simulate one emitted core or engine (a Dask job of its own when there are several)."""
    from hardyt.hw.emit import load_manifest
    from hardyt.sim.engine_runner import is_engine
    from hardyt.sim.runner import run_sim

    manifest = load_manifest(core)
    if is_engine(manifest):
        return _run_engine(core, root, given, manifest, args, vectors)
    npz = _activations_for(core, root, given, manifest["spec"]["name"])
    return run_sim(core, simulator=args.simulator, vectors=vectors, waves=args.waves, mode=args.mode,
                   seed=args.seed, activations=npz)


def _run_exhaustive(args) -> int:
    """``--exhaustive``: each DyT core's whole input space, its parts spread over the Dask workers."""
    from hardyt.hw.sweep import dask_client
    from hardyt.sim.exhaustive import run_exhaustive

    failed = []
    cores = core_dirs(Path(args.dir))
    with dask_client(args.scheduler, args.workers) as client:
        for core in cores:
            r = run_exhaustive(core, client=client, workers=args.workers, seed=args.seed)
            verdict = "PASS" if r["ok"] else "FAIL"
            print(f"{core}: {verdict} (verilator, exhaustive): {r['elements']:,} of {r['space']:,} inputs checked "
                  f"(every code on every channel), {r['mismatches']} mismatches, {r['parts']} parts, "
                  f"{r['seconds']} s", flush=True)
            for line in r["failures"][:10] + r["report"][:10]:
                print(f"  {line}", flush=True)
            if not r["ok"]:
                failed.append(core.name)
    if failed:
        raise HardytError(f"{args.dir}: {len(failed)} of {len(cores)} cores failed the exhaustive sweep: "
                          f"{', '.join(failed)}")
    return 0


def run(args) -> int:
    from hardyt.hw.sweep import dask_client, run_jobs

    if args.exhaustive:
        return _run_exhaustive(args)
    if args.vectors is not None and args.vectors < 1:
        raise HardytError(f"--vectors: must be a positive integer, got {args.vectors}")
    root = Path(args.dir)
    cores = core_dirs(root)
    given = Path(args.activations) if args.activations else None
    if given is not None and not given.exists():
        raise HardytError(f"--activations: {given}: no such file or directory")
    if given is not None and given.is_file() and len(cores) > 1:
        raise HardytError(f"--activations {given}: one file for {len(cores)} layers; give the converted directory")
    vectors = args.vectors or _VECTORS[args.mode]
    if len(cores) == 1:
        r = _sim_core(cores[0], root, given, args, vectors)
        for line in report_lines(str(cores[0]), r):
            print(line, flush=True)
        if not r["ok"]:
            raise HardytError(f"{root}: not bit-exact or failed a check (see above)")
        return 0
    jobs = {str(core): (_sim_core, (core, root, given, args, vectors)) for core in cores}
    with dask_client(args.scheduler, args.workers) as client:
        results, errors = run_jobs(client, jobs, desc="sim")
    failed = []
    for core in cores:
        name = str(core)
        if name in errors:
            print(f"{name}: ERROR: {errors[name]}", flush=True)
            failed.append(core.name)
            continue
        for line in report_lines(name, results[name]):
            print(line, flush=True)
        if not results[name]["ok"]:
            failed.append(core.name)
    if failed:
        raise HardytError(f"{root}: {len(failed)} of {len(cores)} cores not bit-exact or failed a check: "
                          f"{', '.join(failed)}")
    return 0
