"""The checkpoint: a sealed batch made durable in four steps, pipelined over batches in flight.

1. its outputs are acknowledged by the cluster (produced as they were folded);
2. its changed store records go to the changelog (history rows to the history topic) and are
   acknowledged;
3. they are written to RocksDB with the offsets they reach;
4. its inbound offsets are committed.

A crash before 2 completes replays the batch: outputs are sent again with the same derived
ids (consumers drop repeats by id). After 2, the replayed events are already in the restored
records' idempotency stamps and change nothing; the same event published twice is caught by
the applied ids each partition remembers (`SEEN_PREFIX`). A crash between 2 and 4 restores
the store from the changelog. Batches are checkpointed strictly in order, so the store and the
committed offsets never run ahead of the changelog.

The fold does not wait: delivery reports, served on the fold thread, move the oldest batch
through the steps (`Stage`) while the next batch folds.

Exactly-once (`Settings.processing_guarantee`): each batch is one Kafka transaction, begun
before its first output; sealing it sends its changelog records and history rows in the same
transaction, adds its inbound offsets with the consumer group's metadata (so a worker the group
has fenced out cannot commit them), commits, and only then writes RocksDB with the changelog
offsets reached and moves the cache on. Batches are then checkpointed one at a time: the next
one folds after the commit. A crash before the commit leaves an aborted transaction that no
read_committed reader sees (outputs, changelog, offsets alike), so the partitions' next owner
folds the batch again from the committed offsets and its outputs are read once. A commit that
fails is aborted (`abort`): the batches are forgotten, never written to the store, and the
consumer goes back to the committed offsets; a fenced producer stops the loop.
"""

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    KafkaException,
    TopicPartition,
)

from loyalty_streams.kafka.clients import ConsumerClient, ProducerClient
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import PLAYERS_CHANGELOG, PLAYERS_HISTORY
from loyalty_streams.runtime.batch import Batch, Batches, Stage
from loyalty_streams.runtime.fold import Outcome
from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.runtime.tuning import (
    BUSY_POLL_S,
    DRAIN_FLUSH_S,
    IN_FLIGHT,
    TRANSACTION_ABORT_S,
    TRANSACTION_COMMIT_S,
    TRANSACTION_RETRIES,
)
from loyalty_streams.state.keyspace import HISTORY_PREFIX
from loyalty_streams.state.store import PlayerTable

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """The cluster did not take a record within librdkafka's retries: stop and replay later."""


class TransactionFailed(RuntimeError):
    """Exactly-once: the producer can no longer commit (fenced by another run with its
    transactional id, or a fatal error): stop; the partitions' next owner replays."""


