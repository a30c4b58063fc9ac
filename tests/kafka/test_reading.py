"""The one way to read a topic to its end (`kafka.reading`), on an in-memory consumer: where a
pass stops, how it seeks by time, what it raises, how it follows."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from loyalty_streams.kafka import reading
from loyalty_streams.kafka.clients import Config, KafkaClients
from loyalty_streams.kafka.reading import PartitionReader, read_topics, scan_topic
from loyalty_streams.settings import Settings

SETTINGS = Settings(bootstrap_servers="127.0.0.1:1")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
EPOCH_MS = int(EPOCH.timestamp() * 1000)


@dataclass(frozen=True)
class Message:
    at: tuple[str, int]
    offset_: int = -1
    value_: bytes | None = None
    stamp_ms: int = 0
    error_: KafkaError | None = None

    def topic(self) -> str:
        return self.at[0]

    def partition(self) -> int:
        return self.at[1]

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes | None:
        return self.value_

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self.stamp_ms)

    def error(self) -> KafkaError | None:
        return self.error_


@dataclass
class Log:
    """A partition: its records' timestamps (ms after EPOCH), in offset order."""

    stamps: list[int] = field(default_factory=list)
    listed_short_by: int = 0
    """How far ListOffsets lists the end short of the log's (Tansu: the last batch's base + 1)."""
    tombstones: set[int] = field(default_factory=set)
    """Offsets of the records whose value is None."""


@dataclass
class Broker:
    """Topics of partitions; `tick` runs before each listing and each consume (to append)."""

    topics: dict[str, list[Log]]
    tick: Callable[["Broker"], None] = lambda broker: None
    errors: list[KafkaError] = field(default_factory=list)
    listing_errors: list[KafkaError] = field(default_factory=list)
    """Errors the next ListOffsets requests raise, one each, before any answers."""
    consumers: list["Consumer"] = field(default_factory=list)


