"""The Soroban fee model of stellar-core (protocol 23), over one table of network settings.

A Soroban transaction declares its resources and a ``resourceFee`` (its
``SorobanTransactionData``) and bids an inclusion fee on top. stellar-core then charges,
as the fee-computation code shared by the host and stellar-core (rs-soroban-env
``fees.rs``) defines:

- **non-refundable** (computed from the *declared* resources when the transaction is
  validated, kept whatever happens): instructions (per 10,000), disk-read entries (only
  classic entries — accounts, trustlines — are read from disk from protocol 23 on; live
  contract state is in memory), written entries, disk-read bytes, written bytes, the
  transaction's size twice (bandwidth, and history with a 300-byte result allowance);
- **refundable** (what the transaction *consumed*): rent for the entries it created or
  whose TTL it extended (:func:`rent_fee`), and its contract events plus return value
  (per KiB). A failed transaction consumes nothing refundable.

The declared ``resourceFee`` must cover the non-refundable part (else
``txSOROBAN_INVALID``); what it leaves over is the most the refundable part may use
(else ``INVOKE_HOST_FUNCTION_INSUFFICIENT_REFUNDABLE_FEE``), and whatever of it the
transaction did not use is refunded after the ledger's transactions are applied.

Every number lives in :class:`FeeSchedule`, the network configuration settings
(``ConfigSettingEntry``) of the public network after the protocol-23 upgrade. Sources:
stellar-docs "Resource Limits & Fees" (fees and per-transaction limits), stellar-core
``NetworkConfig.h`` (``Protcol23UpgradedConfig``: the rent settings) and the protocol's
state-archival settings. Tests may pass their own schedule (``DevnetConfig.fees``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Instructions per fee increment, and bytes per "1 KB" of every per-KB price.
INSTRUCTIONS_INCREMENT = 10_000
KB = 1_024
#: A transaction result's share of history, added to the transaction's own size.
TX_BASE_RESULT_SIZE = 300
#: Size of the TTL entry written for every entry whose TTL grows.
TTL_ENTRY_SIZE = 48
#: The rent fee per KB never goes below this, whatever the state size.
MINIMUM_RENT_WRITE_FEE_PER_1KB = 1_000
#: Contract code pays a third of the rent of data of the same size.
CODE_ENTRY_RENT_DISCOUNT_FACTOR = 3


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """The network's Soroban fee and limit settings (public network, protocol 23)."""

    # ConfigSettingContractComputeV0
    fee_per_instruction_increment: int = 25
    tx_max_instructions: int = 100_000_000
    # ConfigSettingContractLedgerCostV0 (+ ExtV0 for the write fee and footprint size)
    fee_per_disk_read_entry: int = 6_250
    fee_per_write_entry: int = 10_000
    fee_per_disk_read_1kb: int = 1_786
    fee_per_write_1kb: int = 3_500
    tx_max_disk_read_entries: int = 100
    tx_max_disk_read_bytes: int = 200 * KB
    tx_max_write_entries: int = 50
    tx_max_write_bytes: int = 132 * KB
    tx_max_footprint_entries: int = 100
    soroban_state_target_size_bytes: int = 3_000_000_000
    rent_fee_1kb_state_size_low: int = -17_000
    rent_fee_1kb_state_size_high: int = 10_000
    soroban_state_rent_fee_growth_factor: int = 5_000
    # ConfigSettingContractHistoricalDataV0
    fee_per_historical_1kb: int = 16_235
    # ConfigSettingContractEventsV0
    fee_per_contract_event_1kb: int = 10_000
    tx_max_contract_events_size_bytes: int = 16 * KB
    # ConfigSettingContractBandwidthV0
    fee_per_transaction_size_1kb: int = 1_624
    tx_max_size_bytes: int = 132 * KB
    # ConfigSettingContractDataKeySizeBytes
    max_contract_data_key_size_bytes: int = 250
    # StateArchivalSettings
    persistent_rent_rate_denominator: int = 1_215
    temporary_rent_rate_denominator: int = 2_430

    def rent_fee_per_1kb(self, soroban_state_bytes: int) -> int:
        """The rent price of 1 KB, from the size of the live contract state: it grows
        linearly to ``high`` at the target size, then ``growth_factor`` times faster."""
        spread = max(0, self.rent_fee_1kb_state_size_high - self.rent_fee_1kb_state_size_low)
        target = max(1, self.soroban_state_target_size_bytes)
        if soroban_state_bytes < self.soroban_state_target_size_bytes:
            fee = _ceil_div(spread * soroban_state_bytes, target) + self.rent_fee_1kb_state_size_low
        else:
            over = soroban_state_bytes - self.soroban_state_target_size_bytes
            fee = self.rent_fee_1kb_state_size_high + _ceil_div(
                spread * over * self.soroban_state_rent_fee_growth_factor, target
            )
        return max(fee, MINIMUM_RENT_WRITE_FEE_PER_1KB)


