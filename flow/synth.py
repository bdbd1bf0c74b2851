"""The synthesize step: emitted cores → resources (Yosys) and Fmax (nextpnr, ECP5), one Dask job per core."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hardyt.hw.tools.synth import TARGETS

from .emitted import core_dirs
from .options import SynthConfig

__all__ = ["SynthResults", "synthesize", "summary", "TARGETS"]


@dataclass
class SynthResults:
    """Per core directory: the synthesis report (``lut``, ``ff``, ``dsp``, ``bram``, ``fmax_mhz``, ...)."""

    target: str
    reports: dict[str, dict] = field(default_factory=dict)
    failures: dict = field(default_factory=dict)
    jobs: int = 0

    def check(self) -> None:
        """A :class:`HardytError` naming every failed job (the others' reports are kept)."""
        from hardyt.hw.tools.sweep import failure_error
        if self.failures:
            raise failure_error(self.failures, self.jobs, "synthesis job")


def synthesize(root, config: SynthConfig, progress: bool = True) -> SynthResults:
    """Synthesize the core(s) emitted under ``root``; each gets ``synth-<target>.json`` and ``.md``.

    Failed jobs are in ``failures`` (the others' reports are kept).
    """
    from hardyt.hw.tools.sweep import dask_client, run_jobs
    from hardyt.hw.tools.synth import synth

    dirs = core_dirs(Path(root))
    if len(dirs) == 1:
        return SynthResults(config.target, {str(dirs[0]): synth(dirs[0], target=config.target, seed=config.seed,
                                                                progress=progress)}, jobs=1)
    jobs = {str(d): (synth, (d, config.target, False, config.seed)) for d in dirs}
    with dask_client(config.scheduler, config.workers) as client:
        reports, failures = run_jobs(client, jobs, desc="synth")
    return SynthResults(config.target, {str(d): reports[str(d)] for d in dirs if str(d) in reports}, failures,
                        len(jobs))


def summary(r: dict, path: Path) -> str:
    """The line ``hardyt synth`` prints for one core."""
    fmax = f", Fmax {r['fmax_mhz']:.1f} MHz" if "fmax_mhz" in r else ""
    return (f"{r['top']} ({r['core']}, C={r['channels']}, P={r['lanes']}) {r['target']}: LUT {r['lut']}, "
            f"FF {r['ff']}, DSP {r['dsp']}, BRAM {r['bram']}, carry {r['carry']}{fmax}, latency {r['latency']} "
            f"cycles -> {path}")
