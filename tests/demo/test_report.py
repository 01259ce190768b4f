"""The demo's report: verdicts and the JSON shape ``kalepool demo --json`` promises."""

from __future__ import annotations

from kalepool.demo import BlockRow, DemoReport, Difference, FarmerRow
from kalepool.demo.runner import _describe


def report(**overrides: object) -> DemoReport:
    values: dict[str, object] = {
        "blocks": [
            BlockRow(index=4, planted=2, worked=2, harvested=2, zeros_min=5, zeros_max=7, reward_total=9),
            BlockRow(index=5, planted=2, worked=2, harvested=2, zeros_min=6, zeros_max=6, reward_total=8),
        ],
        "farmers": [FarmerRow("f1", "GA", 1, 50.0, 100, balance_journal=10, balance_chain=10)],
        "blocks_wanted": 2,
    }
    values.update(overrides)
    return DemoReport(**values)  # type: ignore[arg-type]


def test_ok_only_when_every_block_completed_and_reconciled() -> None:
    assert report().ok
    assert not report(blocks_wanted=3).ok  # a block short
    short = report()
    short.blocks[1].harvested = 1
    assert not short.ok and not short.completed
    assert not report(differences=[Difference("GA", 10, 11)]).ok
    assert not report(problems=["pooler 1 exited with code 1"]).ok
    assert not report(farmers=[]).reconciled


def test_json_has_the_promised_fields() -> None:
    data = report(differences=[Difference("GA", 10, 11)]).to_json()
    assert {"blocks", "farmers", "reconciled", "differences", "wall_seconds", "ok"} <= set(data)
    assert {"index", "planted", "worked", "harvested", "zeros_min", "zeros_max", "reward_total"} <= set(
        data["blocks"][0]
    )
    assert {"public_key", "stake_total", "reward_total", "balance_journal", "balance_chain"} <= set(
        data["farmers"][0]
    )
    assert data["differences"] == [
        {"public_key": "GA", "balance_journal": 10, "balance_chain": 11, "difference": 1}
    ]
    assert data["reconciled"] is False and data["ok"] is False


def test_progress_lines_from_pooler_events() -> None:
    planted = {"event": "pooler.planted", "block_index": 7, "farmers": 8, "failed": 1}
    assert _describe(0, planted, 1) == "block 7: 8 farmer(s) planted, 1 failed"
    assert _describe(1, planted, 2) == "pooler 2: block 7: 8 farmer(s) planted, 1 failed"
    reported = {"event": "pooler.reported", "block_index": 7, "worked": 8, "planted": 8,
                "zeros_min": 5, "zeros_max": 7}
    assert _describe(0, reported, 1) == "block 7: 8/8 worked, zeros 5–7, reported"
    assert _describe(0, {"event": "pooler.heartbeat"}, 1) is None


def test_every_column_has_a_header_with_its_unit_and_the_farmers_net() -> None:
    from io import StringIO

    from rich.console import Console

    from kalepool.demo.report import BLOCK_COLUMNS, FARMER_COLUMNS, print_report

    assert all(name for name, _ in BLOCK_COLUMNS + FARMER_COLUMNS)
    amounts = [n for n, _ in FARMER_COLUMNS if n not in ("farmer", "pooler", "stake %")]
    assert all(n.endswith(" KALE") for n in amounts) and "net KALE" in amounts
    farmer = FarmerRow("f1", "GAAAAAAAAAAAAAAA", 1, 50.0, 100 * 10**7, reward_total=5 * 10**7, fees=10**7)
    assert farmer.net == 4 * 10**7
    assert report(farmers=[farmer]).to_json()["farmers"][0]["net"] == 4 * 10**7
    out = StringIO()
    print_report(Console(file=out, width=200), report(farmers=[farmer]))
    text = out.getvalue()
    assert "net KALE" in text and "4.0000" in text and "status" in text and "gap (ledgers)" in text


def test_harvest_lines_name_their_block() -> None:
    event = {"event": "pooler.harvested", "blocks": [7], "harvested": 3, "total_rewards": 2 * 10**7}
    assert _describe(0, event, 1) == "block 7: 3 pail(s) harvested, reward 2.0000 KALE"
    assert _describe(1, {"event": "pooler.new_block", "block_index": 8}, 2) == "pooler 2: block 8 opened"