PUBNET_P23 = FeeSchedule()


@dataclass(frozen=True, slots=True)
class TxResources:
    """What a Soroban transaction is charged for (declared, or consumed for events)."""

    instructions: int = 0
    disk_read_entries: int = 0
    write_entries: int = 0
    disk_read_bytes: int = 0
    write_bytes: int = 0
    contract_events_size_bytes: int = 0
    transaction_size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class RentChange:
    """One entry with a TTL whose TTL grew or whose size grew (sizes: its XDR bytes,
    0 and 0 for an entry the transaction created)."""

    persistent: bool
    code: bool
    old_size: int
    new_size: int
    old_live_until: int
    new_live_until: int

    @property
    def is_new(self) -> bool:
        return self.old_size == 0 and self.old_live_until == 0


def resource_fee(r: TxResources, s: FeeSchedule = PUBNET_P23) -> tuple[int, int]:
    """``(non_refundable, refundable)`` resource fee of ``r``, in stroops (refundable
    here covers the events; rent is added by :func:`rent_fee`)."""
    non_refundable = (
        _per(r.instructions, s.fee_per_instruction_increment, INSTRUCTIONS_INCREMENT)
        + s.fee_per_disk_read_entry * r.disk_read_entries
        + s.fee_per_write_entry * r.write_entries
        + _per(r.disk_read_bytes, s.fee_per_disk_read_1kb, KB)
        + _per(r.write_bytes, s.fee_per_write_1kb, KB)
        + _per(r.transaction_size_bytes + TX_BASE_RESULT_SIZE, s.fee_per_historical_1kb, KB)
        + _per(r.transaction_size_bytes, s.fee_per_transaction_size_1kb, KB)
    )
    refundable = _per(r.contract_events_size_bytes, s.fee_per_contract_event_1kb, KB)
    return non_refundable, refundable


def rent_fee(changes: list[RentChange], s: FeeSchedule, fee_per_rent_1kb: int, ledger: int) -> int:
    """The rent for ``changes`` applied in ledger ``ledger``: the new TTL range at the new
    size, a top-up of the already paid range when an entry grew, and the write of one
    TTL entry per extended entry."""
    fee = 0
    extended = 0
    for c in changes:
        entry_fee = 0
        start = ledger - 1 if c.is_new else c.old_live_until
        if c.new_live_until >= start:
            entry_fee += _rent(c.persistent, c.new_size, c.new_live_until - start, s, fee_per_rent_1kb)
        if not c.is_new and c.new_size > c.old_size and c.old_live_until >= ledger:
            prepaid = c.old_live_until - ledger + 1
            entry_fee += _rent(c.persistent, c.new_size - c.old_size, prepaid, s, fee_per_rent_1kb)
        if c.code:
            entry_fee //= CODE_ENTRY_RENT_DISCOUNT_FACTOR
        fee += entry_fee
        if c.old_live_until < c.new_live_until:
            extended += 1
    return fee + s.fee_per_write_entry * extended + _per(extended * TTL_ENTRY_SIZE, s.fee_per_write_1kb, KB)


def _rent(persistent: bool, size: int, ledgers: int, s: FeeSchedule, per_1kb: int) -> int:
    denominator = s.persistent_rent_rate_denominator if persistent else s.temporary_rent_rate_denominator
    return _ceil_div(size * per_1kb * ledgers, KB * max(1, denominator))


def _per(value: int, rate: int, increment: int) -> int:
    return _ceil_div(value * rate, increment)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# --------------------------------------------------- simulation's safety margins


def adjust(value: int, factor: float, extra: int) -> int:
    """stellar-rpc's simulation margin: ``max(value × factor, value + extra)``, 0 stays 0."""
    if value == 0:
        return 0
    return max(value + extra, int(value * factor))


#: Simulation pads instructions (×1.04 or +50,000, or the caller's leeway), the estimated
#: transaction size (×1.1 or +500) and the refundable fee (×1.15), as stellar-rpc does.
INSTRUCTIONS_MARGIN = (1.04, 50_000)
TX_SIZE_MARGIN = (1.1, 500)
REFUNDABLE_MARGIN = (1.15, 0)
