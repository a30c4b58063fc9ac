"""A brand's inbound events over a time range, for what-if replays: the archive's files, then the
topic's unarchived tail, each record once, in offset order per partition.

Where a partition's records come from. The archive group's committed offset of the partition
(`files.group_id`) is where its files stop holding it whole: the archive commits a roll only once
its files are durable. So records before that offset come from the files, and records from it
to the partition's end at the start of the read come from the topic (`kafka.reading`). Files at
or past the committed offset (a roll renamed and not committed yet, perhaps only part of it)
are ignored; a partition the archive never committed is read from the topic alone. The position
is read before the files are listed, so a roll committed meanwhile leaves no gap.

The brand's files (`brand_id=<brand>/day=*`) are found with `pyarrow.dataset`, only on the days
the range touches (a partition filter on `day`: no other file is opened), and each is read
whole and kept to the rows with `since <= occurred_at < until` and an offset before the
committed one. A partition's files are read segment by segment in offset order (a segment: the
files one roll wrote, one per day), a few ahead in a thread; segments that overlap (a roll
written twice from different offsets) are merged by offset, and an offset already given is
dropped, so every record comes once whatever the directory holds twice. Values are decoded
with `decode_player_event`; one that does not decode (the contract changed since it was
archived) is skipped and counted in a log line. The archive's undecodable records are under
the null brand, never read here.

Order: each partition's records in offset order, the archive's before the tail's; partitions
one after the other from the files (0, 1, ...), then interleaved from the topic. A player's
records are on one partition, so each player's events come in the order they were published.

Records are decoded only: the boundary's other checks (the record's key and partition, its
timestamp against `occurred_at`, the brand's programme) are the replay's to make.
"""

import logging
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from heapq import heappop, heappush
from pathlib import Path

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.dataset as ds  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from loyalty_streams.archive.files import (
    DAY_PARTITIONING,
    SCHEMA,
    Segment,
    brand_directory,
    group_id,
)
from loyalty_streams.domain.events import PlayerEvent, decode_player_event
from loyalty_streams.domain.player import SourcePosition
from loyalty_streams.kafka.clients import KafkaClients, group_consumer_config
from loyalty_streams.kafka.reading import READ_REQUEST_TIMEOUT_S, PartitionReader
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

PREFETCH_SEGMENTS = 4
"""Segments read ahead in a thread while the current one is decoded (pyarrow reads and
decompresses without the interpreter's lock)."""

_MICROSECOND = timedelta(microseconds=1)
_DATASET_SCHEMA = pa.unify_schemas([SCHEMA, DAY_PARTITIONING])
_READ = ["offset", "value", "occurred_at"]
"""The columns read: what is given, and what the rows are filtered on."""

Rows = tuple[list[int], list[bytes]]
"""A segment's rows for the brand and range: offsets ascending, and the values at them."""


def history(
    settings: Settings,
    brand_id: str,
    since: datetime | None,
    until: datetime | None,
    clients: KafkaClients | None = None,
    *,
    partitions: Collection[int] | None = None,
) -> Iterator[tuple[SourcePosition, PlayerEvent]]:
    """The events of `brand_id` with `since <= occurred_at < until` (None: that side open), as
    (where the record is, the event): from the archive under `settings.archive_root` and the
    tail of `casino.player-events` (see the module for which, and the order). `partitions`:
    only those partitions' (None: every partition's).

    The read starts at the first `next()`: the archive's position and the topic's ends are taken
    then. Raises ValueError here for a naive `since` or `until`; while iterating, `OSError`
    when a file cannot be read (a day pruned meanwhile, say) and `ValueError` when it is not
    Parquet (pyarrow's `ArrowInvalid`), `LookupError` when the topic does not exist,
    `TimeoutError` or `KafkaException` when the cluster stops answering. `clients` makes the
    Kafka clients (by default librdkafka's).
    """
    for bound in (since, until):
        if bound is not None and bound.utcoffset() is None:
            raise ValueError(f"{bound.isoformat()} has no time zone")
    return _history(settings, brand_id, since, until, clients or KafkaClients(), partitions)


