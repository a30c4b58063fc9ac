"""A batch: what one checkpoint writes, and the batches not checkpointed yet.

A `Batch` collects what folding records and firing timers changed (player records, other store
records, inbound offsets) and the outputs already produced; its `stage` says how far its
checkpoint went (see `checkpoint`). `Batches` holds the open batch and the sealed ones in
flight, oldest first, and answers what the newest value of a player or a store key is across
them, the cache and the store.
"""

import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Final, Literal

from confluent_kafka import KafkaError, Message

from loyalty_streams.domain.outputs import Output
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.runtime.fold import Outcome
from loyalty_streams.state.cache import PlayerCache
from loyalty_streams.state.keyspace import (
    BET_DAYS,
    BET_PREFIX,
    CASHBACK_PREFIX,
    HISTORY_MARK,
    SEEN_PREFIX,
    TIMER_PREFIX,
)
from loyalty_streams.state.retention import forget_entry
from loyalty_streams.state.store import PlayerTable


class Unwritten(Enum):
    """The type of `ABSENT` (an enum of one, so a type checker tells it from a value)."""

    ABSENT = "absent"


ABSENT: Final = Unwritten.ABSENT
"""What `Batches.pending` says of a key no batch writes: no value, not even a deletion (None);
an object of its own, so no stored value is ever taken for it."""


class Stage(Enum):
    """How far a batch's checkpoint went."""

    OPEN = "open"
    """Records are folded and timers fired into it."""
    OUTPUTS = "outputs"
    """Sealed: its outputs travel to the cluster (step 1)."""
    CHANGELOG = "changelog"
    """Its outputs are acknowledged; its changelog records and history rows travel (step 2)."""
    STORED = "stored"
    """Written to the store, its inbound offsets committed (steps 3 and 4)."""


def batch_day(moment: datetime) -> bytes:
    """A UTC day as its ordinal in ASCII: six digits for millennia, so bytes order is day order."""
    return str(moment.date().toordinal()).encode()


@dataclass(slots=True)
class Batch:
    """What one checkpoint writes: player records, other store records, offsets; the outputs
    already produced and the inbound messages, for the metrics; and its records in flight."""

    day: bytes
    """The day the batch is applied (`batch_day` of the worker's clock): stamped on its ids."""
    stage: Stage = Stage.OPEN
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
    bets: dict[int, list[bytes]] = field(default_factory=dict)
    """Keys of the bets' records the batch writes, per partition: forgotten together later."""
    fired: int = 0
    """Index entries fired into the batch (they count towards its size like records)."""
    earliest: dict[int, bytes] = field(default_factory=dict)
    """The first entry of the due-time index the batch registers, per partition."""
    dead: Tally[str] = field(default_factory=Tally)
    """Dead letters per inbound topic."""
    unacked: int = 0
    """Records produced for the batch that the cluster has not acknowledged yet."""
    changelog_offsets: dict[int, int] = field(default_factory=dict)
    """The highest changelog offset of the batch's records, per partition."""
    history_offsets: dict[int, int] = field(default_factory=dict)
    """The highest offset of the batch's history rows on their topic, per partition."""
    errors: list[KafkaError] = field(default_factory=list)

    def add(self, outcome: Outcome, partition: int) -> None:
        """An outcome folded or fired on `partition`: its record, store writes and outputs."""
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
                # most writes are history rows (player records are never among them)
                if value is None or key[1] == HISTORY_MARK:
                    continue
                if key.startswith(BET_PREFIX):
                    self.bets.setdefault(partition, []).append(key)
                elif key.startswith(CASHBACK_PREFIX):
                    self.closed.append(value)
                elif key.startswith(TIMER_PREFIX) and key < self.earliest.get(partition, b"\xff"):
                    self.earliest[partition] = key
        self.outputs.extend(outcome.outputs)

    @property
    def size(self) -> int:
        """Records folded and index entries fired."""
        return len(self.messages) + self.fired

    def log_writes(self) -> None:
        """Complete the writes with what step 2 sends to the changelog besides them: the changed
        player records, and first of all the `forget` entries listing the applied ids and the
        bets' records (so a cut checkpoint that kept an id or a bet kept the entry that forgets
        it; a replay lists what it applies again in an entry of its own)."""
        for name, (partition, _, encoded) in self.states.items():
            self.writes.setdefault(partition, {})[name.encode()] = encoded
        applied_on = date.fromordinal(int(self.day))
        for partition, seen in self.applied.items():
            key, value = forget_entry(applied_on, seen)
            self.writes[partition] = {key: value, **self.writes[partition]}
        for partition, bets in self.bets.items():
            key, value = forget_entry(applied_on, bets, BET_DAYS)
            self.writes[partition] = {key: value, **self.writes[partition]}

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


class Batches:
    """The open batch and the sealed batches in flight (oldest first), over the player cache
    and the store: the newest value of anything the fold reads."""

    def __init__(self, table: PlayerTable, cache_size: int, clock: Callable[[], datetime]) -> None:
        self.table = table
        self.clock = clock
        self.open: Batch | None = None
        """The batch being folded, until it is full or old enough to seal."""
        self.opened_at = 0.0
        """When the open batch was opened (`time.monotonic`)."""
        self.in_flight: deque[Batch] = deque()
        """Sealed batches not yet checkpointed, oldest first."""
        self.cache = PlayerCache(cache_size)
        """Player records as last checkpointed (cleared when the store is written directly)."""

    def current(self) -> Batch:
        """The open batch, opened if there is none."""
        batch = self.open
        if batch is None:
            batch = self.open = Batch(batch_day(self.clock()))
            self.opened_at = time.monotonic()
        return batch

    def seal(self) -> Batch | None:
        """Move the open batch (if any) to the batches in flight, its outputs travelling."""
        batch = self.open
        if batch is not None:
            self.open = None
            batch.stage = Stage.OUTPUTS
            self.in_flight.append(batch)
        return batch

    def abandon(self) -> None:
        """Forget the open batch and the batches in flight (never checkpointed)."""
        self.open = None
        self.in_flight.clear()

    @property
    def records(self) -> int:
        """Records folded and timers fired whose batch is not checkpointed yet (read from any
        thread): their outputs may be out, while lookups still show the record before them."""
        open_batch = self.open
        waiting = list(self.in_flight)  # a copy: the fold thread changes the deque
        pending = open_batch.size if open_batch is not None else 0
        return pending + sum(batch.size for batch in waiting)

    def latest(self, partition: int, key: str) -> PlayerState | None:
        """A player's newest record: of the open batch or a batch in flight (newer than the
        cache and the store), else of the cache or the store."""
        batch = self.open
        entry = None if batch is None else batch.states.get(key)
        if entry is None:
            for earlier in reversed(self.in_flight):
                entry = earlier.states.get(key)
                if entry is not None:
                    break
        if entry is not None:
            return entry[1]
        return self.cache.get(key) or self.table.player(partition, key)

    def pending(self, partition: int, key: bytes) -> bytes | Literal[Unwritten.ABSENT] | None:
        """A store key's newest value in the batches not checkpointed (None: deleted there),
        `ABSENT` when none of them writes it."""
        batch = self.open
        if batch is not None:
            value = batch.writes.get(partition, {}).get(key, ABSENT)
            if value is not ABSENT:
                return value
        for earlier in reversed(self.in_flight):
            value = earlier.writes.get(partition, {}).get(key, ABSENT)
            if value is not ABSENT:
                return value
        return ABSENT
