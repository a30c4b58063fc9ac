"""`loyalty-streams archive`: keep `casino.player-events` as Parquet files, past the topic's 7 days,
for what-if replays of a brand's whole history (`archive.history` reads them back).

The process follows the topic as the consumer group `<app_id>-archive`, holds what it reads in
memory per partition, and rolls it into files (`archive.files`: one file per partition, brand
and UTC day of the roll, named by the partition and the roll's first and last offsets) once it
holds `LOYALTY_ARCHIVE_ROLL_RECORDS` records or `LOYALTY_ARCHIVE_ROLL_BYTES` bytes of keys and
values, or its oldest record waiting was read `LOYALTY_ARCHIVE_ROLL_S` ago; and on a stop.

**Nothing lost or doubled.** A roll's files are written under temporary names, fsynced, renamed,
and their directories fsynced; only then are the offsets they cover committed. So a crash
before the commit re-reads those records, and the files below the committed offsets are whole.
A crash after the rename and before the commit would write the same records again: when the
group gives it partitions, the archive lists the files already there, and a partition whose
records run into one of their segments is rolled at that segment's last offset, so the roll
written again has the same name and replaces its files instead of adding a copy. (The reader
drops repeated offsets anyway.) Temporary files a crash left are removed then too.

Every record is archived, whatever its value holds: one that does not decode as a
`PlayerEvent` goes under the null brand (see `archive.files`). Nothing is ever deleted: an
operator prunes old days by deleting their day directories.

Run one archive per app id and directory: one process, replaced rather than rolled on upgrade.
The skeleton the other side services share (`consumer_service.ConsumerService`) commits what
each batch finished; the archive commits what a roll wrote, across batches, rolls an idle
buffer on time, and drops a revoked partition's buffer, so it has its own loop; it shares the
topic check and the stop on a signal (`consumer_service.serve`).
"""

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from loyalty_streams.archive.files import (
    ArchivedRecord,
    archived,
    group_id,
    holdings,
    write_roll,
)
from loyalty_streams.kafka.clients import KafkaClients, group_consumer_config
from loyalty_streams.kafka.reading import READ_REQUEST_TIMEOUT_S
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.services.consumer_service import serve
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

ARCHIVE_BATCH = 5_000
"""Records asked of the consumer per consume call."""
ARCHIVE_POLL_S = 0.5
"""The longest one consume call waits: how often an idle archive looks at its roll time and at
the stop flag."""
CRASH_EXIT = 3
"""The exit code of `LOYALTY_ARCHIVE_EXIT_BEFORE_COMMIT` (tests of the crash window)."""
NEEDED_TOPICS = (PLAYER_EVENTS,)


