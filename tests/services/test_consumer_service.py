"""The side services' shared skeleton on an in-memory consumer: what it hands a policy, what it
commits, when it stops; and the Redis mirror's choice of what to write from a batch."""

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from loyalty_streams.kafka.clients import Config, KafkaClients
from loyalty_streams.services.consumer_service import ConsumerService
from loyalty_streams.services.redis_mirror import players
from loyalty_streams.state.keyspace import SEEN_PREFIX


@dataclass(frozen=True)
class Message:
    partition_: int
    offset_: int
    key_: bytes | None = b"k"
    value_: bytes | None = b"v"
    error_: KafkaError | None = None

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def error(self) -> KafkaError | None:
        return self.error_


@dataclass
class Consumer:
    batches: list[list[Message]]
    stop: threading.Event
    subscribed: list[str] = field(default_factory=list)
    commits: list[list[tuple[int, int]]] = field(default_factory=list)
    closed: bool = False
    fail_commit: bool = False

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed = topics

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if not self.batches:
            self.stop.set()
            return []
        return self.batches.pop(0)[:num_messages]

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        if self.fail_commit:
            raise KafkaException(KafkaError(KafkaError._NO_OFFSET))
        self.commits.append(sorted((tp.partition, tp.offset) for tp in offsets))

    def close(self) -> None:
        self.closed = True


class Clients(KafkaClients):
    def __init__(self, consumer: Consumer) -> None:
        self.made = consumer

    def consumer(self, config: Config) -> Any:
        return self.made


@dataclass
class Policy:
    """Finishes at most `finish` records of each batch."""

    finish: int
    seen: list[list[int]] = field(default_factory=list)

    def handle(self, records: Sequence[Any]) -> int:
        self.seen.append([record.offset() for record in records])
        return min(self.finish, len(records))


def service(consumer: Consumer, batch: int = 10) -> ConsumerService:
    config = {"group.id": "g"}
    return ConsumerService(config, "t", batch, 0.01, consumer.stop, Clients(consumer))


def test_it_commits_past_the_last_finished_record_of_each_partition() -> None:
    stop = threading.Event()
    eof = KafkaError(KafkaError._PARTITION_EOF)
    batches = [[Message(0, 5), Message(1, 7), Message(0, 6), Message(0, -1, error_=eof)]]
    consumer = Consumer(batches, stop)
    policy = Policy(finish=10)

    service(consumer).run(policy)

    assert consumer.subscribed == ["t"]
    assert policy.seen == [[5, 7, 6]]  # the partition's end is not a record
    assert consumer.commits == [[(0, 7), (1, 8)]]
    assert consumer.closed


def test_only_the_finished_records_are_committed_and_none_when_none_finished() -> None:
    stop = threading.Event()
    consumer = Consumer([[Message(0, 1), Message(0, 2)], [Message(0, 2)]], stop)
    policy = Policy(finish=1)

    service(consumer).run(policy)
    assert consumer.commits == [[(0, 2)], [(0, 3)]]

    consumer = Consumer([[Message(0, 1)]], threading.Event())
    service(consumer).run(Policy(finish=0))
    assert consumer.commits == []


def test_a_failed_commit_is_not_fatal_and_a_fatal_error_is() -> None:
    consumer = Consumer([[Message(0, 1)], [Message(0, 2)]], threading.Event(), fail_commit=True)
    policy = Policy(finish=1)
    service(consumer).run(policy)
    assert policy.seen == [[1], [2]]

    fatal = KafkaError(KafkaError._FATAL, fatal=True)
    consumer = Consumer([[Message(0, -1, error_=fatal)]], threading.Event())
    with pytest.raises(KafkaException):
        service(consumer).run(Policy(finish=1))
    assert consumer.closed


def test_a_set_stop_ends_the_service_before_it_polls() -> None:
    stop = threading.Event()
    stop.set()
    consumer = Consumer([[Message(0, 1)]], stop)
    policy = Policy(finish=1)
    service(consumer).run(policy)
    assert policy.seen == [] and consumer.closed


def test_the_mirror_writes_each_players_newest_value_and_no_bookkeeping() -> None:
    records = [
        Message(0, 1, b"brand:a", b"1"),
        Message(0, 2, SEEN_PREFIX + b"evt", b"{}"),
        Message(0, 3, b"brand:b", b"2"),
        Message(0, 4, b"brand:a", b"3"),
        Message(0, 5, b"brand:b", None),
        Message(0, 6, None, b"x"),
    ]
    assert players(records) == {b"brand:a": b"3", b"brand:b": None}
