"""The partitions a worker owns: assignment (with the restore of their stores) and revocation.

librdkafka calls both from inside a poll of the fold loop's consumer, on the fold thread. Each
first checkpoints what was folded (within `DRAIN_S`), so another worker taking a partition
over starts from the newest changelog.

Under exactly-once, an assignment first asks the group for the partitions' committed offsets:
a read_committed consumer's request waits while a transaction holding offsets of theirs is
undecided (KIP-447), so the restore that follows reads a changelog no transaction of the
previous owner can still add to. Partitions lost (the group went on without this worker) are
not checkpointed: their open transaction is aborted (`forget`), as the group would refuse its
offsets anyway.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson
from confluent_kafka import Consumer, TopicPartition

from loyalty_streams.kafka.clients import KafkaClients
from loyalty_streams.runtime.batch import Batches
from loyalty_streams.runtime.tuning import DRAIN_S, STABLE_OFFSETS_S
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import INDEXED, INDEXING
from loyalty_streams.state.restore import restore
from loyalty_streams.state.store import PlayerTable

log = logging.getLogger(__name__)


@dataclass
class Assignment:
    """The owned partitions, kept by the consumer group's rebalance callbacks.

    `drain(timeout)` checkpoints the batches in flight; `forget_cursors` makes the timers start
    their next passes at the index's head; `on_assignment` hears the owned partitions after each
    change (the worker announces them); `forget` (exactly-once) aborts the open transaction and
    forgets what was folded.
    """

    settings: Settings
    table: PlayerTable
    clients: KafkaClients
    clock: Callable[[], datetime]
    batches: Batches
    drain: Callable[[float], None]
    forget_cursors: Callable[[], None]
    on_assignment: Callable[[tuple[int, ...]], None]
    forget: Callable[[], None] = lambda: None
    owned: frozenset[int] = frozenset()

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions given to this worker: their stores restored from the changelog; a store
        written before the timer index gets the re-check that indexes its players (`INDEXING`).
        Under exactly-once, once their committed offsets are stable (see the module)."""
        self.drain(DRAIN_S)
        if self.settings.exactly_once and partitions:
            consumer.committed(partitions, STABLE_OFFSETS_S)
        numbers = sorted({tp.partition for tp in partitions})  # the same of both inputs
        self.batches.cache.clear()  # the restore below writes the store directly
        self.forget_cursors()  # and may bring index entries below them
        restored = restore(self.settings, self.table, numbers, self.clients)
        for number in numbers:
            store = self.table.partition(number)
            if store.get(INDEXED) is None and store.get(INDEXING) is None:
                job = {"brand_id": "", "at": self.clock().isoformat(), "next": ""}
                store.write({INDEXING: orjson.dumps(job)}, -1)
        self.owned = frozenset(numbers)
        log.info("assigned partitions %s (%d changelog records restored)", numbers, restored)
        self.on_assignment(tuple(numbers))

    def revoked(self, _: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions taken away (or lost): what was folded is checkpointed first."""
        self.drain(DRAIN_S)
        numbers = {tp.partition for tp in partitions}
        self.owned = self.owned - numbers
        self.batches.cache.clear()
        log.info("partitions %s revoked", sorted(numbers))
        self.on_assignment(tuple(sorted(self.owned)))

    def lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Partitions lost: under exactly-once what was folded is forgotten, its transaction
        aborted (the group has fenced this worker's offsets); under at-least-once, as revoked
        (checkpointed: the next owner drops repeats by id)."""
        if not self.settings.exactly_once:
            self.revoked(consumer, partitions)
            return
        self.forget()
        numbers = {tp.partition for tp in partitions}
        self.owned = self.owned - numbers
        log.info("partitions %s lost; what was folded is forgotten", sorted(numbers))
        self.on_assignment(tuple(sorted(self.owned)))
