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
"""

import logging
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, TopicPartition

from loyalty_streams.kafka.clients import ConsumerClient, ProducerClient
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import PLAYERS_CHANGELOG, PLAYERS_HISTORY
from loyalty_streams.runtime.batch import Batch, Batches, Stage
from loyalty_streams.runtime.fold import Outcome
from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.runtime.tuning import BUSY_POLL_S, DRAIN_FLUSH_S, IN_FLIGHT
from loyalty_streams.state.keyspace import HISTORY_PREFIX
from loyalty_streams.state.store import PlayerTable

log = logging.getLogger(__name__)


class DeliveryFailed(RuntimeError):
    """The cluster did not take a record within librdkafka's retries: stop and replay later."""


@dataclass
class Checkpoints:
    """Sends a batch's records and moves sealed batches through their checkpoint.

    `producer` sends outputs, changelog records and history rows; `consumer` commits the inbound
    offsets; `stopping` tells the in-flight bound not to wait (a stop drains instead);
    `on_stored` hears of each batch written to the store (the timers move their cursors back).
    """

    batches: Batches
    table: PlayerTable
    producer: ProducerClient
    consumer: ConsumerClient
    metrics: Metrics
    stopping: threading.Event
    on_stored: Callable[[Batch], None]

    def send(self, batch: Batch, outcome: Outcome) -> None:
        """An outcome's outputs, to the partition of their key (step 1 starts at once)."""
        producer = self.producer
        batch.unacked += len(outcome.sends)
        for topic, key, value in outcome.sends:
            produce(producer, topic, value, key, on_delivery=batch.delivered)

    def seal(self) -> None:
        """Queue the open batch (if any) for its checkpoint; wait while more than `IN_FLIGHT`
        records are in flight."""
        if self.batches.seal() is None:
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
        if batch.commits:
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
