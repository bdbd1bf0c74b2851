"""The wheel holds every module and data file of the source tree.

setuptools' explicit package list silently drops an unlisted subpackage;
this catches it before a user's `pip install hardyt` does.
"""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"quant": "hardyt/quant", "hw": "hardyt/hw", "sim": "hardyt/sim", "flow": "hardyt/flow", "scripts": "hardyt/scripts"}
DATA_SUFFIXES = {".py", ".v", ".sv", ".safetensors", ".json", ".sh"}


def test_wheel_contains_every_source_file(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("hardyt-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = []
    for folder, package in FOLDERS.items():
        for f in (ROOT / folder).rglob("*"):
            if f.suffix in DATA_SUFFIXES and "__pycache__" not in f.parts and not f.name.startswith("."):
                if f.suffix == ".sh" or (f.suffix == ".json" and f.parent.name != "pretrained"):
                    continue
                arc = f"{package}/{f.relative_to(ROOT / folder).as_posix()}"
                if arc not in names:
                    missing.append(arc)
    assert not missing, f"not in the wheel: {missing}"
    assert any(n.endswith("entry_points.txt") for n in names)
