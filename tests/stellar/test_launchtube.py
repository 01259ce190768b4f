"""LaunchtubeSubmitter against a local Launchtube stand-in (form POST, bearer token)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from stellar_sdk import scval

from kalepool.kale.errors import FarmError, FarmErrorCode, TokenError
from kalepool.stellar.errors import NetworkError, SimulationFailed, TxInDoubt, TxRejected
from kalepool.stellar.fees import FeeOracle, FeePolicy
from kalepool.stellar.launchtube import LaunchtubeError, LaunchtubeSubmitter
from kalepool.stellar.rpc import RpcClient
from kalepool.stellar.submit import Pipeline, RpcSubmitter

from . import xdrs
from .standin import StandInLaunchtube, StandInRpc
from .test_submit import signed_tx
from .xdrs import FARM, SAC

TOKEN = "eyJhbGciOiJIUzI1NiJ9.test-token.sig"

Respond = Callable[[dict[str, str]], Any]


@pytest.fixture
async def tube() -> AsyncIterator[Callable[[Respond], Awaitable[StandInLaunchtube]]]:
    servers: list[StandInLaunchtube] = []

    async def make(respond: Respond) -> StandInLaunchtube:
        server = StandInLaunchtube(TOKEN, respond)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


def launchtube(url: str, standin: StandInRpc, **kw: Any) -> LaunchtubeSubmitter:
    rpc = RpcClient([standin.url], timeout=1)
    return LaunchtubeSubmitter(url, kw.pop("token", TOKEN), rpc=rpc, poll_interval=0.01, **kw)


async def test_success_posts_a_form_with_the_bearer_token(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    tx = signed_tx()

    def respond(form: dict[str, str]) -> tuple[int, Any]:
        assert form == {"xdr": tx.envelope_xdr}
        return 200, {
            "status": "SUCCESS",
            "hash": "fe" * 32,  # the fee bump's hash
            "feeCharged": 4321,
            "ledger": 77,
            "envelopeXdr": tx.envelope_xdr,
            "resultXdr": xdrs.tx_result(fee=4321),
            "resultMetaXdr": xdrs.meta_v4(scval.to_int128(25_050_000_000)),
            "returnValue": scval.to_int128(25_050_000_000).to_xdr(),
        }

    server = await tube(respond)
    sub = launchtube(server.url, standin)
    try:
        result = await sub.submit(tx)
    finally:
        await sub.close()
    assert result.success and result.ledger == 77 and result.fee_charged == 4321
    assert result.tx_hash == "fe" * 32
    assert result.return_value is not None and scval.from_int128(result.return_value) == 25_050_000_000
    assert server.headers[0]["Authorization"] == f"Bearer {TOKEN}"
    assert server.headers[0]["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert TOKEN not in repr(sub)


async def test_minimal_success_answer(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    tx = signed_tx()
    server = await tube(
        lambda _f: (
            200,
            {
                "status": "SUCCESS",
                "hash": tx.tx_hash,
                "feeCharged": "99",
                "ledger": 5,
                "returnValue": scval.to_uint32(4).to_xdr(),
            },
        )
    )
    sub = launchtube(server.url, standin)
    result = await sub.submit(tx)
    await sub.close()
    assert result.fee_charged == 99
    assert result.return_value is not None and scval.from_uint32(result.return_value) == 4


SIM_TEXT = f"""HostError: Error(Contract, #8)

Event log (newest first):
   0: [Diagnostic Event] contract:{FARM}, topics:[error, Error(Contract, #8)], data:"contract panicked"
   1: [Diagnostic Event] topics:[fn_call, Bytes({FARM}), plant], data:[G..., 0]
"""


def pipeline(standin: StandInRpc) -> Pipeline:
    rpc = RpcClient([standin.url], timeout=1)
    return Pipeline(
        rpc,
        passphrase="p",
        farm_id=FARM,
        token_id=SAC,
        fees=FeeOracle(rpc.fee_stats, FeePolicy()),
        direct=RpcSubmitter(rpc),
    )


async def test_simulation_error_is_classified_by_contract(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    tx = signed_tx()
    server = await tube(lambda _f: (400, {"type": "simulate", "error": SIM_TEXT}))
    sub = launchtube(server.url, standin)
    with pytest.raises(SimulationFailed) as info:
        await sub.submit(tx)
    await sub.close()
    err = pipeline(standin).simulation_error(info.value.error, info.value.events)
    assert isinstance(err, FarmError) and err.code is FarmErrorCode.PAIL_EXISTS


async def test_simulation_error_with_events(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    events = xdrs.b64(xdrs.sac_error_in_plant_events(13))
    server = await tube(
        lambda _f: (400, {"type": "simulate", "error": "HostError: Error(Contract, #13)", "events": events})
    )
    sub = launchtube(server.url, standin)
    with pytest.raises(SimulationFailed) as info:
        await sub.submit(signed_tx())
    await sub.close()
    err = pipeline(standin).simulation_error(info.value.error, info.value.events)
    assert isinstance(err, TokenError) and err.name == "TrustlineMissing"


async def test_send_error_is_rejected(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    server = await tube(
        lambda _f: (400, {"type": "send", "status": "ERROR", "errorResultXdr": "AAAAAAAAAGT////7AAAAAA=="})
    )
    sub = launchtube(server.url, standin)
    with pytest.raises(TxRejected) as info:
        await sub.submit(signed_tx())
    await sub.close()
    assert info.value.result_code == "txBAD_SEQ"


async def test_send_failed_is_a_failed_result(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    events = xdrs.farm_error_events(15)
    server = await tube(
        lambda _f: (
            400,
            {
                "type": "send",
                "status": "FAILED",
                "hash": "aa" * 32,
                "ledger": 9,
                "resultXdr": xdrs.tx_result(300, "txFAILED", "INVOKE_HOST_FUNCTION_TRAPPED"),
                "resultMetaXdr": xdrs.meta_v4(None, events),
            },
        )
    )
    sub = launchtube(server.url, standin)
    result = await sub.submit(signed_tx())
    await sub.close()
    assert not result.success and result.fee_charged == 300
    assert len(result.events) == len(events)


@pytest.mark.parametrize(
    ("status", "body", "token"),
    [(401, "Unauthorized", "wrong"), (400, "No credits left", TOKEN), (400, {"issues": ["xdr"]}, TOKEN)],
)
async def test_refusals_are_launchtube_errors(tube, standin: StandInRpc, status, body, token) -> None:  # type: ignore[no-untyped-def]
    server = await tube(lambda _f: (status, body))
    sub = launchtube(server.url, standin, token=token)
    with pytest.raises(LaunchtubeError) as info:
        await sub.submit(signed_tx())
    await sub.close()
    assert info.value.status == status
    assert TOKEN not in str(info.value)


async def test_no_answer_is_in_doubt(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    async def slow(_form: dict[str, str]) -> tuple[int, Any]:
        await asyncio.sleep(0.5)
        return 200, {}

    server = await tube(slow)
    sub = launchtube(server.url, standin, timeout=0.1)
    tx = signed_tx()
    with pytest.raises(TxInDoubt) as info:
        await sub.submit(tx)
    await sub.close()
    assert info.value.tx is not None and info.value.tx.tx_hash == tx.tx_hash


async def test_server_error_is_in_doubt(tube, standin: StandInRpc) -> None:  # type: ignore[no-untyped-def]
    server = await tube(lambda _f: (502, "upstream failed"))
    sub = launchtube(server.url, standin)
    with pytest.raises(TxInDoubt):
        await sub.submit(signed_tx())
    await sub.close()


async def test_unreachable_launchtube_sent_nothing(standin: StandInRpc) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sub = launchtube(f"http://127.0.0.1:{port}/", standin)
    with pytest.raises(NetworkError) as info:
        await sub.submit(signed_tx())
    await sub.close()
    assert not isinstance(info.value, LaunchtubeError)
