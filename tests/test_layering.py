"""The dependency rules between kalepool's parts, checked on the source with ``ast``.

- ``kale`` is the pure core: it imports no other kalepool part but ``kalepool.errors``,
  and no I/O module (sockets, HTTP clients, files, processes), nor calls ``open``.
- ``stellar``, ``devnet`` and ``miner`` build on ``kale``, ``errors`` and ``settings`` only.
- ``wire`` (the pooler API's contract, spoken by both sides) builds on ``errors`` only.
- ``backend`` and ``pooler`` are applications: only ``kalepool.cli``, the end-to-end demo
  ``kalepool.demo``, the health check ``kalepool.doctor``, the suites' helpers
  ``kalepool.testing`` (and each package itself) may import them. The pooler reaches the
  backend over HTTP only: it builds on ``stellar``, ``miner``, ``kale``, ``wire``,
  ``errors`` and ``settings``. The backend builds on ``stellar``, ``kale``, ``wire``,
  ``errors``, ``settings`` and ``lifecycle``, and reaches the chain through one adapter:
  only ``kalepool.backend.stellar_chain`` imports ``kalepool.stellar``.
- ``pool_api`` (the operator's and farmers' HTTP client) knows only ``errors``.
- ``errors`` is the root of the exception tree and imports no kalepool module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import kalepool

SRC = Path(kalepool.__file__).parent

ALLOWED: dict[str, set[str]] = {
    "kale": {"kale", "errors"},
    "settings": {"settings", "kale", "errors"},
    "devnet": {"devnet", "kale", "errors", "settings"},
    "stellar": {"stellar", "kale", "errors", "settings"},
    "miner": {"miner", "kale", "errors", "settings"},
    "errors": {"errors"},
    "wire": {"wire", "errors"},
    "lifecycle": {"lifecycle"},
    "__main__": {"__main__", "cli"},
    "pool_api": {"pool_api", "errors"},
    "pooler": {"pooler", "stellar", "miner", "kale", "wire", "errors", "settings"},
    "backend": {"backend", "stellar", "kale", "wire", "errors", "settings", "lifecycle"},
}
APPLICATIONS = {"backend", "pooler"}
#: the importers an application may have, besides itself
APPLICATION_USERS = {"cli", "demo", "doctor", "testing"}
#: the backend's one way to the chain
CHAIN_ADAPTER = "kalepool.backend.stellar_chain"
IO_MODULES = {
    "socket", "ssl", "select", "selectors", "asyncio", "http", "urllib", "urllib3",
    "httpx", "aiohttp", "requests", "websockets", "os", "pathlib", "io", "shutil",
    "tempfile", "glob", "subprocess", "sqlite3", "psycopg", "sqlalchemy", "mmap",
    "fileinput", "threading", "multiprocessing",
}


def modules() -> Iterator[tuple[str, Path]]:
    """``(dotted name, path)`` of every module under ``src/kalepool``."""
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield ".".join(parts), path


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of the nodes under an ``if TYPE_CHECKING:`` (not run)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def statements(name: str, path: Path, *, runtime: bool = False) -> list[tuple[str, list[str]]]:
    """``(module, names imported from it)`` of every import in ``name`` (relative ones
    resolved; a plain ``import x`` imports no names); ``runtime``: only the imports that
    run (not those under ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    skipped = _type_checking_only(tree) if runtime else set()
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop] if drop else base
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names]))
    return found


def imports(name: str, path: Path) -> set[str]:
    """Absolute names of every module ``name`` imports (relative imports resolved)."""
    found: set[str] = set()
    for module, names in statements(name, path):
        found.add(module)
        # ``from kalepool import backend`` names a part too
        found.update(f"{module}.{n}" for n in names)
    return found


def part(module: str) -> str | None:
    """The kalepool part a module name belongs to (``kale``, ``cli``, ...), else None."""
    pieces = module.split(".")
    if pieces[0] != "kalepool":
        return None
    return pieces[1] if len(pieces) > 1 else ""


def is_part(name: str) -> bool:
    """Whether ``kalepool.<name>`` is a subpackage or module (not e.g. ``__version__``)."""
    known = {"kale", "stellar", "devnet", "miner", "backend", "pooler", "cli", "settings", "errors"}
    return bool(name) and (name in known or (SRC / name).is_dir() or (SRC / f"{name}.py").is_file())


def kalepool_parts(imported: set[str]) -> set[str]:
    """The kalepool parts that a set of imported names reaches."""
    return {p for module in imported if (p := part(module)) is not None and is_part(p)}


