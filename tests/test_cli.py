"""The console script: help, version, config, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from kalepool import __version__
from kalepool.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kalepool {__version__}"


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "config"):
        assert command in result.output


def test_config_show_is_json(monkeypatch) -> None:
    monkeypatch.delenv("KALEPOOL_STELLAR__NETWORK", raising=False)
    result = runner.invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert json.loads(result.output)["stellar"]["network"] == "devnet"


def test_module_entry_point_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kalepool", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_missing_config_file_is_one_line_error(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kalepool", "config", "show", "--config", str(tmp_path / "nope.toml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0
    assert "config file not found" in out.stderr
