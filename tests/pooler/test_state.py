"""The pooler's state journal: events, replay, compaction, durability, constant cost."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from pathlib import Path

import pytest

from kalepool.pooler.state import BlockState, PoolerState, StateError, StateJournal, Submission
from kalepool.wire import pooler as w

G = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"
ENTROPY = "ab" * 32


def planted(farmer_id: str, index: int = 12, stake: int = 10_000_000) -> dict[str, object]:
    return w.PlantedFarmer(
        farmer_id=uuid.UUID(farmer_id),
        custodial_wallet=G,
        stake_amount=stake,
        plant_tx_hash="cd" * 32,
        block_index=index,
        entropy=ENTROPY,
        already_planted=False,
    ).model_dump(mode="json")


F1, F2 = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def sub(tx: str, farmer_id: str, zeros: int, *, early: bool = False) -> dict[str, object]:
    return asdict(
        Submission(
            tx_hash=tx, farmer_id=farmer_id, farmer=G, nonce=7, hash="00" * 32, zeros=zeros,
            source=G, envelope_xdr="AAAA", early=early,
        )
    )


def play(journal: StateJournal) -> None:
    """One block's story: planted, searched, two works (one applied, one in flight)."""
    journal.record("pooler", id="p")
    journal.record("ask", b=12)
    journal.record("block", b=12, entropy=ENTROPY, block_start=1_000)
    journal.record("planted", b=12, farmers=[planted(F1), planted(F2, stake=0)])
    journal.record("ask", b=None)
    journal.record("best", b=12, f=F1, nonce=4, hash="00" * 32, zeros=4)
    journal.record("best", b=12, f=F1, nonce=5, hash="00" * 32, zeros=6)
    journal.record("nonces", b=12, next={F1: 1_000_000})
    journal.record("signed", b=12, sub=sub("t1", F1, 4, early=True))
    journal.record("outcome", b=12, tx="t1", status="applied", gap=10, ledger=40, fee=100)
    journal.record("signed", b=12, sub=sub("t2", F1, 6))


def test_events_replay_to_the_same_state(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.jsonl"
    journal = StateJournal(path)
    assert journal.open() == PoolerState()  # no file yet
    play(journal)
    journal.close()
    state = StateJournal.read(path)
    assert state == journal.state
    block = state.blocks[12]
    assert set(block.planted) == {F1, F2} and block.block_start == 1_000
    assert block.best[F1].zeros == 6 and block.runner_up[F1].zeros == 4  # the early work sends the runner-up
    assert block.next_nonce[F1] == 1_000_000
    assert block.submissions["t1"].status == "applied" and block.submissions["t1"].gap == 10
    assert [s.tx_hash for s in block.in_doubt()] == ["t2"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["state.jsonl"]  # no temporary left


def test_resume_rules() -> None:
    journal_state = PoolerState()
    for event in _events():
        journal_state.apply(event)
    block = journal_state.blocks[12]
    assert block.applied(F1) is not None and block.applied(F1).zeros == 4  # type: ignore[union-attr]
    assert block.committed_zeros(F1) == 6  # the in-flight one counts: never submit <= 6 again
    assert block.committed_zeros(F2) == -1
    assert block.worked_farmers() == [F1]


def _events() -> list[dict[str, object]]:
    class Capture(StateJournal):
        def __init__(self) -> None:
            super().__init__("/dev/null")
            self.events: list[dict[str, object]] = []

        def record(self, kind: str, **fields: object) -> None:
            self.events.append({"e": kind, **fields})

    capture = Capture()
    play(capture)
    return capture.events


def test_a_report_forgets_the_details_and_compaction_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    journal = StateJournal(path)
    journal.open()
    play(journal)
    journal.record("reported", b=12, report={"work_recorded": 1}, harvest=[F1])
    journal.maybe_compact(force=True)
    state = StateJournal.read(path)
    assert 12 not in state.blocks and state.knows(12) and state.blocks_worked == 1
    assert state.harvests[12].farmer_ids == [F1]
    assert len(path.read_text().splitlines()) == 1  # the snapshot only
    journal.record("harvest", b=12, left=None)
    journal.close()
    assert StateJournal.read(path).harvests == {}


def test_a_torn_last_line_is_dropped_and_a_corrupt_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    journal = StateJournal(path)
    journal.open()
    play(journal)
    journal.close()
    with path.open("a") as fh:
        fh.write('{"e":"outcome","b":12,"tx":"t2","sta')  # the crash cut it short
    assert StateJournal.read(path).blocks[12].submissions["t2"].status == "signed"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:3], "{broken", *lines[3:]]) + "\n")
    with pytest.raises(StateError, match="malformed"):
        StateJournal.read(path)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.jsonl"
    path.write_text("{not json")
    with pytest.raises(StateError):
        StateJournal.read(path)
    path.write_text(json.dumps({"version": 99, "snapshot": {}}) + "\n")
    with pytest.raises(StateError, match="version"):
        StateJournal.read(path)
    path.write_text(json.dumps({"version": 2, "snapshot": {"blocks": {"1": {"entropy": "00"}}}}) + "\n")
    with pytest.raises(StateError, match="malformed"):
        StateJournal.read(path)


