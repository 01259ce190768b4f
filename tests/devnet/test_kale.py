"""The KALE farm through the RPC: plant, work, harvest, rollover, every error code,
the token errors, the re-work quirk, exact rewards and expiry."""

from __future__ import annotations

import dataclasses

from stellar_sdk import Keypair, StrKey, scval
from stellar_sdk import xdr as sx
from stellar_sdk.soroban_rpc import GetTransactionStatus

from kalepool.devnet.testing import DevnetHandle, running_devnet
from kalepool.kale.maths import contribution, reward
from kalepool.kale.storage import block_ledger_key, instance_ledger_key, pail_ledger_key
from tests.devnet import helpers
from tests.devnet.helpers import (
    KALE,
    block,
    contract_error,
    error_contract,
    farm_instance,
    harvest,
    mine_exact,
    pail,
    plant,
    return_int,
    simulate_error,
    work,
)


def addr(kp: Keypair) -> sx.SCVal:
    return scval.to_address(kp.public_key)


def kale_balance(devnet: DevnetHandle, kp: Keypair) -> int | None:
    return helpers.kale_balance(devnet, kp.public_key)


def roll_over(devnet: DevnetHandle) -> int:
    """Let the block interval pass and plant with a fresh farmer: the farm's index bumps.

    The time jump is closed into a ledger first: simulation sees the latest ledger, and a
    plant simulated before the jump would be applied with the wrong footprint."""
    devnet.advance_time(300, close=True)
    roller = devnet.new_account()
    assert plant(devnet, roller, 0).status == "SUCCESS"
    return farm_instance(devnet).farm_index


# ------------------------------------------------------------------- plant


def test_genesis_farm_is_constructed(devnet: DevnetHandle) -> None:
    inst = farm_instance(devnet)
    assert inst.homesteader == devnet.homesteader.public_key
    assert inst.asset == devnet.kale_sac_id
    assert inst.farm_index == 0 and not inst.paused
    assert inst.farm_block is not None and inst.farm_block.entropy == bytes(32)


