"""The rooms and what may import what (docs/architecture.md), held by parsing every module.

Imports inside functions count: a lazy import is still a dependency.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"quant": "hardyt.quant", "hw": "hardyt.hw", "sim": "hardyt.sim", "scripts": "hardyt.scripts"}

# Each room (a module-name prefix) and the hardyt rooms it may import; the longest prefix applies.
ALLOWED = {
    "hardyt.quant.errors": set(),
    "hardyt.quant.version": set(),
    "hardyt.quant.outdir": {"hardyt.quant.errors"},
    "hardyt.quant.files": {"hardyt.quant.errors", "hardyt.quant.outdir"},
    "hardyt.quant.contract": {"hardyt.quant.contract", "hardyt.quant.errors", "hardyt.quant.files",
        "hardyt.quant.version"},
    "hardyt.quant.conversion": {"hardyt.quant.contract", "hardyt.quant.conversion", "hardyt.quant.errors",
                                "hardyt.quant.files"},
    "hardyt.quant.export": {"hardyt.quant.export", "hardyt.quant.contract", "hardyt.quant.conversion",
                            "hardyt.quant.zoo", "hardyt.quant.errors", "hardyt.quant.files"},
    "hardyt.quant.zoo": {"hardyt.quant.zoo", "hardyt.quant.conversion.evaluate", "hardyt.quant.conversion.graph",
                         "hardyt.quant.contract.check", "hardyt.quant.errors", "hardyt.quant.files",
        "hardyt.quant.version"},
    "hardyt.quant": {"hardyt.quant"},
    "hardyt.hw": {"hardyt.hw", "hardyt.quant.contract", "hardyt.quant.errors", "hardyt.quant.files",
        "hardyt.quant.version"},
    "hardyt.sim": {"hardyt.sim", "hardyt.hw", "hardyt.quant.contract", "hardyt.quant.errors", "hardyt.quant.files",
        "hardyt.quant.version"},
    "hardyt.scripts": {"hardyt"},
}
# Third-party packages a room must never import.
FORBIDDEN = {
    "hardyt.quant.contract": {"torch", "amaranth", "cocotb", "transformers"},
    "hardyt.hw": {"torch", "cocotb", "transformers"},
    "hardyt.sim": {"torch", "transformers"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([package, *parts])] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute names), at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            # `from pkg import sub` imports the submodule when there is one
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args:
            # importlib.import_module(f"hardyt.scripts.cmd_{name}"): every module the prefix can name
            arg = node.args[0]
            prefix = arg.value if isinstance(arg, ast.Constant) else \
                arg.values[0].value if isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant) \
                else None
            if isinstance(prefix, str) and prefix.startswith("hardyt"):
                found.update(m for m in MODULES if m.startswith(prefix))
    return found


GRAPH = {name: {m for m in _imports(name, path) if m in MODULES} for name, path in MODULES.items()}
ALL_IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _room(name: str, table: dict) -> str | None:
    keys = [k for k in table if name == k or name.startswith(k + ".")]
    return max(keys, key=len) if keys else None


def test_no_import_cycles():
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(GRAPH[m]):
            if d in ("hardyt.quant",):     # the package's own re-exports: every submodule goes through it
                continue
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_room_imports(name):
    room = _room(name, ALLOWED)
    allowed = ALLOWED[room]
    bad = sorted(m for m in ALL_IMPORTS[name] if m.startswith("hardyt.") and m != "hardyt.quant"
                 and not any(m == a or m.startswith(a + ".") for a in allowed))
    if room.startswith("hardyt.quant.") or room in ("hardyt.hw", "hardyt.sim"):
        # hardyt.quant itself re-exports the torch side: only the top-level scripts may use it
        bad += ["hardyt.quant"] if "hardyt.quant" in ALL_IMPORTS[name] and name != "hardyt.quant" else []
    assert not bad, f"{name} ({room}) imports {bad}"
    forbidden = FORBIDDEN.get(_room(name, FORBIDDEN) or "", set())
    third = sorted(m for m in ALL_IMPORTS[name] if m.split(".")[0] in forbidden)
    assert not third, f"{name} imports {third}"


def test_contract_hw_sim_load_no_torch():
    code = ("import sys, hardyt.quant, hardyt.quant.contract, hardyt.hw, hardyt.hw.synth, hardyt.sim.runner, "
            "hardyt.sim.testbench, hardyt.scripts.cli; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
