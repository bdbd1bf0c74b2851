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

An entry cannot lie: it is one file, a header line holding its key and the
SHA-256 of its key and content, then the object; written to a temporary,
fsynced and renamed. An entry whose header, key or checksum does not match
(a truncated write, a flipped bit, a file of another key) is removed with a
warning on stderr and the object compiled again.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

#: The first field of an entry's header line (the format's version).
MAGIC = "hardyt-objcache-1"


def _arg_after(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv[:-1] else None


def _key(argv: list[str], source: Path) -> str:
    h = hashlib.sha256("\0".join(argv).encode())
    h.update(source.read_bytes())
    compiler = Path(shutil.which(argv[0]) or argv[0]).resolve()
    st = compiler.stat()
    h.update(f"{compiler}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _entry_sum(key: str, content: bytes) -> str:
    return hashlib.sha256(key.encode() + b"\0" + content).hexdigest()


def write_entry(path: Path, key: str, content: bytes) -> None:
    """Store ``content`` under ``key`` at ``path``: header (key, checksum), content; all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(f"{MAGIC} {key} {_entry_sum(key, content)}\n".encode() + content)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)  # atomic: parallel builds may race on the same key


def read_entry(path: Path, key: str) -> bytes | None:
    """The content stored at ``path`` if its header names ``key`` and its checksum holds; else ``None``,
    the entry removed and a warning printed (the caller compiles again)."""
    data = path.read_bytes()
    head, _, content = data.partition(b"\n")
    fields = head.decode("ascii", "replace").split(" ")
    if len(fields) != 3 or fields[0] != MAGIC:
        why = "no valid header"
    elif fields[1] != key:
        why = f"it holds key {fields[1][:40]}"
    elif fields[2] != _entry_sum(key, content):
        why = "checksum mismatch (truncated or corrupted)"
    else:
        return content
    print(f"hardyt objcache: warning: {path}: {why}; entry discarded, compiling again", file=sys.stderr)
    path.unlink(missing_ok=True)
    return None


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
    key = _key(cmd, source)
    cached = cache / f"{key}.o"
    if cached.is_file():
        content = read_entry(cached, key)
        if content is not None:
            Path(out).write_bytes(content)
            return 0
    rc = subprocess.call(cmd)
    if rc == 0 and _deps_are_shared(Path(out).with_suffix(".d"), root):
        write_entry(cached, key, Path(out).read_bytes())
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
