"""``--state FILE``: a devnet restarted from its state file carries on where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stellar_sdk import Keypair
from stellar_sdk.soroban_rpc import GetTransactionStatus

from kalepool.devnet.state import load_state
from kalepool.devnet.testing import running_devnet
from kalepool.errors import ConfigError
from kalepool.kale.networks import DEVNET_PASSPHRASE
from tests.devnet.helpers import KALE, account_exists, block, farm_instance, kale_balance, pail, plant, work


def test_restart_from_state(tmp_path: Path) -> None:
    path = tmp_path / "devnet.json"
    with running_devnet(state_file=path, seed=1) as devnet:
        farmer = devnet.new_account(kale=10 * KALE)
        planted = plant(devnet, farmer, 3 * KALE)
        devnet.close_ledgers(1)
        worked, _, _ = work(devnet, farmer, 1)
        assert worked.status == "SUCCESS"
        devnet.advance_time(120)
        devnet.close_ledgers(1)
        latest = devnet.soroban_server().get_latest_ledger()
        block0 = block(devnet, 0)
        pail0 = pail(devnet, farmer.public_key, 0)
        # a transaction still queued when the devnet stops is kept too
        queued = Keypair.random()
        friend = devnet.new_account()
        from stellar_sdk import Asset, TransactionBuilder

        tx = (
            TransactionBuilder(
                devnet.soroban_server().load_account(friend.public_key), devnet.passphrase, 100
            )
            .append_create_account_op(queued.public_key, "5")
            .set_timeout(600)
            .build()
        )
        tx.sign(friend)
        assert devnet.soroban_server().send_transaction(tx).status.value == "PENDING"
        _ = Asset
    assert path.exists()
    assert not [p for p in tmp_path.iterdir() if p.name != path.name]  # no temporary file left behind
    document = json.loads(path.read_text())
    assert document["ledgers"][-1]["sequence"] == latest.sequence

    with running_devnet(state_file=path, seed=2) as devnet:
        server = devnet.soroban_server()
        again = server.get_latest_ledger()
        assert (again.sequence, again.id, again.close_time) == (latest.sequence, latest.id, latest.close_time)
        assert block(devnet, 0) == block0 and pail(devnet, farmer.public_key, 0) == pail0
        assert kale_balance(devnet, farmer.public_key) == 7 * KALE
        old = server.get_transaction(planted.send.hash)
        assert old.status == GetTransactionStatus.SUCCESS and old.result_xdr == planted.result.result_xdr
        assert server.get_events(start_ledger=planted.result.ledger).events  # the burn event
        # the clock carries on from the saved close time
        devnet.close_ledgers(1)
        assert server.get_latest_ledger().close_time == latest.close_time + 5
        assert server.get_transaction(tx.hash_hex()).status == GetTransactionStatus.SUCCESS
        assert account_exists(devnet, queued.public_key)
        # and the farm goes on: roll over and harvest the block planted before the restart
        devnet.advance_time(300, close=True)
        plant(devnet, devnet.new_account(), 0)
        assert farm_instance(devnet).farm_index == 1
        from tests.devnet.helpers import harvest

        assert harvest(devnet, farmer, 0).status == "SUCCESS"


def test_state_file_of_another_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"format": "kalepool-devnet-state", "version": 1, "passphrase": "other"}))
    with pytest.raises(ConfigError, match="another network"):
        load_state(path, DEVNET_PASSPHRASE)
    path.write_text("{broken")
    with pytest.raises(ConfigError, match="cannot read"):
        load_state(path, DEVNET_PASSPHRASE)
