"""Read topics from the beginning with a stock Kafka client, as any downstream consumer would."""

import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer

from loyalty_streams.edges.kafka_config import kafka_client_config
from loyalty_streams.settings import Settings


@dataclass(frozen=True, slots=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


Records = dict[str, list[ReadRecord]]


def read_topics(
    settings: Settings,
    topics: Iterable[str],
    *,
    until: Callable[[Records], bool],
    timeout: float,
) -> Records:
    """Every record of `topics` from offset 0 until `until(records)` holds or `timeout` passes.

    A fresh consumer group each call, so nothing is shared with workers or earlier reads.
    """
    names = list(topics)
    records: Records = {name: [] for name in names}
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"loyalty-reader-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": "false",
        }
    )
    try:
        consumer.subscribe(names)
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