def test_plant_zero_needs_no_trustline(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account()
    result = plant(devnet, farmer, 0)
    assert result.status == "SUCCESS"
    assert kale_balance(devnet, farmer) is None
    p = pail(devnet, farmer.public_key, 0)
    assert p is not None and p.stake == 0 and p.gap is None and p.zeros is None
    assert p.sequence == result.result.ledger
    b = block(devnet, 0)
    assert b is not None and b.staked_total == 0
    kale = [{"contractIds": [devnet.kale_sac_id]}]
    assert not devnet.soroban_server().get_events(start_ledger=result.result.ledger, filters=kale).events


def test_plant_burns_the_stake_and_emits_burn(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=100 * KALE)
    result = plant(devnet, farmer, 30 * KALE)
    assert result.status == "SUCCESS"
    assert kale_balance(devnet, farmer) == 70 * KALE
    assert block(devnet, 0).staked_total == 30 * KALE  # type: ignore[union-attr]
    acc = farm_instance(devnet).farm_block
    assert acc is not None and acc.max_stake == acc.min_stake == 30 * KALE
    kale = [{"contractIds": [devnet.kale_sac_id]}]
    events = devnet.soroban_server().get_events(start_ledger=result.result.ledger, filters=kale).events
    assert len(events) == 1
    ev = events[0]
    assert ev.contract_id == devnet.kale_sac_id and ev.transaction_hash == result.send.hash
    topics = [scval.to_native(sx.SCVal.from_xdr(t)) for t in ev.topic]
    assert topics[0] == "burn" and topics[1].address == farmer.public_key
    assert topics[2] == f"KALE:{devnet.kale_issuer.public_key}"
    assert scval.to_native(sx.SCVal.from_xdr(ev.value)) == 30 * KALE


def test_plant_simulation_reports_footprint_fee_and_auth(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    server = devnet.soroban_server()
    from stellar_sdk import TransactionBuilder

    tx = (
        TransactionBuilder(server.load_account(farmer.public_key), devnet.passphrase, 100)
        .append_invoke_contract_function_op(
            devnet.farm_contract_id, "plant", [addr(farmer), scval.to_int128(KALE)]
        )
        .set_timeout(60)
        .build()
    )
    sim = server.simulate_transaction(tx)
    assert sim.error is None and sim.min_resource_fee and sim.min_resource_fee > 0
    data = sx.SorobanTransactionData.from_xdr(sim.transaction_data)
    rw = {k.to_xdr() for k in data.resources.footprint.read_write}
    ro = {k.to_xdr() for k in data.resources.footprint.read_only}
    assert instance_ledger_key(devnet.farm_contract_id).to_xdr() in rw
    assert block_ledger_key(devnet.farm_contract_id, 0).to_xdr() in rw
    assert pail_ledger_key(devnet.farm_contract_id, farmer.public_key, 0).to_xdr() in rw
    assert instance_ledger_key(devnet.kale_sac_id).to_xdr() in ro
    assert len(rw) == 4 and len(ro) == 2  # + the farmer's trustline (rw) and the farm's code (ro)
    assert data.resource_fee.int64 == sim.min_resource_fee
    # the farmer is the source: one source-account credential covering plant -> burn
    assert sim.results is not None and len(sim.results[0].auth) == 1
    entry = sx.SorobanAuthorizationEntry.from_xdr(sim.results[0].auth[0])
    assert entry.credentials.type == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_SOURCE_ACCOUNT
    assert entry.root_invocation.function.contract_fn.function_name.sc_symbol == b"plant"
    (sub,) = entry.root_invocation.sub_invocations
    assert sub.function.contract_fn.function_name.sc_symbol == b"burn"
    assert sim.state_changes and {c.type for c in sim.state_changes} >= {"created", "updated"}
    # nothing was applied by simulating
    assert pail(devnet, farmer.public_key, 0) is None


# -------------------------------------------------------------------- work


def test_work_records_zeros_and_returns_the_gap(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    planted = plant(devnet, farmer, KALE)
    devnet.close_ledgers(4)
    worker = devnet.new_account()  # work needs no auth: anyone can submit it
    result, _nonce, h = work(devnet, farmer, 2, source=worker)
    assert result.status == "SUCCESS"
    gap = return_int(result)
    assert gap == result.result.ledger - planted.result.ledger == 5
    p = pail(devnet, farmer.public_key, 0)
    assert p is not None and p.gap == 5 and p.zeros == 2 and p.sequence == planted.result.ledger
    acc = farm_instance(devnet).farm_block
    assert acc is not None and acc.entropy == h and acc.max_zeros == 2 and acc.min_gap == 5
    b = block(devnet, 0)
    assert b is not None and b.staked_total == 0  # the stake was reclaimed by working
    assert b.normalized_total == 3  # block 0 has empty ranges: each term is 1


def test_rework_with_more_zeros_and_its_accounting_quirk(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    plant(devnet, farmer, KALE)
    devnet.close_ledgers(1)
    first, nonce, _ = work(devnet, farmer, 1)
    assert first.status == "SUCCESS"
    b1 = block(devnet, 0)
    assert b1 is not None
    devnet.close_ledgers(3)
    # same zeros again: ZeroCountTooLow (#7)
    same_nonce, same_hash = mine_exact(0, b1.entropy, farmer.public_key, 1, nonce + 1)
    args = [addr(farmer), scval.to_bytes(same_hash), scval.to_uint64(same_nonce)]
    assert contract_error(simulate_error(devnet, farmer, "work", args)) == 7
    second, _, _ = work(devnet, farmer, 2)
    assert second.status == "SUCCESS"
    p = pail(devnet, farmer.public_key, 0)
    assert p is not None and p.zeros == 2 and p.gap == return_int(second)
    b2 = block(devnet, 0)
    assert b2 is not None
    # the old contribution is removed at the NEW gap (the contract's drift)
    expected = b1.normalized_total + contribution(b1, p.gap, p.stake, 2) - contribution(b1, p.gap, p.stake, 1)
    assert b2.normalized_total == expected
    assert b2.staked_total == b1.staked_total  # the stake is reclaimed only once


def test_gap_count_too_low_when_work_lands_with_the_plant(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    worker = devnet.new_account()
    before = devnet.snapshot()
    planted = plant(devnet, farmer, KALE)
    # prepare a valid work for the next ledger, then replay history so both land together
    server = devnet.soroban_server()
    b = block(devnet, 0)
    assert b is not None
    nonce, h = mine_exact(0, b.entropy, farmer.public_key, 1)
    from stellar_sdk import TransactionBuilder

    tx = (
        TransactionBuilder(server.load_account(worker.public_key), devnet.passphrase, 100)
        .append_invoke_contract_function_op(
            devnet.farm_contract_id, "work", [addr(farmer), scval.to_bytes(h), scval.to_uint64(nonce)]
        )
        .set_timeout(300)
        .build()
    )
    prepared = server.prepare_transaction(tx)
    prepared.sign(worker)
    devnet.revert(before)
    assert server.send_transaction(planted.envelope).status.value == "PENDING"
    assert server.send_transaction(prepared).status.value == "PENDING"
    devnet.close_ledgers(1)
    assert server.get_transaction(planted.send.hash).status == GetTransactionStatus.SUCCESS
    got = server.get_transaction(prepared.hash_hex())
    assert got.status == GetTransactionStatus.FAILED
    from kalepool.devnet.testing import InvokeResult

    who, text = error_contract(InvokeResult(prepared, planted.send, got))
    assert (who, text) == (devnet.farm_contract_id, "Error(Contract, #15)")


# ----------------------------------------------------------------- rollover


def test_rollover_happens_only_in_a_late_plant(devnet: DevnetHandle) -> None:
    a = devnet.new_account(kale=10 * KALE)
    plant(devnet, a, 2 * KALE)
    devnet.close_ledgers(1)
    _, _, h = work(devnet, a, 2)
    devnet.advance_time(300)
    devnet.close_ledgers(5)
    assert farm_instance(devnet).farm_index == 0  # time alone opens no block
    b = devnet.new_account()
    result = plant(devnet, b, 0)
    inst = farm_instance(devnet)
    assert inst.farm_index == 1
    new = block(devnet, 1)
    assert new is not None
    assert new.entropy == h  # the last work's hash
    assert new.timestamp == result.result.create_at
    assert (new.min_zeros, new.max_zeros, new.min_stake, new.max_stake) == (2, 2, 2 * KALE, 2 * KALE)
    assert inst.farm_block is not None and inst.farm_block.timestamp == result.result.create_at
    assert pail(devnet, b.public_key, 1) is not None


def test_plant_simulated_before_rollover_fails_after_it(devnet: DevnetHandle) -> None:
    """The race that costs farmers their stake: a plant prepared against block i is
    applied after another plant rolled the farm over; its footprint does not cover
    Block(i+1)/Pail(f, i+1), so it fails like on the real network (fee charged,
    nothing burned)."""
    late = devnet.new_account(kale=10 * KALE)
    early = devnet.new_account()
    plant(devnet, devnet.new_account(), 0)
    server = devnet.soroban_server()
    started = farm_instance(devnet).farm_block.timestamp  # type: ignore[union-attr]
    # the next ledger closes one second before the block's 300 s are over
    devnet.advance_time(started + 299 - server.get_latest_ledger().close_time - 5)
    devnet.close_ledgers(1)
    from stellar_sdk import TransactionBuilder

    tx = (
        TransactionBuilder(server.load_account(late.public_key), devnet.passphrase, 100)
        .append_invoke_contract_function_op(
            devnet.farm_contract_id, "plant", [addr(late), scval.to_int128(KALE)]
        )
        .set_timeout(300)
        .build()
    )
    prepared = server.prepare_transaction(tx)  # simulated while block 0 is still open
    prepared.sign(late)
    devnet.close_ledgers(1)  # the interval has now passed
    assert plant(devnet, early, 0).status == "SUCCESS"  # the rollover plant
    assert farm_instance(devnet).farm_index == 1
    sent = server.send_transaction(prepared)
    devnet.close_ledgers(1)
    got = server.get_transaction(sent.hash)
    assert got.status == GetTransactionStatus.FAILED
    res = sx.TransactionResult.from_xdr(got.result_xdr)
    ihf = res.result.results[0].tr.invoke_host_function_result
    assert ihf.code == sx.InvokeHostFunctionResultCode.INVOKE_HOST_FUNCTION_TRAPPED
    assert res.fee_charged.int64 > 100  # the fee is gone
    from kalepool.devnet.testing import InvokeResult

    assert error_contract(InvokeResult(prepared, sent, got))[1] == "Error(SCE_STORAGE, SCEC_EXCEEDED_LIMIT)"
    assert kale_balance(devnet, late) == 10 * KALE  # atomic: nothing burned
    assert pail(devnet, late.public_key, 1) is None


def test_work_after_a_rollover_forfeits_the_stake(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    plant(devnet, farmer, 3 * KALE)
    devnet.close_ledgers(2)
    index = roll_over(devnet)
    assert index == 1
    # work now targets block 1, where the farmer has no pail
    b1 = block(devnet, 1)
    assert b1 is not None
    nonce, h = mine_exact(1, b1.entropy, farmer.public_key, 1)
    assert (
        contract_error(
            simulate_error(devnet, farmer, "work", [addr(farmer), scval.to_bytes(h), scval.to_uint64(nonce)])
        )
        == 9
    )
    roll_over(devnet)
    assert contract_error(simulate_error(devnet, farmer, "harvest", [addr(farmer), scval.to_uint32(0)])) == 10


# ------------------------------------------------------------------ harvest


def test_harvest_pays_the_exact_reward(devnet: DevnetHandle) -> None:
    """Example D of the spec: genesis block, equal split, plus the returned stake."""
    g1 = devnet.new_account(kale=10 * KALE)
    g2 = devnet.new_account()
    plant(devnet, g1, KALE)
    plant(devnet, g2, 0)
    devnet.close_ledgers(2)
    assert work(devnet, g1, 3)[0].status == "SUCCESS"
    assert work(devnet, g2, 4)[0].status == "SUCCESS"
    roll_over(devnet)
    b0 = block(devnet, 0)
    p1 = pail(devnet, g1.public_key, 0)
    assert b0 is not None and p1 is not None
    expected = reward(b0, p1, 0)
    assert expected == 12_525_000_000  # half of 25,050,000,000
    before = kale_balance(devnet, g1)
    harvester = devnet.new_account()  # anyone may pay for a harvest
    result = harvest(devnet, g1, 0, source=harvester)
    assert result.status == "SUCCESS"
    assert return_int(result) == expected
    assert kale_balance(devnet, g1) == before + expected + KALE
    assert pail(devnet, g1.public_key, 0) is None
    assert block(devnet, 0) == b0  # harvest leaves the block alone
    events = (
        devnet.soroban_server()
        .get_events(
            start_ledger=result.result.ledger,
            filters=[
                {
                    "type": "contract",
                    "contractIds": [devnet.kale_sac_id],
                    "topics": [[scval.to_symbol("mint").to_xdr(), "**"]],
                }
            ],
        )
        .events
    )
    assert len(events) == 1
    assert scval.to_native(sx.SCVal.from_xdr(events[0].value)) == expected + KALE
    # the second farmer gets the same share; no trustline, so the mint fails (#13)
    err = simulate_error(devnet, g2, "harvest", [addr(g2), scval.to_uint32(0)])
    assert contract_error(err) == 13 and devnet.kale_sac_id in err  # type: ignore[operator]
    devnet.fund(g2.public_key, kale=0)
    devnet.rpc("devnet_fund", address=g2.public_key, xlm=0, kale=1)
    r2 = harvest(devnet, g2, 0)
    assert return_int(r2) == 12_525_000_000
    assert contract_error(simulate_error(devnet, g2, "harvest", [addr(g2), scval.to_uint32(0)])) == 9  # twice


def test_reward_with_ranges_and_forfeited_stake(devnet: DevnetHandle) -> None:
    """Block 1 normalises against block 0's ranges; a planted-but-idle stake is shared."""
    a, b, idle = (devnet.new_account(kale=100 * KALE) for _ in range(3))
    plant(devnet, a, 10 * KALE)
    plant(devnet, b, 0)
    devnet.close_ledgers(1)
    work(devnet, a, 1)
    devnet.close_ledgers(3)
    work(devnet, b, 3)
    roll_over(devnet)  # block 1: ranges gap 1..5, stake 0..10 KALE, zeros 1..3
    plant(devnet, a, 5 * KALE)
    plant(devnet, b, 8 * KALE)
    plant(devnet, idle, 20 * KALE)
    devnet.close_ledgers(2)
    work(devnet, a, 2)
    work(devnet, b, 1)
    roll_over(devnet)
    b1 = block(devnet, 1)
    assert b1 is not None and b1.staked_total == 20 * KALE  # idle's forfeited stake
    for kp, stake in ((a, 5 * KALE), (b, 8 * KALE)):
        p = pail(devnet, kp.public_key, 1)
        assert p is not None
        expected = reward(b1, p, 1)
        before = kale_balance(devnet, kp)
        assert return_int(harvest(devnet, kp, 1)) == expected
        assert kale_balance(devnet, kp) == before + expected + stake  # type: ignore[operator]
    assert contract_error(simulate_error(devnet, idle, "harvest", [addr(idle), scval.to_uint32(1)])) == 10


# ---------------------------------------------------------------- errors


def test_errors_of_plant(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=5 * KALE)
    assert contract_error(simulate_error(devnet, farmer, "plant", [addr(farmer), scval.to_int128(-1)])) == 6
    plant(devnet, farmer, KALE)
    assert contract_error(simulate_error(devnet, farmer, "plant", [addr(farmer), scval.to_int128(0)])) == 8
    # token errors reachable from plant: balance (#10) and missing trustline (#13), raised by the SAC
    rich = devnet.new_account(kale=KALE)
    err = simulate_error(devnet, rich, "plant", [addr(rich), scval.to_int128(KALE + 1)])
    assert contract_error(err) == 10 and f"contract:{devnet.kale_sac_id}" in err  # type: ignore[operator]
    untrusting = devnet.new_account()
    err = simulate_error(devnet, untrusting, "plant", [addr(untrusting), scval.to_int128(1)])
    assert contract_error(err) == 13 and f"contract:{devnet.kale_sac_id}" in err  # type: ignore[operator]


def test_errors_of_work(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=5 * KALE)
    b0 = block(devnet, 0)
    assert b0 is None  # no block before the first plant
    zero = scval.to_bytes(bytes(32))
    assert (
        contract_error(simulate_error(devnet, farmer, "work", [addr(farmer), zero, scval.to_uint64(0)])) == 11
    )
    plant(devnet, devnet.new_account(), 0)
    assert (
        contract_error(simulate_error(devnet, farmer, "work", [addr(farmer), zero, scval.to_uint64(0)])) == 9
    )
    plant(devnet, farmer, KALE)
    devnet.close_ledgers(1)
    assert (
        contract_error(simulate_error(devnet, farmer, "work", [addr(farmer), zero, scval.to_uint64(0)])) == 13
    )
    # a hash bound to another farmer is invalid for this one
    other = devnet.new_account()
    b = block(devnet, 0)
    assert b is not None
    nonce, h = mine_exact(0, b.entropy, other.public_key, 1)
    assert (
        contract_error(
            simulate_error(devnet, farmer, "work", [addr(farmer), scval.to_bytes(h), scval.to_uint64(nonce)])
        )
        == 13
    )
    # the wrong hash length is a host conversion error, not a contract error
    err = simulate_error(
        devnet, farmer, "work", [addr(farmer), scval.to_bytes(b"x" * 31), scval.to_uint64(0)]
    )
    assert err is not None and "Error(Value, UnexpectedSize)" in err


def test_errors_of_harvest(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=5 * KALE)
    harvest_args = [addr(farmer), scval.to_uint32(0)]
    assert contract_error(simulate_error(devnet, farmer, "harvest", harvest_args)) == 11
    plant(devnet, farmer, KALE)
    assert contract_error(simulate_error(devnet, farmer, "harvest", harvest_args)) == 14
    other = devnet.new_account()
    assert contract_error(simulate_error(devnet, other, "harvest", [addr(other), scval.to_uint32(0)])) == 9
    assert contract_error(simulate_error(devnet, farmer, "harvest", [addr(farmer), scval.to_uint32(7)])) == 11
    roll_over(devnet)
    assert contract_error(simulate_error(devnet, farmer, "harvest", harvest_args)) == 10


def test_admin_errors_pause_and_unpause(devnet: DevnetHandle) -> None:
    home = devnet.homesteader
    assert contract_error(simulate_error(devnet, home, "unpause", [])) == 5
    assert devnet.invoke(home, "pause", []).status == "SUCCESS"
    assert farm_instance(devnet).paused
    assert contract_error(simulate_error(devnet, home, "pause", [])) == 4
    farmer = devnet.new_account()
    assert contract_error(simulate_error(devnet, farmer, "plant", [addr(farmer), scval.to_int128(0)])) == 4
    # work and harvest are not paused
    assert contract_error(simulate_error(devnet, farmer, "harvest", [addr(farmer), scval.to_uint32(0)])) == 11
    # only the homesteader may unpause: simulation records the homesteader's auth entry,
    # and without the homesteader's signature the transaction fails when applied
    stolen = devnet.invoke(farmer, "unpause", [])
    assert stolen.status == "FAILED"
    assert error_contract(stolen)[1] == "Error(SCE_AUTH, SCEC_INVALID_ACTION)"
    assert farm_instance(devnet).paused
    assert devnet.invoke(home, "unpause", []).status == "SUCCESS"
    assert plant(devnet, farmer, 0).status == "SUCCESS"


def test_remove_block_makes_the_next_plant_bump(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account()
    plant(devnet, farmer, 0)
    roll_over(devnet)
    assert devnet.invoke(devnet.homesteader, "remove_block", [scval.to_uint32(1)]).status == "SUCCESS"
    assert block(devnet, 1) is None
    late = devnet.new_account()
    plant(devnet, late, 0)
    assert farm_instance(devnet).farm_index == 2  # branch c: evicted block, index bumped


def test_homestead_exists_missing_and_farm_block_missing(devnet: DevnetHandle) -> None:
    # #1: the constructor can only run once
    assert devnet.rpc("devnet_constructFarm")["error"] == "HostError: Error(Contract, #1)"
    farmer = devnet.new_account()
    key = instance_ledger_key(devnet.farm_contract_id)
    server = devnet.soroban_server()
    entry = sx.LedgerEntryData.from_xdr(server.get_ledger_entries([key]).entries[0].xdr)
    inst = farm_instance(devnet)
    instance = entry.contract_data.val.instance

    def set_storage(new) -> None:
        entry.contract_data.val = sx.SCVal(
            sx.SCValType.SCV_CONTRACT_INSTANCE,
            instance=sx.SCContractInstance(instance.executable, sx.SCMap(new.to_scval_storage())),
        )
        devnet.rpc("devnet_setLedgerEntry", key=key.to_xdr(), entry=entry.to_xdr())

    set_storage(dataclasses.replace(inst, asset=None))
    assert contract_error(simulate_error(devnet, farmer, "plant", [addr(farmer), scval.to_int128(0)])) == 2
    assert contract_error(simulate_error(devnet, farmer, "harvest", [addr(farmer), scval.to_uint32(0)])) == 2
    set_storage(dataclasses.replace(inst, farm_block=None))
    assert contract_error(simulate_error(devnet, farmer, "plant", [addr(farmer), scval.to_int128(0)])) == 3
    zero = scval.to_bytes(bytes(32))
    assert (
        contract_error(simulate_error(devnet, farmer, "work", [addr(farmer), zero, scval.to_uint64(0)])) == 3
    )


def test_block_invalid(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account()
    plant(devnet, farmer, 0)
    devnet.close_ledgers(1)
    b0 = block(devnet, 0)
    assert b0 is not None
    broken = dataclasses.replace(b0, min_gap=10, max_gap=2)
    key = block_ledger_key(devnet.farm_contract_id, 0)
    data = sx.LedgerEntryData(
        sx.LedgerEntryType.CONTRACT_DATA,
        contract_data=sx.ContractDataEntry(
            sx.ExtensionPoint(0),
            key.contract_data.contract,
            key.contract_data.key,
            sx.ContractDataDurability.TEMPORARY,
            broken.to_scval(),
        ),
    )
    devnet.rpc("devnet_setLedgerEntry", key=key.to_xdr(), entry=data.to_xdr())
    assert block(devnet, 0) == broken
    nonce, h = mine_exact(0, b0.entropy, farmer.public_key, 0)
    args = [addr(farmer), scval.to_bytes(h), scval.to_uint64(nonce)]
    assert contract_error(simulate_error(devnet, farmer, "work", args)) == 12


def test_unknown_function_and_wrong_arguments(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account()
    err = simulate_error(devnet, farmer, "steal", [])
    assert err is not None and "Error(WasmVm, MissingValue)" in err
    err = simulate_error(devnet, farmer, "plant", [addr(farmer)])
    assert err is not None and "Error(WasmVm, InvalidAction)" in err
    err = simulate_error(devnet, farmer, "plant", [addr(farmer), scval.to_uint32(1)])
    assert err is not None and "Error(Value, UnexpectedType)" in err
    err = simulate_error(
        devnet,
        farmer,
        "plant",
        [addr(farmer), scval.to_int128(0)],
        contract=StrKey.encode_contract(bytes(32)),
    )
    assert err is not None and "Error(Storage, MissingValue)" in err


# ------------------------------------------------------------------- token


def test_token_functions(devnet: DevnetHandle) -> None:
    a, b = devnet.new_account(kale=10 * KALE), devnet.new_account(kale=1)
    server = devnet.soroban_server()
    sac = devnet.kale_sac_id
    result = devnet.invoke(a, "transfer", [addr(a), addr(b), scval.to_int128(4 * KALE)], contract=sac)
    assert result.status == "SUCCESS"
    assert kale_balance(devnet, a) == 6 * KALE and kale_balance(devnet, b) == 4 * KALE + 1
    events = server.get_events(
        start_ledger=result.result.ledger, filters=[{"type": "contract", "contractIds": [sac]}]
    ).events
    assert [scval.to_native(sx.SCVal.from_xdr(e.topic[0])) for e in events] == ["transfer"]
    # balance is a read-only call: its simulation returns the value
    from stellar_sdk import TransactionBuilder

    tx = (
        TransactionBuilder(server.load_account(a.public_key), devnet.passphrase, 100)
        .append_invoke_contract_function_op(sac, "balance", [addr(b)])
        .set_timeout(60)
        .build()
    )
    sim = server.simulate_transaction(tx)
    assert scval.to_native(sx.SCVal.from_xdr(sim.results[0].xdr)) == 4 * KALE + 1
    # errors: more than held (#10), negative (#8), and only the farm may mint
    assert (
        contract_error(
            simulate_error(devnet, a, "transfer", [addr(a), addr(b), scval.to_int128(7 * KALE)], sac)
        )
        == 10
    )
    assert (
        contract_error(simulate_error(devnet, a, "transfer", [addr(a), addr(b), scval.to_int128(-1)], sac))
        == 8
    )
    # minting needs the admin's (the farm's) authorization: simulation records it, and
    # the transaction fails when applied, as on the real network
    minted = devnet.invoke(a, "mint", [addr(a), scval.to_int128(1)], contract=sac)
    assert minted.status == "FAILED"
    assert error_contract(minted) == (sac, "Error(SCE_AUTH, SCEC_INVALID_ACTION)")
    assert kale_balance(devnet, a) == 6 * KALE
    assert contract_error(simulate_error(devnet, a, "approve", [], sac)) == 2


def test_temporary_entries_expire() -> None:
    """An unharvested pail (and its block) expire after --temp-ttl ledgers."""
    with running_devnet(temp_ttl=20, seed=3) as devnet:
        farmer = devnet.new_account(kale=5 * KALE)
        planted = plant(devnet, farmer, KALE)
        devnet.close_ledgers(1)
        work(devnet, farmer, 1)
        roll_over(devnet)
        key = pail_ledger_key(devnet.farm_contract_id, farmer.public_key, 0)
        found = devnet.soroban_server().get_ledger_entries([key])
        live_until = found.entries[0].live_until_ledger
        assert live_until == planted.result.ledger + 20 - 1
        devnet.close_ledgers(live_until - devnet.latest_ledger())
        assert devnet.soroban_server().get_ledger_entries([key]).entries  # still alive on its last ledger
        devnet.close_ledgers(1)
        assert devnet.soroban_server().get_ledger_entries([key]).entries == []
        assert block(devnet, 0) is None
        err = simulate_error(devnet, farmer, "harvest", [addr(farmer), scval.to_uint32(0)])
        assert contract_error(err) == 11  # the block expired with it: stake and reward are lost
