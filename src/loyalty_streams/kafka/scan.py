"""One pass over a whole topic, to the end it had when the pass started: exports, audit queries.

Partitions are assigned, not subscribed (no consumer group, nothing committed, nothing shared
with the workers), as in `topic_reader`. Unlike `read_topics` the pass knows where to stop: each
partition is read up to its high watermark at the start, so a scan terminates on a topic that
the workers keep writing to.

Seeking by time: with `since`, each partition starts at the first offset whose Kafka timestamp
is at or after `since` (ListOffsets by timestamp, `offsets_for_times`); every record before that
offset has an earlier timestamp. A broker that cannot answer makes the scan start at the
beginning instead (the embedded Tansu broker answers offset 0 for any time, which is the same).
Records are filtered by their timestamp afterwards, so the result does not depend on how well
the broker seeks: timestamps need not grow with offsets (several producers, clocks apart).
"""

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from loyalty_streams.kafka.clients import reader_config
from loyalty_streams.kafka.reading import ReadRecord
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0
"""Metadata, watermark and offsets-for-times requests."""

STALL_S = 30.0
"""A scan that receives nothing for this long while partitions are unfinished gives up."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def scan_topic(
    settings: Settings, topic: str, *, since: datetime | None, until: datetime | None
) -> Iterator[ReadRecord]:
    """Every record of every partition of `topic` whose Kafka timestamp is in [since, until).

    `None` leaves that side open; a record without a timestamp is always included. Each record
    carries its timestamp (`ReadRecord.timestamp`, UTC). Reading stops at the end each partition
    had when the scan started (the first `next()`): records appended later are not included.
    Order is offset order within a partition, partitions interleaved. Raises `LookupError` for a
    topic that does not exist and `TimeoutError` when the cluster stops answering.
    """
    since_us = None if since is None else _micros(since)
    until_us = None if until is None else _micros(until)
    # what is fetched ahead: 16 MB at most
    consumer = Consumer(reader_config(settings, "scan", **{"queued.max.messages.kbytes": "16384"}))
    try:
        ends = _listed_ends(consumer, topic)
        starts = _starts(consumer, topic, ends, since_us)
        pending = {p for p, start in starts.items() if start < ends[p]}  # OFFSET_BEGINNING < 0
        if not pending:
            return
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(pending)])
        refined: set[int] = set()
        quiet_since = time.monotonic()
        while pending:
            messages = consumer.consume(num_messages=500, timeout=0.5)
            if not messages:
                if time.monotonic() - quiet_since > STALL_S:
                    raise TimeoutError(
                        f"scan of {topic}: nothing received for {STALL_S:.0f} s "
                        f"from partitions {sorted(pending)}"
                    )
                continue
            for message in messages:
                partition = int(message.partition() or 0)
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)  # read to the end the broker has now
                    else:
                        log.warning("scan of %s: %s", topic, error)
                    continue
                if partition not in pending:
                    continue
                if partition not in refined:
                    # The end that fetch reported: Tansu lists a partition's end short (the base
                    # offset of its last batch + 1); fetch reports it right. Taken once, at the
                    # partition's first record, so the end stays put.
                    refined.add(partition)
                    _, high = consumer.get_watermark_offsets(
                        TopicPartition(topic, partition), cached=True
                    )
                    ends[partition] = max(ends[partition], high)
                offset = int(message.offset() or 0)
                if offset >= ends[partition]:
                    pending.discard(partition)  # appended after the scan started
                    continue
                if offset + 1 >= ends[partition]:
                    pending.discard(partition)
                kind, stamp = message.timestamp()
                if kind == TIMESTAMP_NOT_AVAILABLE:
                    timestamp = None
                else:
                    if since_us is not None and stamp * 1000 < since_us:
                        continue
                    if until_us is not None and stamp * 1000 >= until_us:
                        continue
                    timestamp = _EPOCH + timedelta(milliseconds=stamp)
                value = message.value()
                yield ReadRecord(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=message.key(),
                    value=value if isinstance(value, bytes) else b"",
                    timestamp=timestamp,
                )
            quiet_since = time.monotonic()
    finally:
        consumer.close()


def _listed_ends(consumer: Consumer, topic: str) -> dict[int, int]:
    """The high watermark of each partition that holds records, as ListOffsets reports it.

    Metadata of all topics, not of `topic`: asking a broker about one unknown topic may create
    it (Tansu does).
    """
    topics = consumer.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    found = topics.get(topic)
    if found is None or found.error is not None:
        raise LookupError(f"topic {topic} does not exist")
    ends = {}
    for partition in sorted(found.partitions):
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=REQUEST_TIMEOUT_S
        )
        if high > low:  # an empty partition has nothing to read
            ends[partition] = high
    return ends


def _starts(
    consumer: Consumer, topic: str, ends: dict[int, int], since_us: int | None
) -> dict[int, int]:
    """Where each partition is read from: the first offset at `since`, or the beginning."""
    starts = dict.fromkeys(ends, OFFSET_BEGINNING)
    at_ms = None if since_us is None else since_us // 1000  # down: the same ms is not skipped
    if at_ms is None or at_ms < 0 or not ends:  # -1 and -2 would ask for the end, the start
        return starts
    try:
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, at_ms) for p in ends], timeout=REQUEST_TIMEOUT_S
        )
    except KafkaException as error:
        log.info("scan of %s from the beginning: no offsets for times (%s)", topic, error)
        return starts
    for tp in found:
        if tp.error is not None or tp.partition not in starts:
            continue  # from the beginning
        if tp.offset >= 0:
            starts[tp.partition] = tp.offset
        else:  # no record at or after `since`: nothing to read there
            starts[tp.partition] = ends[tp.partition]
    return starts


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return (moment - _EPOCH) // _MICROSECOND
