"""Read topics from the beginning with a stock Kafka client, as any downstream consumer would."""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from loyalty_streams.kafka.clients import reader_config
from loyalty_streams.settings import Settings


@dataclass(frozen=True, slots=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: datetime | None = None
    """The record's Kafka timestamp (UTC), when the reader took it (`topic_scan` does)."""


Records = dict[str, list[ReadRecord]]


def read_topics(
    settings: Settings,
    topics: Iterable[str],
    *,
    until: Callable[[Records], bool],
    timeout: float,
) -> Records:
    """Every record of `topics` from offset 0 until `until(records)` holds or `timeout` passes.

    Partitions are assigned, not subscribed: no group join, so reading starts at once (a join
    can be held for seconds by a broker) and nothing is shared with the workers' groups.
    """
    names = list(topics)
    records: Records = {name: [] for name in names}
    consumer = Consumer(reader_config(settings, "reader", **{"enable.partition.eof": "false"}))
    try:
        metadata = consumer.list_topics(timeout=10).topics
        consumer.assign(
            [
                TopicPartition(name, partition, OFFSET_BEGINNING)
                for name in names
                for partition in metadata[name].partitions
            ]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                if message.error() is not None:
                    continue
                value = message.value()
                records[str(message.topic())].append(
                    ReadRecord(
                        topic=str(message.topic()),
                        partition=int(message.partition() or 0),
                        offset=int(message.offset() or 0),
                        key=message.key(),
                        value=value if isinstance(value, bytes) else b"",
                    )
                )
    finally:
        consumer.close()
    return records
