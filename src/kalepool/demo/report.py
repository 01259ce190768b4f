"""The demo's report: per block, per farmer, and the reconciliation of journal and chain.

Everything is read back from where it is recorded: the backend's event tables and
journal (PostgreSQL) and the chain (the devnet, over RPC), never from the demo's own
bookkeeping. The journal side of the reconciliation is the backend's own rule: the sum
of the *custodial* journal kinds of a farmer (``kalepool.backend.accounting``) must equal
the KALE its custodial account holds on chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kalepool.kale.amounts import amount_text

__all__ = ["BlockRow", "DemoReport", "Difference", "FarmerRow", "collect"]


@dataclass
class BlockRow:
    index: int
    planted: int = 0
    plant_failed: int = 0
    worked: int = 0
    harvested: int = 0
    zeros_min: int | None = None
    zeros_max: int | None = None
    gap_min: int | None = None
    gap_max: int | None = None
    stake_total: int = 0
    reward_total: int = 0
    compensation: int = 0

    @property
    def complete(self) -> bool:
        return self.planted > 0 and self.worked == self.planted and self.harvested == self.worked


@dataclass
class FarmerRow:
    farmer_id: str
    public_key: str
    pooler: int
    stake_percentage: float
    deposit: int
    stake_total: int = 0
    reward_total: int = 0
    fees: int = 0
    balance_journal: int = 0
    balance_chain: int = 0
    xlm_chain: int = 0

    @property
    def net(self) -> int:
        """What the farmer kept of its rewards: the rewards less the pooler's and the
        platform's fees."""
        return self.reward_total - self.fees


@dataclass
class Difference:
    public_key: str
    balance_journal: int
    balance_chain: int

    @property
    def difference(self) -> int:
        return self.balance_chain - self.balance_journal


@dataclass
class DemoReport:
    """What ``kalepool demo`` prints (``--json``: :meth:`to_json`)."""

    blocks: list[BlockRow] = field(default_factory=list)
    farmers: list[FarmerRow] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    blocks_wanted: int = 0
    problems: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def reconciled(self) -> bool:
        return not self.differences and bool(self.farmers)

    @property
    def completed(self) -> bool:
        return len(self.blocks) >= self.blocks_wanted and all(b.complete for b in self.blocks)

    @property
    def ok(self) -> bool:
        return self.completed and self.reconciled and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "blocks": [{**asdict(b), "complete": b.complete} for b in self.blocks],
            "farmers": [{**asdict(f), "net": f.net} for f in self.farmers],
            "reconciled": self.reconciled,
            "differences": [{**asdict(d), "difference": d.difference} for d in self.differences],
            "problems": self.problems,
            "wall_seconds": round(self.wall_seconds, 1),
            "settings": self.settings,
        }


def _widen(low: int | None, high: int | None, value: int | None) -> tuple[int | None, int | None]:
    if value is None:
        return low, high
    return (value if low is None else min(low, value)), (value if high is None else max(high, value))


def collect(
    database_url: str,
    farmers: Sequence[FarmerRow],
    chain_kale: dict[str, int],
    chain_xlm: dict[str, int],
) -> tuple[list[BlockRow], list[FarmerRow], list[Difference]]:
    """Read the per-block and per-farmer figures from the backend's database and put
    them beside the on-chain balances (``chain_kale`` / ``chain_xlm`` by account)."""
    from sqlalchemy import create_engine, func, select

    from kalepool.backend.accounting import CUSTODIAL_KINDS
    from kalepool.backend.db.embedded import sqlalchemy_url
    from kalepool.backend.db.models import BalanceChange, Harvest, Planting, PoolerCompensation, Work

    ids = [f.farmer_id for f in farmers]
    engine = create_engine(sqlalchemy_url(database_url))
    blocks: dict[int, BlockRow] = {}

    def row(index: int) -> BlockRow:
        return blocks.setdefault(index, BlockRow(index=index))

    by_farmer = {f.farmer_id: f for f in farmers}
    try:
        with engine.connect() as conn:
            plantings = conn.execute(
                select(
                    Planting.block_index, Planting.farmer_id, Planting.status, Planting.stake_amount
                ).where(Planting.farmer_id.in_(ids))
            ).all()
            for index, farmer_id, status, stake in plantings:
                if status == "succeeded":
                    row(index).planted += 1
                    row(index).stake_total += stake
                    by_farmer[str(farmer_id)].stake_total += stake
                else:
                    row(index).plant_failed += 1
            planted_blocks = set(blocks)
            works = conn.execute(
                select(Work.block_index, Work.zeros, Work.gap).where(
                    Work.farmer_id.in_(ids), Work.status == "accepted"
                )
            ).all()
            for index, zeros, gap in works:
                b = row(index)
                b.worked += 1
                b.zeros_min, b.zeros_max = _widen(b.zeros_min, b.zeros_max, zeros)
                b.gap_min, b.gap_max = _widen(b.gap_min, b.gap_max, gap)
            harvests = conn.execute(
                select(Harvest.block_index, Harvest.farmer_id, Harvest.reward).where(
                    Harvest.farmer_id.in_(ids), Harvest.status == "succeeded"
                )
            ).all()
            for index, farmer_id, reward in harvests:
                row(index).harvested += 1
                row(index).reward_total += reward or 0
                by_farmer[str(farmer_id)].reward_total += reward or 0
            for index, amount in conn.execute(
                select(PoolerCompensation.block_index, func.sum(PoolerCompensation.amount))
                .where(PoolerCompensation.farmer_id.in_(ids))
                .group_by(PoolerCompensation.block_index)
            ).all():
                row(index).compensation += int(amount or 0)
            custodial = [k.value for k in CUSTODIAL_KINDS]
            for journal_farmer, kind, amount in conn.execute(
                select(BalanceChange.farmer_id, BalanceChange.kind, func.sum(BalanceChange.amount))
                .where(BalanceChange.farmer_id.in_(ids), BalanceChange.asset == "KALE")
                .group_by(BalanceChange.farmer_id, BalanceChange.kind)
            ).all():
                f = by_farmer[str(journal_farmer)]
                if kind in custodial:
                    f.balance_journal += int(amount)
                elif kind in ("pooler_fee", "platform_fee"):
                    f.fees += -int(amount)
    finally:
        engine.dispose()
    differences = []
    for f in farmers:
        f.balance_chain = chain_kale.get(f.public_key, 0)
        f.xlm_chain = chain_xlm.get(f.public_key, 0)
        if f.balance_chain != f.balance_journal:
            differences.append(Difference(f.public_key, f.balance_journal, f.balance_chain))
    ordered = [blocks[i] for i in sorted(blocks) if i in planted_blocks or blocks[i].worked]
    return ordered, list(farmers), differences


