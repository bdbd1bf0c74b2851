"""Fault injection shared by ``tests/test_faults.py`` (few, fast) and ``bench/faults.py`` (many, long).

Processes killed while they write, a reader that checks what it sees, and
the checks of "nothing lost". Everything runs on 127.0.0.1, bounded in time.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
HARDYT = [sys.executable, "-m", "hardyt.scripts.cli"]
ENV = dict(os.environ, TQDM_DISABLE="1", PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")


def tiny_inputs(tmp: Path) -> tuple[Path, Path]:
    """The tiny ViT checkpoint of ``conftest.tiny_vit_files`` and a 64-image .npz data set."""
    sys.path.insert(0, str(HERE))
    from conftest import tiny_vit_files

    rng = np.random.default_rng(0)
    data = tmp / "data.npz"
    np.savez(data, x=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8), y=rng.integers(0, 10, 64))
    return tiny_vit_files(tmp), data


def convert_argv(checkpoint: Path, data: Path, out: Path, seed: int) -> list[str]:
    """A small ``hardyt convert`` (~5 s of work after the imports); ``seed`` tells runs apart."""
    return [*HARDYT, "convert", str(checkpoint), "--data", str(data), "--calib-size", "16", "--steps", "2",
            "--seed", str(seed), "--out", str(out)]


# --- what a reader sees ------------------------------------------------------------------------

def _read(dir_fd: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    with os.fdopen(fd, "rb") as f:
        return f.read()


def converted_problems(path) -> tuple[list[str], int | None]:
    """What is wrong with converted directory ``path`` as one reader sees it (``[]``: complete and
    consistent), and the seed of the run that wrote it. ``(["absent"], None)`` if it does not exist.

    The directory is opened once and every file read relative to it, as a reader of a directory
    that is replaced whole must; every spec file must be the spec ``report.json`` records for its
    layer (files of two runs differ there: the seed changes the calibration).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return ["absent"], None
    try:
        names = set(os.listdir(fd))
        try:
            report = json.loads(_read(fd, "report.json"))
        except (OSError, ValueError) as e:
            return [f"report.json: {e}"], None
        layers = {layer["spec_name"]: layer for layer in report["layers"]}
        want = {"model.safetensors", "config.json", "report.json", "report.md", "alpha.png", "sqnr.png",
                ".hardyt-output"} | {f"{n}{ext}" for n in layers for ext in (".spec.json", ".inputs.npz")}
        problems = [f"missing {n}" for n in sorted(want - names)] + [f"extra {n}" for n in sorted(names - want)]
        for name, layer in layers.items():
            try:
                if json.loads(_read(fd, f"{name}.spec.json")) != layer["spec"]:
                    problems.append(f"{name}.spec.json is not the spec report.json records (another run's)")
            except (OSError, ValueError) as e:
                problems.append(f"{name}.spec.json: {e}")
        config = json.loads(_read(fd, "config.json"))
        if sorted(config["dyt_layers"]) != sorted(layer["name"] for layer in layers.values()):
            problems.append("config.json names other layers than report.json")
        return problems, report["options"]["seed"]
    finally:
        os.close(fd)


def read_loop(path: str, stop: str, result: str) -> None:
    """Read ``path`` over and over until file ``stop`` exists; write what was seen to ``result``."""
    seen = {"snapshots": 0, "absent": 0, "mixed": [], "seeds": []}
    while not os.path.exists(stop):
        problems, seed = converted_problems(path)
        seen["snapshots"] += 1
        if problems == ["absent"]:
            seen["absent"] += 1
        elif problems:
            seen["mixed"].append(problems)
        elif seed not in seen["seeds"]:
            seen["seeds"].append(seed)
        time.sleep(0.002)
    Path(result).write_text(json.dumps(seen))


class Reader:
    """A process reading a converted directory while others write it (:func:`read_loop`)."""

    def __init__(self, path: Path, tmp: Path):
        self.stop, self.result = tmp / "reader.stop", tmp / "reader.json"
        self.stop.unlink(missing_ok=True)
        code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from faults_harness import read_loop; "
                f"read_loop({str(path)!r}, {str(self.stop)!r}, {str(self.result)!r})")
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=ENV)

    def finish(self) -> dict:
        self.stop.touch()
        self.proc.wait(timeout=30)
        return json.loads(self.result.read_text())


# --- killing a writer ------------------------------------------------------------------------

def temporaries(out: Path) -> list[Path]:
    """The hidden temporaries beside ``out`` that a write in progress (or a killed one) has."""
    return [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name.endswith((".new", ".old"))]


def kill_during(argv: list[str], out: Path, rng, *, sig=signal.SIGKILL, when: str = "any",
                span: float = 8.0) -> dict:
    """Start ``argv``, send it ``sig`` at a random moment, wait for its exit.

    ``when``: ``"any"`` — uniformly within the first ``span`` seconds; ``"write"`` — a random
    0–300 ms after its temporary output directory appears (the files being written and swapped).
    Returns the exit code, whether the signal was sent before the process ended, the seconds
    from the signal to the exit, and the temporaries this run left beside ``out`` (``left``).
    """
    before = set(temporaries(out))  # a killed run's are removed by the next one, not written by it
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + (rng.uniform(0.3, span) if when == "any" else 120)
    while proc.poll() is None and time.monotonic() < deadline:
        if when == "write" and set(temporaries(out)) - before:
            time.sleep(rng.uniform(0, 0.3))
            break
        time.sleep(0.005)
    sent = proc.poll() is None
    t0 = time.monotonic()
    if sent:
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return {"rc": proc.returncode, "sent": sent, "exit_seconds": time.monotonic() - t0,
            "stderr": err.decode(errors="replace").strip().splitlines()[-1:],
            "left": sorted(str(p) for p in set(temporaries(out)) - before)}


