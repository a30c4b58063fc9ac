"""The archive's files: names, where a record goes, what a file holds, and writing a roll whole
or not at all."""

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from loyalty_streams.archive.files import (
    NULL_PARTITION,
    SCHEMA,
    ArchivedRecord,
    Segment,
    archived,
    brand_directory,
    holdings,
    write_roll,
)
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from tests.archive.support import START, event, key_of, stamp_of, value_of


def record(partition: int, offset: int, n: int, brand_id: str = "aurora-casino") -> ArchivedRecord:
    item = event(n, brand_id)
    return archived(partition, offset, stamp_of(item), key_of(item), value_of(item))


# -- names -------------------------------------------------------------------------------------


def test_a_segment_is_named_by_partition_and_offsets_and_read_back() -> None:
    segment = Segment(3, 120, 4_501)
    assert segment.name == "part-00003-0000000000000000120-0000000000000004501.parquet"
    assert Segment.of(segment.name) == segment


def test_names_sort_as_their_offsets() -> None:
    segments = [Segment(1, 9, 99), Segment(1, 100, 1_000), Segment(1, 1_001, 10_000)]
    assert sorted(segment.name for segment in segments) == [s.name for s in segments]


@pytest.mark.parametrize(
    "name",
    [
        ".part-00003-0000000000000000120-0000000000000004501.parquet.tmp",
        "part-00003-0000000000000000120.parquet",
        "_common_metadata",
        "notes.txt",
    ],
)
def test_other_names_are_no_segment(name: str) -> None:
    assert Segment.of(name) is None


def test_a_brand_is_one_directory_name_whatever_its_id_holds() -> None:
    assert brand_directory("aurora-casino") == "brand_id=aurora-casino"
    assert brand_directory("a/b=c") == "brand_id=a%2Fb%3Dc"
    assert brand_directory("..") == "brand_id=.."
    assert brand_directory(None) == f"brand_id={NULL_PARTITION}"


# -- what a record becomes ---------------------------------------------------------------------


def test_an_event_is_decoded_into_its_columns() -> None:
    item = event(1, player_id="p7")
    found = archived(4, 17, stamp_of(item), key_of(item), value_of(item))
    assert (found.partition, found.offset, found.key, found.value) == (
        4,
        17,
        b"aurora-casino:p7",
        value_of(item),
    )
    assert (found.brand_id, found.player_id, found.event_id, found.type) == (
        "aurora-casino",
        "p7",
        "aurora-casino-e1",
        "BetPlaced",
    )
    assert found.occurred_at == item.occurred_at
    assert found.timestamp_ms == stamp_of(item)
    assert found.size == len(b"aurora-casino:p7") + len(value_of(item))


def test_the_day_is_the_utc_date_of_the_event() -> None:
    late = datetime(2026, 11, 21, 1, 30, tzinfo=timezone(timedelta(hours=2)))  # 23:30 UTC
    item = event(1).model_copy(update={"occurred_at": late.astimezone(UTC)})
    value = value_of(item).replace(b"2026-11-20T23:30:00Z", b"2026-11-21T01:30:00+02:00")
    assert b"+02:00" in value
    assert archived(0, 0, None, None, value).day == date(2026, 11, 20)


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b'{"type": "BetPlaced"}',
        b'{"type": "Jackpot", "brand_id": "aurora-casino"}',
        b"",
        None,
    ],
)
def test_a_record_that_does_not_decode_is_kept_without_its_columns(value: bytes | None) -> None:
    found = archived(2, 5, 1_795_000_000_000, b"key", value)
    assert found.value == value and found.key == b"key"
    assert (found.brand_id, found.player_id, found.event_id, found.type) == (None,) * 4
    assert found.occurred_at is None
    # dated by its record timestamp; a record without one goes to the null day
    assert found.day == date(2026, 11, 18)
    assert archived(2, 5, None, b"key", value).day is None


def test_a_brand_too_long_for_a_directory_is_kept_under_the_null_brand() -> None:
    item = event(1).model_copy(update={"brand_id": "é" * 128})
    found = archived(0, 0, None, key_of(item), value_of(item))
    assert found.brand_id is None and found.value == value_of(item)


# -- writing a roll ----------------------------------------------------------------------------