def _history(
    settings: Settings,
    brand_id: str,
    since: datetime | None,
    until: datetime | None,
    clients: KafkaClients,
    partitions: Collection[int] | None = None,
) -> Iterator[tuple[SourcePosition, PlayerEvent]]:
    wanted = _Wanted(brand_id, since, until)
    with PartitionReader(settings, "history", clients=clients) as reader:
        numbers = [
            number
            for _, number in reader.partitions([PLAYER_EVENTS])
            if partitions is None or number in partitions
        ]
        archived = _committed(settings, numbers, clients)
        _check_files(settings, archived)
        ends = reader.ends([PLAYER_EVENTS])
        segments = _segments(settings.archive_root / brand_directory(brand_id), wanted, archived)
        skipped = 0
        with _Prefetch(segments, wanted, archived) as loader:
            for number in sorted(segments):
                where = f"{PLAYER_EVENTS}:{number}"
                for offsets, values in _merged(segments[number], loader.rows):
                    for offset, value in zip(offsets, values, strict=True):
                        try:
                            event = decode_player_event(value)
                        except Exception:  # the contract changed since it was archived
                            skipped += 1
                            continue
                        if event.brand_id == brand_id:
                            yield SourcePosition(where, offset), event
        if skipped:
            log.warning("%d archived records of %s did not decode: skipped", skipped, brand_id)
        starts = {
            (PLAYER_EVENTS, number): archived.get(number, OFFSET_BEGINNING) for number in numbers
        }
        # read from each start even where the end listed is not past it (a broker may list a
        # partition's end short, Tansu does): the fetch reports the real end
        limits = {at: max(end, starts[at] + 1) for at, end in ends.items() if at in starts}
        for record in reader.read_to_end(starts, limits):
            raw = record.value
            if raw is None or not wanted.may_hold(raw):
                continue
            found = _decoded(raw)
            if found is not None and wanted.holds(found):
                yield SourcePosition(f"{record.topic}:{record.partition}", record.offset), found


@dataclass(frozen=True, slots=True)
class _Wanted:
    """The brand and the time range asked for."""

    brand_id: str
    since: datetime | None
    until: datetime | None
    token: bytes = field(init=False, default=b"")
    """The brand's id as a JSON string."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "token", orjson.dumps(self.brand_id))

    def may_hold(self, value: bytes) -> bool:
        """False only for a value that cannot decode to an event of the brand: one that holds
        neither the brand's id as a JSON string nor an escape (which could spell it)."""
        return self.token in value or b"\\" in value

    def holds(self, event: PlayerEvent) -> bool:
        return (
            event.brand_id == self.brand_id
            and (self.since is None or event.occurred_at >= self.since)
            and (self.until is None or event.occurred_at < self.until)
        )

    def days(self) -> tuple[date | None, date | None]:
        """The first and last UTC days the range touches (None: open)."""
        first = None if self.since is None else self.since.astimezone(UTC).date()
        last = None if self.until is None else (self.until - _MICROSECOND).astimezone(UTC).date()
        return first, last

    def rows(self, before: int) -> object:
        """The row filter of a partition's files: in the range, and an offset before `before`."""
        occurred = ds.field("occurred_at")
        moment = SCHEMA.field("occurred_at").type
        condition = ds.field("offset") < before
        if self.since is not None:
            condition &= occurred >= pa.scalar(self.since, moment)
        if self.until is not None:
            condition &= occurred < pa.scalar(self.until, moment)
        return condition


def _check_files(settings: Settings, archived: dict[int, int]) -> None:
    """Raise FileNotFoundError when the archive group has committed offsets but the archive
    directory holds no file at all: the records below them would be read from nowhere (a reader
    given another LOYALTY_ARCHIVE_DIR, or data dir, than the archive's), and a replay would
    silently miss them."""
    root = settings.archive_root
    if archived and not any(root.glob("*/day=*/*.parquet")):
        raise FileNotFoundError(
            f"the archive's group {group_id(settings)!r} has archived up to offsets "
            f"{dict(sorted(archived.items()))}, but {root} holds no archive file: give the "
            "archive's LOYALTY_ARCHIVE_DIR (or LOYALTY_DATA_DIR) and LOYALTY_APP_ID"
        )


def _committed(settings: Settings, numbers: list[int], clients: KafkaClients) -> dict[int, int]:
    """The archive group's committed offset of each partition that has one."""
    consumer = clients.consumer(group_consumer_config(settings, group_id(settings)))
    try:
        asked = [TopicPartition(PLAYER_EVENTS, number) for number in numbers]
        found = consumer.committed(asked, timeout=READ_REQUEST_TIMEOUT_S)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found if tp.offset >= 0}


