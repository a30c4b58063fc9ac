"""The read queries over a partition's store: a player's cashback log and pages of their history."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from loyalty_streams.state.keyspace import cashback_key, history_key
from loyalty_streams.state.queries import cashback_log, history_page
from loyalty_streams.state.store import PartitionStore, RocksDBStore

T0 = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
BRAND = "aurora-casino"


def row(n: int, kind: str, **fields: str) -> dict[str, Any]:
    return {"type": kind, "output_id": f"o{n}", "n": n, **fields}


ROWS = [
    row(0, "PointsAccrued", cause_id="evt-0"),
    row(1, "RedemptionHeld", command_id="r-1"),
    row(2, "PointsAccrued", cause_id="evt-2"),
    row(3, "PointsRedeemed", command_id="c-3", cause_id="r-1"),
    row(4, "LevelChanged", cause_id="evt-2"),
]
"""p1's history, an hour apart from T0 on."""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PartitionStore]:
    made = RocksDBStore(tmp_path)
    records: dict[bytes, bytes | None] = {
        history_key(BRAND, "p1", T0 + timedelta(hours=r["n"]), r["output_id"]): orjson.dumps(r)
        for r in ROWS
    }
    # a neighbour whose key extends p1's, and another brand's p1: never in p1's answers
    records[history_key(BRAND, "p10", T0, "x")] = orjson.dumps(row(9, "PointsAccrued"))
    records[history_key("lucky-sweeps", "p1", T0, "y")] = orjson.dumps(row(8, "PointsAccrued"))
    for day in (20, 21, 22):
        records[cashback_key(BRAND, "p1", date(2026, 11, day))] = orjson.dumps({"day": day})
    records[cashback_key(BRAND, "p10", date(2026, 11, 23))] = orjson.dumps({"day": 23})
    made.write(records, 0)
    yield made
    made.close()


def numbers(rows: list[Any]) -> list[int]:
    return [r["n"] for r in rows]


def test_the_cashback_log_is_the_players_days_newest_first(store: PartitionStore) -> None:
    assert cashback_log(store, BRAND, "p1") == [{"day": 22}, {"day": 21}, {"day": 20}]
    assert cashback_log(store, BRAND, "p2") == []


def test_history_pages_newest_first_and_the_cursors_go_through_every_row_once(
    store: PartitionStore,
) -> None:
    seen, cursor, pages = [], None, 0
    while True:
        rows, cursor = history_page(store, BRAND, "p1", limit=2, cursor=cursor)
        seen += numbers(rows)
        pages += 1
        if cursor is None:
            break
    assert seen == [4, 3, 2, 1, 0] and pages == 3


def test_history_is_narrowed_by_type_time_and_command(store: PartitionStore) -> None:
    def page(**narrow: Any) -> list[int]:
        rows, cursor = history_page(store, BRAND, "p1", limit=10, **narrow)
        assert cursor is None
        return numbers(rows)

    assert page(types=frozenset({"PointsAccrued"})) == [2, 0]
    assert page(since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)) == [2, 1]
    assert page(command_id="r-1") == [3, 1]  # the command's own row, and the one it caused
    assert page(command_id="nothing") == []