class Consumer:
    """What `PartitionReader` asks of a confluent-kafka consumer, over a `Broker`."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.positions: dict[tuple[str, int], int] = {}
        self.fetched_high: dict[tuple[str, int], int] = {}
        self.eof_sent: set[tuple[str, int]] = set()
        self.closed = False

    def log(self, at: tuple[str, int]) -> Log:
        return self.broker.topics[at[0]][at[1]]

    def list_topics(self, timeout: float) -> Any:
        self.broker.tick(self.broker)
        topics = {
            name: SimpleNamespace(partitions=dict.fromkeys(range(len(logs))), error=None)
            for name, logs in self.broker.topics.items()
        }
        return SimpleNamespace(topics=topics)

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float = 0, cached: bool = False
    ) -> tuple[int, int]:
        at = (tp.topic, tp.partition)
        if cached:
            return 0, self.fetched_high[at]
        if self.broker.listing_errors:
            raise KafkaException(self.broker.listing_errors.pop(0))
        log = self.log(at)
        return 0, max(0, len(log.stamps) - log.listed_short_by) if log.stamps else 0

    def offsets_for_times(self, asked: list[TopicPartition], timeout: float) -> list[Any]:
        found = []
        for tp in asked:
            stamps = self.log((tp.topic, tp.partition)).stamps
            at = next((i for i, s in enumerate(stamps) if EPOCH_MS + s >= tp.offset), -1)
            found.append(TopicPartition(tp.topic, tp.partition, at))
        return found

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.positions = {
            (tp.topic, tp.partition): max(tp.offset, 0) if tp.offset != OFFSET_BEGINNING else 0
            for tp in partitions
        }
        self.eof_sent = set()

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.broker.tick(self.broker)
        if self.broker.errors:
            return [Message(("t", 0), error_=self.broker.errors.pop(0))]
        messages: list[Message] = []
        for at, position in self.positions.items():
            log = self.log(at)
            stamps = log.stamps
            self.fetched_high[at] = len(stamps)
            if position < len(stamps):
                value = None if position in log.tombstones else str(position).encode()
                messages.append(Message(at, position, value, EPOCH_MS + stamps[position]))
                self.positions[at] = position + 1
            elif at not in self.eof_sent:
                self.eof_sent.add(at)
                messages.append(Message(at, error_=KafkaError(KafkaError._PARTITION_EOF)))
        return messages

    def close(self) -> None:
        self.closed = True


class Clients(KafkaClients):
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def consumer(self, config: Config) -> Any:
        consumer = Consumer(self.broker)
        self.broker.consumers.append(consumer)
        return consumer


def offsets(records: list[reading.ReadRecord]) -> list[tuple[int, int]]:
    return sorted((r.partition, r.offset) for r in records)


def test_a_pass_reads_every_partition_to_the_end_it_had_when_it_started() -> None:
    broker = Broker({"t": [Log([0, 1, 2]), Log([5]), Log()]})
    ticks = 0

    def write(broker: Broker) -> None:  # written to all along, once the pass has begun
        nonlocal ticks
        ticks += 1
        if ticks > 2:
            broker.topics["t"][0].stamps.append(9)

    broker.tick = write

    found = list(scan_topic(SETTINGS, "t", since=None, until=None, clients=Clients(broker)))

    assert offsets(found) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert found[0].timestamp == EPOCH and found[0].value == b"0"
    assert all(consumer.closed for consumer in broker.consumers)


def test_an_end_listed_short_is_raised_to_the_one_fetch_reports() -> None:
    broker = Broker({"t": [Log([0, 1, 2, 3, 4], listed_short_by=4)]})  # listed as 1

    found = list(scan_topic(SETTINGS, "t", since=None, until=None, clients=Clients(broker)))

    assert offsets(found) == [(0, n) for n in range(5)]


def test_a_scan_seeks_by_time_and_keeps_only_the_range() -> None:
    broker = Broker({"t": [Log([0, 10, 5, 20, 30]), Log([1, 2])]})
    since, until = EPOCH + timedelta(milliseconds=5), EPOCH + timedelta(milliseconds=30)

    found = list(scan_topic(SETTINGS, "t", since=since, until=until, clients=Clients(broker)))

    # partition 0 from offset 1 (the first at 10 ms >= 5 ms), partition 1 has nothing from then
    assert offsets(found) == [(0, 1), (0, 2), (0, 3)]
    with pytest.raises(ValueError, match="no time zone"):
        list(scan_topic(SETTINGS, "t", since=datetime(2026, 1, 1), until=None))


def test_a_missing_topic_is_a_lookup_error() -> None:
    broker = Broker({"t": [Log([0])]})
    with pytest.raises(LookupError, match="other"):
        list(scan_topic(SETTINGS, "other", since=None, until=None, clients=Clients(broker)))


def test_a_pass_that_receives_nothing_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reading, "STALL_S", 0.0)
    broker = Broker({"t": [Log([0])]})
    clients = Clients(broker)
    with PartitionReader(SETTINGS, "test", clients=clients) as reader:
        ends = reader.ends(["t"])
        broker.consumers[0].consume = lambda num_messages, timeout: []
        with pytest.raises(TimeoutError, match="nothing received"):
            list(reader.read_to_end({("t", 0): OFFSET_BEGINNING}, ends))


def test_a_fatal_error_raises_and_others_are_read_past() -> None:
    broker = Broker({"t": [Log([0, 1])]})
    broker.errors = [KafkaError(KafkaError._TRANSPORT)]
    found = list(scan_topic(SETTINGS, "t", since=None, until=None, clients=Clients(broker)))
    assert offsets(found) == [(0, 0), (0, 1)]

    broker.errors = [KafkaError(KafkaError._FATAL, fatal=True)]
    with pytest.raises(KafkaException):
        list(scan_topic(SETTINGS, "t", since=None, until=None, clients=Clients(broker)))


def test_read_topics_goes_on_from_where_each_pass_stopped_until_the_condition_holds() -> None:
    broker = Broker({"a": [Log([0]), Log()], "b": [Log([0, 0])]})
    ticks = 0

    def more(broker: Broker) -> None:
        nonlocal ticks
        ticks += 1
        if ticks % 4 == 0:  # now and then a record on the partition empty at first
            broker.topics["a"][1].stamps.append(0)

    broker.tick = more

    records = read_topics(
        SETTINGS,
        ["a", "b"],
        until=lambda r: len(r["a"]) >= 3,
        timeout=10,
        clients=Clients(broker),
    )

    assert len(records["a"]) >= 3 and len(records["b"]) == 2
    assert offsets(records["a"]) == sorted(set(offsets(records["a"])))  # nothing read twice
    assert len(broker.consumers) == 1


def test_read_topics_returns_what_it_has_at_the_timeout() -> None:
    broker = Broker({"a": [Log([0, 0])]})

    records = read_topics(
        SETTINGS, ["a"], until=lambda r: False, timeout=0.2, clients=Clients(broker)
    )

    assert offsets(records["a"]) == [(0, 0), (0, 1)]


def test_a_tombstone_reads_as_none() -> None:
    broker = Broker({"t": [Log([0, 1], tombstones={1})]})

    found = list(scan_topic(SETTINGS, "t", since=None, until=None, clients=Clients(broker)))

    assert [r.value for r in found] == [b"0", None]


def test_a_pass_without_ends_reads_each_partition_to_its_eof() -> None:
    # listed as 1 (Tansu: the last batch's base + 1), read from inside that batch
    broker = Broker({"t": [Log([0, 1, 2, 3, 4], listed_short_by=4), Log([0]), Log()]})
    with PartitionReader(SETTINGS, "test", clients=Clients(broker)) as reader:
        starts = {("t", 0): 3, ("t", 1): 1, ("t", 2): 0}  # 1 and 2: nothing left to read

        found = list(reader.read_to_end(starts))

    assert offsets(found) == [(0, 3), (0, 4)]


def test_a_strict_reader_raises_on_any_error() -> None:
    broker = Broker({"t": [Log([0, 1])]})
    broker.errors = [KafkaError(KafkaError._TRANSPORT)]
    strict = PartitionReader(SETTINGS, "test", clients=Clients(broker), strict=True)
    with strict, pytest.raises(KafkaException):
        list(strict.read_to_end({("t", 0): 0}))


def test_follow_reads_on_past_each_end_until_stopped() -> None:
    broker = Broker({"t": [Log([0]), Log()]})
    ticks = 0

    def more(broker: Broker) -> None:
        nonlocal ticks
        ticks += 1
        if ticks % 3 == 0:  # now and then a record, after ends were reported
            broker.topics["t"][1].stamps.append(0)

    broker.tick = more
    stop = threading.Event()
    found = []
    with PartitionReader(SETTINGS, "test", clients=Clients(broker)) as reader:
        for record in reader.follow({("t", 0): 1, ("t", 1): OFFSET_BEGINNING}, stop):
            found.append(record)
            if len(found) == 3:
                stop.set()

    assert offsets(found) == [(1, 0), (1, 1), (1, 2)]
    assert all(consumer.closed for consumer in broker.consumers)


def test_an_end_listed_while_the_leader_moves_is_asked_again_and_other_errors_raise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    moving = [
        KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION),
        KafkaError(KafkaError.LEADER_NOT_AVAILABLE),
    ]
    broker = Broker({"t": [Log([0, 1, 2])]}, listing_errors=list(moving))

    with PartitionReader(SETTINGS, "test", clients=Clients(broker)) as reader:
        assert reader.ends(["t"]) == {("t", 0): 3}
    assert not broker.listing_errors

    broker.listing_errors = [KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)]
    with (
        PartitionReader(SETTINGS, "test", clients=Clients(broker)) as reader,
        pytest.raises(KafkaException, match="AUTHORIZATION"),
    ):
        reader.ends(["t"])

    # a leader that never comes: raised once the request time is spent, not retried forever
    monkeypatch.setattr(reading, "READ_REQUEST_TIMEOUT_S", 0.3)
    broker.listing_errors = [KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)] * 100
    with (
        PartitionReader(SETTINGS, "test", clients=Clients(broker)) as reader,
        pytest.raises(KafkaException, match="NOT_LEADER"),
    ):
        reader.ends(["t"])
    assert 90 < len(broker.listing_errors) < 100