# --- a rank killed under torchrun -------------------------------------------------------------

def _rank_pids(parent: int) -> dict[int, int]:
    """``{rank: pid}`` of the processes under ``parent`` that torchrun started (``RANK`` in their environment)."""
    found = {}
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        ppid = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")))
        rank = next((int(e[5:]) for e in env if e.startswith(b"RANK=")), None)
        if ppid == parent and rank is not None:
            found[rank] = pid
    return found


def torchrun_argv(port: int, argv: list[str]) -> list[str]:
    """``argv`` (a ``hardyt`` command line after the interpreter) on 2 CPU processes, gloo on 127.0.0.1."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(port), "--monitor-interval", "0.1", *argv[1:]]


def kill_rank(argv: list[str], rank: int, rng, *, sig=signal.SIGKILL, delay: tuple = (0.2, 3.0)) -> dict:
    """Start ``argv`` (a torchrun command), send ``sig`` to ``rank`` (``None``: to torchrun itself) a random
    ``delay`` after the ranks began converting; the exit code, the seconds from the signal to torchrun's
    exit and the lines of stderr that name the lost rank."""
    proc = subprocess.Popen(argv, env=ENV | {"HARDYT_DIST_TIMEOUT": "60"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    t_end = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < t_end:  # both ranks up and converting
        line = proc.stdout.readline().decode(errors="replace")
        if line.startswith("preprocessing:"):
            break
    time.sleep(rng.uniform(*delay))
    pids = _rank_pids(proc.pid)
    sent = proc.poll() is None and (rank is None or rank in pids)
    t0 = time.monotonic()
    if sent:
        os.kill(proc.pid if rank is None else pids[rank], sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    lines = err.decode(errors="replace").splitlines()
    return {"rc": proc.returncode, "sent": sent, "exit_seconds": time.monotonic() - t0,
            "errors": [ln for ln in lines if "hardyt convert: error" in ln or "terminated" in ln],
            "stderr_tail": lines[-6:]}


# --- Dask: a worker or the scheduler lost mid-sweep --------------------------------------------

def slow_square(x: int, seconds: float, cache_dir: str) -> int:
    """A sweep job: ``x * x`` after ``seconds``, its result cached (atomically) in ``cache_dir``."""
    from hardyt.quant.files import save_json_atomic

    time.sleep(seconds)
    save_json_atomic(Path(cache_dir) / f"{x}.json", {"x": x, "square": x * x})
    return x * x


def cached_squares(cache_dir: Path) -> dict[int, int]:
    """The results the sweep's cache holds, each checked."""
    found = {}
    for p in cache_dir.glob("*.json"):
        d = json.loads(p.read_text())
        assert d["square"] == d["x"] ** 2 and p.stem == str(d["x"]), p
        found[d["x"]] = d["square"]
    return found


def kill_worker_during_sweep(rng, cache_dir: Path, jobs: int = 8, seconds: float = 0.6) -> dict:
    """A sweep of ``jobs`` on a 2-worker process LocalCluster, one worker SIGKILLed at a random moment."""
    from hardyt.hw.tools.sweep import dask_client, run_jobs

    with dask_client(workers=2, processes=True) as client:
        victim = rng.choice(sorted(client.run(os.getpid).values()))
        stats, t0 = {}, time.monotonic()
        timer = threading.Timer(rng.uniform(0.2, jobs * seconds / 2), os.kill, (int(victim), signal.SIGKILL))
        timer.start()
        results, failures = run_jobs(client, {f"x={i}": (slow_square, (i, seconds, str(cache_dir)))
                                              for i in range(jobs)}, progress=False, stats=stats)
        timer.join()
        return {"ok": results == {f"x={i}": i * i for i in range(jobs)} and not failures,
                "recomputed": sum(stats["recomputed"].values()), "seconds": time.monotonic() - t0,
                "lost": jobs - len(results)}


def lose_scheduler_during_sweep(rng, cache_dir: Path, port: int, jobs: int = 8, seconds: float = 0.5,
                                after: int = 0) -> dict:
    """A sweep on a ``dask scheduler`` + ``dask worker`` on 127.0.0.1:``port``, the scheduler SIGKILLed at a
    random moment (or, ``after`` > 0, as soon as that many results are in the cache): the error, and whether
    every job it counts as finished has its result in the cache."""
    from hardyt.hw.tools.sweep import dask_client, run_jobs
    from hardyt.quant.errors import HardytError

    dask = Path(sys.executable).with_name("dask")
    env = ENV | {"PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              **quiet),
             subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--host", "127.0.0.1", "--nthreads", "1",
                               "--no-dashboard"], **quiet)]
    killed = []

    def kill(delay: float) -> None:
        start = time.monotonic()
        while after and len(list(cache_dir.glob("*.json"))) < after and time.monotonic() - start < 60:
            time.sleep(0.01)
        time.sleep(0 if after else delay)
        killed.append(time.monotonic())
        procs[0].kill()

    try:
        with dask_client(f"tcp://127.0.0.1:{port}", timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            killer = threading.Thread(target=kill, args=(rng.uniform(0.3, jobs * seconds * 0.8),))
            killer.start()
            try:
                run_jobs(client, {f"x={i}": (slow_square, (i, seconds, str(cache_dir))) for i in range(jobs)},
                         progress=False)
                error = None
            except HardytError as e:
                error = str(e)
            done = time.monotonic()
            killer.join()
    finally:
        for p in procs:
            p.kill()
            p.wait()
    finished = int(error.split(" after ")[1].split()[0]) if error else jobs
    cached = len(cached_squares(cache_dir))
    return {"error": error, "seconds": done - killed[0], "finished": finished, "after": after, "cached": cached,
            "lost": max(0, finished - cached)}
