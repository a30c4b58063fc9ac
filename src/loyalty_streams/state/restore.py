"""Bring owned partitions of the player table up to date from their changelog partitions (and
the players' history from the history topic's).

Each partition is read with `kafka.reading.PartitionReader`, strict, from the offsets its store
holds to the end a fetch reports (partition EOF), never to an offset listed beforehand: that is
exact on every Kafka-compatible broker, including ones whose ListOffsets answer lags the log.
"""

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from loyalty_streams.kafka.clients import KafkaClients
from loyalty_streams.kafka.reading import Partition, PartitionReader
from loyalty_streams.kafka.topics import PLAYERS_CHANGELOG, PLAYERS_HISTORY
from loyalty_streams.settings import Settings
from loyalty_streams.state.retention import history_kept_from
from loyalty_streams.state.store import PlayerTable

log = logging.getLogger(__name__)

RESTORE_WRITE_EVERY = 20_000
"""Records per RocksDB batch while restoring: bounded memory, few writes."""


def restore(
    settings: Settings, table: PlayerTable, partitions: Iterable[int], clients: KafkaClients
) -> int:
    """Replay each partition's changelog, and its history topic's partition, after the offsets
    its store holds, with a reader from `clients`; returns records read. A tombstone deletes its
    key. History rows past retention are left out: the topic forgets by when a row was written,
    the store by the time it records. Raises `KafkaException` on any consumer error, and
    `TimeoutError` when the cluster sends nothing for `kafka.reading.STALL_S`."""
    stores = {number: table.partition(number) for number in partitions}
    if not stores:
        return 0
    last: dict[Partition, int] = {
        (topic, number): offset
        for number, store in stores.items()
        for topic, offset in (
            (PLAYERS_CHANGELOG, store.changelog_offset),
            (PLAYERS_HISTORY, store.history_offset),
        )
    }
    starts = {at: offset + 1 for at, offset in last.items()}
    pending: dict[int, dict[bytes, bytes | None]] = {number: {} for number in stores}
    forgotten = history_kept_from(datetime.now(UTC))
    read = 0

    def write(number: int) -> None:
        changelog, history = last[PLAYERS_CHANGELOG, number], last[PLAYERS_HISTORY, number]
        stores[number].write(pending[number], changelog, history)
        pending[number] = {}

    with PartitionReader(settings, "restore", clients=clients, strict=True) as reader:
        for record in reader.read_to_end(starts):
            key, number = record.key, record.partition
            if key is not None and not (record.topic == PLAYERS_HISTORY and key < forgotten(key)):
                pending[number][key] = record.value
            last[record.topic, number] = record.offset
            read += 1
            if len(pending[number]) >= RESTORE_WRITE_EVERY:
                write(number)
    for number, records in pending.items():
        if records:
            write(number)
    log.info("restored %d changelog and history records into partitions %s", read, sorted(stores))
    return read
