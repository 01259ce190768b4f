"""The dependency rules between kalepool's parts, checked on the source with ``ast``.

- ``kale`` is the pure core: it imports no other kalepool part but ``kalepool.errors``,
  and no I/O module (sockets, HTTP clients, files, processes), nor calls ``open``.
- ``stellar``, ``devnet`` and ``miner`` build on ``kale``, ``errors`` and ``settings`` only.
- ``wire`` (the pooler API's contract, spoken by both sides) builds on ``errors`` only.
- ``backend`` and ``pooler`` are applications: only ``kalepool.cli``, the end-to-end demo
  ``kalepool.demo`` (and each package itself) may import them. The pooler reaches the
  backend over HTTP only: it builds on ``stellar``, ``miner``, ``kale``, ``wire``,
  ``errors`` and ``settings``.
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
    "devnet": {"devnet", "kale", "errors", "settings"},
    "stellar": {"stellar", "kale", "errors", "settings"},
    "miner": {"miner", "kale", "errors", "settings"},
    "errors": {"errors"},
    "wire": {"wire", "errors"},
    "pooler": {"pooler", "stellar", "miner", "kale", "wire", "errors", "settings"},
}
APPLICATIONS = {"backend", "pooler"}
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


def imports(name: str, path: Path) -> set[str]:
    """Absolute names of every module ``name`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop] if drop else base
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from kalepool import backend`` names a part too
            found.update(f"{module}.{alias.name}" for alias in node.names)
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
        allowed = {"cli", "demo", "testing", app}
        assert own in allowed, f"{name} imports kalepool.{app}; only the cli, demo and testing may"


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
