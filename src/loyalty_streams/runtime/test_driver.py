"""Run the fold loop without a broker, step by step: a test driver in the spirit of Kafka
Streams' `TopologyTestDriver`.

`WorkerDriver` builds the real `FoldLoop` on a real RocksDB player table in a directory of
yours, with its Kafka clients from a `MemoryCluster` (through the `KafkaClients` seam): topics
held in memory, a consumer group of one member, a producer whose records the cluster
acknowledges at once or, when asked to hold them, only when the test says so. Nothing runs in
a thread: each call does one thing and returns.

A bet folded and checkpointed (`directory` is yours, e.g. pytest's `tmp_path`):

    from datetime import UTC, datetime
    from decimal import Decimal

    from loyalty_streams.domain.catalogue import Catalogue
    from loyalty_streams.domain.events import BetPlaced
    from loyalty_streams.domain.programme import shipped_programmes
    from loyalty_streams.kafka.topics import PLAYERS_CHANGELOG, POINTS_ACCRUED
    from loyalty_streams.runtime.test_driver import WorkerDriver

    now = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    programme_for = Catalogue(shipped_programmes()).in_effect  # a brand's version at an instant
    bet = BetPlaced(
        event_id="e1", brand_id="aurora-casino", player_id="p1", occurred_at=now,
        amount="10.00", currency="EUR", bet_id="b1", game_id="starburst",
        game_category="slots",
    )
    driver = WorkerDriver(directory, programme_for, now=now)
    driver.pipe_event(bet)                 # onto casino.player-events, in its key's partition
    driver.fold()                          # fetched and folded into the open batch
    driver.drain()                         # checkpointed: outputs, changelog, store, offsets
    assert driver.dead_letters() == []
    assert driver.outputs_json(POINTS_ACCRUED)[0]["points"] == "10.00"
    assert driver.player("aurora-casino:p1").cumulative_turnover == Decimal("10")
    driver.close()

`programme_for` must give a `Programme` (or None: no programme, the record is dead-lettered). A
record the fold cannot use never raises: it becomes a dead letter, so when outputs are missing,
look at `dead_letters()` first.

A crash in the middle of a checkpoint: with `hold=True` the records produced wait in `held()`
until `acknowledge()` lets the cluster take them (of a topic, the first `count`; or refuses them
with `error`), so a test can stop a checkpoint between any two of its steps (outputs
acknowledged, then the changelog and history, then the store and the offsets). Seal the batch,
do not drain it: `drain()` flushes, and a flush has the cluster take everything held.
`crash()` then plays the worker dying there, `restart()` the partitions' next owner restoring
its store from the changelog and reading the inbound topics again from the committed offsets:

    driver = WorkerDriver(directory, programme_for, now=now, hold=True)
    driver.pipe_event(bet)
    driver.fold()
    driver.seal()                          # queued for its checkpoint, nothing acknowledged
    driver.acknowledge(POINTS_ACCRUED, count=1)  # the output is out; the changelog waits
    assert driver.held(PLAYERS_CHANGELOG, "aurora-casino:p1")  # the record, among others
    driver.crash()                         # never checkpointed: not stored, not committed
    driver.restart()
    assert driver.player("aurora-casino:p1") is None
    driver.fold()                          # the bet again, from the committed offsets
    driver.drain()
    first, again = driver.outputs_json(POINTS_ACCRUED)  # at least once: the same output twice
    assert first["output_id"] == again["output_id"]
    driver.close()

Exactly-once (`processing_guarantee="exactly_once"` among the settings): the cluster keeps
transactions as Kafka does. Records produced in a transaction get their offsets at once but are
read (by every consumer here, all read_committed) only once it commits; an aborted one's never;
offsets sent to a transaction are committed with it; a producer registering a transactional id
aborts what the previous one with that id left open (a restart after a `crash`). `output`
shows what a read_committed consumer reads (`uncommitted=True`: everything appended);
`refuse_commit` makes the next commit fail, `cluster.generation` moved on fences the worker
out of its group, `MemoryCluster(..., transactions=False)` is a broker that hands aborted
records to readers (a worker refuses it):

    from confluent_kafka import KafkaError

    driver = WorkerDriver(directory, programme_for, now=now, processing_guarantee="exactly_once")
    driver.pipe_event(bet)
    driver.fold()
    driver.refuse_commit(KafkaError(KafkaError._TIMED_OUT, txn_requires_abort=True))
    driver.seal()                          # sent, committed: refused, so aborted
    assert driver.player("aurora-casino:p1") is None   # RocksDB untouched
    assert driver.output(POINTS_ACCRUED) == []         # aborted: never read
    driver.fold()                          # read again from the committed offsets
    driver.drain()
    assert len(driver.output(POINTS_ACCRUED)) == 1
    assert len(driver.output(POINTS_ACCRUED, uncommitted=True)) == 2
    driver.close()

To start a test from stored players, `put_player` stores a record as a checkpoint leaves it
(with its due-time index entry); other key families are written with `store(partition).write`.
"""

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import ClusterMetadata, PartitionMetadata, TopicMetadata

