"""The rooms and what may import what (docs/architecture.md), held by parsing every module.

Imports inside functions count: a lazy import is still a dependency.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"quant": "hardyt.quant", "hw": "hardyt.hw", "sim": "hardyt.sim", "flow": "hardyt.flow",
           "scripts": "hardyt.scripts"}
# Modules every room may import: errors, atomic files, the version, progress bars, old names of moved modules.
BASE = {"hardyt.quant.errors", "hardyt.quant.files", "hardyt.quant.version", "hardyt.quant.progress",
        "hardyt.quant.moved"}

# Each room (a module-name prefix) and the hardyt rooms it may import; the longest prefix applies.
ALLOWED = {
    "hardyt.quant.errors": set(),
    "hardyt.quant.version": set(),
    "hardyt.quant.moved": set(),
    "hardyt.quant.outdir": {"hardyt.quant.errors"},
    "hardyt.quant.files": {"hardyt.quant.errors", "hardyt.quant.outdir"},
    "hardyt.quant.progress": set(),
    "hardyt.quant.contract": BASE | {"hardyt.quant.contract"},
    "hardyt.quant.runtime": BASE | {"hardyt.quant.runtime"},
    "hardyt.quant.conversion": BASE | {"hardyt.quant.contract", "hardyt.quant.conversion", "hardyt.quant.runtime"},
    "hardyt.quant.export": BASE | {"hardyt.quant.export", "hardyt.quant.contract", "hardyt.quant.conversion",
                                   "hardyt.quant.runtime", "hardyt.quant.zoo"},
    "hardyt.quant.zoo": BASE | {"hardyt.quant.zoo", "hardyt.quant.runtime", "hardyt.quant.contract.check"},
    "hardyt.quant": {"hardyt.quant"},
    "hardyt.hw": BASE | {"hardyt.hw", "hardyt.quant.contract"},
    # hw's sub-rooms, one way: costmodel -> tools -> emission -> datapath
    "hardyt.hw.datapath": BASE | {"hardyt.hw.datapath", "hardyt.quant.contract"},
    "hardyt.hw.emission": BASE | {"hardyt.hw.datapath", "hardyt.hw.emission", "hardyt.quant.contract"},
    "hardyt.hw.tools": BASE | {"hardyt.hw.emission", "hardyt.hw.tools", "hardyt.quant.contract"},
    "hardyt.hw.costmodel": BASE | {"hardyt.hw.datapath", "hardyt.hw.emission", "hardyt.hw.tools",
                                   "hardyt.hw.costmodel", "hardyt.quant.contract"},
    # formal proofs read the datapath's register names, the manifests and the tools; only the flow imports them
    "hardyt.hw.formal": BASE | {"hardyt.hw.datapath", "hardyt.hw.emission", "hardyt.hw.tools", "hardyt.hw.formal",
                                "hardyt.quant.contract"},
    "hardyt.sim": BASE | {"hardyt.sim", "hardyt.hw", "hardyt.quant.contract"},
    # the flow may import every library room; nothing but the command line imports the flow
    "hardyt.flow": BASE | {"hardyt.flow", "hardyt.quant", "hardyt.hw", "hardyt.sim"},
    # the command line reaches the library through the flow only (plus BASE: errors, files, ...)
    "hardyt.scripts": BASE | {"hardyt.scripts", "hardyt.flow"},
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
    if room.startswith(("hardyt.quant.", "hardyt.hw")) or room in ("hardyt.sim", "hardyt.flow"):
        # hardyt.quant itself re-exports the torch side: only the top-level scripts may use it
        bad += ["hardyt.quant"] if "hardyt.quant" in ALL_IMPORTS[name] and name != "hardyt.quant" else []
    assert not bad, f"{name} ({room}) imports {bad}"
    forbidden = FORBIDDEN.get(_room(name, FORBIDDEN) or "", set())
    third = sorted(m for m in ALL_IMPORTS[name] if m.split(".")[0] in forbidden)
    assert not third, f"{name} imports {third}"


def test_only_scripts_import_the_flow():
    """The flow is the top of the library: no library room imports it (the room table says so too; this says
    it in one place, for every module)."""
    users = sorted(n for n, deps in ALL_IMPORTS.items() if not n.startswith(("hardyt.flow", "hardyt.scripts"))
                   and any(d == "hardyt.flow" or d.startswith("hardyt.flow.") for d in deps))
    assert not users, f"import hardyt.flow: {users}"


def test_scripts_reach_the_library_through_the_flow():
    """``scripts`` imports no ``quant``/``hw``/``sim`` module but the BASE ones (errors, files, ...)."""
    direct = sorted((n, d) for n, deps in ALL_IMPORTS.items() if n.startswith("hardyt.scripts")
                    for d in deps if d.startswith(("hardyt.quant", "hardyt.hw", "hardyt.sim")) and d not in BASE)
    assert not direct, f"scripts import the library directly: {direct}"


def test_the_zoo_does_not_import_the_conversion():
    """Models and data sit below the conversion that uses them."""
    up = sorted((n, d) for n, deps in ALL_IMPORTS.items() if n.startswith("hardyt.quant.zoo")
                for d in deps if d.startswith("hardyt.quant.conversion"))
    assert not up, f"the zoo imports the conversion: {up}"


def test_contract_hw_sim_load_no_torch():
    code = ("import sys, hardyt.quant, hardyt.quant.contract, hardyt.hw, hardyt.hw.synth, hardyt.hw.tools.sweep, hardyt.sim.runner, "
            "hardyt.sim.testbench, hardyt.flow, hardyt.scripts.cli; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
