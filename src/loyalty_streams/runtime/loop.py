"""The inbound agent: player events and commands in, player records and outputs out, in batches.

It consumes `casino.player-events` and `loyalty.commands` in one consumer: the two topics are
co-partitioned and the range assignor gives a worker the same partitions of both, so each
player's events and commands meet the one record they change. What a fetch brought is decoded
first, then folded record by record through `records.fold` (the domain, no rules here), and
each record's outputs are produced at once, so they travel while the rest of the batch folds.
Each batch is then checkpointed, in an order that makes a crash at any point harmless:

1. its outputs are acknowledged by the cluster;
2. its changed player records are produced to the changelog (history rows to the history
   topic) and acknowledged;
3. they are written to RocksDB with the offsets they reach;
4. its inbound offsets are committed.

A batch collects what is fetched for up to `BATCH_S`, so checkpoints write few, full record
batches. The fold does not wait for a checkpoint: while a batch's records travel, the next
batch folds (reading the newest records from the batches still in flight), and delivery reports
move the oldest batch through the steps above; the fold thread would otherwise sit idle for two
round trips to the cluster per batch. Batches are checkpointed strictly in order, so the store
and the committed offsets never run ahead of the changelog; a rebalance and a stop first wait
for every batch in flight.

Time-driven work runs between fetches, in slices of at most `TIMER_SLICE_S`: the due-time index
of each owned partition (`state.timer_index`) is read from its start up to the worker's clock
less `timers_wait_s`, and each entry due is fired into the open batch like a folded record
(a player's timers through `records.fire`; applied ids and old rows forgotten, see
`state.retention`), so its outputs, record and index changes are checkpointed the same way.
Overdue entries after downtime fire in time order, a slice at a time, while the stream catches
up. A census of the owned players for the population gauges is read the same way, a slice at a
time, every `census_interval_s`.

A crash before 2 replays the batch and re-sends outputs with the same derived ids (consumers
drop repeats by id); after 2, the replayed events are already in the records' idempotency stamps
and change nothing. The same events published twice are caught by the applied event ids each
partition remembers (`SEEN_PREFIX`).
"""

import logging
import threading
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import orjson
from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from loyalty_streams.domain.outputs import Output
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.kafka.clients import (
    ConsumerClient,
    KafkaClients,
    ProducerClient,
    group_consumer_config,
    output_producer_config,
)
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import INBOUND, PLAYERS_CHANGELOG, PLAYERS_HISTORY
from loyalty_streams.runtime.fold import (
    Boundary,
    Outcome,
    ProgrammeFor,
    Record,
    decode,
    fire,
    fold,
    recheck,
)
from loyalty_streams.runtime.metrics import Census, Metrics
from loyalty_streams.settings import Settings
from loyalty_streams.state.cache import PlayerCache
from loyalty_streams.state.keyspace import (
    CASHBACK_PREFIX,
    FORGET,
    HISTORY_PREFIX,
    INDEXED,
    INDEXING,
    PLAYER,
    RECHECK_PREFIX,
    SEEN_PREFIX,
    TIMER_PREFIX,
    due_before,
    parse_timer_key,
)
from loyalty_streams.state.restore import restore
from loyalty_streams.state.retention import expired_rows, forget_entry, forgotten
from loyalty_streams.state.store import PartitionStore, PlayerTable

log = logging.getLogger(__name__)

BATCH = 5_000
"""Most records folded per checkpoint: large enough to amortise the round trips, small enough
to keep a checkpoint well under a second."""

BATCH_S = 0.1
"""Longest a batch stays open for more records. Each checkpoint writes a record batch to every
changelog partition it touches, and a broker's cost is mostly per record batch (the embedded
one spends about half a millisecond of CPU on each): a checkpoint per fetch would write
hundreds of tiny batches a second at 5,000 events/s."""

IN_FLIGHT = 2 * BATCH
"""Most records folded and timers fired not yet checkpointed: the fold waits beyond that, so
memory and the work a crash replays stay bounded."""

DRAIN_S = 10.0
"""How long a rebalance or a stop waits for batches in flight; what is left is replayed by the
partitions' next owner (a crash's case)."""

IDLE_POLL_S = 0.1
BUSY_POLL_S = 0.005
"""Consumer poll timeouts: while batches are in flight, the loop returns quickly to move them on."""