from loyalty_streams.domain.commands import Command
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.kafka.clients import Config, ConsumerClient, KafkaClients, ProducerClient
from loyalty_streams.kafka.dead_letters import DeadLetter
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import COMMANDS, DEAD_LETTER, PLAYER_EVENTS
from loyalty_streams.runtime.batch import Batch
from loyalty_streams.runtime.fold import ProgrammeFor
from loyalty_streams.runtime.loop import FoldLoop
from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.runtime.tuning import TIMER_SLICE_S
from loyalty_streams.settings import Settings
from loyalty_streams.state.store import PartitionStore, PlayerTable, encode_player
from loyalty_streams.state.timer_index import player_moves

Delivery = Callable[[KafkaError | None, Message], None]
Rebalance = Callable[[Consumer, list[TopicPartition]], None]


@dataclass(frozen=True, slots=True)
class Produced:
    """A record a producer sent: its offset once the cluster took it (None while held)."""

    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    offset: int | None = None


@dataclass(slots=True)
class _Held:
    record: Produced
    producer: "MemoryProducer"
    on_delivery: Delivery | None


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    """What `MemoryConsumer.consumer_group_metadata` gives: the group generation it joined."""

    generation: int


Place = tuple[str, int, int]
"""A record's place: topic, partition, offset."""