def _segments(folder: Path, wanted: _Wanted, archived: dict[int, int]) -> dict[int, list["_Files"]]:
    """The brand's files on the days the range touches, as segments per partition, sorted by
    offsets; only segments starting before the partition's committed offset."""
    if not folder.is_dir():
        return {}
    dataset = ds.dataset(
        str(folder),
        schema=_DATASET_SCHEMA,  # given, so finding the files opens none of them
        format="parquet",
        partitioning=ds.partitioning(DAY_PARTITIONING, flavor="hive"),
    )
    first, last = wanted.days()
    day = ds.field("day")
    condition = None
    if first is not None:
        condition = day >= pa.scalar(first, pa.date32())
    if last is not None:
        before = day <= pa.scalar(last, pa.date32())
        condition = before if condition is None else condition & before
    grouped: dict[Segment, list[object]] = {}
    for fragment in dataset.get_fragments(filter=condition):
        segment = Segment.of(Path(fragment.path).name)
        if segment is not None and segment.first < archived.get(segment.partition, 0):
            grouped.setdefault(segment, []).append(fragment)
    segments: dict[int, list[_Files]] = {}
    for segment in sorted(grouped):
        segments.setdefault(segment.partition, []).append(_Files(segment, grouped[segment]))
    return segments


@dataclass(frozen=True, slots=True)
class _Files:
    """A segment's files among those read (one per day)."""

    segment: Segment
    fragments: list[object]


def _load(files: _Files, condition: object) -> Rows:
    """A segment's rows that meet `condition`, in offset order.

    Each file is read whole (three columns of one row group) and filtered here: for files of a
    roll's size this costs half of what a dataset scan with the filter pushed down does."""
    tables = [
        pq.ParquetFile(fragment.path).read(columns=_READ, use_threads=False).filter(condition)  # type: ignore[attr-defined]
        for fragment in files.fragments
    ]
    table = pa.concat_tables(tables)
    if len(tables) > 1:
        table = table.sort_by("offset")
    offsets: list[int] = table.column("offset").to_pylist()
    values: list[bytes] = table.column("value").to_pylist()
    return offsets, values


class _Prefetch:
    """Loads segments in a thread, `PREFETCH_SEGMENTS` ahead of the one asked for, in the order
    they will be asked for (partition, then offsets)."""

    def __init__(
        self, segments: dict[int, list[_Files]], wanted: _Wanted, archived: dict[int, int]
    ) -> None:
        self._order = deque(files for number in sorted(segments) for files in segments[number])
        self._conditions = {number: wanted.rows(archived[number]) for number in segments}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-prefetch")
        self._loading: dict[Segment, Future[Rows]] = {}

    def __enter__(self) -> "_Prefetch":
        return self

    def __exit__(self, *_: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def rows(self, files: _Files) -> Rows:
        """The segment's rows; raises what reading them raised."""
        self._ahead()
        future = self._loading.pop(files.segment, None)
        if future is None:  # asked out of the expected order
            return _load(files, self._conditions[files.segment.partition])
        return future.result()

    def _ahead(self) -> None:
        while self._order and len(self._loading) < PREFETCH_SEGMENTS:
            files = self._order.popleft()
            condition = self._conditions[files.segment.partition]
            self._loading[files.segment] = self._pool.submit(_load, files, condition)


def _merged(segments: list[_Files], rows: Callable[[_Files], Rows]) -> Iterator[Rows]:
    """The rows of one partition's segments (sorted by offsets) in offset order, each offset
    once, as runs of rows. A segment is read when the merge reaches its first offset; one that
    no other reaches into is given whole (one run), overlapping ones are merged row by row."""
    last = -1
    heap: list[tuple[int, int, bytes, Iterator[tuple[int, bytes]]]] = []
    waiting = deque(segments)
    opened = 0
    while heap or waiting:
        if not heap:
            files = waiting.popleft()
            offsets, values = rows(files)
            if not waiting or waiting[0].segment.first > files.segment.last:
                if offsets and offsets[0] <= last:  # what an earlier segment gave is left out
                    kept = [i for i, offset in enumerate(offsets) if offset > last]
                    offsets, values = [offsets[i] for i in kept], [values[i] for i in kept]
                if offsets:
                    last = offsets[-1]
                    yield offsets, values
                continue
            _push(heap, iter(zip(offsets, values, strict=True)), opened)
            opened += 1
        # every segment that may hold a row at or below the least offset waiting is opened
        while heap and waiting and waiting[0].segment.first <= heap[0][0]:
            _push(heap, iter(zip(*rows(waiting.popleft()), strict=True)), opened)
            opened += 1
        if not heap:
            continue
        offset, order, value, rest = heappop(heap)
        _push(heap, rest, order)
        if offset > last:
            last = offset
            yield [offset], [value]


def _push(
    heap: list[tuple[int, int, bytes, Iterator[tuple[int, bytes]]]],
    rows: Iterator[tuple[int, bytes]],
    order: int,
) -> None:
    """Put the next row of `rows` on the heap, if it has one."""
    for offset, value in rows:
        heappush(heap, (offset, order, value, rows))
        return


def _decoded(value: bytes) -> PlayerEvent | None:
    try:
        return decode_player_event(value)
    except Exception:  # whatever a record holds, the read goes on
        return None
