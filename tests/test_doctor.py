"""``kalepool doctor``'s checks that read the chain, against a devnet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from stellar_sdk import Keypair

from kalepool.devnet.testing import KALE, DevnetHandle, running_devnet
from kalepool.doctor import check_platform_wallet
from kalepool.settings import BackendSettings, Settings, StellarSettings


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetHandle]:
    with running_devnet() as handle:
        yield handle


def settings(devnet: DevnetHandle, wallet: str | None) -> Settings:
    return Settings(
        stellar=StellarSettings(network="devnet", rpc_urls=[devnet.rpc_url]),
        backend=BackendSettings(platform_wallet=wallet),
    )


def test_the_platform_wallet_must_exist_and_hold_a_kale_trustline(devnet: DevnetHandle) -> None:
    """A platform wallet that is missing, or has no trustline, makes every fee payout to it
    fail (tried again an hour later): the doctor says so before the pool runs."""
    assert check_platform_wallet(settings(devnet, None)).verdict == "skip"
    missing = Keypair.random().public_key
    check = check_platform_wallet(settings(devnet, missing))
    assert (check.verdict, check.detail) == (
        "FAIL",
        f"{missing} does not exist: the platform's fee payouts fail, each tried again after 3600 s",
    )
    bare = devnet.new_account().public_key
    check = check_platform_wallet(settings(devnet, bare))
    assert check.verdict == "FAIL" and "has no KALE trustline" in check.detail
    ready = devnet.new_account(kale=3 * KALE).public_key
    line = check_platform_wallet(settings(devnet, ready)).line()
    assert line == f"ok    platform wallet: {ready}: KALE trustline, 3 KALE"
