"""Tool sweeps on Dask distributed: many synthesis or simulation jobs, one progress bar, failures kept apart.

A sweep is a mapping ``{label: (function, args)}``; :func:`run_jobs` submits
every job to a :class:`dask.distributed.Client`, shows one progress bar over all
of them as they complete, and returns the results of the jobs that succeeded
next to the errors of those that failed, by label — one failed job never
loses the others' results (jobs that write a cache, such as
:func:`hardyt.hw.costmodel.costs.synth_cached`, have written theirs by then).
:func:`failure_error` turns the failures into one :class:`HardytError` that
names each failed job.

:func:`dask_client` opens the client: an in-process ``LocalCluster`` (worker
threads in this process talking in-process, no socket) by default, or
the scheduler at ``tcp://HOST:PORT`` (a ``dask scheduler`` / ``dask worker``
cluster, or one that dask-jobqueue starts on an HPC scheduler). Jobs read and
write files (emitted cores, the synthesis cache): on a cluster of several
machines those paths must be on a shared filesystem.

Faults: a worker lost mid-sweep (killed, out of memory, its machine gone)
costs nothing but time: the scheduler runs its tasks again on the others
(up to ``distributed.scheduler.allowed-failures`` times per task, 3 by
default), and :func:`run_jobs` counts those re-runs (``stats``). A
scheduler lost mid-sweep is one :class:`HardytError` saying how many jobs
had finished (jobs that cache their result, as synthesis does, keep it: a
rerun does only the rest). A tool that hangs is killed by the job itself
(:func:`hardyt.hw.toolchain.job_timeout`) and reported under the job's label.

Why Dask and not a pool of our own: the same code runs on one laptop and on
a cluster, the scheduler handles worker loss and retries, and
dask-jobqueue starts workers under SLURM/PBS/SGE, which FPGA groups use for
tool farms.
"""
from __future__ import annotations

import logging
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import Any, Callable

from hardyt.quant.errors import HardytError

__all__ = ["dask_client", "run_jobs", "failure_error"]

Job = tuple[Callable[..., Any], tuple]


@contextmanager
def dask_client(scheduler: str | None = None, workers: int = 1, processes: bool = False, timeout: float = 30.0):
    """A :class:`dask.distributed.Client`, closed (and its local cluster shut down) on exit.

    Parameters
    ----------
    scheduler : str or None
        ``tcp://HOST:PORT`` of a running scheduler; ``None`` starts a local
        cluster on 127.0.0.1.
    workers : int
        Local cluster only: the number of workers (one thread each: every
        job runs external tools that use a core of their own).
    processes : bool
        Local cluster only: workers as processes (``True``) or as threads of
        this process (``False``, the default: nothing to spawn, jobs share
        this interpreter's imports).
    timeout : float
        Seconds to wait for the scheduler.
    """
    from dask.distributed import Client, LocalCluster

    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise HardytError(f"workers: must be a positive integer, got {workers!r}")
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise HardytError(f"--scheduler: expected tcp://HOST:PORT, got {scheduler!r}")
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise HardytError(f"--scheduler {scheduler}: cannot connect: {e}") from None
        # A lost scheduler is reported once, by run_jobs: not also as the client's logged tracebacks.
        loggers = [logging.getLogger(n) for n in logging.root.manager.loggerDict if n.startswith("distributed")]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.setLevel(logging.CRITICAL)
        try:
            yield client
        finally:
            client.close(timeout=10)
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
        return
    # Thread workers talk in-process, process workers on 127.0.0.1. Every node also serves HTTP
    # (health, metrics) even with the dashboard off, on its own host's address — for in-process
    # nodes that is the machine's address, on all interfaces for the scheduler: pin it to loopback.
    net = {"host": "127.0.0.1"} if processes else {}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                      worker_dashboard_address="127.0.0.1:0", silence_logs=50, **net) as cluster, \
            Client(cluster) as client:
        yield client


def run_jobs(client, jobs: dict[str, Job], *, desc: str = "jobs", progress: bool = True, stats: dict | None = None):
    """Run ``jobs`` (``{label: (function, args)}``) on ``client``; ``(results, failures)`` by label.

    ``failures`` maps a label to its error message (the exception's type and
    text); the results of every other job are returned whatever failed.
    ``stats``, if given, receives ``recomputed``: ``{label: n}`` for each job
    that ran again ``n`` times because a worker running it was lost.
    """
    from dask.distributed import as_completed
    from hardyt.quant.progress import progress as progress_bar

    def reruns(dask_scheduler, key) -> int:
        """On the scheduler (sent by value: it need not have hardyt): how often task ``key`` was on a lost worker."""
        ts = dask_scheduler.tasks.get(key)
        return 0 if ts is None else ts.suspicious

    if not jobs:
        return {}, {}
    futures = {client.submit(fn, *args, pure=False): label for label, (fn, args) in jobs.items()}
    results, failures, recomputed = {}, {}, {}
    try:
        with progress_bar(total=len(futures), desc=desc, unit="job", disable=not progress, leave=False) as bar:
            for future in as_completed(futures):
                label = futures[future]
                if future.status == "cancelled":  # the client lost its scheduler
                    raise _scheduler_lost(client, len(results) + len(failures), len(futures))
                if future.status == "error":
                    e = future.exception()
                    failures[label] = str(e) if isinstance(e, HardytError) else f"{type(e).__name__}: {e}"
                else:
                    results[label] = future.result()
                n = client.run_on_scheduler(reruns, key=future.key)
                if n:
                    recomputed[label] = n
                future.release()
                bar.update()
    except OSError as e:  # the scheduler went away between two results
        raise _scheduler_lost(client, len(results) + len(failures), len(futures), e) from None
    except CancelledError:  # ... or while a finished future's result was being fetched
        raise _scheduler_lost(client, len(results) + len(failures), len(futures)) from None
    if stats is not None:
        stats["recomputed"] = recomputed
    return results, failures


def _scheduler_lost(client, finished: int, total: int, why=None) -> HardytError:
    where = getattr(getattr(client, "scheduler", None), "address", None) or "the scheduler"
    return HardytError(f"lost the Dask scheduler {where}{f' ({why})' if why else ''} after {finished} of {total} "
                       "jobs; the finished jobs' cached results are kept, a rerun does the rest")


def failure_error(failures: dict[str, str], total: int, what: str = "job") -> HardytError:
    """One error naming every failed job and why (the others' results are kept).

    >>> str(failure_error({"blocks.0.norm1 lut8": "yosys failed"}, 5, "synthesis job"))
    '1 of 5 synthesis jobs failed (the other results are kept):\\n  blocks.0.norm1 lut8: yosys failed'
    """
    lines = [f"  {label}: {msg}" for label, msg in sorted(failures.items())]
    return HardytError(f"{len(failures)} of {total} {what}s failed (the other results are kept):\n" + "\n".join(lines))
