"""Time-driven work, run between fetches a slice at a time (at most `TIMER_SLICE_S` each).

- `Timers`: the due-time index of each owned partition (`TIMER_PREFIX` in `state.keyspace`) is
  read from where the last pass stopped up to the worker's clock less `timers_wait_s`, and each
  entry due is fired into the open batch like a folded record (`fire_entry`: a player's timers
  through `fold.fire`, applied ids and old rows forgotten, see `state.retention`), so its
  outputs, record and index changes are checkpointed the same way. Overdue entries after
  downtime fire in time order, a slice at a time, while the stream catches up.
- `Rechecks`: the brands' re-checks under way (`RECHECK_PREFIX`), and the one that indexes the
  timers of a store written before the index (`INDEXING`), a range of players at a time.
- `CensusTaker`: the owned players read for the population gauges, every `census_interval_s`.
"""

import logging
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.runtime.batch import ABSENT, Batch, Batches
from loyalty_streams.runtime.fold import Outcome, ProgrammeFor, fire, recheck
from loyalty_streams.runtime.metrics import Census, Metrics
from loyalty_streams.runtime.tuning import SLICE_OBSERVED_S, TIMER_IDLE_S, TIMER_SLICE_S
from loyalty_streams.state.keyspace import (
    FORGET,
    INDEXED,
    INDEXING,
    PLAYER,
    RECHECK_PREFIX,
    TIMER_PREFIX,
    after,
    brand_players,
    due_before,
    parse_timer_key,
)
from loyalty_streams.state.retention import expired_rows, forgotten
from loyalty_streams.state.store import PartitionStore, PlayerTable

log = logging.getLogger(__name__)


def fire_entry(
    batch: Batch,
    partition: int,
    store: PartitionStore,
    key: bytes,
    value: bytes,
    until: datetime,
    latest: Callable[[int, str], PlayerState | None],
    programme_for: ProgrammeFor,
) -> tuple[bytes, Outcome | None]:
    """Fire one entry of a partition's due-time index into `batch` at `until` (UTC): the entry
    is deleted; a `forget` entry deletes the applied ids it lists, a `rows` entry the player's
    rows past retention; a player's entry runs their timers, unless their newest record
    (`latest(partition, key)`) has moved on. Gives the entry's kind and, for timers that ran,
    the outcome, which the caller sends and adds to the batch; the kind is `b"failed"` (and no
    outcome) when the player's rules raised: logged, never a stop (the player's next record runs
    them again, and dead-letters that record if they raise again)."""
    batch.fired += 1
    writes = batch.writes.setdefault(partition, {})
    writes[key] = None
    kind, subject = parse_timer_key(key)
    if kind == PLAYER:
        state = latest(partition, subject.decode())
        # an entry the record has moved on from is only deleted
        if state is not None and state.timer_at is not None and state.timer_at <= until:
            try:
                return kind, fire(state, programme_for, until)
            except Exception:  # a fault of the rules on one record
                log.exception("the timers of %s at %s failed", state.key, state.timer_at)
                return b"failed", None
    elif kind == FORGET:
        writes.update(dict.fromkeys(forgotten(value)))
    else:
        writes.update(expired_rows(store, subject, until))
    return kind, None


@dataclass
class TimeDriven:
    """What every time-driven work reads and writes: the owned partitions' stores, the batches
    not checkpointed (it writes into the open one), the rules and the worker's clock; `send`
    sends an outcome's outputs for a batch; `slice_s` bounds one slice."""

    table: PlayerTable
    batches: Batches
    owned: Callable[[], frozenset[int]]
    programme_for: ProgrammeFor
    clock: Callable[[], datetime]
    metrics: Metrics
    send: Callable[[Batch, Outcome], None]
    slice_s: float = TIMER_SLICE_S


