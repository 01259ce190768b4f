"""The pooler's small local state: what it must remember across a restart.

One JSON file, replaced atomically (written beside itself, flushed, ``os.replace``d), so
a crash leaves either the old or the new version. It holds:

* the block being worked (index, entropy, start), the farmers the backend planted in
  it, the best solution found per farmer (and the one before it, which an early work
  sends), how far each search got, and **every work transaction by hash**, with
  its signed envelope, recorded *before* it is sent;
* a plant-request sent and not answered yet (so a restart asks again, which the backend
  answers idempotently, rather than guessing);
* blocks whose ``work-complete`` report is still owed, and harvests still to request.

On restart, a submission still ``signed`` is followed by hash (``FarmGateway.resume``),
never signed again; a farmer is only given a new work with strictly more zeros than
the ones already applied or in flight. So nothing is submitted twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from kalepool.errors import ConfigError

__all__ = [
    "SCHEMA_VERSION",
    "BestFound",
    "BlockState",
    "HarvestPending",
    "PlantedFarmer",
    "PoolerState",
    "StateError",
    "StateStore",
    "Submission",
    "SubmissionStatus",
]

SCHEMA_VERSION = 1
#: Reported blocks remembered (to ignore a late duplicate event about them).
KEEP_COMPLETED = 32

SubmissionStatus = Literal["signed", "applied", "failed", "missed", "expired"]


class StateError(ConfigError):
    """The state file exists but cannot be used (corrupt, from a newer version, or
    another pooler's)."""

    code = "pooler_state_error"


@dataclass
class PlantedFarmer:
    """A farmer the backend planted for us: its id, custodial account and stake."""

    farmer_id: str
    wallet: str
    stake: int
    plant_tx_hash: str


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

    index: int
    entropy: str
    block_start: int | None = None
    planted: dict[str, PlantedFarmer] = field(default_factory=dict)
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


@dataclass
class HarvestPending:
    """A reported block whose worked pails we still ask the backend to harvest."""

    farmer_ids: list[str]
    attempts: int = 0


@dataclass
class PoolerState:
    """Everything in the state file."""

    pooler_id: str | None = None
    plant_requested: int | None = None
    blocks: dict[int, BlockState] = field(default_factory=dict)
    harvests: dict[int, HarvestPending] = field(default_factory=dict)
    completed: list[int] = field(default_factory=list)
    blocks_worked: int = 0

    # ------------------------------------------------------------------ helpers

    def current(self) -> BlockState | None:
        """The newest block not yet reported (None when there is none)."""
        open_blocks = [b for b in self.blocks.values() if not b.reported]
        return max(open_blocks, key=lambda b: b.index) if open_blocks else None

    def unreported(self) -> list[BlockState]:
        return sorted((b for b in self.blocks.values() if not b.reported), key=lambda b: b.index)

    def complete(self, index: int) -> None:
        """Block ``index`` was reported: forget its details, remember that it was."""
        self.blocks.pop(index, None)
        if index not in self.completed:
            self.completed.append(index)
            self.completed = sorted(self.completed)[-KEEP_COMPLETED:]

    def knows(self, index: int) -> bool:
        return index in self.blocks or index in self.completed

    # --------------------------------------------------------------- encoding

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            "pooler_id": self.pooler_id,
            "plant_requested": self.plant_requested,
            "blocks": {str(i): asdict(b) for i, b in sorted(self.blocks.items())},
            "harvests": {str(i): asdict(h) for i, h in sorted(self.harvests.items())},
            "completed": self.completed,
            "blocks_worked": self.blocks_worked,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolerState:
        version = data.get("version")
        if version != SCHEMA_VERSION:
            raise StateError(f"state file version {version!r}; this pooler reads version {SCHEMA_VERSION}")
        blocks: dict[int, BlockState] = {}
        for key, raw in data.get("blocks", {}).items():
            blocks[int(key)] = BlockState(
                index=int(raw["index"]),
                entropy=raw["entropy"],
                block_start=raw.get("block_start"),
                planted={k: PlantedFarmer(**v) for k, v in raw.get("planted", {}).items()},
                best={k: BestFound(**v) for k, v in raw.get("best", {}).items()},
                runner_up={k: BestFound(**v) for k, v in raw.get("runner_up", {}).items()},
                next_nonce={k: int(v) for k, v in raw.get("next_nonce", {}).items()},
                submissions={k: Submission(**v) for k, v in raw.get("submissions", {}).items()},
                reported=bool(raw.get("reported", False)),
                report=raw.get("report"),
            )
        return cls(
            pooler_id=data.get("pooler_id"),
            plant_requested=data.get("plant_requested"),
            blocks=blocks,
            harvests={int(k): HarvestPending(**v) for k, v in data.get("harvests", {}).items()},
            completed=[int(i) for i in data.get("completed", [])],
            blocks_worked=int(data.get("blocks_worked", 0)),
        )


class StateStore:
    """Loads and atomically saves the state file at ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> PoolerState:
        """The saved state, or a fresh one when there is no file yet."""
        if not self.path.exists():
            return PoolerState()
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise StateError(f"cannot read the pooler state file {self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise StateError(f"the pooler state file {self.path} does not hold a JSON object")
        try:
            return PoolerState.from_json(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"the pooler state file {self.path} is malformed: {exc}") from exc

    def save(self, state: PoolerState) -> None:
        """Write the whole state: a temporary file beside the target, then ``os.replace``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(state.to_json(), indent=1, sort_keys=True)
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
