"""The archive service on an in-memory consumer: when it rolls, what it commits and when, and
how it repairs the crash window between a roll's rename and its commit."""

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from loyalty_streams.archive.files import NULL_PARTITION, Segment, holdings
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.services.archive import Archiver, record_of
from loyalty_streams.settings import Settings
from tests.archive.support import event, event_message, message

Rebalance = Callable[[Any, list[TopicPartition]], None]


@dataclass
class Consumer:
    """A group member given `partitions` at its first consume, then `batches` one per call;
    once they run out it sets `stop`."""

    batches: list[list[Message]]
    stop: threading.Event = field(default_factory=threading.Event)
    partitions: tuple[int, ...] = (0, 1)
    group_offsets: dict[int, int] = field(default_factory=dict)
    commits: list[dict[int, int]] = field(default_factory=list)
    fail_commits: bool = False
    on_assign: Rebalance | None = None
    on_revoke: Rebalance | None = None
    assigned: bool = False
    closed: bool = False

    def subscribe(
        self,
        topics: list[str],
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
    ) -> None:
        assert topics == [PLAYER_EVENTS]
        self.on_assign, self.on_revoke = on_assign, on_revoke

    def owned(self) -> list[TopicPartition]:
        return [TopicPartition(PLAYER_EVENTS, number) for number in self.partitions]

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if not self.assigned:
            self.assigned = True
            if self.on_assign is not None:
                self.on_assign(self, self.owned())
        if not self.batches:
            self.stop.set()
            return []
        return self.batches.pop(0)

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        if self.fail_commits:
            raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
        commit = {tp.partition: tp.offset for tp in offsets}
        self.commits.append(commit)
        self.group_offsets.update(commit)

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.group_offsets.get(tp.partition, -1001))
            for tp in partitions
        ]

    def close(self) -> None:
        self.closed = True
        if self.on_revoke is not None:
            self.on_revoke(self, self.owned())


def settings(root: Path, **limits: Any) -> Settings:
    return Settings(
        archive_dir=root,
        archive_roll_records=limits.get("records", 1_000),
        archive_roll_bytes=limits.get("size", 1 << 30),
        archive_roll_s=limits.get("seconds", 3_600.0),
    )


def archiver(
    root: Path, consumer: Consumer, clock: Callable[[], float] = lambda: 0.0, **limits: Any
) -> Archiver:
    return Archiver(settings(root, **limits), consumer, clock=clock)  # type: ignore[arg-type]


def bets(partition: int, offsets: range) -> list[Message]:
    return [event_message(partition, offset, event(offset)) for offset in offsets]


def segments(root: Path) -> dict[int, set[Segment]]:
    return holdings(root).segments


def offsets_in_files(root: Path) -> list[tuple[int, int]]:
    found = []
    for path in root.rglob("*.parquet"):
        table = pq.read_table(path, columns=["partition", "offset"])
        numbers, offsets = table.column("partition").to_pylist(), table.column("offset").to_pylist()
        found += zip(numbers, offsets, strict=True)
    return sorted(found)


# -- rolling -----------------------------------------------------------------------------------


def test_a_roll_comes_at_the_record_count_and_is_committed_after_it(tmp_path: Path) -> None:
    consumer = Consumer(
        [bets(0, range(2)), bets(0, range(2, 3)) + bets(1, range(1)), bets(0, range(3, 5))]
    )
    archiver(tmp_path, consumer, records=4).follow(consumer.stop)
    # 4 records waiting after the second batch: one roll of both partitions; the rest at the stop
    assert consumer.commits == [{0: 3, 1: 1}, {0: 5}]
    assert segments(tmp_path) == {
        0: {Segment(0, 0, 2), Segment(0, 3, 4)},
        1: {Segment(1, 0, 0)},
    }
    assert offsets_in_files(tmp_path) == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)]
    assert consumer.closed


def test_a_roll_comes_at_the_size_limit(tmp_path: Path) -> None:
    records = bets(0, range(6))
    size = sum(len(m.key() or b"") + len(m.value() or b"") for m in records[:3])
    consumer = Consumer([[record] for record in records])
    archiver(tmp_path, consumer, size=size).follow(consumer.stop)
    assert consumer.commits == [{0: 3}, {0: 6}]


def test_a_roll_comes_when_the_oldest_record_waiting_is_old_enough(tmp_path: Path) -> None:
    now = [0.0]
    batches = [bets(0, range(1)), bets(1, range(1)), [], bets(0, range(1, 2)), [], []]
    consumer = Consumer(batches)
    archive = archiver(tmp_path, consumer, clock=lambda: now[0], seconds=60.0)
    archive.assigned(consumer, consumer.owned())  # type: ignore[arg-type]
    rolled_at = []
    for number in range(len(batches)):
        now[0] = 50.0 * number  # each batch 50 s after the last
        for record in consumer.consume(100, 0):
            archive.add(record_of(record))
        if archive.due():
            archive.roll(archive.waiting())
            rolled_at.append(now[0])
    # the first record read at 0 s: everything waiting rolls at 100 s (not at 50); the next
    # record read at 150 s rolls at 250 s
    assert rolled_at == [100.0, 250.0]
    assert consumer.commits == [{0: 1, 1: 1}, {0: 2}]