Justify = Literal["left", "right"]
#: the report's tables: (header, justification); every header names its unit
BLOCK_COLUMNS: tuple[tuple[str, Justify], ...] = (
    ("block", "left"),
    ("planted", "right"),
    ("worked", "right"),
    ("harvested", "right"),
    ("zeros (nibbles)", "right"),
    ("gap (ledgers)", "right"),
    ("staked KALE", "right"),
    ("reward KALE", "right"),
    ("status", "left"),
)
FARMER_COLUMNS: tuple[tuple[str, Justify], ...] = (
    ("farmer", "left"),
    ("pooler", "right"),
    ("stake %", "right"),
    ("deposit KALE", "right"),
    ("staked KALE", "right"),
    ("rewards KALE", "right"),
    ("fees KALE", "right"),
    ("net KALE", "right"),
    ("journal KALE", "right"),
    ("chain KALE", "right"),
)


def kale(stroops: int) -> str:
    return amount_text(stroops, min_places=4, max_places=4)


def _span(low: int | None, high: int | None) -> str:
    return "-" if low is None else (str(low) if low == high else f"{low}–{high}")


def print_report(console: Any, report: DemoReport) -> None:
    """The report as rich tables (blocks, farmers) and the reconciliation's verdict."""
    from rich.table import Table

    blocks = Table(title="Blocks", title_justify="left")
    for name, justify in BLOCK_COLUMNS:
        blocks.add_column(name, justify=justify)
    for b in report.blocks:
        blocks.add_row(
            str(b.index),
            str(b.planted) + (f" (+{b.plant_failed} failed)" if b.plant_failed else ""),
            str(b.worked),
            str(b.harvested),
            _span(b.zeros_min, b.zeros_max),
            _span(b.gap_min, b.gap_max),
            kale(b.stake_total),
            kale(b.reward_total),
            "[green]complete[/]" if b.complete else "[red]incomplete[/]",
        )
    console.print(blocks)
    farmers = Table(title="Farmers", title_justify="left")
    for name, justify in FARMER_COLUMNS:
        farmers.add_column(name, justify=justify)
    for f in report.farmers:
        farmers.add_row(
            f"{f.public_key[:8]}…{f.public_key[-4:]}",
            str(f.pooler),
            f"{f.stake_percentage:g}",
            kale(f.deposit),
            kale(f.stake_total),
            kale(f.reward_total),
            kale(f.fees),
            kale(f.net),
            kale(f.balance_journal),
            kale(f.balance_chain),
        )
    console.print(farmers)
    if report.reconciled:
        console.print(
            f"reconciliation: [bold green]OK[/] (journal = chain, {len(report.farmers)} custodial accounts)"
        )
    else:
        console.print("reconciliation: [bold red]DIFFERENCES[/]")
        for d in report.differences:
            console.print(
                f"  {d.public_key}: journal {kale(d.balance_journal)} KALE, "
                f"chain {kale(d.balance_chain)} KALE (chain - journal = {kale(d.difference)} KALE)"
            )
    for problem in report.problems:
        console.print(f"[red]problem:[/] {problem}")
    verdict = "[bold green]demo OK[/]" if report.ok else "[bold red]demo FAILED[/]"
    console.print(f"{verdict} in {report.wall_seconds:.0f} s")
