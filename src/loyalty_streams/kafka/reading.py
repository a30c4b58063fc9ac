"""Read partitions to their end, and follow them if asked: the one way the product reads a
topic outside the workers' consumer groups.

- `PartitionReader`: a consumer outside any group (`clients.reader_config`: assigned partitions,
  nothing committed, nothing shared with the workers) that lists where partitions end, reads
  them from given offsets to those ends (restores, catch-ups, scans), and then, if asked, follows
  them (the global tables);
- `scan_topic`: one pass over a whole topic, optionally from a time on (exports, audit queries);
- `read_topics`: passes over topics from the beginning, each going on from where the last one
  stopped, until a condition on what was read holds or a timeout passes (the demo and the
  integration tests, waiting for a worker's outputs).

The stop rule of a pass. At its start each partition's end is its high watermark as ListOffsets
lists it; a partition with nothing in it (high <= low) is not read. A partition is read until
the first of: the broker reports its end (librdkafka's partition EOF, taken from a fetch's high
watermark), or a record at or past its end arrives (appended after the pass started: left out).
The end is raised once, at the partition's first record, to the high watermark that fetch
reported: Tansu lists a partition's end short (the base offset of its last batch + 1), fetch
reports it right (and may so take in what was appended before that first fetch). So a pass
terminates on a topic that others keep writing to, and misses nothing that was there when it
started. A pass without listed ends reads each partition to its partition EOF alone, which is
exact on every broker: the restore's, over partitions nobody appends to while they are read,
from offsets a store holds; such an offset may lie inside the last batch, past the end Tansu
lists, and would be taken for one with nothing left to read.

Errors: a topic that does not exist raises `LookupError`; a pass that receives nothing for
`STALL_S` while partitions are unfinished raises `TimeoutError`; listing a partition's end while
its leadership moves (a topic just created, a broker failing over) is asked again for a bounded
time (`LEADERSHIP_ERRORS`), then raises `KafkaException`; a fatal client error raises
`KafkaException`; other errors (a broker going away for a while) are logged and the pass goes on,
or with a strict reader (the restore) raise `KafkaException` too.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from loyalty_streams.kafka.clients import KafkaClients, reader_config
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

READ_REQUEST_TIMEOUT_S = 10.0
"""The longest a metadata, watermark or offsets-for-times request waits for the cluster."""

LEADERSHIP_RETRY_S = 0.1
"""`PartitionReader.ends`: the wait before asking again a partition whose leader is moving."""

LEADERSHIP_ERRORS = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
    }
)
"""Errors of a partition whose leadership is moving, which a real cluster answers for a moment
after a topic is created or a broker fails over (Kafka calls them retriable): asked again."""

STALL_S = 30.0
"""A pass that receives nothing for this long while partitions are unfinished gives up."""

READ_BATCH = 500
"""Records asked of the consumer per consume call, in a pass and while following."""

READ_WAIT_S = 0.5
"""`PartitionReader.read_to_end`: the longest one consume call waits for records, and so how
often a pass that receives nothing looks at how long it has stalled (`STALL_S`)."""

PASS_PAUSE_S = 0.05
"""`read_topics`: the wait between two passes that found nothing new."""

FOLLOW_WAIT_S = 0.2
"""`PartitionReader.follow`: the longest wait for records before it looks at its stop event."""

SCAN_FETCHED_AHEAD_KB = 16_384
"""`scan_topic`: the most a scan's consumer fetches ahead of what the scan has taken (KB of its
local queue, `queued.max.messages.kbytes`), so a scan of a long topic holds at most 16 MB."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Partition = tuple[str, int]
"""A topic's partition: (topic name, partition number)."""


@dataclass(frozen=True, slots=True)
class ReadRecord:
    """A Kafka record as read: where it is, its key and value (None for a tombstone)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: datetime | None = None
    """The record's Kafka timestamp (UTC); None when the record has none."""


Records = dict[str, list[ReadRecord]]
"""Records read, per topic name, in offset order within each partition."""


