"""schemathesis against a live backend (uvicorn on loopback, PostgreSQL, the devnet through
the real gateway), without credentials and with real ones: no 5xx, no answer outside the
OpenAPI document (status, body, content type, headers), no schema-invalid request accepted.

Bounded: a fixed seed and a fixed number of examples per operation (about a minute on two
cores). The command and its counts are printed (``-s`` shows them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stellar_sdk import Keypair

from kalepool.backend.custody import Keyring
from kalepool.devnet.testing import DevnetHandle, running_devnet
from tests.backend.conftest import ADMIN_TOKEN, DEVNET_BACKEND
from tests.backend.devnet_env import KALE, XLM, gateway_chain
from tests.backend.live import captured_logs, serving

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ST = str(Path(sys.executable).with_name("st"))
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "missing_required_header",
        "unsupported_method",
    ]
)
MAX_EXAMPLES = 25
SEED = 13


CONFIG = Path(__file__).with_name("schemathesis.toml")


def schemathesis_command(url: str, report: Path, *extra: str) -> list[str]:
    return [
        ST,
        "--config-file",
        str(CONFIG),
        "run",
        f"{url}/openapi.json",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # one worker: hypothesis describes strategies with ast.parse, which CPython 3.11
        # does not make thread-safe (a rare "AST constructor recursion depth mismatch")
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--output-truncate",
        "true",
        *extra,
    ]


def _statuses(report: Path) -> Counter[int]:
    """Every response's status in the NDJSON event stream."""
    counts: Counter[int] = Counter()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            response = node.get("response")
            if isinstance(response, dict) and isinstance(response.get("status_code"), int):
                counts[response["status_code"]] += 1
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for line in report.read_text().splitlines():
        walk(json.loads(line))
    return counts


@pytest.fixture
def closing_devnet() -> Iterator[DevnetHandle]:
    """A devnet closing a ledger every half second (plants and works get confirmed), each
    standing for a chain second (close times are whole seconds)."""
    with running_devnet(
        block_interval=300, ledger_seconds=0.5, time_scale=2, auto_close=True, seed=11
    ) as handle:
        yield handle


def test_schemathesis_finds_no_5xx_and_no_contract_violation(
    database_url: str, closing_devnet: DevnetHandle, tmp_path: Path
) -> None:
    devnet = closing_devnet
    keyring = Keyring([os.urandom(32)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    with (
        captured_logs(json=False, level="INFO") as logs,
        serving(database_url, keyring, lambda: gateway_chain(devnet), **DEVNET_BACKEND) as url,
    ):
        with httpx.Client(base_url=url, timeout=30) as http:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            created = http.post("/api/v1/poolers", json={"name": "fuzzed"}, headers=admin).json()
            body = {
                "pooler_id": created["pooler"]["pooler_id"],
                "payout_wallet": Keypair.random().public_key,
                "stake_percentage": 50,
            }
            farmers = [http.post("/api/v1/farmers", json=body).json() for _ in range(3)]
            for made in farmers:  # ready on chain: plant-requests really plant, works are checked
                devnet.fund(made["custodial_wallet"], xlm=100 * XLM, kale=100 * KALE)
                auth = {"Authorization": f"Bearer {made['farmer_token']}"}
                confirmed = http.post(f"/api/v1/farmers/{made['farmer_id']}/confirm-funding", headers=auth)
                assert confirmed.status_code == 200, confirmed.text
            farmer = farmers[0]
        credentials = {
            "admin_token": ADMIN_TOKEN,
            "pooler_id": created["pooler"]["pooler_id"],
            "pooler_key": created["api_key"],
            "farmer_id": farmer["farmer_id"],
            "farmer_token": farmer["farmer_token"],
        }
        runs = {
            "without credentials": {},
            "with real credentials": {
                "SCHEMATHESIS_HOOKS": "tests.backend.fuzz_hooks",
                "KALEPOOL_FUZZ_CREDENTIALS": json.dumps(credentials),
            },
        }
        reports = {name: tmp_path / f"{name.replace(' ', '-')}.ndjson" for name in runs}
        commands = {name: schemathesis_command(url, reports[name]) for name in runs}
        # both runs at once (each is one process, one worker)
        started = {
            name: subprocess.Popen(
                commands[name],
                env={**env, **extra},
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name, extra in runs.items()
        }
        results = {}
        for name, process in started.items():
            try:
                output, _ = process.communicate(timeout=400)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            results[name] = (commands[name], process.returncode, output, _statuses(reports[name]))
    logged = logs.getvalue()
    assert "plant request" in logged  # the server's log lines were captured
    leaked = [
        name for name, value in credentials.items() if "token" in name or "key" in name if value in logged
    ]
    assert not leaked, f"the logs of the fuzzed server hold {leaked}"
    failures = []
    for name, (command, returncode, output, statuses) in results.items():
        shown = " ".join(c if not c.startswith(str(tmp_path)) else "REPORT" for c in command)
        by_status = dict(sorted(statuses.items()))
        print(f"\n{name}: {shown}\n  {sum(statuses.values())} responses, by status: {by_status}")
        print("\n".join(output.splitlines()[-12:]))
        if returncode != 0 or any(s >= 500 for s in statuses):
            failures.append(f"{name}: exit {returncode}, statuses {by_status}\n{output[-6000:]}")
    assert not failures, "\n\n".join(failures)