def test_a_version_1_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    old = {
        "version": 1,
        "pooler_id": "p",
        "plant_requested": None,
        "blocks": {
            "12": {
                "index": 12, "entropy": ENTROPY, "block_start": 5,
                "planted": {F1: {"farmer_id": F1, "wallet": G, "stake": 3, "plant_tx_hash": "cd" * 32}},
                "best": {}, "runner_up": {}, "next_nonce": {},
                "submissions": {"t1": sub("t1", F1, 4)},
                "reported": False, "report": None,
            }
        },
        "harvests": {"11": {"farmer_ids": [F1], "attempts": 1}},
        "completed": [10, 11],
        "blocks_worked": 2,
    }
    path.write_text(json.dumps(old, indent=1))
    journal = StateJournal(path)
    state = journal.open()  # read, then rewritten in today's format
    journal.close()
    block = state.blocks[12]
    assert block.block_index == 12 and block.planted[F1].stake_amount == 3
    assert block.planted[F1].custodial_wallet == G and block.in_doubt()[0].tx_hash == "t1"
    assert state.harvests[11].attempts == 1 and state.completed == [10, 11]
    assert StateJournal.read(path) == state


def test_a_failed_compaction_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.jsonl"
    journal = StateJournal(path)
    journal.open()
    play(journal)
    journal.close()
    before = path.read_text()

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        StateJournal(path).open()
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["state.jsonl"]


async def test_commit_makes_every_recorded_event_durable_with_one_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import os

    journal = StateJournal(tmp_path / "state.jsonl")
    journal.open()
    play(journal)
    syncs = []
    real = os.fsync
    monkeypatch.setattr("os.fsync", lambda fd: (syncs.append(fd), real(fd)))
    journal.record("signed", b=12, sub=sub("t3", F2, 1))
    await asyncio.gather(journal.commit(), journal.commit(), journal.commit())
    assert len(syncs) == 1
    assert '"t3"' in (tmp_path / "state.jsonl").read_text()  # on disk before anything is sent
    await journal.commit()
    assert len(syncs) == 1  # nothing new: nothing to sync
    journal.close()


def test_a_killed_process_loses_no_recorded_event(tmp_path: Path) -> None:
    """A pooler killed (SIGKILL, OOM) between commits: what it recorded is in the file, as
    the kernel holds it, though no fsync ran (a work recorded as signed must be followed
    after a restart, not signed again)."""
    import os
    import signal
    import subprocess
    import sys

    path = tmp_path / "state.jsonl"
    script = (
        "import os, signal, sys\n"
        "from kalepool.pooler.state import StateJournal\n"
        "journal = StateJournal(sys.argv[1]); journal.open()\n"
        "journal.record('pooler', id='p')\n"
        "journal.record('ask', b=12)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(path)], check=False, timeout=60)
    assert done.returncode == -signal.SIGKILL
    state = StateJournal.read(path)
    assert state.pooler_id == "p" and state.plant_requested == 12, os.fspath(path)


@pytest.mark.parametrize("farmers", [10, 1_000])
def test_recording_a_work_costs_the_same_whatever_the_farmer_count(tmp_path: Path, farmers: int) -> None:
    """What one work writes (its best, its signed envelope, its outcome) does not grow
    with the number of farmers in the block (the old state file was rewritten whole)."""
    journal = StateJournal(tmp_path / "state.jsonl")
    journal.open()
    ids = [str(uuid.UUID(int=i + 1)) for i in range(farmers)]
    journal.record("block", b=12, entropy=ENTROPY, block_start=1_000)
    journal.record("planted", b=12, farmers=[planted(f) for f in ids])
    before = journal.bytes_written
    journal.record("best", b=12, f=ids[-1], nonce=5, hash="00" * 32, zeros=6)
    journal.record("signed", b=12, sub=sub("t1", ids[-1], 6))
    journal.record("outcome", b=12, tx="t1", status="applied", gap=10, ledger=40, fee=100)
    cost = journal.bytes_written - before
    journal.close()
    assert cost == COST_OF_ONE_WORK


COST_OF_ONE_WORK = sum(
    len(json.dumps(e, separators=(",", ":"))) + 1
    for e in (
        {"e": "best", "b": 12, "f": F1, "nonce": 5, "hash": "00" * 32, "zeros": 6},
        {"e": "signed", "b": 12, "sub": sub("t1", F1, 6)},
        {"e": "outcome", "b": 12, "tx": "t1", "status": "applied", "gap": 10, "ledger": 40, "fee": 100},
    )
)


def test_block_state_round_trips_through_json() -> None:
    block = BlockState(block_index=3, entropy=ENTROPY)
    block.planted[F1] = w.PlantedFarmer.model_validate(planted(F1, index=3))
    assert BlockState.from_json(json.loads(json.dumps(block.to_json()))) == block