class MemoryCluster(KafkaClients):
    """Topics in memory, every one with `partitions` partitions, and the clients that use them.

    Group members are assigned `owned` when they subscribe. Records produced are acknowledged
    at once (their delivery reports served at the producer's next poll), or with `hold` only by
    `acknowledge`; a producer's flush acknowledges everything it holds, as a flush waits for
    the cluster. Consumers fetch records in the order they were appended, across partitions.
    """

    def __init__(
        self,
        partitions: int,
        owned: Iterable[int],
        *,
        hold: bool = False,
        transactions: bool = True,
    ) -> None:
        self.partitions = partitions
        self.owned = tuple(sorted(owned))
        self.hold = hold
        self.transactions = transactions
        """Readers skip aborted records and stop at undecided ones (False: a broker that hands
        them out, as the embedded Tansu build does)."""
        self.generation = 0
        """The consumer group's generation: members joined at an older one are fenced out."""
        self.refused_commit: KafkaError | None = None
        """The error the next `commit_transaction` fails with (once), if any."""
        self.aborted: set[Place] = set()
        """Records of aborted transactions."""
        self.undecided: dict[str, list[Place]] = {}
        """Records of open transactions, by transactional id."""
        self.commits: list[dict[tuple[str, int], int]] = []
        """Every offset commit, oldest first: (topic, partition) -> the next offset to read."""
        self.committed: dict[tuple[str, int], int] = {}
        self._logs: dict[tuple[str, int], list[tuple[int, Message]]] = defaultdict(list)
        self._sequence = itertools.count()
        self._held: list[_Held] = []
        self._producers: list[MemoryProducer] = []

    # -- KafkaClients ------------------------------------------------------------------------

    def consumer(self, config: Config) -> Consumer:
        """A group member, or with `enable.partition.eof` a reader reporting partition ends."""
        reader = config.get("enable.partition.eof") == "true"
        return cast(Consumer, MemoryConsumer(self, reader))  # the surface the runtime uses

    def producer(self, config: Config) -> Producer:
        """A producer whose records this cluster takes (at once, or when acknowledged); with a
        `transactional.id`, a transactional one."""
        producer = MemoryProducer(self, config.get("transactional.id"))
        self._producers.append(producer)
        return cast(Producer, producer)  # the surface the runtime uses

    # -- the cluster's side ------------------------------------------------------------------

    def append(
        self, topic: str, partition: int, key: bytes | None, value: bytes | None, stamp: int | None
    ) -> Message:
        """A record taken by the cluster: appended to its partition's log, which gives its offset.
        `stamp` is its timestamp (ms since the epoch), None when it has none."""
        log = self._logs[topic, partition]
        timestamp = (
            (TIMESTAMP_NOT_AVAILABLE, 0) if stamp is None else (TIMESTAMP_CREATE_TIME, stamp)
        )
        message = Message(
            topic=topic,
            partition=partition,
            offset=len(log),
            key=key,
            value=value,
            timestamp=timestamp,
        )
        log.append((next(self._sequence), message))
        return message

    def topics(self) -> list[str]:
        """The topics that hold a record: a topic appears with its first record."""
        return sorted({topic for topic, _ in self._logs})

    def log(self, topic: str, partition: int) -> list[Message]:
        """A partition's records, in offset order."""
        return [message for _, message in self._logs.get((topic, partition), [])]

    def sequenced(self, topic: str, partition: int, offset: int) -> tuple[int, Message] | None:
        """The record at `offset` with its place in the cluster's order of appends, if any."""
        log = self._logs.get((topic, partition), [])
        return log[offset] if offset < len(log) else None

    def visible(self, topic: str, partition: int, offset: int) -> Literal["read", "skip", "wait"]:
        """What a read_committed consumer does with a record: reads it, skips it (aborted), or
        waits at it (its transaction is open: the last stable offset)."""
        if not self.transactions:
            return "read"
        place = (topic, partition, offset)
        if place in self.aborted:
            return "skip"
        if any(place in records for records in self.undecided.values()):
            return "wait"
        return "read"

    def end(self, topic: str, partition: int) -> int:
        """The offset the next record of a partition gets."""
        return len(self._logs.get((topic, partition), []))

    def partition_for(self, key: bytes | None) -> int:
        """The partition of a key, as the producers' murmur2 partitioner chooses it."""
        return partition_of(key or b"", self.partitions)

    def hold_record(self, held: _Held) -> None:
        """A record a producer sent: held until `acknowledge`, or taken at once without `hold`."""
        self._held.append(held)
        if not self.hold:
            self.acknowledge()

    def held(self) -> list[Produced]:
        """The records sent and not taken yet, in the order they were produced."""
        return [held.record for held in self._held]

    def acknowledge(
        self,
        topic: str | None = None,
        *,
        count: int | None = None,
        error: KafkaError | None = None,
        producer: "MemoryProducer | None" = None,
    ) -> None:
        """Take the held records (of a topic, of a producer; the first `count` of them) in the
        order they were produced, or refuse them with `error`; their reports wait for their
        producer's next poll."""
        kept: list[_Held] = []
        taken = 0
        for held in self._held:
            record = held.record
            if (
                (topic is not None and record.topic != topic)
                or (producer is not None and held.producer is not producer)
                or (count is not None and taken >= count)
            ):
                kept.append(held)
                continue
            taken += 1
            if error is None:
                message = self.append(record.topic, record.partition, record.key, record.value, 0)
                txn = held.producer.transaction
                if txn is not None:
                    place = (record.topic, record.partition, int(message.offset() or 0))
                    self.undecided[txn].append(place)
            else:
                message = Message(topic=record.topic, partition=record.partition, key=record.key)
            held.producer.report(held.on_delivery, error, message)
        self._held = kept

    def forget(self) -> None:
        """Drop what the producers hold and their reports, as their process dying does."""
        self._held = []
        for producer in self._producers:
            producer.reports.clear()


