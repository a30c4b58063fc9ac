"""The player table: one store per owned partition, and the log offsets it holds.

`PartitionStore` is what the runtime needs of a partition's store, and all it depends on;
`RocksDBStore` is the one implementation, a RocksDB database per partition. A partition's store
can always be rebuilt from its changelog partition and its history topic's: it records the
offset of the last record of each it reflects, so a worker that gets the partition (after a
restart, a crash or a rebalance) reads both from there to the end and is current. Writes land
in one atomic batch per checkpoint, with those offsets and the time, so "how old is this answer"
can be said even when Kafka is unreachable. What the keys are: `state.keyspace`.
"""

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson
from rocksdict import BlockBasedOptions, Options, Rdict, WriteBatch, WriteOptions

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.state.keyspace import CHECKPOINT_KEY, FIRST_PLAYER_KEY

BLOOM_BITS_PER_KEY = 10
"""Bloom filters (about 1 % false positives) answer most reads of an absent key without a disk
block: every event asks whether its id was applied before, and nearly always it was not
(why: docs/decisions/store-bloom-filters.md)."""

MEMTABLE_BLOOM_RATIO = 0.1
"""A whole-key bloom filter over the memtable too, a tenth of its size: the SST filters above do
not cover the newest records, which a read of an absent key would search in the memtable's skip
list (why: docs/decisions/store-bloom-filters.md)."""

COMPACT_ON_DELETIONS = (128, 64, 0.5)
"""A file with 64 deletions in any 128 keys in a row (or half of its entries deletions) is
compacted soon: fired timers and forgotten ids are deleted in runs, and an iterator walks
every deleted key it meets until compaction drops them."""


class PartitionStore(Protocol):
    """The records of one partition of the player table, as the runtime reads and writes them.

    Keys and values are bytes (`state.keyspace` says which); reads see what the last `write`
    stored, and the offsets say which changelog and history records that reflects (-1: none)."""

    @property
    def changelog_offset(self) -> int:
        """The offset of the last changelog record the store reflects."""
        ...

    @property
    def history_offset(self) -> int:
        """The offset of the last record of the history topic's partition the store holds."""
        ...

    @property
    def checkpointed_at(self) -> datetime | None:
        """When the store was last written (UTC); None before its first write."""
        ...

    def get(self, key: bytes) -> bytes | None:
        """A key's value, None when the store does not hold it."""
        ...

    def write(
        self,
        records: Mapping[bytes, bytes | None],
        changelog_offset: int,
        history_offset: int = -1,
    ) -> None:
        """Store records (None deletes) and the offsets of the changelog and of the history topic
        they reach, atomically; an offset below the one held leaves it."""
        ...

    def items(
        self, prefix: bytes = b"", start: bytes | None = None, end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Records whose key starts with `prefix`, in key order, from `start` (inclusive) and
        below `end` when given; without a prefix, every player record
        (`keyspace.FIRST_PLAYER_KEY` on)."""
        ...

    def newest_first(
        self, prefix: bytes, before: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Records whose key starts with `prefix`, highest key first, from just below `before`."""
        ...

    def close(self) -> None:
        """Flush and close; the store is not used after."""
        ...


class RocksDBStore:
    """A partition's store (`PartitionStore`) as a RocksDB database in its own directory."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._db = Rdict(str(path), options=_options())
        self._db.set_write_options(_write_options())
        raw = self._db.get(CHECKPOINT_KEY)
        meta = orjson.loads(raw) if raw is not None else {}
        self.changelog_offset: int = meta.get("changelog_offset", -1)
        self.history_offset: int = meta.get("history_offset", -1)
        self.checkpointed_at: datetime | None = (
            datetime.fromisoformat(meta["at"]) if "at" in meta else None
        )

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def write(
        self,
        records: Mapping[bytes, bytes | None],
        changelog_offset: int,
        history_offset: int = -1,
    ) -> None:
        now = datetime.now(UTC)
        batch = WriteBatch(raw_mode=True)
        for key, value in records.items():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if changelog_offset > self.changelog_offset:
            self.changelog_offset = changelog_offset
        if history_offset > self.history_offset:
            self.history_offset = history_offset
        meta = {
            "changelog_offset": self.changelog_offset,
            "history_offset": self.history_offset,
            "at": now.isoformat(),
        }
        batch.put(CHECKPOINT_KEY, orjson.dumps(meta))
        self._db.write(batch)
        self.checkpointed_at = now

    def items(
        self, prefix: bytes = b"", start: bytes | None = None, end: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        first = start if start is not None and start > prefix else prefix or FIRST_PLAYER_KEY
        for key, value in self._db.items(from_key=first):
            if not isinstance(key, bytes) or (end is not None and key >= end):
                return
            if prefix and not key.startswith(prefix):
                return
            yield key, value

    def newest_first(
        self, prefix: bytes, before: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.items(backwards=True, from_key=before or prefix + b"\xff"):
            if key == before:
                continue
            if not (isinstance(key, bytes) and key.startswith(prefix)):
                return
            yield key, value

    def close(self) -> None:
        self._db.close()


def _options() -> Options:
    options = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)
    options.set_block_based_table_factory(table)
    options.set_memtable_whole_key_filtering(True)
    options.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO)
    options.add_compact_on_deletion_collector_factory(*COMPACT_ON_DELETIONS)
    return options


def _write_options() -> WriteOptions:
    """No write-ahead log: the changelog is the store's log.

    Without it, a crash loses what was written since the last memtable flush, and always as a
    whole suffix of batches: each batch carries its changelog offset, so the store reopens at an
    older offset that agrees with its records, and the restore replays the changelog from there
    (Kafka Streams runs its RocksDB stores the same way). Closing the store flushes it. Saves
    copying and checksumming every record a second time at each checkpoint.
    """
    options = WriteOptions()
    # rocksdict's stub declares a method; at run time it is a property
    options.disable_wal = True  # type: ignore[method-assign, assignment]
    return options


class PlayerTable:
    """The partitions of the player table this worker has opened, under one data directory
    (`RocksDBStore`s, one directory each)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stores: dict[int, PartitionStore] = {}

    def partition(self, number: int) -> PartitionStore:
        """The store of a partition, opened on first use (and kept open for lookups)."""
        store = self._stores.get(number)
        if store is None:
            store = self._stores[number] = RocksDBStore(self.directory / f"partition-{number}")
        return store

    def opened(self, number: int) -> PartitionStore | None:
        return self._stores.get(number)

    def player(self, number: int, key: str) -> PlayerState | None:
        """A player's stored record, if this worker has the partition open and the player."""
        store = self._stores.get(number)
        raw = None if store is None else store.get(key.encode())
        return None if raw is None else PlayerState.from_json(raw)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
