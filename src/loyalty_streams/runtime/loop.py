"""The fold loop: player events and commands in, player records and outputs out, in batches.

It consumes `casino.player-events` and `loyalty.commands` in one consumer: the two topics are
co-partitioned and the range assignor gives a worker the same partitions of both, so each
player's events and commands meet the one record they change. What a fetch brought is decoded
first, then folded record by record through `fold.fold` (the domain, no rules here), and each
record's outputs are produced at once, so they travel while the rest of the batch folds.

A batch (`batch`) collects what is fetched for up to `BATCH_S`, so checkpoints write few, full
record batches; it is then checkpointed (`checkpoint`) while the next batch folds, reading the
newest records from the batches still in flight. Between fetches the loop runs a slice of each
time-driven work (`timers`); rebalances (`rebalance`) run inside its polls. Every tuning
constant is in `tuning`.

Under exactly-once (`Settings.processing_guarantee`) its producer is transactional
(`transactions` starts it) and each batch is checkpointed in its own transaction as it is
sealed, before the next one folds (see `checkpoint`).
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaException, Message

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.kafka.clients import (
    ConsumerClient,
    KafkaClients,
    ProducerClient,
    fold_consumer_config,
    output_producer_config,
    transactional_producer_config,
)
from loyalty_streams.kafka.topics import INBOUND
from loyalty_streams.runtime.batch import ABSENT, Batch, Batches
from loyalty_streams.runtime.checkpoint import Checkpoints
from loyalty_streams.runtime.fold import Boundary, Outcome, ProgrammeFor, Record, decode, fold
from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.runtime.rebalance import Assignment
from loyalty_streams.runtime.timers import CensusTaker, Rechecks, TimeDriven, Timers
from loyalty_streams.runtime.transactions import start_transactions
from loyalty_streams.runtime.tuning import (
    BATCH,
    BATCH_S,
    BUSY_POLL_S,
    CLOSE_FLUSH_S,
    DRAIN_S,
    IDLE_POLL_S,
    LAG_INTERVAL_S,
    STOP_WAIT_S,
    TIMER_IDLE_S,
    TIMER_SLICE_S,
)
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import SEEN_PREFIX
from loyalty_streams.state.store import PlayerTable

log = logging.getLogger(__name__)


class FoldLoop:
    """Runs the fold loop in its own thread (`start`), or a step at a time (`subscribe`, then
    `step` or its parts: see `runtime.test_driver`); lookups read its table from the web thread.

    `programme_for` gives a brand's programme at an instant; `clock` the worker's time (UTC);
    `on_assignment` hears the owned partitions after each rebalance; `clients` makes the
    consumer and the producer; `timer_slice_s` and `timer_idle_s` pace the time-driven work.
    """

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
        self.settings = settings
        self.programme_for = programme_for
        self.table = table
        self.clock = clock
        self.metrics = metrics
        self.failure: BaseException | None = None
        self.last_loop = time.monotonic()
        self.boundary = Boundary.of(settings, partitions=0)
        """Given the inbound topics' partition count by `subscribe`, before any record is read."""
        self._lag_due = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fold-player-events", daemon=True)
        self._consumer: ConsumerClient = clients.consumer(fold_consumer_config(settings))
        self._clients = clients
        self._producer: ProducerClient = clients.producer(
            transactional_producer_config(settings)
            if settings.exactly_once
            else output_producer_config(settings)
        )
        self._transactions_started = False
        self.batches = Batches(table, settings.player_cache_size, clock)
        shared = TimeDriven(
            table,
            self.batches,
            lambda: self.assignment.owned,
            programme_for,
            clock,
            metrics,
            self._send,
            timer_slice_s,
        )
        parts = vars(shared)
        self.timers = Timers(**parts, wait_s=settings.timers_wait_s, idle_s=timer_idle_s)
        self.rechecks = Rechecks(**parts)
        self.census = CensusTaker(**parts, interval_s=settings.census_interval_s)
        self.checkpoints = Checkpoints(
            self.batches,
            table,
            self._producer,
            self._consumer,
            metrics,
            self._stop,
            self.timers.rewind,
            exactly_once=settings.exactly_once,
            on_aborted=self.timers.forget,
        )
        self.assignment = Assignment(
            settings,
            table,
            clients,
            clock,
            self.batches,
            self.checkpoints.drain,
            self.timers.forget,
            on_assignment,
            self.checkpoints.forget,
        )

    # -- control, from any thread ------------------------------------------------------------

    def start(self, inbound_partitions: int) -> None:
        """Subscribe and run the loop in its thread; see `subscribe`."""
        self.subscribe(inbound_partitions)
        self._thread.start()

    def start_transactions(self) -> None:
        """Under exactly-once, register the producer's transactional id and check the cluster
        hides aborted transactions (see `transactions`; once, before the first fetch); raises
        `transactions.TransactionsUnavailable` with the reason. Nothing under at-least-once."""
        if self.settings.exactly_once and not self._transactions_started:
            start_transactions(self._producer, self.settings, self._clients)
            self._transactions_started = True

    def subscribe(self, inbound_partitions: int) -> None:
        """Join the consumer group; `inbound_partitions` is the partition count of the inbound
        topics (co-partitioned), which the boundary checks each record against. Partitions are
        assigned (and restored) from inside a later `fetch`. Starts the transactions first if
        they are not (`start_transactions`)."""
        self.start_transactions()
        self.boundary = Boundary.of(self.settings, inbound_partitions)
        self._consumer.subscribe(
            list(INBOUND),
            on_assign=self.assignment.assigned,
            on_revoke=self.assignment.revoked,
            on_lost=self.assignment.lost,
        )

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Ask the loop to stop (it drains, then closes) and wait up to `timeout` seconds for
        its thread."""
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.failure is None

    @property
    def owned(self) -> frozenset[int]:
        """The partitions this worker owns now."""
        return self.assignment.owned

    @property
    def in_flight_records(self) -> int:
        """Records folded and timers fired whose batch is not checkpointed yet (read from any
        thread): their outputs may be out, while lookups still show the record before them."""
        return self.batches.records

    @property
    def open_batch(self) -> Batch | None:
        """The batch being folded (read on the fold thread): what it holds is not checkpointed."""
        return self.batches.open

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
        self.timers.fire()
        self.rechecks.run()
        self.census.take()
        batches = self.batches
        if batches.open is not None and (
            batches.open.size >= BATCH or time.monotonic() - batches.opened_at >= BATCH_S
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
        open_batch = self.batches.open
        busy = open_batch is not None or self.batches.in_flight
        first = self._consumer.poll(BUSY_POLL_S if busy else IDLE_POLL_S)
        if first is None:
            return 0
        room = BATCH - 1 - (self.batches.open.size if self.batches.open else 0)
        messages = [first, *self._consumer.consume(max(room, 1), 0)]
        self._fold(messages)
        return len(messages)

    def fire_timers(self) -> bool:
        """One slice of the due-time index (see `timers.Timers.fire`)."""
        return self.timers.fire()

    def run_rechecks(self) -> bool:
        """One slice of the brands' re-checks (see `timers.Rechecks.run`)."""
        return self.rechecks.run()

    def take_census(self) -> None:
        """One slice of the census (see `timers.CensusTaker.take`)."""
        self.census.take()

    def seal(self) -> None:
        """Queue the open batch for its checkpoint (see `checkpoint.Checkpoints.seal`)."""
        self.checkpoints.seal()

    def advance(self) -> None:
        """Move the checkpoints on (see `checkpoint.Checkpoints.advance`)."""
        self.checkpoints.advance()

    def drain(self, timeout: float | None = None) -> None:
        """Checkpoint everything folded (see `checkpoint.Checkpoints.drain`)."""
        self.checkpoints.drain(timeout)

    def timer_cursor(self, partition: int) -> bytes | None:
        """Where the next pass over a partition's due-time index starts (None: its head)."""
        return self.timers.cursor(partition)

    def abandon(self) -> None:
        """Forget the open batch and the batches in flight, as a crash does: never checkpointed,
        they are replayed by the partitions' next owner (and not retried by the revoke that
        closing calls)."""
        self.batches.abandon()

    def close(self) -> None:
        """Leave the group (the partitions move on at once) and send what the producer holds;
        under exactly-once, a transaction still open is aborted first."""
        if self.checkpoints.transaction_open:
            try:
                self.checkpoints.forget()
            except Exception as error:  # closing anyway: the coordinator aborts it in time
                log.warning("could not abort the open transaction: %r", error)
        self._consumer.close()
        self._producer.flush(CLOSE_FLUSH_S)

    def _send(self, batch: Batch, outcome: Outcome) -> None:
        self.checkpoints.send(batch, outcome)

    def _fold(self, messages: list[Message]) -> None:
        """Decode every message of a fetch, then fold them in order into the open batch."""
        batches = self.batches
        batch = batches.current()
        batch.messages.extend(messages)
        partition = 0

        def load(key: str) -> PlayerState | None:
            return batches.latest(partition, key)

        def stored(key: bytes) -> bytes | None:
            value = batches.pending(partition, key)
            if value is ABSENT:
                store = self.table.opened(partition)
                value = None if store is None else store.get(key)
            return value

        def applied(applied_id: str) -> bytes | None:
            value = stored(SEEN_PREFIX + applied_id.encode())
            return None if value is None else value.partition(b"|")[2]

        boundary = self.boundary
        now = self.clock()
        now_ms = now.timestamp() * 1000
        decoded = []  # all of them first: see `fold.decode`
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
            decoded.append((record, decode(record, boundary, self.clock)))
        send = self.checkpoints.send
        for record, inbound in decoded:
            partition = record.partition
            outcome = (
                inbound
                if isinstance(inbound, Outcome)  # a dead letter
                else fold(
                    record,
                    inbound,
                    boundary,
                    self.programme_for,
                    load,
                    self.clock,
                    applied,
                    stored,
                )
            )
            send(batch, outcome)
            batch.add(outcome, partition)
            if outcome.dead:
                batch.dead[record.topic] += 1
            batch.commits[record.topic, partition] = record.offset + 1

    def _measure_lag(self) -> None:
        """Records behind the end of each owned inbound partition.

        The end is librdkafka's cached high watermark, updated by every fetch response: no
        broker round trip on the fold thread, which would add to every record's latency.
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