class MemoryProducer(ProducerClient):
    """A producer of a `MemoryCluster`; with a `transactional_id`, its records are produced in
    transactions (see the module)."""

    def __init__(self, cluster: MemoryCluster, transactional_id: str | None = None) -> None:
        self.cluster = cluster
        self.transactional_id = transactional_id
        self.reports: list[tuple[Delivery, KafkaError | None, Message]] = []
        self.transaction: str | None = None
        """The transactional id while a transaction is open."""
        self.offsets: dict[tuple[str, int], int] = {}
        """Offsets sent to the open transaction."""

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        *,
        partition: int = -1,
        on_delivery: Delivery | None = None,
    ) -> None:
        """Send a record to its partition (`partition`, else its key's), held by the cluster;
        `on_delivery` hears of it at a poll after the cluster took or refused it."""
        key_bytes = key.encode() if isinstance(key, str) else key
        value_bytes = value.encode() if isinstance(value, str) else value
        number = partition if partition >= 0 else self.cluster.partition_for(key_bytes)
        record = Produced(topic, number, key_bytes, value_bytes)
        self.cluster.hold_record(_Held(record, self, on_delivery))

    def report(
        self, on_delivery: Delivery | None, error: KafkaError | None, message: Message
    ) -> None:
        """A delivery report, served at the next poll."""
        if on_delivery is not None:
            self.reports.append((on_delivery, error, message))

    def poll(self, timeout: float = -1) -> int:
        """Serve the delivery reports waiting; gives how many."""
        reports, self.reports = self.reports, []
        for on_delivery, error, message in reports:
            on_delivery(error, message)
        return len(reports)

    def flush(self, timeout: float = -1) -> int:
        """Have the cluster acknowledge everything this producer holds, and serve the reports."""
        self.cluster.acknowledge(producer=self)
        self.poll()
        return 0

    def init_transactions(self, timeout: float = -1) -> None:
        """Register the transactional id: what an earlier producer with it left open is
        aborted."""
        if self.transactional_id is None:
            raise KafkaException(KafkaError(KafkaError._NOT_CONFIGURED, fatal=True))
        self._end(self.transactional_id, commit=False)

    def begin_transaction(self) -> None:
        """Open a transaction: the records produced until it ends belong to it."""
        if self.transactional_id is None or self.transaction is not None:
            raise KafkaException(KafkaError(KafkaError._STATE))
        self.transaction = self.transactional_id
        self.cluster.undecided[self.transaction] = []
        self.offsets = {}

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: object, timeout: float = -1
    ) -> None:
        """Offsets committed with the transaction; refused (the transaction must abort) when
        `group_metadata` is of an older generation than the group's."""
        if self.transaction is None:
            raise KafkaException(KafkaError(KafkaError._STATE))
        if not isinstance(group_metadata, GroupMetadata) or (
            group_metadata.generation != self.cluster.generation
        ):
            error = KafkaError(KafkaError.ILLEGAL_GENERATION, txn_requires_abort=True)
            raise KafkaException(error)
        self.offsets.update({(tp.topic, tp.partition): tp.offset for tp in positions})

    def commit_transaction(self, timeout: float = -1) -> None:
        """Flush, then commit: its records become readable, its offsets committed; or fail with
        the cluster's `refused_commit`."""
        if self.transaction is None:
            raise KafkaException(KafkaError(KafkaError._STATE))
        self.flush()
        refused, self.cluster.refused_commit = self.cluster.refused_commit, None
        if refused is not None:
            raise KafkaException(refused)
        if self.offsets:
            self.cluster.commits.append(dict(self.offsets))
            self.cluster.committed.update(self.offsets)
        self._end(self.transaction, commit=True)

    def abort_transaction(self, timeout: float = -1) -> None:
        """Abort: what it holds is dropped, what the cluster took is never read."""
        if self.transaction is None:
            return
        self.cluster._held = [held for held in self.cluster._held if held.producer is not self]
        self.reports.clear()
        self._end(self.transaction, commit=False)

    def _end(self, transactional_id: str, *, commit: bool) -> None:
        records = self.cluster.undecided.pop(transactional_id, [])
        if not commit:
            self.cluster.aborted.update(records)
        self.transaction = None
        self.offsets = {}


