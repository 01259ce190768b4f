"""The pooler's state file: atomic saves, round trips, resume rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kalepool.pooler.state import (
    BestFound,
    BlockState,
    HarvestPending,
    PlantedFarmer,
    PoolerState,
    StateError,
    StateStore,
    Submission,
)

G = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"


def sub(tx: str, farmer_id: str, zeros: int, status: str = "signed", gap: int | None = None) -> Submission:
    return Submission(
        tx_hash=tx, farmer_id=farmer_id, farmer=G, nonce=7, hash="00" * 32, zeros=zeros,
        source=G, envelope_xdr="AAAA", status=status, gap=gap,  # type: ignore[arg-type]
    )


def sample() -> PoolerState:
    block = BlockState(index=12, entropy="ab" * 32, block_start=1_000)
    block.planted["f1"] = PlantedFarmer("f1", G, 10_000_000, "cd" * 32)
    block.planted["f2"] = PlantedFarmer("f2", G, 0, "ef" * 32)
    block.best["f1"] = BestFound(5, "00" * 32, 6)
    block.next_nonce["f1"] = 1_000_000
    block.submissions["t1"] = sub("t1", "f1", 4, "applied", gap=10)
    block.submissions["t2"] = sub("t2", "f1", 6, "signed")
    state = PoolerState(pooler_id="p", plant_requested=13, blocks={12: block})
    state.harvests[11] = HarvestPending(["f1"], attempts=1)
    state.completed = [10, 11]
    state.blocks_worked = 2
    return state


def test_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "sub" / "state.json")
    assert store.load() == PoolerState()  # no file yet
    state = sample()
    store.save(state)
    assert store.load() == state
    assert (tmp_path / "sub" / "state.json").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["state.json"]  # no temporary left


def test_resume_rules() -> None:
    block = sample().blocks[12]
    assert block.applied("f1") is not None and block.applied("f1").zeros == 4  # type: ignore[union-attr]
    assert block.committed_zeros("f1") == 6  # the in-flight one counts: never submit <= 6 again
    assert block.committed_zeros("f2") == -1
    assert [s.tx_hash for s in block.in_doubt()] == ["t2"]
    assert block.worked_farmers() == ["f1"]
    block.submissions["t2"].status = "expired"
    assert block.committed_zeros("f1") == 4


def test_complete_forgets_details_and_remembers_the_index() -> None:
    state = sample()
    assert state.current() is state.blocks[12]
    state.complete(12)
    assert state.current() is None and state.knows(12) and 12 not in state.blocks


def test_corrupt_or_foreign_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(StateError):
        StateStore(path).load()
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(StateError, match="version"):
        StateStore(path).load()
    path.write_text(json.dumps({"version": 1, "blocks": {"1": {"entropy": "00"}}}))
    with pytest.raises(StateError, match="malformed"):
        StateStore(path).load()


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateStore(tmp_path / "state.json")
    store.save(sample())
    before = (tmp_path / "state.json").read_text()

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        store.save(PoolerState())
    assert (tmp_path / "state.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
