"""Bring owned partitions of the player table up to date from their changelog partitions (and
the players' history from the history topic's).

Reading stops at the end each fetch reports (librdkafka's partition EOF, from the fetch's high
watermark), never at an offset asked for beforehand: that is exact on every Kafka-compatible
broker, including ones whose ListOffsets answer lags the log.
"""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from loyalty_streams.kafka.clients import KafkaClients, reader_config
from loyalty_streams.kafka.topics import PLAYERS_CHANGELOG, PLAYERS_HISTORY
from loyalty_streams.settings import Settings
from loyalty_streams.state.retention import history_kept_from
from loyalty_streams.state.store import PlayerTable

log = logging.getLogger(__name__)

WRITE_EVERY = 20_000
"""Records per RocksDB batch while restoring: bounded memory, few writes."""


def restore(
    settings: Settings, table: PlayerTable, partitions: Iterable[int], clients: KafkaClients
) -> int:
    """Replay each partition's changelog, and its history topic's partition, after the offsets
    its store holds, with a reader from `clients`; returns records read. History rows past
    retention are left out: the topic forgets by when a row was written, the store by the time
    it records."""
    stores = {number: table.partition(number) for number in partitions}
    if not stores:
        return 0
    consumer = clients.consumer(reader_config(settings, "restore"))
    starts = {
        (topic, number): offset
        for number, store in stores.items()
        for topic, offset in (
            (PLAYERS_CHANGELOG, store.changelog_offset),
            (PLAYERS_HISTORY, store.history_offset),
        )
    }
    consumer.assign([TopicPartition(topic, n, offset + 1) for (topic, n), offset in starts.items()])
    pending: dict[int, dict[bytes, bytes | None]] = {number: {} for number in stores}
    last = dict(starts)
    reading = set(starts)
    forgotten = history_kept_from(datetime.now(UTC))
    read = 0
    try:
        while reading:
            for message in consumer.consume(10_000, 1.0):
                at = (str(message.topic()), int(message.partition() or 0))
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        reading.discard(at)
                        continue
                    raise KafkaException(error)
                key, value = message.key(), message.value()
                if key is not None and not (at[0] == PLAYERS_HISTORY and key < forgotten(key)):
                    pending[at[1]][key] = value if isinstance(value, bytes) else None
                last[at] = int(message.offset() or 0)
                read += 1
            for number, records in pending.items():
                done = not {(PLAYERS_CHANGELOG, number), (PLAYERS_HISTORY, number)} & reading
                if len(records) >= WRITE_EVERY or (records and done):
                    changelog, history = (
                        last[PLAYERS_CHANGELOG, number],
                        last[PLAYERS_HISTORY, number],
                    )
                    stores[number].write(records, changelog, history)
                    pending[number] = {}
    finally:
        consumer.close()
    log.info("restored %d changelog and history records into partitions %s", read, sorted(stores))
    return read
