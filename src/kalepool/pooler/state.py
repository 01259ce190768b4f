"""The pooler's local state: what it must remember across a restart, kept as a journal.

The state (:class:`PoolerState`) holds the blocks being worked (index, entropy, start),
the farmers the backend planted in each (:class:`kalepool.wire.pooler.PlantedFarmer`, as
the backend sent them), the best solution per farmer (and the one before it, which an
early work sends), how far each search got, **every work transaction by hash** with its
signed envelope, recorded *before* it is sent, a plant-request not answered yet, the
blocks whose ``work-complete`` report is owed, and harvests still to request.

It changes only through small events (:data:`Event`): :meth:`StateJournal.record`
applies one to the state and appends it as one JSON line (written through at once: a
killed process loses no recorded event), so the cost of a change does not grow with the
number of farmers. :meth:`StateJournal.commit` makes everything recorded so far durable
against a power loss (one ``fsync`` shared by every caller waiting meanwhile): a work's envelope
is committed before it is sent. At start, and after a block is reported, the journal is
compacted: a snapshot of the state replaces the file (written beside it, flushed,
``os.replace``d), so a crash leaves either the old or the new file. A torn last line (a
crash mid-write) is dropped on load.

On restart, a submission still ``signed`` is followed by hash (``FarmGateway.resume``),
never signed again; a farmer is only given a new work with strictly more zeros than
the ones already applied or in flight. So nothing is submitted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from kalepool.errors import ConfigError
from kalepool.wire import pooler as w

__all__ = [
    "SCHEMA_VERSION",
    "BestFound",
    "BlockState",
    "HarvestPending",
    "PoolerState",
    "StateError",
    "StateJournal",
    "Submission",
    "SubmissionStatus",
]

SCHEMA_VERSION = 2
#: Reported blocks remembered (to ignore a late duplicate event about them).
KEEP_COMPLETED = 32

SubmissionStatus = Literal["signed", "applied", "failed", "missed", "expired"]


class StateError(ConfigError):
    """The state file exists but cannot be used (corrupt, from a newer version, or
    another pooler's)."""

    code = "pooler_state_error"


@dataclass
class BestFound:
    """The best nonce found so far for a farmer (hash as hex)."""

    nonce: int
    hash: str
    zeros: int


@dataclass
class Submission:
    """One work transaction, recorded once signed and before it is sent.

    ``status``: ``signed`` (sent or about to be; its fate unknown), ``applied`` (landed:
    ``gap``, ``ledger``, ``fee`` from the result), ``failed`` (applied and failed, or
    refused: ``error``), ``missed`` (the block closed first), ``expired`` (never applied).
    """

    tx_hash: str
    farmer_id: str
    farmer: str
    nonce: int
    hash: str
    zeros: int
    source: str
    envelope_xdr: str
    status: SubmissionStatus = "signed"
    early: bool = False
    gap: int | None = None
    ledger: int | None = None
    fee: int | None = None
    error: str | None = None


@dataclass
class BlockState:
    """One block the pooler planted farmers in and works (or worked) on."""

    block_index: int
    entropy: str
    block_start: int | None = None
    planted: dict[str, w.PlantedFarmer] = field(default_factory=dict)
    best: dict[str, BestFound] = field(default_factory=dict)
    runner_up: dict[str, BestFound] = field(default_factory=dict)
    next_nonce: dict[str, int] = field(default_factory=dict)
    submissions: dict[str, Submission] = field(default_factory=dict)
    reported: bool = False
    report: dict[str, Any] | None = None

    @property
    def entropy_bytes(self) -> bytes:
        return bytes.fromhex(self.entropy)

    def applied(self, farmer_id: str) -> Submission | None:
        """The farmer's applied work with the most zeros (what the chain's pail holds)."""
        found = [s for s in self.submissions.values() if s.farmer_id == farmer_id and s.status == "applied"]
        return max(found, key=lambda s: s.zeros) if found else None

    def committed_zeros(self, farmer_id: str) -> int:
        """Most zeros applied or in flight for the farmer (-1 if none): a new work
        must beat it (the contract wants strictly more zeros for a re-work)."""
        zs = [
            s.zeros
            for s in self.submissions.values()
            if s.farmer_id == farmer_id and s.status in ("signed", "applied")
        ]
        return max(zs, default=-1)

    def in_doubt(self) -> list[Submission]:
        return [s for s in self.submissions.values() if s.status == "signed"]

    def worked_farmers(self) -> list[str]:
        return [f for f in self.planted if self.applied(f) is not None]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["planted"] = {k: v.model_dump(mode="json") for k, v in self.planted.items()}
        return data

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BlockState:
        return cls(
            block_index=int(raw["block_index"]),
            entropy=raw["entropy"],
            block_start=raw.get("block_start"),
            planted={k: w.PlantedFarmer.model_validate(v) for k, v in raw.get("planted", {}).items()},
            best={k: BestFound(**v) for k, v in raw.get("best", {}).items()},
            runner_up={k: BestFound(**v) for k, v in raw.get("runner_up", {}).items()},
            next_nonce={k: int(v) for k, v in raw.get("next_nonce", {}).items()},
            submissions={k: Submission(**v) for k, v in raw.get("submissions", {}).items()},
            reported=bool(raw.get("reported", False)),
            report=raw.get("report"),
        )


@dataclass
class HarvestPending:
    """A reported block whose worked pails we still ask the backend to harvest."""

    farmer_ids: list[str]
    attempts: int = 0


@dataclass
class PoolerState:
    """Everything the pooler remembers."""

    pooler_id: str | None = None
    plant_requested: int | None = None
    blocks: dict[int, BlockState] = field(default_factory=dict)
    harvests: dict[int, HarvestPending] = field(default_factory=dict)
    completed: list[int] = field(default_factory=list)
    blocks_worked: int = 0

    def unreported(self) -> list[BlockState]:
        return sorted((b for b in self.blocks.values() if not b.reported), key=lambda b: b.block_index)

    def knows(self, block_index: int) -> bool:
        return block_index in self.blocks or block_index in self.completed

    def _complete(self, block_index: int) -> None:
        """Block ``block_index`` is done with: forget its details, remember that it was."""
        self.blocks.pop(block_index, None)
        if block_index not in self.completed:
            self.completed = sorted([*self.completed, block_index])[-KEEP_COMPLETED:]

    # --------------------------------------------------------------- snapshot

    def to_json(self) -> dict[str, Any]:
        return {
            "pooler_id": self.pooler_id,
            "plant_requested": self.plant_requested,
            "blocks": {str(i): b.to_json() for i, b in sorted(self.blocks.items())},
            "harvests": {str(i): asdict(h) for i, h in sorted(self.harvests.items())},
            "completed": self.completed,
            "blocks_worked": self.blocks_worked,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolerState:
        return cls(
            pooler_id=data.get("pooler_id"),
            plant_requested=data.get("plant_requested"),
            blocks={int(k): BlockState.from_json(v) for k, v in data.get("blocks", {}).items()},
            harvests={int(k): HarvestPending(**v) for k, v in data.get("harvests", {}).items()},
            completed=[int(i) for i in data.get("completed", [])],
            blocks_worked=int(data.get("blocks_worked", 0)),
        )

    # ----------------------------------------------------------------- events

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one journal event (see :class:`StateJournal` for the kinds)."""
        kind = event["e"]
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            raise StateError(f"unknown state event {kind!r}")
        handler(event)

    def _block(self, event: dict[str, Any]) -> BlockState:
        block = self.blocks.get(int(event["b"]))
        if block is None:
            raise StateError(f"state event {event['e']!r} for unknown block {event['b']}")
        return block

    def _on_pooler(self, e: dict[str, Any]) -> None:
        self.pooler_id = e["id"]

    def _on_ask(self, e: dict[str, Any]) -> None:
        self.plant_requested = e["b"]

    def _on_block(self, e: dict[str, Any]) -> None:
        index = int(e["b"])
        block = self.blocks.setdefault(index, BlockState(block_index=index, entropy=e["entropy"]))
        if e.get("block_start") is not None:
            block.block_start = int(e["block_start"])

    def _on_planted(self, e: dict[str, Any]) -> None:
        block = self._block(e)
        for raw in e["farmers"]:
            farmer = w.PlantedFarmer.model_validate(raw)
            block.planted.setdefault(str(farmer.farmer_id), farmer)

    def _on_best(self, e: dict[str, Any]) -> None:
        block = self._block(e)
        farmer = e["f"]
        previous = block.best.get(farmer)
        if previous is not None:
            block.runner_up[farmer] = previous  # fewer zeros: what an early work sends
        block.best[farmer] = BestFound(int(e["nonce"]), e["hash"], int(e["zeros"]))

    def _on_nonces(self, e: dict[str, Any]) -> None:
        block = self._block(e)
        for farmer, nonce in e["next"].items():
            block.next_nonce[farmer] = max(int(nonce), block.next_nonce.get(farmer, 0))

    def _on_signed(self, e: dict[str, Any]) -> None:
        block = self._block(e)
        sub = Submission(**e["sub"])
        block.submissions[sub.tx_hash] = sub

    def _on_outcome(self, e: dict[str, Any]) -> None:
        sub = self._block(e).submissions.get(e["tx"])
        if sub is None:
            return
        sub.status = e["status"]
        for name in ("gap", "ledger", "fee", "zeros", "error"):
            if name in e:
                setattr(sub, name, e[name])

    def _on_reported(self, e: dict[str, Any]) -> None:
        index = int(e["b"])
        block = self.blocks.get(index)
        if block is None:
            return
        block.reported = True
        block.report = e.get("report")
        worked = list(e.get("harvest") or [])
        if worked:
            self.harvests[index] = HarvestPending(farmer_ids=worked)
        self.blocks_worked += 1
        self._complete(index)

    def _on_completed(self, e: dict[str, Any]) -> None:
        self._complete(int(e["b"]))

    def _on_harvest(self, e: dict[str, Any]) -> None:
        index = int(e["b"])
        left = e.get("left")
        if left is None:
            self.harvests.pop(index, None)
        else:
            self.harvests[index] = HarvestPending(farmer_ids=list(left), attempts=int(e.get("attempts", 0)))


class StateJournal:
    """The state and its file at ``path``: a snapshot line, then one line per event.

    Event kinds (``"e"``): ``pooler`` (id), ``ask`` (a plant-request sent, ``b``: its
    block or null once answered), ``block`` (a block to work: entropy, start), ``planted``
    (farmers the backend planted in it), ``best`` (a better solution), ``nonces`` (how far
    searches got), ``signed`` (a work transaction, before it is sent), ``outcome`` (its
    fate), ``reported`` (``work-complete`` answered; harvests to ask), ``completed`` (a block
    given up), ``harvest`` (what is left to ask of a block's harvests).
    """

    #: events between two compactions at most (compaction also follows every report)
    COMPACT_EVERY = 50_000

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.state = PoolerState()
        self._fh: IO[str] | None = None
        self._since_compaction = 0
        self._written = 0
        self._synced = 0
        self._sync_task: asyncio.Task[None] | None = None
        self.bytes_written = 0  # event bytes appended since opening (snapshots not counted)

    # ------------------------------------------------------------ opening

    @classmethod
    def read(cls, path: str | Path) -> PoolerState:
        """The state a file holds (nothing is written)."""
        journal = cls(path)
        return journal._load() if journal.path.exists() else PoolerState()

    def open(self) -> PoolerState:
        """Load the file (a fresh state when there is none), then compact it."""
        if self.path.exists():
            self.state = self._load()
        self.compact()
        return self.state

    def _load(self) -> PoolerState:
        try:
            text = self.path.read_text()
        except OSError as exc:
            raise StateError(f"cannot read the pooler state file {self.path}: {exc}") from exc
        lines = text.splitlines()
        if not lines:
            return PoolerState()
        try:
            head = json.loads(lines[0])
        except ValueError:
            head = None
        if head is None:  # a version-1 file: one indented JSON object
            try:
                head = {"version": 1, "snapshot": json.loads(text)}
            except ValueError as exc:
                raise StateError(f"the pooler state file {self.path} is not valid JSON: {exc}") from exc
            lines = [""]
        if not isinstance(head, dict):
            raise StateError(f"the pooler state file {self.path} does not start with a JSON object")
        snapshot = head.get("snapshot")
        if head.get("version") == 1 and isinstance(snapshot, dict):
            snapshot = _from_v1(snapshot)
        elif head.get("version") != SCHEMA_VERSION or not isinstance(snapshot, dict):
            raise StateError(
                f"state file version {head.get('version')!r}; this pooler reads version {SCHEMA_VERSION}"
            )
        try:
            state = PoolerState.from_json(snapshot)
            for number, line in enumerate(lines[1:], start=2):
                try:
                    event = json.loads(line)
                except ValueError:
                    if number == len(lines):
                        break  # a torn last line: the write a crash interrupted
                    raise
                state.apply(event)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"the pooler state file {self.path} is malformed: {exc}") from exc
        return state

    def compact(self) -> None:
        """Replace the file by a snapshot of the state (atomically), and append after it."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        head = {"version": SCHEMA_VERSION, "snapshot": self.state.to_json()}
        text = json.dumps(head, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # line-buffered: each event reaches the kernel as it is recorded, so a killed process
        # (SIGKILL, OOM) loses none; commit()'s fsync is what survives a power loss
        self._fh = open(self.path, "a", buffering=1)  # noqa: SIM115 - held open between events
        self._since_compaction = 0
        self._synced = self._written

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError, ValueError):
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
            self._fh = None

    # ------------------------------------------------------------ changes

    def record(self, kind: str, **fields: Any) -> None:
        """Apply the event ``kind`` to the state and append it (not yet durable)."""
        event = {"e": kind, **fields}
        self.state.apply(event)
        if self._fh is None:
            raise StateError("the pooler state journal is not open")
        line = json.dumps(event, separators=(",", ":")) + "\n"
        self._fh.write(line)
        self.bytes_written += len(line)
        self._written += 1
        self._since_compaction += 1

    async def commit(self) -> None:
        """Return once everything recorded before the call is on disk (one fsync serves
        every caller waiting at that time)."""
        target = self._written
        while self._synced < target:
            task = self._sync_task
            if task is None or task.done():
                task = self._sync_task = asyncio.create_task(self._sync())
            await asyncio.shield(task)

    async def _sync(self) -> None:
        upto = self._written
        fh = self._fh
        if fh is None:
            return
        fh.flush()
        await asyncio.to_thread(os.fsync, fh.fileno())
        self._synced = max(self._synced, upto)

    def maybe_compact(self, *, force: bool = False) -> None:
        """Compact now if asked, or if the journal grew past :attr:`COMPACT_EVERY` events."""
        if force or self._since_compaction >= self.COMPACT_EVERY:
            self.compact()


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 state file (``index`` for ``block_index``, planted farmers as
    ``{farmer_id, wallet, stake, plant_tx_hash}``) in today's shape."""
    blocks = {}
    for key, raw in data.get("blocks", {}).items():
        raw = dict(raw)
        index = int(raw.pop("index"))
        raw["block_index"] = index
        raw["planted"] = {
            fid: {
                "farmer_id": p["farmer_id"],
                "custodial_wallet": p["wallet"],
                "stake_amount": p["stake"],
                "plant_tx_hash": p["plant_tx_hash"],
                "block_index": index,
                "entropy": raw["entropy"],
                "already_planted": False,
            }
            for fid, p in raw.get("planted", {}).items()
        }
        blocks[key] = raw
    return {**data, "blocks": blocks}
