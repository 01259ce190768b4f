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
    assert result.exit_code == 1
    assert "API key is missing" in result.output
