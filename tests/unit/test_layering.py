"""The house stays standing: the layers import only downwards, the pure ones read no clock, the
product never imports its test bench, and no module imports itself back through others.

Read from the source with ``ast`` (nothing is imported): every ``import`` anywhere in a module
counts, at the top, inside a function (the usual way to hide a circle) or under
``TYPE_CHECKING`` (a circle of types is a circle of design all the same). The rules:

- ``contracts`` imports nothing from ``handlers`` or ``orchestrator``; ``handlers`` nothing from
  ``orchestrator``; neither imports the I/O libraries (``aiokafka``, ``httpx``, ``starlette``,
  ``uvicorn``) nor reads a clock (``time.time()``, ``datetime.now()`` ...): time comes in as an
  argument;
- no product module imports the sandbox (``orchestrator.sandbox``) or the local broker tooling
  (``orchestrator.localbroker``); the CLI names their commands by string and imports them only
  when asked (``orchestrator/cli.py``), so the product runs where they are absent;
- no import circles.

The second half of the file builds small module trees that break each rule and checks that the
rule catches them, so a rule cannot silently stop working.
"""

from __future__ import annotations

import ast
import textwrap
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("contracts", "handlers", "orchestrator")
#: The test bench and the local stack's tooling: the product must run without them.
SANDBOX = ("orchestrator.sandbox", "orchestrator.localbroker")
IO_LIBRARIES = ("aiokafka", "httpx", "starlette", "uvicorn")
#: What each pure layer may not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "contracts": ("handlers", "orchestrator", *IO_LIBRARIES),
    "handlers": ("orchestrator", *IO_LIBRARIES),
}
PURE = tuple(FORBIDDEN)
#: Calls that read a clock: ``time.<x>()`` and ``datetime.<x>()`` / ``date.<x>()``.
CLOCK_CALLS = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
}


@dataclass
class Module:
    name: str
    path: Path
    imports: set[str] = field(default_factory=set)
    clock_reads: list[str] = field(default_factory=list)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _modules(root: Path, packages: Iterable[str]) -> dict[str, Module]:
    found: dict[str, Module] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = Module(".".join(parts), path)
    return found


def _imported_names(module: Module, tree: ast.AST) -> Iterator[str]:
    """Every name an import statement brings in, in full: ``from X import y`` gives ``X.y``
    (a submodule ``y`` of ``X``, or a name ``y`` inside the module ``X``)."""
    is_package = module.path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.name.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join([*parts[:keep], *([node.module] if node.module else [])])
            for alias in node.names:
                yield f"{base}.{alias.name}"


