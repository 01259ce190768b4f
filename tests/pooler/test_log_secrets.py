"""The pooler's logs show a traceback without the frames' local variables (they hold its
API key and its secret seed), in both formats."""

from __future__ import annotations

import json

import pytest
import structlog
from stellar_sdk import Keypair

from kalepool.cli import _configure_pooler_logging


@pytest.mark.parametrize("as_json", [False, True])
def test_a_logged_exception_shows_no_local_secret(as_json: bool, capsys: pytest.CaptureFixture[str]) -> None:
    api_key = "kp_pooler_" + "Zq9" * 15
    seed = Keypair.random().secret

    def call_backend(key: str, secret: str) -> None:
        raise RuntimeError("backend unreachable")

    _configure_pooler_logging("INFO", as_json)
    try:
        call_backend(api_key, seed)
    except RuntimeError:
        structlog.get_logger("kalepool.pooler").exception("heartbeat failed")
    finally:
        structlog.reset_defaults()
    err = capsys.readouterr().err
    assert "backend unreachable" in err and "call_backend" in err  # the traceback is there
    assert api_key not in err and seed not in err
    if as_json:
        (line,) = err.strip().splitlines()
        assert json.loads(line)["exception"][0]["frames"]
