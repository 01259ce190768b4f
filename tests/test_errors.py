"""One exception tree: every error kalepool raises on purpose is a ``KalePoolError`` with
a stable code and a name of its own, and the command line prints each as one line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
import sys

import pytest
import typer
from pydantic import BaseModel, Field, ValidationError
from typer.testing import CliRunner

import kalepool
from kalepool.cli import Commands
from kalepool.errors import ConfigError, InvalidInput, KalePoolError, NetworkMismatch
from kalepool.kale.errors import ContractError
from kalepool.pooler.state import StateError
from kalepool.stellar import GatewayError

#: Exceptions outside the tree, on purpose: none of them reaches a caller of kalepool.
INTERNAL = {
    # the devnet's model of the network's own failures, answered as RPC errors
    "kalepool.devnet.transactions.TxError",
    "kalepool.devnet.host.HostError",
    "kalepool.devnet.rpc.RpcError",
    # the KALE contract's arithmetic panics, modelled as the contract traps them
    "kalepool.kale.maths.FixedPointTrap",
    "kalepool.kale.maths.IntegerOverflow",
    # control flow inside the backend: a claim taken over (nothing was sent), and the web
    # pages' answers other than 200 (rendered as pages)
    "kalepool.backend.db.pails.ClaimLost",
    "kalepool.backend.web.core.PageError",
    "kalepool.backend.web.core.SignInRequired",
}


def exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(kalepool.__path__, "kalepool."):
        if info.name.endswith("__main__") or ".migrations." in info.name:
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return list(found.values())


CLASSES = exception_classes()
PUBLIC = [c for c in CLASSES if not c.__name__.startswith("_")]


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def test_every_public_error_is_in_the_tree() -> None:
    outside = {qualified(c) for c in PUBLIC if not issubclass(c, KalePoolError)} - INTERNAL
    assert not outside, f"errors outside the KalePoolError tree: {sorted(outside)}"
    assert {qualified(c) for c in PUBLIC} >= INTERNAL  # the list names what exists


def test_error_names_are_distinct() -> None:
    seen: dict[str, str] = {}
    for cls in PUBLIC:
        if issubclass(cls, KalePoolError):
            assert cls.__name__ not in seen, f"{qualified(cls)} and {seen[cls.__name__]}"
            seen[cls.__name__] = qualified(cls)


def test_every_error_has_a_stable_code() -> None:
    for cls in PUBLIC:
        # a contract error's code is the contract's own number (``name`` its text)
        if issubclass(cls, KalePoolError) and not issubclass(cls, ContractError):
            assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code), qualified(cls)
            if cls is not KalePoolError:
                assert "code" in vars(cls) or cls.code != KalePoolError.code, f"{qualified(cls)} has no code"


class _Section(BaseModel):
    port: int = Field(ge=0)


def _validation_error() -> ValidationError:
    try:
        _Section(port=-1)
    except ValidationError as exc:
        return exc
    raise AssertionError


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (ConfigError("backend.master_key: no master key configured"), 2, "backend.master_key: no master"),
        (InvalidInput("amount", "must be positive"), 2, "amount: must be positive"),
        (StateError("the state file is malformed"), 2, "the state file is malformed"),
        (NetworkMismatch("block_interval", 300, 60, here="the backend"), 2, "block_interval: the backend"),
        (FileNotFoundError(2, "No such file or directory", "/nope.toml"), 2, "/nope.toml: No such file"),
        (_validation_error(), 2, "invalid _section: port: Input should be greater than or equal to 0"),
        (GatewayError("RPC down\nsecond line\nthird"), 1, "RPC down"),
        (KeyboardInterrupt(), 130, "interrupted"),
    ],
)
def test_the_root_group_prints_one_line(exc: BaseException, code: int, line: str) -> None:
    app = typer.Typer(cls=Commands)

    @app.command()
    def boom() -> None:
        raise exc

    @app.command()
    def other() -> None:  # two commands: "boom" is a subcommand, as in kalepool
        pass

    result = CliRunner().invoke(app, ["boom"])
    assert result.exit_code == code
    (printed,) = result.output.strip().splitlines()
    assert printed.startswith(f"error: {line}")


def test_serve_without_a_master_key_is_one_line_and_exit_2(tmp_path) -> None:
    """It printed a 46-line traceback (cli.main caught only ValueError and FileNotFoundError)."""
    env = {"PATH": "/usr/bin:/bin", "KALEPOOL_DATABASE__URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = subprocess.run(
        [sys.executable, "-m", "kalepool", "backend", "serve"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: no master key: set KALEPOOL_BACKEND__MASTER_KEY")


def test_a_bad_setting_is_one_line_naming_it() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kalepool", "config", "show"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KALEPOOL_BACKEND__PORT": "-5"},
        timeout=60,
    )
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("error: invalid settings: backend.port:")