class PartitionReader:
    """A consumer outside any group, assigned partitions, for passes to their end.

    `purpose` names the client (`<app id>-<purpose>-<uuid>` as its group id, never committed
    to); `extra` adds consumer properties to `reader_config`; `clients` makes the consumer (a
    test hands in one that makes a stand-in); with `strict`, every consumer error but a
    partition's end raises `KafkaException` (the restore's rule), not only a fatal one. Use it
    as a context manager, or `close` it.
    """

    def __init__(
        self,
        settings: Settings,
        purpose: str,
        *,
        clients: KafkaClients | None = None,
        extra: Mapping[str, str] | None = None,
        strict: bool = False,
    ) -> None:
        config = reader_config(settings, purpose, **(extra or {}))
        self._consumer = (clients or KafkaClients()).consumer(config)
        self._strict = strict

    def __enter__(self) -> "PartitionReader":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._consumer.close()

    def partitions(self, topics: Iterable[str]) -> list[Partition]:
        """Every partition of `topics`, in the order of `topics`, then by number.

        Raises `LookupError` for a topic that does not exist, `KafkaException` when the cluster
        does not answer within `READ_REQUEST_TIMEOUT_S`. Metadata of all topics is asked, never of
        one by name: asking a broker about an unknown topic may create it (Tansu does).
        """
        listed = self._consumer.list_topics(timeout=READ_REQUEST_TIMEOUT_S).topics
        partitions: list[Partition] = []
        for topic in topics:
            found = listed.get(topic)
            if found is None or found.error is not None:
                raise LookupError(f"topic {topic} does not exist")
            partitions.extend((topic, number) for number in sorted(found.partitions))
        return partitions

    def ends(self, topics: Iterable[str]) -> dict[Partition, int]:
        """The high watermark (ListOffsets) of each partition of `topics` that holds records.

        A partition whose leadership is moving (`LEADERSHIP_ERRORS`: a topic just created, a
        broker failing over) is asked again, `LEADERSHIP_RETRY_S` apart, for at most
        `READ_REQUEST_TIMEOUT_S` in all; then its error is raised. Raises as `partitions` does,
        and `KafkaException` for any other error of the cluster.
        """
        ends = {}
        for topic, number in self.partitions(topics):
            low, high = self._watermarks(TopicPartition(topic, number))
            if high > low:
                ends[topic, number] = high
        return ends

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        deadline = time.monotonic() + READ_REQUEST_TIMEOUT_S
        while True:
            try:
                low, high = self._consumer.get_watermark_offsets(tp, timeout=READ_REQUEST_TIMEOUT_S)
                return low, high
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                moving = isinstance(error, KafkaError) and error.code() in LEADERSHIP_ERRORS
                if not moving or time.monotonic() + LEADERSHIP_RETRY_S > deadline:
                    raise
                log.info("asking %s[%d] again: %s", tp.topic, tp.partition, error)
                time.sleep(LEADERSHIP_RETRY_S)

    def offsets_at(self, ends: Mapping[Partition, int], moment: datetime) -> dict[Partition, int]:
        """Where each partition of `ends` is read from to find records at or after `moment`.

        The first offset whose Kafka timestamp is at or after `moment` (offsets for times); every
        record before it has an earlier timestamp. A partition without such a record starts at
        its end (nothing to read). Where the broker does not answer, and for a moment before 1970
        (-1 and -2 would ask for the end and the start), the beginning (`OFFSET_BEGINNING`); the
        embedded Tansu broker answers offset 0 for any time, which is the same. Raises ValueError
        for a naive `moment`.
        """
        starts = dict.fromkeys(ends, OFFSET_BEGINNING)
        at_ms = _micros(moment) // 1000  # down: the same millisecond is not skipped
        if at_ms < 0 or not ends:
            return starts
        try:
            found = self._consumer.offsets_for_times(
                [TopicPartition(topic, p, at_ms) for topic, p in ends],
                timeout=READ_REQUEST_TIMEOUT_S,
            )
        except KafkaException as error:
            log.info("reading from the beginning: no offsets for times (%s)", error)
            return starts
        for tp in found:
            at = (tp.topic, tp.partition)
            if tp.error is not None or at not in starts:
                continue  # from the beginning
            starts[at] = tp.offset if tp.offset >= 0 else ends[at]
        return starts

    def read_to_end(
        self, starts: Mapping[Partition, int], ends: Mapping[Partition, int] | None = None
    ) -> Iterator[ReadRecord]:
        """One pass: every record of each partition of `starts`, from its start offset (or
        `OFFSET_BEGINNING`) to its end in `ends` (from `ends()`, at the pass's start), as the
        module's stop rule says. A partition missing from `ends`, or starting at or after its
        end, is not read. Without `ends`, every partition of `starts` is read to its partition
        EOF alone (the module's stop rule for a restore). Order is offset order within a
        partition, partitions interleaved.

        Raises `TimeoutError` when nothing arrives for `STALL_S` while partitions are
        unfinished, `KafkaException` on a fatal client error (with `strict`, on any but an end).
        """
        limits = {at: end for at, end in (ends or {}).items() if at in starts}
        pending = (  # OFFSET_BEGINNING < 0
            set(starts) if ends is None else {at for at, end in limits.items() if starts[at] < end}
        )
        if not pending:
            return
        self._consumer.assign([TopicPartition(t, p, starts[t, p]) for t, p in sorted(pending)])
        raised: set[Partition] = set()
        quiet_since = time.monotonic()
        while pending:
            messages = self._consumer.consume(num_messages=READ_BATCH, timeout=READ_WAIT_S)
            if not messages:
                if time.monotonic() - quiet_since > STALL_S:
                    raise TimeoutError(
                        f"nothing received for {STALL_S:.0f} s from partitions {sorted(pending)}"
                    )
                continue
            quiet_since = time.monotonic()
            for message in messages:
                at = (str(message.topic()), int(message.partition() or 0))
                error = message.error()
                if error is not None:
                    if self._at_end(error, at):
                        pending.discard(at)  # read to the end the broker has now
                    continue
                if at not in pending:
                    continue
                offset = int(message.offset() or 0)
                if at in limits:
                    if at not in raised:
                        raised.add(at)
                        _, high = self._consumer.get_watermark_offsets(
                            TopicPartition(*at), cached=True
                        )
                        limits[at] = max(limits[at], high)
                    if offset + 1 >= limits[at]:
                        pending.discard(at)
                        if offset >= limits[at]:
                            continue  # appended after the pass started
                yield _record(at, offset, message)

    def follow(
        self, starts: Mapping[Partition, int], stop: threading.Event
    ) -> Iterator[ReadRecord]:
        """Every record of each partition of `starts`, from its start offset (or
        `OFFSET_BEGINNING`) on, as it arrives, until `stop` is set (looked at after each wait of
        at most `FOLLOW_WAIT_S`): a partition's end is no stop, and nothing stalls. Order is
        offset order within a partition. Raises `KafkaException` as `read_to_end` does.
        """
        self._consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in starts.items()])
        while not stop.is_set():
            for message in self._consumer.consume(num_messages=READ_BATCH, timeout=FOLLOW_WAIT_S):
                at = (str(message.topic()), int(message.partition() or 0))
                error = message.error()
                if error is None:
                    yield _record(at, int(message.offset() or 0), message)
                else:
                    self._at_end(error, at)

    def _at_end(self, error: KafkaError, at: Partition) -> bool:
        """True for a partition's end (EOF); raises `KafkaException` for a fatal error (strict:
        for any other), logs the others and gives False."""
        if error.code() == KafkaError._PARTITION_EOF:
            return True
        if self._strict or error.fatal():
            raise KafkaException(error)
        log.warning("reading %s[%d]: %s", *at, error)
        return False


