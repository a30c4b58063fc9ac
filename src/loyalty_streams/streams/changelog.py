"""Bring owned partitions of the player table up to date from their changelog partitions.

Reading stops at the end each fetch reports (librdkafka's partition EOF, from the fetch's high
watermark), never at an offset asked for beforehand: that is exact on every Kafka-compatible
broker, including ones whose ListOffsets answer lags the log.
"""

import logging
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from loyalty_streams.kafka_config import kafka_client_config
from loyalty_streams.settings import Settings
from loyalty_streams.streams.state_store import PlayerTable
from loyalty_streams.streams.topics import PLAYERS_CHANGELOG

log = logging.getLogger(__name__)

WRITE_EVERY = 20_000
"""Records per RocksDB batch while restoring: bounded memory, few writes."""


def restore(settings: Settings, table: PlayerTable, partitions: Iterable[int]) -> int:
    """Replay each partition's changelog after the offset its store holds; returns records read."""
    stores = {number: table.partition(number) for number in partitions}
    if not stores:
        return 0
    consumer = Consumer(
        {
            **kafka_client_config(settings),
            "group.id": f"{settings.app_id}-restore-{uuid.uuid4()}",
            "enable.auto.commit": "false",
            "enable.partition.eof": "true",
        }
    )
    consumer.assign(
        [
            TopicPartition(PLAYERS_CHANGELOG, number, store.changelog_offset + 1)
            for number, store in stores.items()
        ]
    )
    pending: dict[int, dict[bytes, bytes | None]] = {number: {} for number in stores}
    last = {number: store.changelog_offset for number, store in stores.items()}
    open_partitions = set(stores)
    read = 0
    try:
        while open_partitions:
            for message in consumer.consume(10_000, 1.0):
                number = int(message.partition() or 0)
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        open_partitions.discard(number)
                        continue
                    raise KafkaException(error)
                key, value = message.key(), message.value()
                if key is not None:
                    pending[number][key] = value if isinstance(value, bytes) else None
                last[number] = int(message.offset() or 0)
                read += 1
            for number, records in pending.items():
                if len(records) >= WRITE_EVERY or (records and number not in open_partitions):
                    stores[number].write(records, last[number])
                    pending[number] = {}
    finally:
        consumer.close()
    log.info("restored %d changelog records into partitions %s", read, sorted(stores))
    return read
