"""The replay's reader on an in-memory cluster: the archive's files below the archive group's
committed offsets, the topic's tail from them, each record once, in offset order per partition,
only the brand's events in the range."""

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from loyalty_streams.archive.files import ArchivedRecord, Segment, archived, write_roll
from loyalty_streams.archive.history import history
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.runtime.test_driver import MemoryCluster
from loyalty_streams.settings import Settings
from tests.archive.support import START, event, key_of, stamp_of, value_of

AURORA, SWEEPS = "aurora-casino", "lucky-sweeps"


class Topic:
    """`casino.player-events` in a `MemoryCluster` of 2 partitions, and the records on it."""

    def __init__(self) -> None:
        self.cluster = MemoryCluster(2, (0, 1))
        self.records: list[ArchivedRecord] = []
        self.events: dict[tuple[int, int], PlayerEvent] = {}

    def publish(self, partition: int, item: PlayerEvent | bytes) -> ArchivedRecord:
        """Append a record (an event, or raw bytes) to `partition`."""
        if isinstance(item, bytes):
            key, value, stamp = b"x:y", item, 1_795_000_000_000
        else:
            key, value, stamp = key_of(item), value_of(item), stamp_of(item)
        message = self.cluster.append(PLAYER_EVENTS, partition, key, value, stamp)
        record = archived(partition, int(message.offset() or 0), stamp, key, value)
        self.records.append(record)
        if not isinstance(item, bytes):
            self.events[partition, record.offset] = item
        return record

    def archive(self, root: Path, partition: int, first: int, last: int) -> None:
        """Write offsets `first` to `last` of `partition` as one roll."""
        rows = [r for r in self.records if r.partition == partition and first <= r.offset <= last]
        write_roll(root, {partition: rows})

    def commit(self, partition: int, offset: int) -> None:
        """The archive group's committed offset of `partition`."""
        self.cluster.committed[PLAYER_EVENTS, partition] = offset

    def expected(
        self, brand_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> set[tuple[int, int]]:
        return {
            place
            for place, item in self.events.items()
            if item.brand_id == brand_id
            and (since is None or item.occurred_at >= since)
            and (until is None or item.occurred_at < until)
        }


def read(
    topic: Topic,
    root: Path,
    brand_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[tuple[int, int, PlayerEvent]]:
    """What `history` gives, as (partition, offset, event); checks each position names its event."""
    settings = Settings(archive_dir=root, bootstrap_servers="memory:0")
    found = []
    for position, item in history(settings, brand_id, since, until, topic.cluster):
        name, _, number = position.topic_partition.rpartition(":")
        assert name == PLAYER_EVENTS
        found.append((int(number), position.offset, item))
        assert topic.events[int(number), position.offset] == item
    return found


def assert_once_in_order(found: list[tuple[int, int, PlayerEvent]]) -> None:
    places = [(partition, offset) for partition, offset, _ in found]
    assert len(places) == len(set(places)), "a record came twice"
    per_partition: dict[int, list[int]] = defaultdict(list)
    for partition, offset in places:
        per_partition[partition].append(offset)
    for offsets in per_partition.values():
        assert offsets == sorted(offsets)


def two_brands(topic: Topic, per_partition: int) -> None:
    """`per_partition` records on each partition: aurora and lucky-sweeps players in turn, an
    hour apart, so they span two UTC days."""
    for n in range(per_partition):
        for partition in (0, 1):
            brand_id = AURORA if (n + partition) % 2 == 0 else SWEEPS
            topic.publish(partition, event(n, brand_id, player_id=f"p{partition}"))


# -- where records come from -------------------------------------------------------------------


def test_the_files_below_the_committed_offsets_then_the_tail(tmp_path: Path) -> None:
    topic = Topic()
    two_brands(topic, 10)
    topic.archive(tmp_path, 0, 0, 3)
    topic.archive(tmp_path, 0, 4, 5)
    topic.commit(0, 6)
    topic.archive(tmp_path, 1, 0, 4)  # renamed, never committed: the tail gives them
    for brand_id in (AURORA, SWEEPS):
        found = read(topic, tmp_path, brand_id)
        assert_once_in_order(found)
        assert {(p, o) for p, o, _ in found} == topic.expected(brand_id)
    # partition 0 from the files first, then both partitions' tails
    assert [(p, o) for p, o, _ in read(topic, tmp_path, AURORA)][:3] == [(0, 0), (0, 2), (0, 4)]


def test_files_past_the_committed_offset_are_not_read(tmp_path: Path) -> None:
    topic = Topic()
    two_brands(topic, 8)
    topic.archive(tmp_path, 0, 0, 3)
    topic.commit(0, 4)
    # a roll cut short by a crash among its renames: only lucky-sweeps' file of it is there
    rows = [r for r in topic.records if r.partition == 0 and r.offset >= 4 and r.brand_id == SWEEPS]
    write_roll(tmp_path, {0: rows})
    # and a file at or past the position with a record the topic does not hold at that offset
    forged = event(99, AURORA, player_id="p0")
    write_roll(tmp_path, {0: [archived(0, 5, None, key_of(forged), value_of(forged))]})
    for brand_id in (AURORA, SWEEPS):
        found = read(topic, tmp_path, brand_id)
        assert_once_in_order(found)
        assert {(p, o) for p, o, _ in found} == topic.expected(brand_id)


def test_without_an_archive_everything_comes_from_the_topic(tmp_path: Path) -> None:
    topic = Topic()
    two_brands(topic, 6)
    found = read(topic, tmp_path / "never-written", SWEEPS)
    assert_once_in_order(found)
    assert {(p, o) for p, o, _ in found} == topic.expected(SWEEPS)


def test_a_directory_without_the_archives_files_is_refused_not_read_as_empty(
    tmp_path: Path,
) -> None:
    """The group archived up to its offsets, but the reader was given another directory: what
    is below them would silently be missing from a replay."""
    topic = Topic()
    two_brands(topic, 4)
    topic.archive(tmp_path / "the-archive", 0, 0, 3)
    topic.commit(0, 4)
    with pytest.raises(FileNotFoundError, match="holds no archive file"):
        read(topic, tmp_path / "elsewhere", AURORA)
    assert {(p, o) for p, o, _ in read(topic, tmp_path / "the-archive", AURORA)} == (
        topic.expected(AURORA)
    )


def test_an_archive_up_to_the_end_reads_nothing_from_the_topic(tmp_path: Path) -> None:
    topic = Topic()
    two_brands(topic, 4)
    for partition in (0, 1):
        topic.archive(tmp_path, partition, 0, 3)
        topic.commit(partition, 4)
    found = read(topic, tmp_path, AURORA)
    assert [(p, o) for p, o, _ in found] == [(0, 0), (0, 2), (1, 1), (1, 3)]


# -- each record once --------------------------------------------------------------------------


def test_overlapping_segments_give_each_offset_once_in_order(tmp_path: Path) -> None:
    topic = Topic()
    for n in range(12):
        topic.publish(0, event(n, AURORA))
    # a roll written twice from different offsets, a roll inside another, and one alone
    for first, last in ((0, 5), (0, 3), (2, 8), (4, 9), (10, 11)):
        topic.archive(tmp_path, 0, first, last)
    topic.commit(0, 12)
    found = read(topic, tmp_path, AURORA)
    assert [o for _, o, _ in found] == list(range(12))


def test_a_roll_spread_over_days_is_read_in_offset_order(tmp_path: Path) -> None:
    topic = Topic()
    # a late event between today's: the roll has a file on each day, offsets interleaved
    for n, minutes in enumerate([110, 130, 100, 140, 20, 150]):
        topic.publish(0, event(n, AURORA, minutes=minutes))
    topic.archive(tmp_path, 0, 0, 5)
    topic.commit(0, 6)
    days = sorted(p.parent.name for p in tmp_path.rglob("*.parquet"))
    assert days == ["day=2026-11-20", "day=2026-11-21"]  # offsets 0, 2, 4 and 1, 3, 5
    assert [o for _, o, _ in read(topic, tmp_path, AURORA)] == list(range(6))


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(
    bounds=st.lists(st.integers(0, 29), max_size=6),
    extra=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=4),
    position=st.integers(0, 30),
)
def test_any_rolls_give_every_record_once_in_order(
    tmp_path_factory: pytest.TempPathFactory,
    bounds: list[int],
    extra: list[tuple[int, int]],
    position: int,
) -> None:
    """Rolls that cover the partition (cut anywhere) and rolls written again over any range,
    with the position anywhere: each record once, in order, files or tail."""
    root = tmp_path_factory.mktemp("archive")
    topic = Topic()
    for n in range(30):
        topic.publish(0, event(n, AURORA, minutes=7 * n))
    cuts = sorted({*bounds, 29})
    first = 0
    for last in cuts:
        if last >= first:
            topic.archive(root, 0, first, last)
            first = last + 1
    for a, b in extra:
        topic.archive(root, 0, min(a, b), max(a, b))
    topic.commit(0, position)
    assert [o for _, o, _ in read(topic, root, AURORA)] == list(range(30))


# -- the brand and the range -------------------------------------------------------------------


def test_only_the_range_asked_for(tmp_path: Path) -> None:
    topic = Topic()
    two_brands(topic, 12)
    for partition in (0, 1):
        topic.archive(tmp_path, partition, 0, 7)
        topic.commit(partition, 8)
    since, until = START + timedelta(hours=3), START + timedelta(hours=9)
    for bounds in ((since, until), (since, None), (None, until)):
        found = read(topic, tmp_path, AURORA, *bounds)
        assert_once_in_order(found)
        assert {(p, o) for p, o, _ in found} == topic.expected(AURORA, *bounds)
        assert found, bounds


def test_days_outside_the_range_are_not_opened(tmp_path: Path) -> None:
    topic = Topic()
    two_brands(topic, 6)  # 23:00 on the 20th to 04:00 on the 21st
    for partition in (0, 1):
        topic.archive(tmp_path, partition, 0, 5)
        topic.commit(partition, 6)
    for path in (tmp_path / "brand_id=aurora-casino" / "day=2026-11-20").iterdir():
        path.write_bytes(b"not parquet")  # opening one would fail
    since = datetime(2026, 11, 21, tzinfo=UTC)
    found = read(topic, tmp_path, AURORA, since)
    assert {(p, o) for p, o, _ in found} == topic.expected(AURORA, since)


def test_records_that_do_not_decode_are_never_given(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    topic = Topic()
    topic.publish(0, event(0, AURORA))
    topic.publish(0, b"not an event")
    topic.publish(0, event(1, AURORA))
    topic.archive(tmp_path, 0, 0, 2)  # the bad one under the null brand
    topic.publish(0, b'{"brand_id": "aurora-casino"}')  # in the tail
    topic.publish(0, event(2, AURORA))
    topic.commit(0, 3)
    # a value under the brand that no longer decodes (a contract changed since)
    bad = ArchivedRecord(0, 1, None, None, b'{"type": "Gone"}', AURORA, "p1", "x", "Gone", START)
    write_roll(tmp_path, {0: [bad]})
    with caplog.at_level(logging.WARNING):
        found = read(topic, tmp_path, AURORA)
    assert [o for _, o, _ in found] == [0, 2, 4]
    assert "1 archived records of aurora-casino did not decode" in caplog.text


def test_a_brand_spelled_with_escapes_in_the_tail_is_found(tmp_path: Path) -> None:
    topic = Topic()
    item = event(0, AURORA)
    escaped = value_of(item).replace(b'"aurora-casino"', b'"aurora\\u002dcasino"')
    message = topic.cluster.append(PLAYER_EVENTS, 0, key_of(item), escaped, stamp_of(item))
    topic.events[0, int(message.offset() or 0)] = item
    assert [(p, o) for p, o, _ in read(topic, tmp_path, AURORA)] == [(0, 0)]


def test_a_time_without_a_zone_is_refused_at_once(tmp_path: Path) -> None:
    settings = Settings(archive_dir=tmp_path, bootstrap_servers="memory:0")
    with pytest.raises(ValueError, match="no time zone"):
        history(settings, AURORA, datetime(2026, 11, 20), None, Topic().cluster)


def test_segment_order_is_offset_order() -> None:
    assert sorted([Segment(0, 4, 9), Segment(0, 0, 5), Segment(0, 0, 3)]) == [
        Segment(0, 0, 3),
        Segment(0, 0, 5),
        Segment(0, 4, 9),
    ]