LAG_INTERVAL_S = 10.0
"""How often the consumer lag gauge is refreshed."""

TIMER_SLICE_S = 0.02
"""Longest run of time-driven work (timers, the census) between two fetches: what an event may
wait behind it."""

TIMER_IDLE_S = 0.05
"""How long the loop leaves the index alone after finding nothing more due."""

_ABSENT = b"\x00absent"

_HISTORY = HISTORY_PREFIX[1]
"""The second byte of a history row's key: no other bookkeeping key starts with it (player
records, which may, are never among an outcome's writes)."""
"""What `_pending` says of a key no batch in flight writes (a value no store record holds)."""


@dataclass(slots=True)
class Batch:
    """What one checkpoint writes: player records, other store records, offsets; the outputs
    already produced and the inbound messages, for the metrics; and its records in flight."""

    day: bytes
    """The day the batch is applied (ordinal, from the worker's clock): stamped on its event ids."""
    messages: list[Message] = field(default_factory=list)
    states: dict[str, tuple[int, PlayerState, bytes]] = field(default_factory=dict)
    """Changed player records by key: partition, record, the record encoded."""
    writes: dict[int, dict[bytes, bytes | None]] = field(default_factory=dict)
    commits: dict[tuple[str, int], int] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    closed: list[bytes] = field(default_factory=list)
    """Rows of the daily cashback log the batch writes, for the metrics."""
    applied: dict[int, list[bytes]] = field(default_factory=dict)
    """Keys of the event ids the batch applied, per partition: forgotten together later."""
    fired: int = 0
    """Index entries fired into the batch (they count towards its size like records)."""
    earliest: dict[int, bytes] = field(default_factory=dict)
    """The first entry of the due-time index the batch registers, per partition."""
    dead: Tally[str] = field(default_factory=Tally)
    """Dead letters per inbound topic."""
    unacked: int = 0
    """Records produced for the batch that the cluster has not acknowledged yet."""
    changelog_sent: bool = False
    changelog_offsets: dict[int, int] = field(default_factory=dict)
    """The highest changelog offset of the batch's records, per partition."""
    history_offsets: dict[int, int] = field(default_factory=dict)
    """The highest offset of the batch's history rows on their topic, per partition."""
    errors: list[KafkaError] = field(default_factory=list)

    def add(self, outcome: Outcome, partition: int) -> None:
        if outcome.state is not None:
            self.states[outcome.state.key] = (partition, outcome.state, outcome.state_json)
        if outcome.applied_id is not None or outcome.writes:
            writes = self.writes.setdefault(partition, {})
            if outcome.applied_id is not None:
                seen = SEEN_PREFIX + outcome.applied_id.encode()
                writes[seen] = self.day + b"|" + outcome.applied_from
                self.applied.setdefault(partition, []).append(seen)
            for key, value in outcome.writes:
                writes[key] = value
                if value is None or key[1] == _HISTORY:  # most writes: skipped at one compare
                    continue
                if key.startswith(CASHBACK_PREFIX):
                    self.closed.append(value)
                elif key.startswith(TIMER_PREFIX) and key < self.earliest.get(partition, b"\xff"):
                    self.earliest[partition] = key
        self.outputs.extend(outcome.outputs)

    @property
    def size(self) -> int:
        """Records folded and index entries fired."""
        return len(self.messages) + self.fired

    def delivered(self, error: KafkaError | None, _: Message) -> None:
        """librdkafka's report on one of the batch's outputs (served on the fold thread)."""
        self.unacked -= 1
        if error is not None:
            self.errors.append(error)

    def logged(self, error: KafkaError | None, message: Message) -> None:
        """librdkafka's report on one of the batch's changelog records."""
        self._reached(error, message, self.changelog_offsets)

    def historied(self, error: KafkaError | None, message: Message) -> None:
        """librdkafka's report on one of the batch's history rows."""
        self._reached(error, message, self.history_offsets)

    def _reached(self, error: KafkaError | None, message: Message, offsets: dict[int, int]) -> None:
        self.unacked -= 1
        if error is not None:
            self.errors.append(error)
            return
        partition, offset = int(message.partition() or 0), int(message.offset() or 0)
        if offset > offsets.get(partition, -1):
            offsets[partition] = offset


class DeliveryFailed(RuntimeError):
    """The cluster did not take a record within librdkafka's retries: stop and replay later."""


