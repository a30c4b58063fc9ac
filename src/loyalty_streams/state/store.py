"""The player table: one store per owned partition, and the log offsets it holds.

`PartitionStore` is what the runtime needs of a partition's store, and all it depends on;
`RocksDBStore` is the one implementation, a RocksDB database per partition. A partition's store
can always be rebuilt from its changelog partition and its history topic's: it records the
offset of the last record of each it reflects, so a worker that gets the partition (after a
restart, a crash or a rebalance) reads both from there to the end and is current. Writes land
in one atomic batch per checkpoint, with those offsets and the time, so "how old is this answer"
can be said even when Kafka is unreachable. What the keys are: `state.keyspace`.

A player record is stored, and logged to the changelog, as `encode_player` writes it: its JSON
with the record's format number first (`PLAYER_FORMAT`, the rule is there); `decode_player` reads
every format up to this one, and a record without a number is format 1.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Protocol

import orjson
from pydantic import Field
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

PLAYER_FORMAT = 2
"""The format of the player records this code writes, the first field of their JSON.

The rule: a reader decodes every format up to its own, and a record without the field is
format 1 (written before records carried it), so existing stores and changelogs still restore
and read. A field added with a default for the records that lack it keeps the format; a change
an older reader would misread (a field removed, renamed or given another meaning) takes the next
number, and `decode_player` (and `player_fields`) convert the formats before it. A format above
its own is refused, never guessed: a newer worker wrote it."""

_FORMAT_FIELD = b'{"format":'
_FORMAT_HEAD = _FORMAT_FIELD + str(PLAYER_FORMAT).encode() + b","


class UnknownFormat(ValueError):
    """A stored player record of a format above `PLAYER_FORMAT`."""


@dataclass(slots=True)
class StoredPlayerRecord(PlayerState):
    """A player record as a partition's store and its changelog hold it: the player's fields and
    the number of the record's format."""

    format: Annotated[
        int,
        Field(
            description=f"The record's format: {PLAYER_FORMAT} in records written now; absent, "
            "so 1, in records written before formats were numbered. A reader takes every format "
            "up to its own and refuses a higher one."
        ),
    ] = 1
    """Declares the changelog's values (`topics/loyalty.players-changelog.json`): records are
    written by `encode_player` and read by `decode_player`, never built from this class."""


def encode_player(state: PlayerState) -> bytes:
    """A player record as stored and logged: `PlayerState.to_json` with `"format"` first."""
    return _FORMAT_HEAD + state.to_json()[1:]


def decode_player(raw: bytes) -> PlayerState:
    """A stored player record, of any format up to `PLAYER_FORMAT`; raises `UnknownFormat` for
    a format above it (and what `PlayerState.from_json` raises for JSON that is no record)."""
    _readable(raw)
    return PlayerState.from_json(raw)


def player_fields(raw: bytes) -> dict[str, Any]:
    """A stored player record's JSON object, for a reader of a few fields that cannot afford
    `decode_player` (why: docs/decisions/census-reads-player-fields.md); of any format up to
    `PLAYER_FORMAT`, its fields as that format names them (the formats before it have the same
    fields: a format that changes one converts it here too). Raises `UnknownFormat` for a format
    above it, `orjson.JSONDecodeError` (a `ValueError`) for bytes that are no JSON."""
    _readable(raw)
    fields: dict[str, Any] = orjson.loads(raw)
    return fields


def _readable(raw: bytes) -> None:
    """Raise `UnknownFormat` if `raw` is a record of a format above `PLAYER_FORMAT`."""
    if raw.startswith(_FORMAT_FIELD):
        number = int(raw[len(_FORMAT_FIELD) : raw.index(b",", len(_FORMAT_FIELD))])
        if number > PLAYER_FORMAT:
            raise UnknownFormat(
                f"a player record of format {number}; this code reads up to {PLAYER_FORMAT}"
            )


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

    def compact(self) -> None:
        """Compact the whole database now, dropping deleted keys (RocksDB otherwise does it in
        the background, a file at a time): for benchmarks that measure a long-running store."""
        self._db.compact_range(None, None)

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
        self._stores: dict[int, RocksDBStore] = {}

    def partition(self, number: int) -> RocksDBStore:
        """The store of a partition, opened on first use (and kept open for lookups); the
        runtime uses it as a `PartitionStore`."""
        store = self._stores.get(number)
        if store is None:
            store = self._stores[number] = RocksDBStore(self.directory / f"partition-{number}")
        return store

    def opened(self, number: int) -> RocksDBStore | None:
        return self._stores.get(number)

    def player(self, number: int, key: str) -> PlayerState | None:
        """A player's stored record, if this worker has the partition open and the player."""
        store = self._stores.get(number)
        raw = None if store is None else store.get(key.encode())
        return None if raw is None else decode_player(raw)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