class MemoryConsumer(ConsumerClient):
    """A consumer of a `MemoryCluster`: a group member (`subscribe`), assigned the cluster's
    `owned` partitions at its first poll, or a reader (`assign`) that reports partition ends."""

    def __init__(self, cluster: MemoryCluster, reader: bool) -> None:
        self.cluster = cluster
        self.reader = reader
        self.positions: dict[tuple[str, int], int] = {}
        self.at_end: set[tuple[str, int]] = set()
        self.topics: list[str] = []
        self.on_assign: Rebalance | None = None
        self.on_revoke: Rebalance | None = None
        self.joining = False
        self.generation = 0
        """The group generation this member joined at."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: Rebalance | None = None,
        on_revoke: Rebalance | None = None,
        on_lost: Rebalance | None = None,
    ) -> None:
        """Join the group for `topics`: the next poll assigns the cluster's `owned` partitions."""
        self.topics, self.on_assign, self.on_revoke = list(topics), on_assign, on_revoke
        self.joining = True

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Read `partitions` from their offsets (a negative one: the start)."""
        self.positions = {(tp.topic, tp.partition): max(tp.offset, 0) for tp in partitions}
        self.at_end.clear()

    def poll(self, timeout: float = -1) -> Message | None:
        """The next record; a poll that completes joining the group runs the assignment (and
        the rebalance callback) and gives nothing."""
        if self.joining:
            self.joining = False
            self.generation = self.cluster.generation
            committed = self.cluster.committed
            self.positions = {
                (topic, number): committed.get((topic, number), 0)
                for topic in self.topics
                for number in self.cluster.owned
            }
            if self.on_assign is not None:
                self.on_assign(cast(Consumer, self), self.assignment())
            return None
        fetched = self.consume(1)
        return fetched[0] if fetched else None

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        """Up to `num_messages` records, in the order the cluster took them; a reader's
        partition reaching its end adds one end event."""
        fetched: list[Message] = []
        while len(fetched) < num_messages:
            nearest: tuple[int, tuple[str, int], Message] | None = None
            for place, offset in self.positions.items():
                found = self.cluster.sequenced(*place, offset)
                visible = self.cluster.visible(*place, offset)
                while found is not None and visible == "skip":
                    offset = self.positions[place] = offset + 1
                    found = self.cluster.sequenced(*place, offset)
                    visible = self.cluster.visible(*place, offset)
                if found is None or visible == "wait":
                    if self.reader and place not in self.at_end:
                        self.at_end.add(place)
                        error = KafkaError(KafkaError._PARTITION_EOF)
                        fetched.append(Message(topic=place[0], partition=place[1], error=error))
                    continue
                if nearest is None or found[0] < nearest[0]:
                    nearest = (found[0], place, found[1])
            if nearest is None:
                break
            _, place, message = nearest
            self.positions[place] += 1
            fetched.append(message)
        return fetched

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None:
        """Commit the offsets (the next to read) at once: `MemoryCluster.commits` lists them."""
        commit = {(tp.topic, tp.partition): tp.offset for tp in offsets}
        self.cluster.commits.append(commit)
        self.cluster.committed.update(commit)

    def committed(
        self, partitions: list[TopicPartition], timeout: float = -1
    ) -> list[TopicPartition]:
        """The group's committed offsets of `partitions` (-1001: none)."""
        committed = self.cluster.committed
        return [
            TopicPartition(tp.topic, tp.partition, committed.get((tp.topic, tp.partition), -1001))
            for tp in partitions
        ]

    def seek(self, partition: TopicPartition) -> None:
        """Read a partition on from `partition.offset` (`OFFSET_BEGINNING`: its start)."""
        offset = 0 if partition.offset == OFFSET_BEGINNING else partition.offset
        self.positions[partition.topic, partition.partition] = offset
        self.at_end.discard((partition.topic, partition.partition))

    def consumer_group_metadata(self) -> object:
        """The group generation this member joined at (`GroupMetadata`)."""
        return GroupMetadata(self.generation)

    def assignment(self) -> list[TopicPartition]:
        """The partitions this consumer reads."""
        return [TopicPartition(topic, number) for topic, number in self.positions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The offset of the next record each partition gives (-1: not read here)."""
        return [
            TopicPartition(tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1))
            for tp in partitions
        ]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]:
        """The partition's first offset (always 0) and its end (`MemoryCluster.end`)."""
        return 0, self.cluster.end(partition.topic, partition.partition)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        """The cluster's topics (`MemoryCluster.topics`), each with its partitions."""
        metadata = ClusterMetadata()
        for name in self.cluster.topics():
            found = TopicMetadata()
            found.topic = name
            found.partitions = {n: PartitionMetadata() for n in range(self.cluster.partitions)}
            metadata.topics[name] = found
        return metadata

    def close(self) -> None:
        """Leave the group: the assignment is revoked (the callback runs), as librdkafka does."""
        if self.on_revoke is not None and self.positions:
            self.on_revoke(cast(Consumer, self), self.assignment())
        self.positions = {}


class WorkerDriver:
    """One worker's fold loop over a `MemoryCluster`, driven call by call (see the module).

    `directory` holds the player table; `programme_for` gives a brand's programme at an instant;
    `now` is the worker's clock (UTC), moved by `advance_clock`; `partitions` is every topic's
    partition count, `owned` the partitions this worker is assigned (default all); `hold` holds
    the cluster's acknowledgements until `acknowledge`; `timer_slice_s` bounds a slice of
    time-driven work (0: one entry a slice); `settings` override `Settings` fields.

    On start (and restart) the worker is assigned its partitions and restores them; a partition
    whose store is new gets its timer-index re-check, run to its end and checkpointed, so each
    test starts from a store this version wrote.
    """

    def __init__(
        self,
        directory: Path,
        programme_for: ProgrammeFor,
        *,
        now: datetime,
        partitions: int = 1,
        owned: Iterable[int] | None = None,
        hold: bool = False,
        timer_slice_s: float = TIMER_SLICE_S,
        **settings: Any,
    ) -> None:
        self.directory = directory
        self.programme_for = programme_for
        self.now = now
        """The worker's clock (UTC)."""
        self.partitions = partitions
        self.settings = Settings(bootstrap_servers="memory:0", data_dir=directory, **settings)
        self.cluster = MemoryCluster(partitions, range(partitions) if owned is None else owned)
        self.cluster.hold = hold
        self.metrics = Metrics()
        self.timer_slice_s = timer_slice_s
        self.announced: list[tuple[int, ...]] = []
        """The partitions the worker announced owning, at each assignment."""
        self._starts = itertools.count()
        self.table, self.loop = self._start(directory / "players")

    def _start(self, table_directory: Path) -> tuple[PlayerTable, FoldLoop]:
        table = PlayerTable(table_directory)
        loop = FoldLoop(
            self.settings,
            self.programme_for,
            table,
            lambda: self.now,
            self.announced.append,
            self.metrics,
            self.cluster,
            timer_slice_s=self.timer_slice_s,
            timer_idle_s=0.0,
        )
        loop.subscribe(self.partitions)
        loop.fetch()  # joins the group: assigned and restored
        while not loop.run_rechecks():
            pass
        loop.drain()
        return table, loop

    # -- input -------------------------------------------------------------------------------

    def pipe(
        self, topic: str, key: bytes | None, value: bytes | None, *, timestamp: int | None = None
    ) -> None:
        """A record onto an inbound topic, in its key's partition; `timestamp` in ms since the
        epoch (None: the record has none, the worker takes its clock)."""
        self.cluster.append(topic, self.cluster.partition_for(key), key, value, timestamp)

    def pipe_event(self, event: PlayerEvent, *, timestamp: int | None = None) -> None:
        """A player event onto `casino.player-events`, keyed by its player."""
        self.pipe(
            PLAYER_EVENTS, event.key.encode(), event.model_dump_json().encode(), timestamp=timestamp
        )

    def pipe_command(self, command: Command, *, timestamp: int | None = None) -> None:
        """A command onto `loyalty.commands`, keyed by its player (or brand)."""
        self.pipe(
            COMMANDS, command.key.encode(), command.model_dump_json().encode(), timestamp=timestamp
        )

    def advance_clock(self, by: timedelta) -> None:
        """Move the worker's clock (`now`) on by `by`; time-driven work sees it at its next
        slice (`fire_timers`, `run_rechecks`, `take_census`, `step`)."""
        self.now += by

    # -- the loop, a step at a time ----------------------------------------------------------

    def fold(self) -> int:
        """Fetch and fold into the open batch everything piped and not read yet (one fetch
        when it fits in a batch); gives the records folded."""
        total = 0
        while folded := self.loop.fetch():
            total += folded
        return total

    def seal(self) -> None:
        """Queue the open batch for its checkpoint (see `FoldLoop.seal`)."""
        self.loop.seal()

    def drain(self) -> None:
        """Checkpoint the open batch and every batch in flight (a flush: held records are
        acknowledged). Raises `DeliveryFailed` for a record the cluster refused."""
        self.loop.drain()

    def step(self) -> None:
        """One pass of the loop as its thread runs it (see `FoldLoop.step`)."""
        self.loop.step()

    def fire_timers(self) -> bool:
        """One slice of the due-time index at the clock; True when nothing due is left."""
        return self.loop.fire_timers()

    def run_rechecks(self) -> bool:
        """One slice of the brands' re-checks under way; True when none is left."""
        return self.loop.run_rechecks()

    def take_census(self) -> None:
        """One slice of the census of the owned players."""
        self.loop.take_census()

    # -- the cluster -------------------------------------------------------------------------

    def acknowledge(
        self, topic: str | None = None, *, count: int | None = None, error: KafkaError | None = None
    ) -> None:
        """The cluster takes the held records (of `topic`; the first `count`), or refuses them
        with `error`; then the worker serves the reports and moves its checkpoints on. Raises
        `DeliveryFailed` when the oldest batch had a record refused."""
        self.cluster.acknowledge(topic, count=count, error=error)
        self.loop.advance()

    def held(self, topic: str | None = None, key: str | None = None) -> list[Produced]:
        """Records produced and not acknowledged yet (of a topic, of a key), in produced order."""
        return [
            record
            for record in self.cluster.held()
            if (topic is None or record.topic == topic)
            and (key is None or record.key == key.encode())
        ]

    def output(
        self, topic: str, key: str | None = None, *, uncommitted: bool = False
    ) -> list[Produced]:
        """The records of a topic (of a key) a read_committed consumer reads, partition by
        partition; with `uncommitted`, every record the cluster took (aborted transactions' and
        open ones' too)."""
        cluster = self.cluster
        return [
            Produced(topic, number, message.key(), message.value(), message.offset())
            for number in range(self.partitions)
            for message in cluster.log(topic, number)
            if (key is None or message.key() == key.encode())
            and (
                uncommitted or cluster.visible(topic, number, int(message.offset() or 0)) == "read"
            )
        ]

    def refuse_commit(self, error: KafkaError) -> None:
        """Exactly-once: the next transaction commit fails with `error`."""
        self.cluster.refused_commit = error

    def outputs_json(self, topic: str, key: str | None = None) -> list[dict[str, Any]]:
        """The values of `output(topic, key)`, each decoded from its JSON (an output's fields,
        e.g. `domain.outputs`, as they travel). Raises `ValueError` for a record with no value
        (a tombstone: read those with `output`)."""
        decoded = []
        for record in self.output(topic, key):
            if record.value is None:
                raise ValueError(f"{topic}[{record.partition}]@{record.offset} is a tombstone")
            decoded.append(orjson.loads(record.value))
        return decoded

    def dead_letters(self) -> list[DeadLetter]:
        """The dead letters the cluster took on `loyalty.dead-letter`, decoded, partition by
        partition: each says why its record could not be used (`reason`), where it came from and
        when the worker gave up on it (`failed_at`, by the worker's clock)."""
        letters = []
        for fields in self.outputs_json(DEAD_LETTER):
            fields["failed_at"] = datetime.fromisoformat(fields["failed_at"])
            letters.append(DeadLetter(**fields))
        return letters

    @property
    def commits(self) -> list[dict[tuple[str, int], int]]:
        """Every offset commit of the inbound topics, oldest first."""
        return self.cluster.commits

    def end_offset(self, topic: str, partition: int) -> int:
        """The offset the next record of a partition gets."""
        return self.cluster.end(topic, partition)

    # -- the worker's state ------------------------------------------------------------------

    def partition_of(self, key: str) -> int:
        """The partition a player's (or a brand's) key hashes to, as the producers choose it."""
        return self.cluster.partition_for(key.encode())

    def player(self, key: str) -> PlayerState | None:
        """A player's record as the store holds it (checkpointed; not the batches in flight)."""
        return self.table.player(self.partition_of(key), key)

    def put_player(self, state: PlayerState) -> None:
        """Store a player's record in its partition's store as a checkpoint leaves it: the record
        and its due-time index entry (`state.timer_at`, if any), so time-driven work finds it.
        Not on the changelog: a `restart` with `lose_store` does not restore it."""
        writes = dict(player_moves(None, state))
        writes[state.key.encode()] = encode_player(state)
        self.store(self.partition_of(state.key)).write(writes, -1)

    def store(self, partition: int) -> PartitionStore:
        """A partition's store as the worker holds it: checkpointed records only, none of the
        batches in flight (read it with `state.queries`; write it to set up a test)."""
        return self.table.partition(partition)

    @property
    def open_batch(self) -> Batch | None:
        """The batch being folded, or None: what it holds is not checkpointed."""
        return self.loop.open_batch

    @property
    def in_flight_records(self) -> int:
        """Records folded and timers fired whose batch is not checkpointed yet."""
        return self.loop.in_flight_records

    def timer_cursor(self, partition: int) -> bytes | None:
        """Where the next pass over a partition's due-time index starts (a key of
        `state.keyspace`; None: the index's head)."""
        return self.loop.timer_cursor(partition)

    # -- crashes -----------------------------------------------------------------------------

    def crash(self) -> None:
        """The worker dies: what it folded and did not checkpoint is lost, what its producer
        held never reaches the cluster; the store keeps what was written to it."""
        self.loop.abandon()
        self.cluster.forget()
        self.table.close()

    def restart(self, *, lose_store: bool = False) -> None:
        """The partitions' next owner after a `crash`: the same store, or with `lose_store` an
        empty one (another machine), restored from the changelog; the inbound topics are read
        again from the committed offsets (by the next `fold`)."""
        directory = self.directory / "players"
        if lose_store:
            directory = self.directory / f"players-{next(self._starts)}"
        self.table, self.loop = self._start(directory)

    def close(self) -> None:
        """Stop without checkpointing what is in flight, and close the store."""
        self.loop.abandon()
        self.loop.close()
        self.table.close()
