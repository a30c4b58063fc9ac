"""The archive's files: where a record goes, what a file is named and holds, how a roll's files are
written, and what a directory already holds.

Layout, Hive-style, so any Parquet reader (pyarrow, DuckDB, Spark) prunes by brand and day:

    <archive dir>/brand_id=<brand>/day=<YYYY-MM-DD>/part-<partition>-<first>-<last>.parquet

- `brand_id=<brand>`: the event's `brand_id`, percent-encoded (`urllib.parse.quote`, nothing
  kept but letters, digits and `_.-~`), so any id is one directory name; pyarrow decodes it
  back (`segment_encoding="uri"`, its default). A record whose value does not decode as a
  `PlayerEvent` is kept too, under `brand_id=__HIVE_DEFAULT_PARTITION__` (Hive's and pyarrow's
  name for null), with every decoded column null.
- `day=<YYYY-MM-DD>`: the UTC date of the event's `occurred_at` (of an undecodable record: of
  its record timestamp). UTC, not the brand's day: a brand's zone is programme data that can
  change between versions, and a reader asking for an instant range finds the days to read
  from the instants alone.
- the name: the Kafka partition and the first and last offsets of the roll that wrote it
  (`Segment`), zero-padded so names sort by offset. A roll of one partition writes one file per
  brand and day among its records, all with the same name; a roll written again from the same
  offsets (after a crash between its rename and its commit) replaces its files instead of
  adding copies.

Columns (`SCHEMA`): `topic`, `partition`, `offset`, `timestamp` (the Kafka record's, ms, UTC;
null when it has none), `key` and `value` (the record's bytes; null for none), then what the
value says when it decodes: `brand_id`, `player_id`, `event_id`, `type` and `occurred_at` (µs,
UTC). Rows are in offset order. Files are zstd-compressed, one row group each.
"""

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from loyalty_streams.domain.events import PlayerEvent, decode_player_event
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""A partition directory's value for null (Hive's, and pyarrow's `null_fallback`)."""
BRAND_PREFIX = "brand_id="
DAY_PREFIX = "day="
TEMPORARY_PREFIX = "."
"""A file being written starts with this (and ends `.tmp`): Parquet readers skip such names."""
MAX_NAME_BYTES = 255
"""The longest directory name most file systems take."""
COMPRESSION = "zstd"

NAME = re.compile(r"part-(\d+)-(\d+)-(\d+)\.parquet")
"""A finished file's name: partition, first offset, last offset."""

SCHEMA = pa.schema(
    [
        ("topic", pa.string()),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("brand_id", pa.string()),
        ("player_id", pa.string()),
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
    ]
)
"""The columns of every file, in this order."""
DICTIONARY_COLUMNS = ["topic", "brand_id", "player_id", "type"]
"""Columns with few distinct values, dictionary-encoded (the others are mostly unique)."""
DAY_PARTITIONING = pa.schema([("day", pa.date32())])
"""The partition field below a brand's directory, for `pyarrow.dataset`."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def group_id(settings: Settings) -> str:
    """The archive's consumer group, `<app_id>-archive`: its committed offset of a partition is
    where the files stop holding the partition whole (everything before it is in them)."""
    return f"{settings.app_id}-archive"


@dataclass(frozen=True, slots=True)
class ArchivedRecord:
    """One record of `casino.player-events` as a file keeps it: where it was, its bytes, and what
    its value says when it decodes as a `PlayerEvent` (every decoded field None when not)."""

    partition: int
    offset: int
    timestamp_ms: int | None
    """The Kafka record's timestamp, ms since 1970 (UTC); None when it has none."""
    key: bytes | None
    value: bytes | None
    brand_id: str | None = None
    player_id: str | None = None
    event_id: str | None = None
    type: str | None = None
    occurred_at: datetime | None = None
    """The event's time (UTC)."""

    @property
    def size(self) -> int:
        """Bytes of key and value: what a roll's size limit counts."""
        return len(self.key or b"") + len(self.value or b"")

    @property
    def day(self) -> date | None:
        """The day directory it goes in: the UTC date of `occurred_at`, else of its timestamp."""
        if self.occurred_at is not None:
            return self.occurred_at.astimezone(UTC).date()
        if self.timestamp_ms is not None:
            return (_EPOCH + timedelta(milliseconds=self.timestamp_ms)).date()
        return None


def archived(
    partition: int, offset: int, timestamp_ms: int | None, key: bytes | None, value: bytes | None
) -> ArchivedRecord:
    """A record as the archive keeps it: its value decoded with `decode_player_event` for the
    decoded columns; one that does not decode (whatever it holds: this never raises) has them
    all None. So has an event whose brand cannot be a directory name (over `MAX_NAME_BYTES`
    once encoded), logged: it is kept, under the null brand."""
    event: PlayerEvent | None = None
    if value is not None:
        try:
            event = decode_player_event(value)
        except Exception:  # whatever a record holds, it is archived, not refused
            event = None
    if event is not None and len(brand_directory(event.brand_id).encode()) > MAX_NAME_BYTES:
        log.warning("partition %d offset %d: brand id too long for a directory", partition, offset)
        event = None
    if event is not None:
        return ArchivedRecord(
            partition,
            offset,
            timestamp_ms,
            key,
            value,
            event.brand_id,
            event.player_id,
            event.event_id,
            event.type,
            event.occurred_at,
        )
    return ArchivedRecord(partition, offset, timestamp_ms, key, value)