def test_nothing_is_committed_before_the_files_are_in_place(tmp_path: Path) -> None:
    consumer = Consumer([bets(0, range(3))])
    seen: list[tuple[int, int]] = []

    def after_rename() -> None:
        assert consumer.commits == []
        seen.extend(offsets_in_files(tmp_path))
        assert not list(tmp_path.rglob("*.tmp"))

    Archiver(settings(tmp_path), consumer, after_rename=after_rename).follow(consumer.stop)  # type: ignore[arg-type]
    assert seen == [(0, 0), (0, 1), (0, 2)]
    assert consumer.commits == [{0: 3}]


def test_a_failed_commit_is_covered_by_the_next_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = Consumer([bets(0, range(2)), bets(0, range(2, 4))], fail_commits=True)
    archive = archiver(tmp_path, consumer, records=2)
    with caplog.at_level(logging.WARNING):
        archive.follow(consumer.stop)
    assert "the files will be written again" in caplog.text
    assert segments(tmp_path) == {0: {Segment(0, 0, 1), Segment(0, 2, 3)}}


def test_records_that_do_not_decode_are_archived_and_committed(tmp_path: Path) -> None:
    consumer = Consumer([[message(1, 0, b"not json", key=None), message(1, 1, None)]])
    archiver(tmp_path, consumer).follow(consumer.stop)
    assert consumer.commits == [{1: 2}]
    (folder,) = (tmp_path / f"brand_id={NULL_PARTITION}").iterdir()
    assert folder.name == "day=2026-11-18"  # the record timestamp's day
    assert offsets_in_files(tmp_path) == [(1, 0), (1, 1)]


def test_a_revoked_partition_is_dropped_uncommitted(tmp_path: Path) -> None:
    consumer = Consumer([bets(0, range(3)) + bets(1, range(2))])
    archive = archiver(tmp_path, consumer)
    archive.assigned(consumer, consumer.owned())  # type: ignore[arg-type]
    for record in consumer.consume(100, 0):
        archive.add(record_of(record))
    archive.revoked(consumer, [TopicPartition(PLAYER_EVENTS, 0)])  # type: ignore[arg-type]
    archive.roll(archive.waiting())
    assert consumer.commits == [{1: 2}]
    assert segments(tmp_path) == {1: {Segment(1, 0, 1)}}


# -- the crash window --------------------------------------------------------------------------


class Crash(Exception):
    pass


def crash() -> None:
    raise Crash


def test_a_roll_renamed_and_not_committed_is_written_again_under_the_same_names(
    tmp_path: Path,
) -> None:
    records = bets(0, range(10)) + bets(1, range(3))
    first = Consumer([records[:4], records[4:]])
    with pytest.raises(Crash):
        Archiver(settings(tmp_path, records=4), first, after_rename=crash).follow(first.stop)  # type: ignore[arg-type]
    assert first.commits == []
    before = sorted(tmp_path.rglob("*.parquet"))
    assert segments(tmp_path) == {0: {Segment(0, 0, 3)}}

    # the restart rolls on other limits (2 records), yet partition 0's first roll ends where the
    # files on disk end: the same names, nothing added beside them
    again = Consumer([records[:2], records[2:5], records[5:]])
    archiver(tmp_path, again, records=2).follow(again.stop)
    assert segments(tmp_path)[0] >= {Segment(0, 0, 3)}
    assert set(before) <= set(tmp_path.rglob("*.parquet"))
    assert again.commits[0] == {0: 4}  # at offset 3, before any limit took partition 0
    assert again.group_offsets == {0: 10, 1: 3}
    for number, found in segments(tmp_path).items():
        ordered = sorted(found)
        for earlier, later in itertools.pairwise(ordered):
            assert earlier.last < later.first, f"partition {number}: {ordered}"
    everything = [(m.partition(), m.offset()) for m in records]
    assert offsets_in_files(tmp_path) == sorted(everything)


def test_several_rolls_left_uncommitted_are_each_written_again(tmp_path: Path) -> None:
    records = bets(0, range(9))
    first = Consumer([records[:3], records[3:6]], fail_commits=True)
    archiver(tmp_path, first, records=3).follow(first.stop)  # both rolls' commits fail
    assert segments(tmp_path) == {0: {Segment(0, 0, 2), Segment(0, 3, 5)}}

    again = Consumer([records])
    archiver(tmp_path, again, records=1_000).follow(again.stop)
    assert again.commits == [{0: 3}, {0: 6}, {0: 9}]
    assert segments(tmp_path) == {0: {Segment(0, 0, 2), Segment(0, 3, 5), Segment(0, 6, 8)}}


def test_temporary_files_of_a_crash_are_removed_when_partitions_are_assigned(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "brand_id=aurora-casino" / "day=2026-11-20"
    folder.mkdir(parents=True)
    stray = folder / f".{Segment(0, 0, 9).name}.tmp"
    stray.write_bytes(b"half")
    consumer = Consumer([])
    archiver(tmp_path, consumer).follow(consumer.stop)
    assert not stray.exists()


def test_a_position_past_the_files_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = Consumer([], group_offsets={0: 120})
    with caplog.at_level(logging.WARNING):
        archiver(tmp_path, consumer).follow(consumer.stop)
    assert "partition 0: the group's position is 120 but" in caplog.text
    assert "partition 1" not in caplog.text  # never committed: nothing to say