@dataclass
class Checkpoints:
    """Sends a batch's records and moves sealed batches through their checkpoint.

    `producer` sends outputs, changelog records and history rows; `consumer` commits the inbound
    offsets; `stopping` tells the in-flight bound not to wait (a stop drains instead);
    `on_stored` hears of each batch written to the store (the timers move their cursors back).

    With `exactly_once`, each batch is a transaction of `producer` (see the module), and
    `on_aborted` hears that the batches were forgotten (the timers start their passes again).
    """

    batches: Batches
    table: PlayerTable
    producer: ProducerClient
    consumer: ConsumerClient
    metrics: Metrics
    stopping: threading.Event
    on_stored: Callable[[Batch], None]
    exactly_once: bool = False
    on_aborted: Callable[[], None] = lambda: None
    transaction_open: bool = field(default=False, init=False)
    """Exactly-once: a transaction is begun and neither committed nor aborted."""

    def send(self, batch: Batch, outcome: Outcome) -> None:
        """An outcome's outputs, to the partition of their key (step 1 starts at once; under
        exactly-once, in the open batch's transaction)."""
        producer = self.producer
        if self.exactly_once and outcome.sends and not self.transaction_open:
            self._begin()
        batch.unacked += len(outcome.sends)
        for topic, key, value in outcome.sends:
            produce(producer, topic, value, key, on_delivery=batch.delivered)

    def seal(self) -> None:
        """Queue the open batch (if any) for its checkpoint; wait while more than `IN_FLIGHT`
        records are in flight. Under exactly-once, checkpoint it at once (`_commit`)."""
        if self.batches.seal() is None:
            return
        if self.exactly_once:
            self._commit(self.batches.in_flight[0])
            return
        self.advance()
        while (
            self.batches.records > IN_FLIGHT
            and not self.stopping.is_set()  # then the loop's drain decides
        ):
            self.producer.poll(BUSY_POLL_S)
            self.advance()

    def advance(self) -> None:
        """Serve delivery reports, and take the oldest batches through their checkpoint steps
        as far as the cluster has acknowledged them. Raises `DeliveryFailed` when the cluster
        refused one of the oldest batch's records."""
        self.producer.poll(0)
        in_flight = self.batches.in_flight
        while in_flight:
            head = in_flight[0]
            if head.errors:
                raise DeliveryFailed(f"records not delivered: {head.errors[0]}")
            if head.unacked:
                return
            if head.stage is Stage.OUTPUTS:  # acknowledged
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
        in_flight = self.batches.in_flight
        while in_flight:
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("%d batches not checkpointed; they will be replayed", len(in_flight))
                in_flight.clear()
                return
            self.producer.flush(DRAIN_FLUSH_S)
            self.advance()

    def abort(self, reason: str) -> None:
        """Exactly-once: give up the batches not committed (`forget`), then read the owned
        partitions again from their committed offsets, so the batches fold again."""
        log.warning("checkpoint aborted, its records will be folded again: %s", reason)
        self.forget()
        consumer = self.consumer
        try:
            assigned = consumer.assignment()
            for tp in consumer.committed(assigned, TRANSACTION_COMMIT_S) if assigned else ():
                offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
                consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        except KafkaException as error:
            raise TransactionFailed(f"cannot read the committed offsets again: {error}") from error

    def forget(self) -> None:
        """Exactly-once: abort the open transaction, if any (nothing of it is ever read), and
        forget the open batch and the batches in flight, the cache with them; their records are
        never written to the store. Raises `TransactionFailed` when the abort fails."""
        if self.transaction_open:
            self.transaction_open = False
            try:
                self.producer.abort_transaction(TRANSACTION_ABORT_S)
            except KafkaException as error:
                raise TransactionFailed(f"cannot abort the transaction: {error}") from error
        self.batches.abandon()
        self.batches.cache.clear()
        self.on_aborted()

    def _begin(self) -> None:
        try:
            self.producer.begin_transaction()
        except KafkaException as error:
            raise TransactionFailed(f"cannot begin a transaction: {error}") from error
        self.transaction_open = True

    def _commit(self, batch: Batch) -> None:
        """Exactly-once: the sealed `batch` (the only one in flight) checkpointed in its
        transaction: changelog records and history rows sent, every record acknowledged, the
        inbound offsets added with the group's metadata, committed; then RocksDB and the cache.
        A step that fails aborts (`abort`); a fatal error raises `TransactionFailed`, a record
        the cluster refused `DeliveryFailed` (after the abort)."""
        if not self.transaction_open:
            if not (batch.states or batch.writes or batch.commits):
                self.batches.in_flight.popleft()  # nothing to commit (a slice that did nothing)
                return
            self._begin()
        self._send_changelog(batch)
        producer = self.producer
        try:
            producer.flush(TRANSACTION_COMMIT_S)  # serves the delivery reports: offsets reached
            if batch.errors:
                self.abort(f"records not delivered: {batch.errors[0]}")
                raise DeliveryFailed(f"records not delivered: {batch.errors[0]}")
            if batch.unacked:
                self.abort(f"{batch.unacked} records not acknowledged in {TRANSACTION_COMMIT_S} s")
                return
            if batch.commits:
                offsets = [TopicPartition(t, p, o) for (t, p), o in batch.commits.items()]
                group = self.consumer.consumer_group_metadata()
                _retrying(
                    lambda: producer.send_offsets_to_transaction(
                        offsets, group, TRANSACTION_COMMIT_S
                    )
                )
            _retrying(lambda: producer.commit_transaction(TRANSACTION_COMMIT_S))
        except KafkaException as failure:
            error = failure.args[0]
            if error.fatal():
                self.transaction_open = False
                raise TransactionFailed(f"the transaction cannot commit: {error}") from failure
            self.abort(str(error))
            return
        self.transaction_open = False
        self._count(batch)
        self._store(batch)
        self.batches.in_flight.popleft()

    def _send_changelog(self, batch: Batch) -> None:
        """Step 2: the batch's changed records, to the changelog partition of their store; its
        history rows to the history topic's (a deleted one only from the store: that topic
        forgets by time)."""
        batch.stage = Stage.CHANGELOG
        batch.log_writes()
        producer = self.producer
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
        batch.stage = Stage.STORED
        self.on_stored(batch)
        cache = self.batches.cache
        for name, (_, state, _) in batch.states.items():
            cache.put(name, state)
        if batch.commits and not self.exactly_once:  # else committed with the transaction
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in batch.commits.items()],
                asynchronous=True,
            )

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


def _retrying(step: Callable[[], None]) -> None:
    """A transaction step, tried again while it fails with a retriable error (a timeout, a
    coordinator moving), at most `TRANSACTION_RETRIES` times more; raises its last error."""
    for attempt in range(TRANSACTION_RETRIES + 1):
        try:
            step()
            return
        except KafkaException as failure:
            if attempt == TRANSACTION_RETRIES or not failure.args[0].retriable():
                raise
            log.warning("transaction step failed, trying again: %s", failure.args[0])
