"""``kalepool pooler run``: its inputs are checked before anything starts; secrets stay secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stellar_sdk import Keypair
from typer.testing import CliRunner

from kalepool.cli import app
from kalepool.errors import ConfigError
from kalepool.pooler.runner import load_keypair

runner = CliRunner()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import os

    import structlog

    for key in list(os.environ):
        if key.startswith("KALEPOOL_"):
            monkeypatch.delenv(key)
    yield
    structlog.reset_defaults()  # the command configured logging for its process


def test_a_missing_secret_is_a_usage_error() -> None:
    result = runner.invoke(app, ["pooler", "run", "--no-status"])
    assert result.exit_code == 2
    assert "secret is missing" in result.output


def test_a_bad_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("SNOTAVALIDSEEDATALL\n")
    result = runner.invoke(app, ["pooler", "run", "--no-status", "--secret-file", str(path)])
    assert result.exit_code == 2
    assert "not a valid Stellar secret" in result.output and "SNOTAVALID" not in result.output


def test_load_keypair(tmp_path: Path) -> None:
    kp = Keypair.random()
    path = tmp_path / "secret"
    path.write_text(f"\n{kp.secret}\n# comment\n")
    assert load_keypair(None, path).public_key == kp.public_key
    assert load_keypair(kp.secret, None).public_key == kp.public_key
    with pytest.raises(ConfigError, match="not found"):
        load_keypair(None, tmp_path / "nope")


def test_the_api_key_is_required(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALEPOOL_POOLER__SECRET", Keypair.random().secret)
    result = runner.invoke(app, ["pooler", "run", "--no-status", "--state-file", str(tmp_path / "s.json")])
    assert result.exit_code == 2
    assert "API key is missing" in result.output


def test_earnings_needs_the_api_key() -> None:
    result = runner.invoke(app, ["pooler", "earnings"])
    assert result.exit_code == 2
    assert "API key is missing" in result.output


def test_earnings_with_the_backend_away_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KALEPOOL_POOLER__API_KEY", "kp_pooler_not_a_real_key_000000")
    result = runner.invoke(app, ["pooler", "earnings", "--backend-url", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error:") and "kp_pooler_not_a_real_key" not in line