class Archiver:
    """The archive's buffer and rolls over one consumer (see the module).

    `clock` is monotonic seconds (the roll time); `after_rename` runs between a roll's rename
    and its commit (the crash window: a test stops the process there).
    """

    def __init__(
        self,
        settings: Settings,
        consumer: Consumer,
        *,
        clock: Callable[[], float] = time.monotonic,
        after_rename: Callable[[], None] = lambda: None,
    ) -> None:
        self.root = settings.archive_root
        self.roll_records = settings.archive_roll_records
        self.roll_bytes = settings.archive_roll_bytes
        self.roll_s = settings.archive_roll_s
        self.consumer = consumer
        self.clock = clock
        self.after_rename = after_rename
        self.buffers: dict[int, list[ArchivedRecord]] = {}
        """Each partition's records read and not rolled yet, in offset order."""
        self.sizes: dict[int, int] = {}
        """Bytes of keys and values of each partition's buffer."""
        self.since: dict[int, float] = {}
        """When each partition's oldest buffered record was read (`clock`)."""
        self.ends: dict[int, list[int]] = {}
        """Per partition, the last offsets of segments already on disk that its records run
        into, ascending: its next rolls end there (the crash window's repair)."""
        self.on_disk: dict[int, list[int]] = {}
        """Per assigned partition not read yet, the last offsets of its segments on disk."""

    # -- the group's callbacks -----------------------------------------------------------

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions given to this archive: what the directory holds of them is listed (and a
        crash's temporary files removed), for `add` to end their first rolls where files
        already end; a committed position past the files is logged (a lost directory)."""
        found = holdings(self.root)
        for temporary in found.temporaries:
            temporary.unlink(missing_ok=True)
            log.info("removed %s, left by a crash", temporary)
        numbers = sorted({tp.partition for tp in partitions})
        for number in numbers:
            self._drop(number)
            self.on_disk[number] = sorted({s.last for s in found.segments.get(number, ())})
        self._check_positions(consumer, partitions, found.last_offset)
        log.info("assigned partitions %s", numbers)

    def revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away (or lost): their buffers are dropped, uncommitted; their next
        owner reads them again from the committed offsets."""
        numbers = sorted({tp.partition for tp in partitions})
        for number in numbers:
            self._drop(number)
        log.info("partitions %s revoked", numbers)

    def _drop(self, partition: int) -> None:
        for held in (self.buffers, self.sizes, self.since, self.ends, self.on_disk):
            held.pop(partition, None)

    def _check_positions(
        self,
        consumer: Consumer,
        partitions: list[TopicPartition],
        last_offset: Callable[[int], int | None],
    ) -> None:
        try:
            committed = consumer.committed(partitions, timeout=READ_REQUEST_TIMEOUT_S)
        except KafkaException as error:
            log.warning("could not read the committed offsets: %s", error)
            return
        for tp in committed:
            last = last_offset(tp.partition)
            if tp.offset > 0 and (last is None or last + 1 < tp.offset):
                log.warning(
                    "partition %d: the group's position is %d but %s holds files up to %s: "
                    "records before %d that are not here will not be archived here (a new or "
                    "replaced directory? reset the group's offsets of %s to archive them)",
                    tp.partition,
                    tp.offset,
                    self.root,
                    "none" if last is None else last,
                    tp.offset,
                    tp.topic,
                )

    # -- records and rolls ---------------------------------------------------------------

    def add(self, record: ArchivedRecord) -> None:
        """Buffer one record (records of a partition come in offset order); a partition that
        reaches the end of a segment already on disk is rolled there at once."""
        number = record.partition
        on_disk = self.on_disk.pop(number, None)
        if on_disk is not None:  # the first record since the assignment
            self.ends[number] = [last for last in on_disk if last >= record.offset]
        ends = self.ends.get(number)
        while ends and record.offset > ends[0]:  # that segment's last record is gone
            self.roll([number])
            ends.pop(0)
        buffer = self.buffers.setdefault(number, [])
        if not buffer:
            self.since[number] = self.clock()
        buffer.append(record)
        self.sizes[number] = self.sizes.get(number, 0) + record.size
        if ends and record.offset == ends[0]:
            self.roll([number])
            ends.pop(0)

    def waiting(self) -> list[int]:
        """The partitions a roll may take now: those not on the way to a segment on disk."""
        return sorted(number for number in self.buffers if not self.ends.get(number))

    def due(self) -> bool:
        """Whether the records `waiting` may roll reach a limit: count, bytes or age."""
        numbers = self.waiting()
        if not numbers:
            return False
        count = sum(len(self.buffers[number]) for number in numbers)
        size = sum(self.sizes[number] for number in numbers)
        oldest = min(self.since[number] for number in numbers)
        return (
            count >= self.roll_records
            or size >= self.roll_bytes
            or self.clock() - oldest >= self.roll_s
        )

    def roll(self, partitions: Iterable[int]) -> None:
        """Write the buffers of `partitions` as one roll (`files.write_roll`), then commit the
        offsets after their last records. A failed commit is logged: the next roll's commit
        covers it, or the next owner writes the same files again. Raises `OSError` when the
        files cannot be written (nothing is committed then)."""
        segments = {n: self.buffers.pop(n) for n in sorted(set(partitions)) if self.buffers.get(n)}
        for number in segments:
            self.sizes.pop(number, None)
            self.since.pop(number, None)
        if not segments:
            return
        started = time.monotonic()
        paths = write_roll(self.root, segments)
        self.after_rename()
        offsets = [
            TopicPartition(PLAYER_EVENTS, number, records[-1].offset + 1)
            for number, records in segments.items()
        ]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as error:
            log.warning("commit of %s failed; the files will be written again: %s", offsets, error)
        log.info(
            "rolled %d records of partitions %s into %d files in %.3f s; committed",
            sum(len(records) for records in segments.values()),
            sorted(segments),
            len(paths),
            time.monotonic() - started,
        )

    def follow(self, stop: threading.Event) -> None:
        """Archive the topic until `stop` is set, then roll what waits and leave the group.
        Raises `KafkaException` on a fatal consumer error, `OSError` when files cannot be
        written: what was not committed is read again by the next start."""
        self.consumer.subscribe(
            [PLAYER_EVENTS], on_assign=self.assigned, on_revoke=self.revoked, on_lost=self.revoked
        )
        try:
            while not stop.is_set():
                for message in self.consumer.consume(ARCHIVE_BATCH, ARCHIVE_POLL_S):
                    record = record_of(message)
                    if record is not None:
                        self.add(record)
                if self.due():
                    self.roll(self.waiting())
            self.roll(self.waiting())
        finally:
            # leaves the group at once (the revoke drops what a roll did not take)
            self.consumer.close()


def record_of(message: Message) -> ArchivedRecord | None:
    """The archived form of a consumed record; None for an event of the consumer (a partition's
    end, a transient error: logged), and `KafkaException` for a fatal one."""
    error = message.error()
    if error is not None:
        if error.fatal():
            raise KafkaException(error)
        if error.code() != KafkaError._PARTITION_EOF:
            log.warning("%s: %s", PLAYER_EVENTS, error)
        return None
    kind, stamp = message.timestamp()
    key, value = message.key(), message.value()
    return archived(
        int(message.partition() or 0),
        int(message.offset() or 0),
        None if kind == TIMESTAMP_NOT_AVAILABLE else int(stamp),
        key if isinstance(key, bytes) else None,
        value if isinstance(value, bytes) else None,
    )


def _exit_before_commit() -> None:
    """`LOYALTY_ARCHIVE_EXIT_BEFORE_COMMIT`: end the process at once, as a crash would."""
    log.warning("exiting before the commit (LOYALTY_ARCHIVE_EXIT_BEFORE_COMMIT)")
    logging.shutdown()
    os._exit(CRASH_EXIT)


def run_archive(settings: Settings, clients: KafkaClients | None = None) -> int:
    """Run until SIGTERM/SIGINT; 2 when the topic is missing or the directory cannot be made.
    `clients` makes the Kafka clients (by default librdkafka's)."""
    made = clients or KafkaClients()
    root: Path = settings.archive_root
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"LOYALTY_ARCHIVE_DIR: cannot create {root}: {error}", file=sys.stderr)
        return 2
    after_rename = _exit_before_commit if settings.archive_exit_before_commit else lambda: None

    def archive(stop: threading.Event) -> None:
        consumer = made.consumer(group_consumer_config(settings, group_id(settings)))
        log.info("archiving %s to %s as group %s", PLAYER_EVENTS, root, group_id(settings))
        Archiver(settings, consumer, after_rename=after_rename).follow(stop)

    return serve(settings, NEEDED_TOPICS, archive, made)