def _clock_reads(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("time",):
            for alias in node.names:
                if alias.name in CLOCK_CALLS["time"]:
                    yield f"from time import {alias.name} (line {node.lineno})"
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        owner_name = (
            owner.id
            if isinstance(owner, ast.Name)
            else owner.attr
            if isinstance(owner, ast.Attribute)
            else None
        )
        if owner_name in CLOCK_CALLS and node.func.attr in CLOCK_CALLS[owner_name]:
            yield f"{owner_name}.{node.func.attr}() (line {node.lineno})"


def analyse(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Module]:
    modules = _modules(root, packages)
    for module in modules.values():
        tree = ast.parse(module.path.read_text(), filename=str(module.path))
        module.imports = set(_imported_names(module, tree))
        module.clock_reads = list(_clock_reads(tree))
    return modules


def _resolve(name: str, modules: dict[str, Module]) -> str | None:
    """The module of ours that ``name`` (a module, or a name inside one) refers to."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def violations(root: Path, packages: Iterable[str] = PACKAGES) -> list[str]:
    """Every broken rule in the tree under ``root``, one line each (empty: the house stands)."""
    modules = analyse(root, packages)
    out: list[str] = []
    graph: dict[str, set[str]] = defaultdict(set)
    for module in modules.values():
        layer = module.name.split(".")[0]
        product = layer == "orchestrator" and not any(_within(module.name, s) for s in SANDBOX)
        for name in sorted(module.imports):
            target = _resolve(name, modules)
            if target is not None and target != module.name:
                graph[module.name].add(target)
            for forbidden in FORBIDDEN.get(layer, ()):
                if _within(name, forbidden):
                    out.append(f"{module.name} imports {name} ({layer} must not use {forbidden})")
            if product:
                for sandbox in SANDBOX:
                    if _within(name, sandbox):
                        out.append(
                            f"{module.name} imports {name} (the product never uses {sandbox})"
                        )
        if layer in PURE:
            out += [f"{module.name} reads a clock: {read}" for read in module.clock_reads]
    for name in modules:
        graph.setdefault(name, set())
    out += [f"import circle: {' <-> '.join(cycle)}" for cycle in _cycles(graph)]
    return sorted(set(out))


# --- the repository ----------------------------------------------------------------------------


def test_the_repository_keeps_its_layers() -> None:
    found = violations(REPO)
    assert not found, "\n".join(found)


def test_the_rules_see_the_whole_tree() -> None:
    modules = analyse(REPO)
    assert {"contracts.envelopes", "handlers.voice", "orchestrator.cli"} <= set(modules)
    assert any(_within(name, "orchestrator.sandbox") for name in modules)
    assert "contracts.call_refs.campaign_of" in modules["handlers.voice"].imports


# --- each rule catches what it should ------------------------------------------------------------

CLEAN = {
    "contracts/__init__.py": "",
    "contracts/shapes.py": "from datetime import datetime\n\ndef parse(v: str) -> datetime:\n"
    "    return datetime.fromisoformat(v)\n",
    "handlers/__init__.py": "",
    "handlers/machine.py": "from contracts.shapes import parse\n",
    "orchestrator/__init__.py": "",
    "orchestrator/role.py": "import time\nimport aiokafka\nfrom handlers.machine import parse\n"
    "NOW = time.time()\n",
    "orchestrator/cli.py": "import importlib\n\ndef simulate() -> None:\n"
    "    importlib.import_module('orchestrator.sandbox.tool')\n",
    "orchestrator/sandbox/__init__.py": "",
    "orchestrator/sandbox/tool.py": "from orchestrator.role import NOW\n",
}

BROKEN = {
    "contracts importing orchestrator": (
        {"contracts/shapes.py": "from orchestrator.role import NOW\n"},
        "contracts.shapes imports orchestrator.role.NOW (contracts must not use orchestrator)",
    ),
    "contracts importing handlers": (
        {"contracts/shapes.py": "import handlers.machine\n"},
        "contracts.shapes imports handlers.machine (contracts must not use handlers)",
    ),
    "handlers importing orchestrator inside a function": (
        {"handlers/machine.py": "def f() -> None:\n    from orchestrator import role\n"},
        "handlers.machine imports orchestrator.role (handlers must not use orchestrator)",
    ),
    "handlers importing kafka": (
        {"handlers/machine.py": "import aiokafka\n"},
        "handlers.machine imports aiokafka (handlers must not use aiokafka)",
    ),
    "contracts importing httpx": (
        {"contracts/shapes.py": "from httpx import AsyncClient\n"},
        "contracts.shapes imports httpx.AsyncClient (contracts must not use httpx)",
    ),
    "handlers importing starlette": (
        {"handlers/machine.py": "from starlette.requests import Request\n"},
        "handlers.machine imports starlette.requests.Request (handlers must not use starlette)",
    ),
    "handlers reading the clock": (
        {"handlers/machine.py": "import time\n\ndef f() -> float:\n    return time.monotonic()\n"},
        "handlers.machine reads a clock: time.monotonic() (line 4)",
    ),
    "contracts reading the date": (
        {"contracts/shapes.py": "from datetime import UTC, datetime\nT = datetime.now(UTC)\n"},
        "contracts.shapes reads a clock: datetime.now() (line 2)",
    ),
    "handlers importing a clock function": (
        {"handlers/machine.py": "from time import perf_counter\n"},
        "handlers.machine reads a clock: from time import perf_counter (line 1)",
    ),
    "the product importing the sandbox": (
        {"orchestrator/role.py": "def f() -> None:\n    from orchestrator.sandbox import tool\n"},
        "orchestrator.role imports orchestrator.sandbox.tool (the product never uses "
        "orchestrator.sandbox)",
    ),
    "the product importing the local broker tooling": (
        {
            "orchestrator/localbroker/__init__.py": "",
            "orchestrator/role.py": "from orchestrator.localbroker import LocalBroker\n",
        },
        "orchestrator.role imports orchestrator.localbroker.LocalBroker (the product never uses "
        "orchestrator.localbroker)",
    ),
    "a circle hidden in a function": (
        {
            "orchestrator/a.py": "from orchestrator import b\n",
            "orchestrator/b.py": "def f() -> None:\n    from orchestrator.a import x\n",
        },
        "import circle: orchestrator.a <-> orchestrator.b",
    ),
    "a circle of types": (
        {
            "orchestrator/a.py": "from orchestrator.b import B\n",
            "orchestrator/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from orchestrator.c import C\n",
            "orchestrator/c.py": "from orchestrator import a\n",
        },
        "import circle: orchestrator.a <-> orchestrator.b <-> orchestrator.c",
    ),
    "a relative import back into a package": (
        {
            "orchestrator/pkg/__init__.py": "from .inner import X\n",
            "orchestrator/pkg/inner.py": "from .. import pkg\n",
        },
        "import circle: orchestrator.pkg <-> orchestrator.pkg.inner",
    ),
}


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert violations(_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_rule_fails(tmp_path: Path, case: str) -> None:
    change, expected = BROKEN[case]
    found = violations(_tree(tmp_path, {**CLEAN, **change}))
    assert expected in found, found