MODULES = list(modules())


def test_the_walk_finds_the_core() -> None:
    names = {name for name, _ in MODULES}
    assert {"kalepool.kale", "kalepool.kale.pow", "kalepool.errors"} <= names


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[n for n, _ in MODULES])
def test_dependency_direction(name: str, path: Path) -> None:
    own = part(name)
    assert own is not None
    used = kalepool_parts(imports(name, path))
    if own in ALLOWED:
        assert used <= ALLOWED[own], f"{name} may not import kalepool.{sorted(used - ALLOWED[own])}"
    for app in APPLICATIONS & used:
        assert own in APPLICATION_USERS | {app}, f"{name} imports kalepool.{app}"
    if own == "backend" and name != CHAIN_ADAPTER:
        assert "stellar" not in used, f"{name} imports kalepool.stellar: only {CHAIN_ADAPTER} may"


def test_every_part_has_rules() -> None:
    """A new top-level part gets an allowed set (or is one of the applications' users)."""
    parts = {part(name) for name, _ in MODULES} - {""}
    assert parts <= set(ALLOWED) | APPLICATION_USERS, sorted(parts - set(ALLOWED) - APPLICATION_USERS)


def test_the_backend_reaches_the_chain_through_its_adapter_only() -> None:
    users = {n for n, p in MODULES if part(n) == "backend" and "stellar" in kalepool_parts(imports(n, p))}
    assert users == {CHAIN_ADAPTER}


@pytest.mark.parametrize(
    ("name", "path"),
    [(n, p) for n, p in MODULES if part(n) == "kale"],
    ids=[n for n, _ in MODULES if part(n) == "kale"],
)
def test_kale_does_no_io(name: str, path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = {module.split(".")[0] for module in imports(name, path)}
    assert not roots & IO_MODULES, f"{name} imports I/O modules {sorted(roots & IO_MODULES)}"
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & {"open", "input", "print", "exec", "eval", "__import__"}, name


def test_the_checker_catches_violations(tmp_path: Path) -> None:
    """The import extraction itself: absolute, relative and ``from kalepool import x``."""
    pkg = tmp_path / "kale"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import maths\nfrom ..backend import app\n")
    (pkg / "mod.py").write_text("import os\nfrom kalepool import pooler\nfrom .types import Block\n")
    assert imports("kalepool.kale", pkg / "__init__.py") >= {"kalepool.kale", "kalepool.backend"}
    found = imports("kalepool.kale.mod", pkg / "mod.py")
    assert {"os", "kalepool.pooler", "kalepool.kale.types"} <= found
    assert kalepool_parts(found) == {"kale", "pooler"}
    assert kalepool_parts({"kalepool", "kalepool.__version__"}) == set()


def module_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The kalepool modules ``name`` imports when it runs (``from pkg import submodule``
    names the submodule, not the package; an import under ``if TYPE_CHECKING:`` is none)."""
    found: set[str] = set()
    for module, names in statements(name, path, runtime=True):
        submodules = {f"{module}.{n}" for n in names} & known
        found.update(submodules if names and len(submodules) == len(names) else {module, *submodules})
    out = set()
    for module in found:
        while module and module not in known:
            module = module.rpartition(".")[0]
        if module and module != name:
            out.add(module)
    return out


def import_loops(modules: list[tuple[str, Path]] = MODULES) -> list[frozenset[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    known = {n for n, _ in modules}
    graph = {n: module_imports(n, p, known) for n, p in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                loops.append(frozenset(group))

    for v in graph:
        if v not in index:
            visit(v)
    return loops


def test_no_import_loop() -> None:
    """No module imports, when it runs, one that imports it back (through any chain): a
    type-only import (``if TYPE_CHECKING:``) is no edge."""
    assert import_loops() == []


def test_the_loop_finder_finds_loops_and_ignores_type_only_imports(tmp_path: Path) -> None:
    files = {
        "a": "from kalepool.x import b\n",
        "b": "import kalepool.x.c\n",
        "c": "def f():\n    from kalepool.x.a import g\n",  # a loop a -> b -> c -> a
        "d": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from kalepool.x import e\n",
        "e": "from kalepool.x import d\n",  # d -> e only for the type checker: no loop
    }
    modules = []
    for stem, text in files.items():
        (tmp_path / f"{stem}.py").write_text(text)
        modules.append((f"kalepool.x.{stem}", tmp_path / f"{stem}.py"))
    assert import_loops(modules) == [frozenset({"kalepool.x.a", "kalepool.x.b", "kalepool.x.c"})]