@dataclass(frozen=True, slots=True, order=True)
class Segment:
    """The records of one partition from `first` to `last` (offsets, both included) that one
    roll wrote: the name of each of its files."""

    partition: int
    first: int
    last: int

    @property
    def name(self) -> str:
        return f"part-{self.partition:05d}-{self.first:019d}-{self.last:019d}.parquet"

    @classmethod
    def of(cls, name: str) -> "Segment | None":
        """The segment a file name names; None for any other name (a temporary file, say)."""
        found = NAME.fullmatch(name)
        if found is None:
            return None
        partition, first, last = (int(group) for group in found.groups())
        return cls(partition, first, last)


def brand_directory(brand_id: str | None) -> str:
    """The directory name of a brand (None: the undecodable records')."""
    return BRAND_PREFIX + (NULL_PARTITION if brand_id is None else quote(brand_id, safe=""))


def day_directory(day: date | None) -> str:
    return DAY_PREFIX + (NULL_PARTITION if day is None else day.isoformat())


def write_roll(root: Path, segments: Mapping[int, Sequence[ArchivedRecord]]) -> list[Path]:
    """Write one roll durably: per partition, its records (in offset order, from one partition)
    as the files of one `Segment`, one per brand and day.

    Every file is written under a temporary name in its directory and fsynced; only when all
    are, each is renamed to its name (replacing a file of the same name) and the directories
    changed are fsynced, so once this returns the files survive a crash, and a crash before
    leaves no finished file of the roll (a crash among the renames: some; the roll is written
    again from the same offsets, see `services.archive`). Returns the files' paths. Raises
    `OSError` (nothing is renamed then, and the temporary files are removed).
    """
    staged: list[tuple[Path, Path]] = []
    changed: set[Path] = set()
    try:
        for partition, records in segments.items():
            if not records:
                continue
            segment = Segment(partition, records[0].offset, records[-1].offset)
            for (brand_id, day), rows in _by_brand_and_day(records).items():
                folder = root / brand_directory(brand_id) / day_directory(day)
                changed |= _make_directories(folder)
                temporary = folder / f"{TEMPORARY_PREFIX}{segment.name}.tmp"
                staged.append((temporary, folder / segment.name))
                _write_file(temporary, rows)
    except BaseException:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, final in staged:
        temporary.replace(final)
        changed.add(final.parent)
    for folder in sorted(changed):
        _fsync_directory(folder)
    return [final for _, final in staged]


def _by_brand_and_day(
    records: Iterable[ArchivedRecord],
) -> dict[tuple[str | None, date | None], list[ArchivedRecord]]:
    groups: dict[tuple[str | None, date | None], list[ArchivedRecord]] = {}
    for record in records:
        groups.setdefault((record.brand_id, record.day), []).append(record)
    return groups


def _make_directories(folder: Path) -> set[Path]:
    """Create `folder` and whatever of its parents is missing; gives the directories whose
    entries changed (the parents of those created), to be fsynced."""
    missing = []
    at = folder
    while not at.exists():
        missing.append(at)
        at = at.parent
    for created in reversed(missing):
        created.mkdir(exist_ok=True)
    return {created.parent for created in missing}


def _write_file(path: Path, rows: Sequence[ArchivedRecord]) -> None:
    table = pa.table(
        {
            "topic": pa.array([PLAYER_EVENTS] * len(rows), pa.string()),
            "partition": pa.array([row.partition for row in rows], pa.int32()),
            "offset": pa.array([row.offset for row in rows], pa.int64()),
            "timestamp": pa.array(
                [row.timestamp_ms for row in rows], SCHEMA.field("timestamp").type
            ),
            "key": pa.array([row.key for row in rows], pa.binary()),
            "value": pa.array([row.value for row in rows], pa.binary()),
            "brand_id": pa.array([row.brand_id for row in rows], pa.string()),
            "player_id": pa.array([row.player_id for row in rows], pa.string()),
            "event_id": pa.array([row.event_id for row in rows], pa.string()),
            "type": pa.array([row.type for row in rows], pa.string()),
            "occurred_at": pa.array(
                [row.occurred_at for row in rows], SCHEMA.field("occurred_at").type
            ),
        },
        schema=SCHEMA,
    )
    with path.open("wb") as file:
        pq.write_table(table, file, compression=COMPRESSION, use_dictionary=DICTIONARY_COLUMNS)
        file.flush()
        os.fsync(file.fileno())


def _fsync_directory(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(slots=True)
class Holdings:
    """What an archive directory holds: its finished files' segments, and temporary files a
    crash left behind."""

    segments: dict[int, set[Segment]] = field(default_factory=dict)
    """The segments with at least one file, by partition."""
    temporaries: list[Path] = field(default_factory=list)

    def last_offset(self, partition: int) -> int | None:
        """The highest offset a file of `partition` covers; None when it has none."""
        found = self.segments.get(partition)
        return max(segment.last for segment in found) if found else None


def holdings(root: Path) -> Holdings:
    """Every file under `root` that the layout names (`brand_id=*/day=*/*`), by what it is. An
    absent `root` holds nothing. Raises `OSError` when a directory cannot be read."""
    found = Holdings()
    if not root.is_dir():
        return found
    for brand in _subdirectories(root, BRAND_PREFIX):
        for day in _subdirectories(brand, DAY_PREFIX):
            with os.scandir(day) as entries:
                for entry in entries:
                    if entry.name.startswith(TEMPORARY_PREFIX) and entry.name.endswith(".tmp"):
                        found.temporaries.append(Path(entry.path))
                    elif (segment := Segment.of(entry.name)) is not None:
                        found.segments.setdefault(segment.partition, set()).add(segment)
    return found


def _subdirectories(folder: Path, prefix: str) -> list[Path]:
    with os.scandir(folder) as entries:
        return [
            Path(entry.path)
            for entry in entries
            if entry.name.startswith(prefix) and entry.is_dir(follow_symlinks=False)
        ]