def _record(at: Partition, offset: int, message: Message) -> ReadRecord:
    kind, ms = message.timestamp()
    value = message.value()
    return ReadRecord(
        topic=at[0],
        partition=at[1],
        offset=offset,
        key=message.key(),
        value=value if isinstance(value, bytes) else None,
        timestamp=None if kind == TIMESTAMP_NOT_AVAILABLE else _EPOCH + timedelta(milliseconds=ms),
    )


def scan_topic(
    settings: Settings,
    topic: str,
    *,
    since: datetime | None,
    until: datetime | None,
    clients: KafkaClients | None = None,
) -> Iterator[ReadRecord]:
    """Every record of every partition of `topic` whose Kafka timestamp is in [since, until),
    read in one pass (`PartitionReader.read_to_end`) that starts at the first `next()`.

    `None` leaves that side open; a record without a timestamp is always included. With
    `since`, partitions are read from the offsets at `since` (`PartitionReader.offsets_at`);
    records are filtered by their timestamp afterwards, so the result does not depend on how
    well the broker seeks: timestamps need not grow with offsets (several producers, clocks
    apart). Raises `LookupError` for a topic that does not exist, `TimeoutError` when the
    cluster stops answering, ValueError for a naive `since` or `until`. `clients` makes the
    consumer (`PartitionReader`).
    """
    low = None if since is None else _micros(since)
    high = None if until is None else _micros(until)
    fetched_ahead = {"queued.max.messages.kbytes": str(SCAN_FETCHED_AHEAD_KB)}
    with PartitionReader(settings, "scan", clients=clients, extra=fetched_ahead) as reader:
        ends = reader.ends([topic])
        starts = (
            dict.fromkeys(ends, OFFSET_BEGINNING)
            if since is None
            else reader.offsets_at(ends, since)
        )
        for record in reader.read_to_end(starts, ends):
            if record.timestamp is not None:
                at = _micros(record.timestamp)
                if (low is not None and at < low) or (high is not None and at >= high):
                    continue
            yield record


def read_topics(
    settings: Settings,
    topics: Iterable[str],
    *,
    until: Callable[[Records], bool],
    timeout: float,
    clients: KafkaClients | None = None,
) -> Records:
    """Every record of `topics` from the beginning, read in passes to the end
    (`PartitionReader.read_to_end`), each going on from where the last one stopped, until
    `until(records)` holds after a pass or `timeout` seconds have passed; a pass under way at the
    timeout is finished first. What was read by then is returned either way (`until` may never
    hold, to read for `timeout` seconds). Raises `LookupError` for a topic that does not exist.
    `clients` makes the consumer (`PartitionReader`).
    """
    names = list(topics)
    records: Records = {name: [] for name in names}
    positions: dict[Partition, int] = {}
    deadline = time.monotonic() + timeout
    with PartitionReader(settings, "reader", clients=clients) as reader:
        while True:
            ends = reader.ends(names)
            starts = {at: positions.get(at, OFFSET_BEGINNING) for at in ends}
            read = 0
            for record in reader.read_to_end(starts, ends):
                records[record.topic].append(record)
                positions[record.topic, record.partition] = record.offset + 1
                read += 1
            if until(records) or time.monotonic() >= deadline:
                return records
            if not read:
                time.sleep(PASS_PAUSE_S)


def _micros(moment: datetime) -> int:
    """Microseconds since 1970 (UTC); raises ValueError for a naive `moment`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return (moment - _EPOCH) // _MICROSECOND
