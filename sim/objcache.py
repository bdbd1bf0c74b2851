"""Object cache for Verilator's runtime library (``OBJCACHE`` in ``verilated.mk``).

Every Verilator build compiles the same runtime sources (``verilated.cpp``,
``verilated_vpi.cpp``, ...) from ``$VERILATOR_ROOT/include``: about 19 s of
CPU out of ~25 s per design on this machine. ``verilated.mk`` runs each
compile as ``$(OBJCACHE) $(CXX) ... -c -o OUT SRC``; :func:`hardyt.sim.runner.run_sim`
sets ``OBJCACHE`` to ``python objcache.py CACHE_DIR`` so those objects are
compiled once and copied afterwards, like ccache does.

Only sources under ``$VERILATOR_ROOT`` are cached, keyed by the whole command
line (output name included), the source's bytes and the compiler binary; an
object whose dependency file (``-MMD``) names any header outside the
Verilator or system include trees (e.g. the design's ``Vtop.h``) is not
stored. Everything else runs the compiler unchanged. Run as a script (no
``hardyt`` import: it starts once per compile).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _arg_after(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def _key(argv: list[str], source: Path) -> str:
    h = hashlib.sha256("\0".join(argv).encode())
    h.update(source.read_bytes())
    compiler = Path(shutil.which(argv[0]) or argv[0]).resolve()
    st = compiler.stat()
    h.update(f"{compiler}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _deps_are_shared(dep_file: Path, root: Path) -> bool:
    """True when every prerequisite in a make dependency file lives under ``root`` or /usr."""
    if not dep_file.is_file():
        return False
    text = dep_file.read_text().replace("\\\n", " ")
    deps = text.split(":", 1)[1].split() if ":" in text else []
    return all(Path(d).resolve().is_relative_to(root) or d.startswith("/usr/") for d in deps)


def main(argv: list[str]) -> int:
    cache, cmd = Path(argv[0]), argv[1:]
    root = Path(os.environ.get("VERILATOR_ROOT", "/nonexistent")).resolve()
    out = _arg_after(cmd, "-o")
    source = Path(cmd[-1]).resolve() if cmd and cmd[-1].endswith((".cpp", ".c")) else None
    if "-c" not in cmd or out is None or source is None or not source.is_relative_to(root):
        return subprocess.call(cmd)
    cached = cache / f"{_key(cmd, source)}.o"
    if cached.is_file():
        shutil.copyfile(cached, out)
        return 0
    rc = subprocess.call(cmd)
    if rc == 0 and _deps_are_shared(Path(out).with_suffix(".d"), root):
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        shutil.copyfile(out, tmp)
        tmp.replace(cached)  # atomic: parallel builds may race on the same key
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