@dataclass
class Timers(TimeDriven):
    """Fires the due-time index; `wait_s` is `timers_wait_s`, `idle_s` how long a pass that
    found nothing more due leaves the index alone."""

    wait_s: float = 0.0
    idle_s: float = TIMER_IDLE_S

    def __post_init__(self) -> None:
        self._cursors: dict[int, bytes] = {}
        """Per partition, where the next pass starts: every entry the store holds below it is
        fired (its deletion stored or in flight). Passes never start over from the index's
        head, whose deleted entries RocksDB keeps until it compacts them (a pass over them took
        a whole slice and fired almost nothing); a checkpoint that stores an entry below it
        moves it back (`Batch.earliest`, see `rewind`)."""
        self._idle_until = 0.0

    def fire(self) -> bool:
        """Fire the entries due by the clock less `wait_s`, oldest first, for at most a slice;
        the next call goes on where this one stopped. Gives True when the pass read every entry
        due (none left), False when the slice ended first."""
        started = time.monotonic()
        if started < self._idle_until:
            return True
        until = self.clock() - timedelta(seconds=self.wait_s)
        end = due_before(until)
        deadline = started + self.slice_s
        fired: Tally[bytes] = Tally()
        try:
            for partition in sorted(self.owned()):
                store = self.table.partition(partition)
                for key, value in store.items(TIMER_PREFIX, self._cursors.get(partition), end):
                    self._cursors[partition] = after(key)
                    fired[self._fire(partition, store, key, value, until)] += 1
                    if time.monotonic() >= deadline:
                        return False
            self._idle_until = time.monotonic() + self.idle_s
            return True
        finally:
            for kind, count in fired.items():
                self.metrics.timers_fired.labels(kind.decode()).inc(count)
            slice_s = time.monotonic() - started
            if fired or slice_s >= SLICE_OBSERVED_S:  # a pass of deleted entries only counts too
                self.metrics.time_driven_slices.labels("timers").observe(slice_s)

    def _fire(
        self, partition: int, store: PartitionStore, key: bytes, value: bytes, until: datetime
    ) -> bytes:
        """`fire_entry` into the open batch; an entry a batch in flight already deleted is
        `b"done"` (its deletion is not checkpointed yet)."""
        batches = self.batches
        if batches.pending(partition, key) is None:
            return b"done"
        batch = batches.current()
        kind, outcome = fire_entry(
            batch, partition, store, key, value, until, batches.latest, self.programme_for
        )
        if outcome is not None:
            self.send(batch, outcome)
            batch.add(outcome, partition)
        return kind

    def cursor(self, partition: int) -> bytes | None:
        """Where the next pass over a partition's index starts (None: its head)."""
        return self._cursors.get(partition)

    def rewind(self, batch: Batch) -> None:
        """A batch was stored: a pass must go back for an entry it stored below a cursor."""
        cursors = self._cursors
        for partition, key in batch.earliest.items():
            cursor = cursors.get(partition)  # none: the next pass starts at the head anyway
            if cursor is not None and key < cursor:
                cursors[partition] = key

    def forget(self) -> None:
        """Start the next passes at the index's head (a restore may bring entries below)."""
        self._cursors.clear()


@dataclass
class Rechecks(TimeDriven):
    """Goes on with the brands' re-checks under way."""

    def run(self) -> bool:
        """Re-check, a slice at a time, each player of the brand of each re-check stored (one
        range of keys) into the open batch, with the re-check's place, so a crash resumes where
        it stood. Gives True when every re-check is finished (their ends maybe not checkpointed
        yet), False when the slice ended first."""
        started = time.monotonic()
        deadline = started + self.slice_s
        try:
            for partition in sorted(self.owned()):
                store = self.table.partition(partition)
                for key, stored in store.items(RECHECK_PREFIX):
                    newest = self.batches.pending(partition, key)
                    if newest is None:  # finished, not checkpointed yet
                        continue
                    job = orjson.loads(stored if newest is ABSENT else newest)
                    if not self._recheck(partition, store, key, job, deadline):
                        return False
            return True
        finally:
            if time.monotonic() - started >= SLICE_OBSERVED_S:
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
        batch = self.batches.current()
        writes = batch.writes.setdefault(partition, {})
        at = datetime.fromisoformat(job["at"])
        command_id = key.removeprefix(RECHECK_PREFIX).decode()
        brand = brand_players(job["brand_id"])  # "": everyone
        start = job["next"].encode() or brand
        indexing = key == INDEXING
        for player, _ in store.items(brand, start):
            state = self.batches.latest(partition, player.decode())
            if state is not None:
                outcome = recheck(state, self.programme_for, at, f"{command_id}:{state.key}")
                self.send(batch, outcome)
                batch.add(outcome, partition)
            if indexing:  # and the retention of the rows it wrote before the index
                writes.update(expired_rows(store, player, at))
            batch.fired += 1
            if time.monotonic() >= deadline:
                writes[key] = orjson.dumps({**job, "next": after(player).decode()})
                return False
        writes[key] = None
        if indexing:
            writes[INDEXED] = b""
        return True


@dataclass
class CensusTaker(TimeDriven):
    """Reads the owned players for the population gauges, a slice at a time; a census starts
    every `interval_s` and sets the gauges when it has read every partition."""

    interval_s: float = 0.0

    def __post_init__(self) -> None:
        self._census: Census | None = None
        self._from: tuple[int, bytes] | None = None
        """Where the census under way reads next: a partition and a key."""
        self._due = 0.0

    def take(self) -> None:
        """One slice of the census under way, or of a new one when it is due."""
        started = time.monotonic()
        census = self._census
        owned = self.owned()
        if census is None:
            if started < self._due or not owned:
                return
            census = self._census = Census(self.programme_for, self.clock())
            self._from = (min(owned), b"")
        assert self._from is not None
        partition, last = self._from
        deadline = started + self.slice_s
        slices = self.metrics.time_driven_slices.labels("census")
        for number in sorted(p for p in owned if p >= partition):
            start = after(last) if number == partition and last else None
            for key, raw in self.table.partition(number).items(start=start):
                census.add(raw)
                if time.monotonic() >= deadline:
                    self._from = (number, key)
                    slices.observe(time.monotonic() - started)
                    return
        slices.observe(time.monotonic() - started)
        self.metrics.set_population(census)
        self._census = self._from = None
        self._due = started + self.interval_s
