"""Restore (`state.restore`) on an in-memory cluster: what it writes into a partition's store,
from where it reads, what it leaves out."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message

from loyalty_streams.kafka.clients import Config
from loyalty_streams.kafka.topics import PLAYERS_CHANGELOG, PLAYERS_HISTORY
from loyalty_streams.runtime.test_driver import MemoryCluster, MemoryConsumer
from loyalty_streams.settings import Settings
from loyalty_streams.state import restore as restoring
from loyalty_streams.state.keyspace import LOG_DAYS, history_key
from loyalty_streams.state.restore import restore
from loyalty_streams.state.store import PlayerTable

SETTINGS = Settings(bootstrap_servers="memory:0")


def test_a_restore_writes_records_deletes_on_tombstones_and_stores_the_offsets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(restoring, "RESTORE_WRITE_EVERY", 2)  # several RocksDB batches
    cluster = MemoryCluster(partitions=2, owned=[0, 1])
    for key, value in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3"), (b"a", None), (None, b"-")]:
        cluster.append(PLAYERS_CHANGELOG, 0, key, value, None)
    now = datetime.now(UTC)
    old = history_key("aurora-casino", "p1", now - timedelta(days=LOG_DAYS + 1), "o")
    kept = history_key("aurora-casino", "p1", now - timedelta(days=1), "k")
    cluster.append(PLAYERS_HISTORY, 0, old, b"{}", None)
    cluster.append(PLAYERS_HISTORY, 0, kept, b"{}", None)
    table = PlayerTable(tmp_path)

    assert restore(SETTINGS, table, [0, 1], cluster) == 7

    store = table.partition(0)
    assert [store.get(key) for key in (b"a", b"b", b"c")] == [None, b"2", b"3"]
    assert store.get(old) is None and store.get(kept) == b"{}"  # past retention: left out
    assert (store.changelog_offset, store.history_offset) == (4, 1)
    empty = table.partition(1)
    assert (empty.changelog_offset, empty.history_offset) == (-1, -1)

    cluster.append(PLAYERS_CHANGELOG, 0, b"b", None, None)
    assert restore(SETTINGS, table, [0], cluster) == 1  # from the offsets the store holds
    assert store.get(b"b") is None and store.changelog_offset == 5
    table.close()


class TroubledConsumer(MemoryConsumer):
    """A reader that gets a transient error (a broker going away) at every fetch."""

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        error = KafkaError(KafkaError._TRANSPORT)
        return [Message(topic=PLAYERS_CHANGELOG, partition=0, error=error)]


class TroubledCluster(MemoryCluster):
    def consumer(self, config: Config) -> Consumer:
        return cast(Consumer, TroubledConsumer(self, reader=True))


def test_a_restore_raises_on_any_consumer_error(tmp_path: Path) -> None:
    cluster = TroubledCluster(partitions=1, owned=[0])
    cluster.append(PLAYERS_CHANGELOG, 0, b"a", b"1", None)
    table = PlayerTable(tmp_path)

    with pytest.raises(KafkaException):
        restore(SETTINGS, table, [0], cluster)

    assert table.partition(0).get(b"a") is None
    table.close()
