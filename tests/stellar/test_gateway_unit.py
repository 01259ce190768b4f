"""FarmGateway checks that need no network: input validation, amounts, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr
from stellar_sdk import Keypair

from kalepool.errors import InvalidInput
from kalepool.kale.amounts import parse_amount
from kalepool.kale.networks import DEVNET, TESTNET
from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway, LaunchtubeSubmitter, Payment, RpcSubmitter
from kalepool.stellar.gateway import _sdk_amount


@pytest.fixture
async def offline() -> AsyncIterator[FarmGateway]:
    # nothing listens there: every test below must fail before any request
    gw = FarmGateway.from_settings(StellarSettings(network="devnet", rpc_urls=["http://127.0.0.1:9/"]))
    yield gw
    await gw.close()


@pytest.mark.parametrize(
    ("stroops", "text"), [(1, "0.0000001"), (10_000_000, "1.0000000"), (123_456_789_012, "12345.6789012")]
)
def test_amounts(stroops: int, text: str) -> None:
    assert _sdk_amount(stroops) == text
    assert parse_amount(text) == stroops
    assert parse_amount("12.5") == 125_000_000


async def test_payment_validation(offline: FarmGateway) -> None:
    payer = Keypair.random()
    dest = Keypair.random().public_key
    with pytest.raises(InvalidInput, match="payments"):
        await offline.pay_many(payer, [])
    with pytest.raises(InvalidInput, match="payments"):
        await offline.pay_many(payer, [Payment(dest, 1)] * 101)
    with pytest.raises(InvalidInput, match=r"payments\[0\].amount"):
        await offline.pay_many(payer, [Payment(dest, 0)])
    with pytest.raises(InvalidInput, match=r"payments\[0\].destination"):
        await offline.pay_many(payer, [Payment("GABC", 5)])
    with pytest.raises(InvalidInput, match="memo"):
        await offline.pay_many(payer, [Payment(dest, 5)], memo="x" * 29)
    with pytest.raises(InvalidInput, match="asset"):
        await offline.pay(payer, dest, 5, asset="BTC")  # type: ignore[arg-type]


async def test_action_validation(offline: FarmGateway) -> None:
    kp = Keypair.random()
    with pytest.raises(InvalidInput, match="nonce"):
        await offline.work(kp, kp.public_key, -1, bytes(32))
    with pytest.raises(InvalidInput, match="hash"):
        await offline.work(kp, kp.public_key, 1, bytes(31))
    with pytest.raises(InvalidInput, match="index"):
        await offline.harvest(kp, kp.public_key, 2**32)
    with pytest.raises(InvalidInput, match="address"):
        await offline.harvest(kp, "not-an-address", 1)
    with pytest.raises(InvalidInput, match="amount"):
        await offline.plant(kp, 2**127)
    with pytest.raises(InvalidInput, match="envelope_xdr"):
        await offline.resume("00" * 32, "not an envelope")


async def test_from_settings() -> None:
    settings = StellarSettings(
        network="testnet",
        rpc_urls=["http://a.invalid/", "http://b.invalid/"],
        fee_percentile=70,
        max_inclusion_fee=777,
        tx_timeout=45,
        poll_interval=0.5,
        request_timeout=3,
    )
    async with FarmGateway.from_settings(settings) as gw:
        assert gw.rpc.urls == ("http://a.invalid/", "http://b.invalid/") and gw.rpc.timeout == 3
        assert gw.farm_id == TESTNET.farm_contract_id and gw.token_id == TESTNET.kale_sac_id
        assert gw.fees.policy.percentile == 70 and gw.fees.policy.max_inclusion_fee == 777
        assert gw.pipeline.tx_timeout == 45 and gw.pipeline.passphrase == TESTNET.passphrase
        assert isinstance(gw.pipeline.submitter, RpcSubmitter) and gw.direct.poll_interval == 0.5
    tube = StellarSettings(
        network="devnet", launchtube_url="http://lt.invalid/", launchtube_token=SecretStr("secret-jwt")
    )
    async with FarmGateway.from_settings(tube) as gw:
        assert isinstance(gw.pipeline.submitter, LaunchtubeSubmitter)
        assert "secret-jwt" not in repr(gw.pipeline.submitter)
        assert gw.farm_id == DEVNET.farm_contract_id


def test_public_exports() -> None:
    import kalepool.stellar as stellar

    assert sorted(stellar.__all__) == stellar.__all__
    for name in stellar.__all__:
        assert getattr(stellar, name) is not None
    assert {
        "FarmGateway",
        "FarmError",
        "TokenError",
        "NetworkError",
        "RpcTimeout",
        "TxRejected",
        "RaceLost",
        "PlantOutcome",
        "WorkOutcome",
        "HarvestOutcome",
    } <= set(stellar.__all__)


def test_errors_form_one_tree() -> None:
    from kalepool.errors import KalePoolError
    from kalepool.stellar import errors

    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, KalePoolError), name
    assert issubclass(errors.RpcTimeout, errors.NetworkError)
    assert issubclass(errors.NetworkError, errors.GatewayError)