def read(path: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = pq.read_table(path, schema=SCHEMA).to_pylist()
    return rows


def test_a_roll_writes_one_file_per_partition_brand_and_day_named_by_its_segment(
    tmp_path: Path,
) -> None:
    # partition 0: aurora on two days (n=1 at 23:00, n=2 at 00:00 the next day) and lucky-sweeps
    zero = [record(0, 10, 1), record(0, 11, 1, "lucky-sweeps"), record(0, 12, 2)]
    one = [record(1, 3, 3), record(1, 4, 4)]
    undecodable = archived(1, 5, stamp_of(event(4)), None, b"{")
    paths = write_roll(tmp_path, {0: zero, 1: [*one, undecodable]})

    relative = sorted(str(path.relative_to(tmp_path)) for path in paths)
    assert relative == sorted(
        [
            f"brand_id=aurora-casino/day=2026-11-20/{Segment(0, 10, 12).name}",
            f"brand_id=aurora-casino/day=2026-11-21/{Segment(0, 10, 12).name}",
            f"brand_id=lucky-sweeps/day=2026-11-20/{Segment(0, 10, 12).name}",
            f"brand_id=aurora-casino/day=2026-11-21/{Segment(1, 3, 5).name}",
            f"brand_id={NULL_PARTITION}/day=2026-11-21/{Segment(1, 3, 5).name}",
        ]
    )
    rows = read(tmp_path / "brand_id=aurora-casino/day=2026-11-21" / Segment(0, 10, 12).name)
    assert [row["offset"] for row in rows] == [12]
    (row,) = rows
    assert row["topic"] == PLAYER_EVENTS and row["partition"] == 0
    assert row["value"] == zero[2].value and row["key"] == zero[2].key
    assert row["occurred_at"] == START + timedelta(hours=2)
    assert row["timestamp"] == START + timedelta(hours=2)
    assert (row["brand_id"], row["player_id"], row["type"]) == ("aurora-casino", "p1", "BetPlaced")
    # an undecodable record: its bytes, and null columns
    (kept,) = read(tmp_path / f"brand_id={NULL_PARTITION}/day=2026-11-21/{Segment(1, 3, 5).name}")
    assert kept["value"] == b"{" and kept["key"] is None and kept["brand_id"] is None
    # nothing temporary is left, and the layout is one pyarrow reads by brand and day
    assert holdings(tmp_path).temporaries == []
    dataset = ds.dataset(tmp_path, format="parquet", partitioning="hive")
    table = dataset.to_table(filter=ds.field("brand_id") == "aurora-casino")
    assert sorted(table.column("offset").to_pylist()) == [3, 4, 10, 12]


def test_rows_are_in_offset_order(tmp_path: Path) -> None:
    records = [record(2, offset, 1) for offset in (7, 8, 9, 15)]
    (path,) = write_roll(tmp_path, {2: records})
    assert [row["offset"] for row in read(path)] == [7, 8, 9, 15]


def test_a_roll_written_again_replaces_its_files(tmp_path: Path) -> None:
    first = write_roll(tmp_path, {0: [record(0, 0, 1), record(0, 1, 1)]})
    again = write_roll(tmp_path, {0: [record(0, 0, 1), record(0, 1, 1)]})
    assert first == again
    assert len(list(tmp_path.rglob("*.parquet"))) == 1
    assert [row["offset"] for row in read(again[0])] == [0, 1]


def test_a_roll_that_fails_leaves_no_file_of_it(tmp_path: Path) -> None:
    (tmp_path / brand_directory("lucky-sweeps")).write_text("in the way")  # not a directory
    records = [record(0, 0, 1), record(0, 1, 1, "lucky-sweeps")]
    with pytest.raises(OSError):
        write_roll(tmp_path, {0: records})
    assert list(tmp_path.rglob("*.parquet")) == []
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["brand_id=lucky-sweeps"]


def test_holdings_lists_segments_by_partition_and_temporary_files(tmp_path: Path) -> None:
    write_roll(tmp_path, {0: [record(0, 0, 1), record(0, 1, 2)], 1: [record(1, 5, 1)]})
    write_roll(tmp_path, {0: [record(0, 2, 1)]})
    stray = tmp_path / "brand_id=aurora-casino" / "day=2026-11-20" / f".{Segment(0, 3, 9).name}.tmp"
    stray.write_bytes(b"half a file")
    found = holdings(tmp_path)
    assert found.segments == {0: {Segment(0, 0, 1), Segment(0, 2, 2)}, 1: {Segment(1, 5, 5)}}
    assert found.temporaries == [stray]
    assert (found.last_offset(0), found.last_offset(1), found.last_offset(2)) == (2, 5, None)
    assert holdings(tmp_path / "absent").segments == {}