class FoldLoop:
    """Runs the fold loop in its own thread; lookups read its table from the web thread."""

    def __init__(
        self,
        settings: Settings,
        programme_for: ProgrammeFor,
        table: PlayerTable,
        clock: Callable[[], datetime],
        on_assignment: Callable[[tuple[int, ...]], None],
        metrics: Metrics,
        clients: KafkaClients,
        *,
        timer_slice_s: float = TIMER_SLICE_S,
        timer_idle_s: float = TIMER_IDLE_S,
    ) -> None:
        """`clients` makes the consumer and the producer; `timer_slice_s` and `timer_idle_s`
        pace the time-driven work (see `TIMER_SLICE_S`, `TIMER_IDLE_S`)."""
        self.settings = settings
        self.clients = clients
        self._slice_s = timer_slice_s
        self._idle_s = timer_idle_s
        self.programme_for = programme_for
        self.table = table
        self.clock = clock
        self.on_assignment = on_assignment
        self.metrics = metrics
        self._lag_due = 0.0
        self.owned: frozenset[int] = frozenset()
        self.failure: BaseException | None = None
        self.last_loop = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fold-player-events", daemon=True)
        self._open: Batch | None = None
        """The batch being folded, until it is full or `BATCH_S` old."""
        self._opened_at = 0.0
        self._in_flight: deque[Batch] = deque()
        """Sealed batches not yet checkpointed, oldest first."""
        self._cache = PlayerCache(settings.player_cache_size)
        self._timer_wait = timedelta(seconds=settings.timers_wait_s)
        self._cursors: dict[int, bytes] = {}
        """Per partition, where the next pass over the due-time index starts: every entry the
        store holds below it is fired (its deletion stored or in flight). Passes never start
        over from the index's head, whose deleted entries RocksDB keeps until it compacts them
        (a pass over them took a whole slice and fired almost nothing); a checkpoint that
        stores an entry below it moves it back (`Batch.earliest`)."""
        self._timers_idle_until = 0.0
        self._census: Census | None = None
        self._census_from: tuple[int, bytes] | None = None
        """Where the census under way reads next: a partition and a key."""
        self._census_due = 0.0
        self.boundary = Boundary.of(settings, partitions=0)
        """Given the inbound topics' partition count by `start`, before any record is read."""
        self._consumer: ConsumerClient = clients.consumer(
            group_consumer_config(settings, settings.app_id, fetch_wait_ms=50)
        )
        self._producer: ProducerClient = clients.producer(output_producer_config(settings))

    # -- control, from any thread ------------------------------------------------------------

    def start(self, inbound_partitions: int) -> None:
        """Subscribe and run the loop in its thread; see `subscribe`."""
        self.subscribe(inbound_partitions)
        self._thread.start()

    def subscribe(self, inbound_partitions: int) -> None:
        """Join the consumer group; `inbound_partitions` is the partition count of the inbound
        topics (co-partitioned), which the boundary checks each record against. Partitions are
        assigned (and restored) from inside a later `fetch`."""
        self.boundary = Boundary.of(self.settings, inbound_partitions)
        self._consumer.subscribe(
            list(INBOUND),
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._revoked,
        )

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.failure is None

    @property
    def in_flight_records(self) -> int:
        """Records folded and timers fired whose batch is not checkpointed yet (read from any
        thread): their outputs may be out, while lookups still show the record before them."""
        open_batch = self._open
        waiting = list(self._in_flight)  # a copy: the fold thread changes the deque
        pending = open_batch.size if open_batch is not None else 0
        return pending + sum(batch.size for batch in waiting)

    # -- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.step()
            self.drain(DRAIN_S)
        except BaseException as error:
            self.failure = error
            log.critical("the fold loop stopped: %r", error, exc_info=True)
            self.abandon()
            raise
        finally:
            self.close()

    def step(self) -> None:
        """One pass of the loop: a fetch folded, a slice of each time-driven work, the open
        batch sealed when full or `BATCH_S` old, checkpoints moved on, the lag now and then."""
        self.fetch()
        self.fire_timers()
        self.run_rechecks()
        self.take_census()
        if self._open is not None and (
            self._open.size >= BATCH or time.monotonic() - self._opened_at >= BATCH_S
        ):
            self.seal()
        self.advance()
        self.last_loop = time.monotonic()
        if self.last_loop >= self._lag_due:
            self._lag_due = self.last_loop + LAG_INTERVAL_S
            self._measure_lag()

    def fetch(self) -> int:
        """Poll once and fold what came into the open batch, with whatever else is already
        fetched (no wait for more); gives the records folded. Rebalances run in here."""
        busy = self._open is not None or self._in_flight
        first = self._consumer.poll(BUSY_POLL_S if busy else IDLE_POLL_S)
        if first is None:
            return 0
        room = BATCH - 1 - (self._open.size if self._open else 0)
        messages = [first, *self._consumer.consume(max(room, 1), 0)]
        self._fold(messages)
        return len(messages)

    def abandon(self) -> None:
        """Forget the open batch and the batches in flight, as a crash does: never checkpointed,
        they are replayed by the partitions' next owner (and not retried by the revoke that
        closing calls)."""
        self._open = None
        self._in_flight.clear()

    def close(self) -> None:
        """Leave the group (the partitions move on at once) and send what the producer holds."""
        self._consumer.close()
        self._producer.flush(10)

    @property
    def open_batch(self) -> Batch | None:
        """The batch being folded (read on the fold thread): what it holds is not checkpointed."""
        return self._open

    def timer_cursor(self, partition: int) -> bytes | None:
        """Where the next pass over a partition's due-time index starts (None: its head)."""
        return self._cursors.get(partition)

    def _batch(self) -> Batch:
        """The open batch, opened if there is none."""
        batch = self._open
        if batch is None:
            batch = self._open = Batch(_day(self.clock()))
            self._opened_at = time.monotonic()
        return batch

    def _latest(self, partition: int, key: str) -> PlayerState | None:
        """A player's newest record: of the open batch or a batch in flight (newer than the
        cache and the store), else of the cache or the store."""
        batch = self._open
        entry = None if batch is None else batch.states.get(key)
        if entry is None:
            for earlier in reversed(self._in_flight):
                entry = earlier.states.get(key)
                if entry is not None:
                    break
        if entry is not None:
            return entry[1]
        return self._cache.get(key) or self.table.player(partition, key)

    def _pending(self, partition: int, key: bytes) -> bytes | None:
        """A store key's newest value in the batches not checkpointed (None: deleted there),
        `_ABSENT` when none of them writes it."""
        batch = self._open
        if batch is not None:
            value = batch.writes.get(partition, {}).get(key, _ABSENT)
            if value is not _ABSENT:
                return value
        for earlier in reversed(self._in_flight):
            value = earlier.writes.get(partition, {}).get(key, _ABSENT)
            if value is not _ABSENT:
                return value
        return _ABSENT

    def _fold(self, messages: list[Message]) -> None:
        batch = self._batch()
        batch.messages.extend(messages)
        partition = 0

        def load(key: str) -> PlayerState | None:
            return self._latest(partition, key)

        def applied(applied_id: str) -> bytes | None:
            key = SEEN_PREFIX + applied_id.encode()
            value = self._pending(partition, key)
            if value is _ABSENT:
                store = self.table.opened(partition)
                value = None if store is None else store.get(key)
            return None if value is None else value.partition(b"|")[2]

        boundary = self.boundary
        now = self.clock()
        now_ms = now.timestamp() * 1000
        decoded = []  # all of them first: see `records.decode`
        for message in messages:
            error = message.error()
            if error is not None:
                log.warning("consumer error: %s", error)
                continue
            value = message.value()
            kind, stamp = message.timestamp()
            record = Record(
                str(message.topic()),
                int(message.partition() or 0),
                int(message.offset() or 0),
                message.key(),
                value if isinstance(value, bytes) else b"",  # a tombstone is no event
                # the broker's time, or the producer's; never ahead of this worker's clock,
                # never before 1970 (a producer may write any 64-bit number)
                now
                if kind == TIMESTAMP_NOT_AVAILABLE or stamp >= now_ms
                else datetime.fromtimestamp(max(stamp, 0) / 1000, UTC),
            )
            decoded.append((record, decode(record, boundary)))
        for record, inbound in decoded:
            partition = record.partition
            outcome = (
                inbound
                if isinstance(inbound, Outcome)  # a dead letter
                else fold(record, inbound, boundary, self.programme_for, load, applied=applied)
            )
            self._send(batch, outcome)
            batch.add(outcome, partition)
            if outcome.dead:
                batch.dead[record.topic] += 1
            batch.commits[record.topic, partition] = record.offset + 1

    def _count(self, batch: Batch) -> None:
        """Metrics of a batch whose outputs are acknowledged: records, dead letters, outputs,
        closed days, latency."""
        metrics = self.metrics
        now_ms = time.time() * 1000
        folded: Tally[str] = Tally()
        for message in batch.messages:
            if message.error() is None:
                folded[str(message.topic())] += 1
                kind, stamp = message.timestamp()
                if kind != TIMESTAMP_NOT_AVAILABLE:
                    metrics.latency.observe(max(now_ms - stamp, 0.0) / 1000)
        for topic, count in folded.items():
            metrics.records.labels(topic).inc(count)
        for topic, count in batch.dead.items():
            metrics.dead_letters.labels(topic).inc(count)
        metrics.count_outputs(batch.outputs)
        metrics.count_closed_days(batch.closed)

    def _measure_lag(self) -> None:
        """Records behind the end of each owned inbound partition.

        The end is librdkafka's cached high watermark, updated by every fetch response: no
        broker round trip on the agent's thread, which would add to every record's latency.
        """
        try:
            assigned = self._consumer.assignment()
            lags = {}
            for tp in self._consumer.position(assigned):
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                behind = high - tp.offset if tp.offset >= 0 else 0
                lags[tp.topic, tp.partition] = max(behind, 0)
            self.metrics.set_lag(lags)  # partitions given away lose their series
        except KafkaException as error:
            log.warning("could not measure the consumer lag: %s", error)

    def fire_timers(self) -> bool:
        """Fire the index entries due by the worker's clock less `timers_wait_s`, oldest first,
        for at most a slice (`TIMER_SLICE_S`); the next call goes on where this one stopped.
        Gives True when the pass read every entry due (none left: the index is left alone for
        `TIMER_IDLE_S`), False when the slice ended first."""
        started = time.monotonic()
        if started < self._timers_idle_until:
            return True
        until = self.clock() - self._timer_wait
        end = due_before(until)
        deadline = started + self._slice_s
        fired: Tally[bytes] = Tally()
        try:
            for partition in sorted(self.owned):
                store = self.table.partition(partition)
                for key, value in store.items(TIMER_PREFIX, self._cursors.get(partition), end):
                    self._cursors[partition] = key + b"\x00"
                    fired[self._fire(partition, store, key, value, until)] += 1
                    if time.monotonic() >= deadline:
                        return False
            self._timers_idle_until = time.monotonic() + self._idle_s
            return True
        finally:
            for kind, count in fired.items():
                self.metrics.timers_fired.labels(kind.decode()).inc(count)
            slice_s = time.monotonic() - started
            if fired or slice_s >= 0.001:  # a pass that read only deleted entries counts too
                self.metrics.time_driven_slices.labels("timers").observe(slice_s)

    def _fire(
        self, partition: int, store: PartitionStore, key: bytes, value: bytes, until: datetime
    ) -> bytes:
        """Fire one index entry into the open batch; an entry a batch in flight already
        deleted is done (its deletion is not checkpointed yet). Gives the entry's kind, or
        `b"done"` for such an entry, `b"failed"` for a player's whose rules raised (the player's
        next record runs them again, and dead-letters that record if they raise again)."""
        if self._pending(partition, key) is None:
            return b"done"
        batch = self._batch()
        batch.fired += 1
        writes = batch.writes.setdefault(partition, {})
        writes[key] = None
        kind, subject = parse_timer_key(key)
        if kind == PLAYER:
            state = self._latest(partition, subject.decode())
            # an entry the record has moved on from is only deleted
            if state is not None and state.timer_at is not None and state.timer_at <= until:
                try:
                    outcome = fire(state, self.programme_for, until)
                except Exception:  # a fault of the rules on one record: logged, never a stop
                    log.exception("the timers of %s at %s failed", state.key, state.timer_at)
                    return b"failed"
                self._send(batch, outcome)
                batch.add(outcome, partition)
        elif kind == FORGET:
            writes.update(dict.fromkeys(forgotten(value)))
        else:
            writes.update(expired_rows(store, subject, until))
        return kind

    def run_rechecks(self) -> bool:
        """Go on with the brands' re-checks under way (`RECHECK_PREFIX`), a slice at a time:
        each player of the brand (one range of keys) is re-checked into the open batch, and the
        re-check's place is written with it, so a crash resumes where it stood. Gives True when
        every re-check is finished (their ends maybe not checkpointed yet), False when the slice
        ended first."""
        started = time.monotonic()
        deadline = started + self._slice_s
        try:
            for partition in sorted(self.owned):
                store = self.table.partition(partition)
                for key, stored in store.items(RECHECK_PREFIX):
                    newest = self._pending(partition, key)
                    if newest is None:  # finished, not checkpointed yet
                        continue
                    job = orjson.loads(stored if newest is _ABSENT else newest)
                    if not self._recheck(partition, store, key, job, deadline):
                        return False
            return True
        finally:
            if time.monotonic() - started >= 0.001:
                slice_s = time.monotonic() - started
                self.metrics.time_driven_slices.labels("rechecks").observe(slice_s)

    def _recheck(
        self,
        partition: int,
        store: PartitionStore,
        key: bytes,
        job: dict[str, str],
        deadline: float,
    ) -> bool:
        """Re-check a brand's players from where `job` stands until `deadline`; True when it
        finished them."""
        batch = self._batch()
        writes = batch.writes.setdefault(partition, {})
        at = datetime.fromisoformat(job["at"])
        command_id = key.removeprefix(RECHECK_PREFIX).decode()
        brand = job["brand_id"].encode() + b":" if job["brand_id"] else b""  # "": everyone
        start = job["next"].encode() or brand
        indexing = key == INDEXING
        for player, _ in store.items(brand, start):
            state = self._latest(partition, player.decode())
            if state is not None:
                outcome = recheck(state, self.programme_for, at, f"{command_id}:{state.key}")
                self._send(batch, outcome)
                batch.add(outcome, partition)
            if indexing:  # and the retention of the rows it wrote before the index
                writes.update(expired_rows(store, player, at))
            batch.fired += 1
            if time.monotonic() >= deadline:
                writes[key] = orjson.dumps({**job, "next": (player + b"\x00").decode()})
                return False
        writes[key] = None
        if indexing:
            writes[INDEXED] = b""
        return True

    def take_census(self) -> None:
        """Read the owned players for the population gauges, a slice at a time: a census starts
        every `census_interval_s` and sets the gauges when it has read every partition."""
        started = time.monotonic()
        census = self._census
        if census is None:
            if started < self._census_due or not self.owned:
                return
            census = self._census = Census(self.programme_for, self.clock())
            self._census_from = (min(self.owned), b"")
        assert self._census_from is not None
        partition, after = self._census_from
        deadline = started + self._slice_s
        slices = self.metrics.time_driven_slices.labels("census")
        for number in sorted(p for p in self.owned if p >= partition):
            start = after + b"\x00" if number == partition and after else None
            for key, raw in self.table.partition(number).items(start=start):
                census.add(raw)
                if time.monotonic() >= deadline:
                    self._census_from = (number, key)
                    slices.observe(time.monotonic() - started)
                    return
        slices.observe(time.monotonic() - started)
        self.metrics.set_population(census)
        self._census = self._census_from = None
        self._census_due = started + self.settings.census_interval_s

    def seal(self) -> None:
        """Queue the open batch (if any) for its checkpoint; wait while too many records are in
        flight."""
        batch = self._open
        if batch is None:
            return
        self._open = None
        self._in_flight.append(batch)
        self.advance()
        while (
            self.in_flight_records > IN_FLIGHT
            and not self._stop.is_set()  # then the loop's drain decides
        ):
            self._producer.poll(BUSY_POLL_S)
            self.advance()

    def advance(self) -> None:
        """Serve delivery reports, and take the oldest batches through their checkpoint steps
        as far as the cluster has acknowledged them. Raises `DeliveryFailed` when the cluster
        refused one of the oldest batch's records."""
        self._producer.poll(0)
        in_flight = self._in_flight
        while in_flight:
            head = in_flight[0]
            if head.errors:
                raise DeliveryFailed(f"records not delivered: {head.errors[0]}")
            if head.unacked:
                return
            if not head.changelog_sent:  # its outputs are acknowledged
                self._count(head)
                self._send_changelog(head)
                continue
            self._store(head)
            in_flight.popleft()

    def drain(self, timeout: float | None = None) -> None:
        """Wait until every batch in flight is checkpointed, the open one sealed first; after
        `timeout` (s), forget the rest (their partitions' next owner replays them, as after a
        crash). Raises `DeliveryFailed` when the cluster refused a record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.seal()
        self.advance()
        while self._in_flight:
            if deadline is not None and time.monotonic() >= deadline:
                log.warning(
                    "%d batches not checkpointed; they will be replayed", len(self._in_flight)
                )
                self._in_flight.clear()
                return
            self._producer.flush(BUSY_POLL_S * 20)  # sends at once, without the linger
            self.advance()

    def _send_changelog(self, batch: Batch) -> None:
        """Step 2: the batch's changed records, to the changelog partition of their store; its
        history rows to the history topic's (a deleted one only from the store: that topic
        forgets by time)."""
        batch.changelog_sent = True
        for name, (partition, _, encoded) in batch.states.items():
            batch.writes.setdefault(partition, {})[name.encode()] = encoded
        applied_on = date.fromordinal(int(batch.day))
        for partition, seen in batch.applied.items():
            # first in the changelog: a cut checkpoint that kept an id kept the entry that
            # forgets it (a replay lists the ids it applies again in an entry of its own)
            key, value = forget_entry(applied_on, seen)
            batch.writes[partition] = {key: value, **batch.writes[partition]}
        producer = self._producer
        for partition, records in batch.writes.items():
            for key, raw in records.items():
                if not key.startswith(HISTORY_PREFIX):  # player records too
                    topic, reached = PLAYERS_CHANGELOG, batch.logged
                elif raw is not None:
                    topic, reached = PLAYERS_HISTORY, batch.historied
                else:
                    continue
                batch.unacked += 1
                produce(producer, topic, raw, key, partition=partition, on_delivery=reached)

    def _store(self, batch: Batch) -> None:
        """Steps 3 and 4: RocksDB, with the changelog offsets reached; then the inbound offsets."""
        for partition, records in batch.writes.items():
            self.table.partition(partition).write(
                records,
                batch.changelog_offsets.get(partition, -1),
                batch.history_offsets.get(partition, -1),
            )
        cursors = self._cursors
        for partition, key in batch.earliest.items():
            cursor = cursors.get(partition)  # none: the next pass starts at the head anyway
            if cursor is not None and key < cursor:
                cursors[partition] = key
        for name, (_, state, _) in batch.states.items():
            self._cache.put(name, state)
        if batch.commits:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in batch.commits.items()],
                asynchronous=True,
            )

    def _send(self, batch: Batch, outcome: Outcome) -> None:
        """An outcome's outputs, to the partition of their key."""
        producer = self._producer
        batch.unacked += len(outcome.sends)
        for topic, key, value in outcome.sends:
            produce(producer, topic, value, key, on_delivery=batch.delivered)

    # -- rebalances (called by librdkafka from inside consume) -----------------------------

    def _assigned(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self.drain(DRAIN_S)
        numbers = sorted({tp.partition for tp in partitions})  # the same of both inputs
        self._cache.clear()  # the restore below writes the store directly
        self._cursors.clear()  # and may bring index entries below them
        restored = restore(self.settings, self.table, numbers, self.clients)
        for number in numbers:
            store = self.table.partition(number)
            if store.get(INDEXED) is None and store.get(INDEXING) is None:
                # written before the timer index: its players are re-checked once, which
                # indexes their timers (see INDEXING)
                job = {"brand_id": "", "at": self.clock().isoformat(), "next": ""}
                store.write({INDEXING: orjson.dumps(job)}, -1)
        self.owned = frozenset(numbers)
        log.info("assigned partitions %s (%d changelog records restored)", numbers, restored)
        self.on_assignment(tuple(numbers))

    def _revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        self.drain(DRAIN_S)  # checkpoint what was folded before another worker takes over
        numbers = {tp.partition for tp in partitions}
        self.owned = self.owned - numbers
        self._cache.clear()
        log.info("partitions %s revoked", sorted(numbers))
        self.on_assignment(tuple(sorted(self.owned)))


def _day(moment: datetime) -> bytes:
    """A UTC day as its ordinal in ASCII: six digits for millennia, so bytes order is day order."""
    return str(moment.date().toordinal()).encode()
