"""The what-if replay: a brand's event history folded twice with the domain's own rules, as a
worker folds it, through the versions that were in effect (the baseline) and through a proposed
programme that governs from an instant on (the proposal).

Same rules, same code: each event is folded with `domain.time_rules.on_event`, with the record
of the bet it names kept beside the player's (`domain.cancellations`), its source position as
the worker passes it, under the version in effect at each instant; after the last event, each
player's time-driven work (day closes, downgrades at the end of their grace, expiries) runs to
the end of the range with `time_rules.advance`. What the worker's store adds is mirrored: an
event id applied from another record within `SEEN_DAYS` is a re-publish and is skipped, a bet's
record is kept `BET_DAYS` (both at least, by event time here; by the day applied in a worker),
an event on a partition other than its key's or with no programme in effect at its time is
skipped, and one the rules refuse changes nothing. The boundary's checks of a record's key and
timestamp need the record, which the history does not give: they are the worker's alone.

History before `since` is folded once (it is the same in both runs); at a player's first event
at or after `since` (or at the end) the record splits in two, and the proposal's copy is
re-checked at `since` under the proposal (`time_rules.recheck`), as an operator re-checks a
brand after publishing a version: a level the proposal's figures reach or no longer keep moves
then, not at the player's next bet.

Commands (`loyalty.commands`: redemptions, adjustments, forced levels, gifts, claims) are not
replayed: the what-if covers play, and points or levels that commands gave are not in its
figures.

Processes: players of Kafka partition p are folded by process p % N, which reads only its
partitions (`Source`), so the runs' memory and CPU divide by N; their figures are added up in
the calling process.
"""

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from typing import Protocol

from loyalty_streams.domain.cancellations import CANCELLABLE_DAYS, PlacedBet
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.event_rules import EventRejected
from loyalty_streams.domain.events import BetCancelled, PlayerEvent
from loyalty_streams.domain.outputs import LevelChanged, Output
from loyalty_streams.domain.player import ZERO, PlayerState, SourcePosition
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import advance, on_event, recheck
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.runtime.gc_tuning import tune_collector
from loyalty_streams.whatif.report import (
    PROPOSED,
    Affected,
    Period,
    Setup,
    ShareFigures,
    Tally,
    most_affected,
    rate,
)

SEEN_DAYS = 7
"""How long an applied event id is remembered at least (`state.keyspace.SEEN_DAYS`; by event
time here, and up to twice as long): the same id from another record then is a re-publish."""

BET_DAYS = CANCELLABLE_DAYS + 1
"""How long a bet's record is kept at least (`state.keyspace.BET_DAYS`, by event time here)."""

BET_KEPT = timedelta(days=BET_DAYS)

BETS_PRUNED = 64
"""A player's bets' records are looked over for ones past `BET_DAYS` when they reach this many,
then when they reach twice as many as were left."""

RECHECK_ID = "what-if"
"""The command id of the proposal's re-check at `since`: its level changes are
`what-if:<brand>:<player>:level`, as a `RecheckBrand` of that id would make them."""

RUNS = 2
BASELINE, PROPOSAL = 0, 1

Positioned = tuple[SourcePosition, PlayerEvent]
"""An event and where it was read: the topic-partition and offset a worker folded it from."""


class Source(Protocol):
    """A brand's event history, a share at a time: `source(share, shares)` gives the events of
    the partitions p with p % shares == share, each partition in offset order (partitions may
    interleave), the history's first event on. Other brands' events and events past the range
    may be included (they are skipped). Picklable when processes are spawned, not forked."""

    def __call__(self, share: int, shares: int) -> Iterable[Positioned]: ...


def partition_number(position: SourcePosition) -> int:
    """The partition of a source position (`<topic>:<partition>`)."""
    return int(position.topic_partition.rpartition(":")[2])


class MemorySource:
    """A history held in memory (tests, benchmarks): positioned events in offset order.

    Its events are sorted by partition when it is made, so a forked process iterates (and
    touches, copying its pages) only its own partitions' events."""

    def __init__(self, events: Sequence[Positioned]) -> None:
        self.events = events
        self._by_partition: dict[int, list[Positioned]] = {}
        for item in events:
            self._by_partition.setdefault(partition_number(item[0]), []).append(item)

    def __call__(self, share: int, shares: int) -> Iterator[Positioned]:
        """All the events in their order (one share), or a share's partitions one by one."""
        if shares == 1:
            yield from self.events
            return
        for number, items in sorted(self._by_partition.items()):
            if number % shares == share:
                yield from items


def positioned(
    events: Iterable[PlayerEvent], partitions: int = 12, topic: str = PLAYER_EVENTS
) -> list[Positioned]:
    """Events as a producer would place them on `topic`: each on its key's partition (murmur2)
    at the next offset there."""
    offsets = [0] * partitions
    placed = []
    for event in events:
        number = partition_of(event.key.encode(), partitions)
        placed.append((SourcePosition(f"{topic}:{number}", offsets[number]), event))
        offsets[number] += 1
    return placed


@dataclass(frozen=True)
class Plan:
    """What to replay (sent to each process): the brand, its versions (the baseline), the
    proposal and from when it governs (None: all of the history), the end of the range (UTC,
    excluded), how periods are grouped, and how many most affected players to keep."""

    brand_id: str
    baseline: tuple[Programme, ...]
    proposed: Programme
    since: datetime | None
    until: datetime
    by: Period = Period.DAY
    top: int = 20
    partitions: int | None = None
    """Partitions of the topic the history was read from: an event on a partition other than
    its key's (murmur2) is skipped, as a worker dead-letters it (None: not checked)."""

    @property
    def setup(self) -> Setup:
        """What the report is built against."""
        return Setup(
            self.brand_id,
            Catalogue(list(self.baseline)),
            self.proposed,
            self.since,
            self.until,
            self.by,
            self.top,
        )


OutputsSeen = Callable[[int, tuple[Output, ...]], None]
"""Called with each fold's outputs and the run (0: baseline, 1: proposal) that emitted them
(outputs before `since` are the baseline's, and the proposal's too)."""


class _Player:
    """One player's records in both runs (one, shared, before the split)."""

    __slots__ = ("bets", "home", "player_id", "points", "prune_at", "split", "states")

    def __init__(self, player_id: str, split: bool, home: str | None) -> None:
        self.player_id = player_id
        self.split = split
        self.home = home
        """`<topic>:<partition>` of the player's key, when checked."""
        self.states: list[PlayerState | None] = [None, None]
        bets: dict[str, PlacedBet] = {}
        self.bets = [bets, bets if not split else {}]
        """The records of the bets placed, by bet id, in each run."""
        self.prune_at = [BETS_PRUNED, BETS_PRUNED]
        """How many bets' records a run holds before those past `BET_DAYS` are forgotten."""
        self.points = [ZERO, ZERO]
        """Points issued in the range (accrued less reversed), by run."""


class ShareFold:
    """The replay of one share of the players (`Plan`): `fold_all` the events in order, then
    `finish` for the share's figures. `seen` (tests) hears every fold's outputs."""

    def __init__(self, plan: Plan, seen: OutputsSeen | None = None) -> None:
        self.plan = plan
        setup = plan.setup
        brand = plan.brand_id
        versions = setup.baseline.versions(brand)
        if not versions:
            raise ValueError(f"no programme version of brand {brand!r}")
        self._opens = versions[0].effective_from
        rates = {programme.version: rate(programme) for programme in versions}
        rates[PROPOSED] = rate(plan.proposed)
        since, until, calendar = plan.since, plan.until, setup.calendar
        self._tallies = (
            Tally(calendar, since, until, rates, proposal=False),
            Tally(calendar, since, until, rates, proposal=True),
        )
        self._rules = (setup.rules(False), setup.rules(True))
        self._alone = ((self._tallies[BASELINE],), (self._tallies[PROPOSAL],))
        self._seen = seen
        self._players: dict[str, _Player] = {}
        # ids applied, in two generations of SEEN_DAYS each: each is remembered that long at
        # least, without a clock per id
        self._applied: dict[str, SourcePosition] = {}
        self._applied_before: dict[str, SourcePosition] = {}
        self._generation_ends: datetime | None = None
        self._events = self._shared = self._rechecks = 0
        self._duplicates = self._unprogrammed = self._misrouted = 0
        self._first: datetime | None = None

    def fold_all(self, events: Iterable[Positioned]) -> None:
        """Fold every event of the brand before the end of the range, in the order given."""
        brand, until, since = self.plan.brand_id, self.plan.until, self.plan.since
        partitions = self.plan.partitions
        opens = self._opens
        players = self._players
        fold = self._fold
        first = self._first
        for position, event in events:
            moment = event.occurred_at
            if event.brand_id != brand or moment >= until:
                continue
            if moment < opens:  # no programme in effect: a worker dead-letters it
                self._unprogrammed += 1
                continue
            if self._published_again(event.dedupe_id, position, moment):
                self._duplicates += 1
                continue
            if first is None or moment < first:
                first = self._first = moment
            self._events += 1
            key = event.key
            player = players.get(key)
            if player is None:
                home = None
                if partitions is not None:
                    number = partition_of(key.encode(), partitions)
                    home = f"{position.topic_partition.rpartition(':')[0]}:{number}"
                player = players[key] = _Player(event.player_id, since is None, home)
            if player.home is not None and position.topic_partition != player.home:
                self._misrouted += 1  # a worker dead-letters it: not on its key's partition
                continue
            if not player.split:
                if moment < since:  # type: ignore[operator]  # split unless since is set
                    self._shared += 1
                    fold(player, BASELINE, event, position, True)
                    continue
                self._split(player)
            fold(player, BASELINE, event, position, False)
            fold(player, PROPOSAL, event, position, False)

    def _published_again(self, event_id: str, position: SourcePosition, moment: datetime) -> bool:
        """Whether `event_id` was applied from another record (a re-publish); remembers it."""
        ends = self._generation_ends
        if ends is None or moment >= ends:  # a new generation: the one before it is forgotten
            self._applied_before, self._applied = self._applied, {}
            self._generation_ends = moment + timedelta(days=SEEN_DAYS)
        source = self._applied.get(event_id) or self._applied_before.get(event_id)
        if source is None:
            self._applied[event_id] = position
            return False
        return source != position

    def _fold(
        self,
        player: _Player,
        run: int,
        event: PlayerEvent,
        position: SourcePosition,
        shared: bool,
    ) -> None:
        """Fold one event into one run's record (`shared`: the record both runs share)."""
        state = player.states[run]
        bets = player.bets[run]
        bet = bets.get(event.bet_id) if type(event) is BetCancelled else None
        try:
            advanced = on_event(state, event, self._rules[run], position, bet)
        except EventRejected:
            for tally in self._tallies if shared else self._alone[run]:
                tally.refused()
            return
        except Exception as error:  # a worker dead-letters the record and goes on
            for tally in self._tallies if shared else self._alone[run]:
                tally.failure(error)
            return
        new = advanced.state
        if new is state:  # a repeat
            return
        player.states[run] = new
        outputs = advanced.outputs
        placed = advanced.bet
        if placed is not None:
            bets[placed.bet_id] = placed
            if len(bets) >= player.prune_at[run]:
                player.prune_at[run] = _prune(bets, placed.placed_at)
        if state is None:
            self._created(new, outputs, self._tallies if shared else self._alone[run])
        if not outputs:
            return
        if shared:
            for each in (BASELINE, PROPOSAL):
                player.points[each] += self._tallies[each].add(outputs)
                if self._seen is not None:
                    self._seen(each, outputs)
            return
        player.points[run] += self._tallies[run].add(outputs)
        if self._seen is not None:
            self._seen(run, outputs)

    @staticmethod
    def _created(new: PlayerState, outputs: tuple[Output, ...], tallies: Iterable[Tally]) -> None:
        """A player's record made: at its first level, before any change its event made."""
        rank = new.level_rank
        for output in outputs:
            if type(output) is LevelChanged:
                assert isinstance(output, LevelChanged)
                rank = output.from_rank
                break
        for tally in tallies:
            tally.created(new.level_since, rank)

    def _split(self, player: _Player) -> None:
        """From now on the runs differ: the proposal's copy of the record, re-checked at
        `since` under the proposal."""
        player.split = True
        player.bets[PROPOSAL] = dict(player.bets[BASELINE])
        player.prune_at[PROPOSAL] = player.prune_at[BASELINE]
        shared = player.states[BASELINE]
        if shared is None:
            return
        since = self.plan.since
        assert since is not None  # players are made split when it is None
        cause = f"{RECHECK_ID}:{shared.key}"  # as runtime.timers names a brand's re-check
        advanced = recheck(shared, since, self._rules[PROPOSAL], cause)
        self._rechecks += 1
        player.states[PROPOSAL] = advanced.state
        self._advanced(player, PROPOSAL, advanced.outputs)

    def _advanced(self, player: _Player, run: int, outputs: tuple[Output, ...]) -> None:
        """Add up what time-driven work or a re-check emitted in one run."""
        if outputs:
            player.points[run] += self._tallies[run].add(outputs)
            if self._seen is not None:
                self._seen(run, outputs)

    def finish(self) -> ShareFigures:
        """Run each player's time-driven work to the end of the range in both runs, and give
        the share's figures."""
        until = self.plan.until
        moves: dict[tuple[int, int], int] = {}
        standings: list[Affected] = []
        for player in self._players.values():
            if not player.split:
                self._split(player)
            ranks: list[int] = []
            for run in (BASELINE, PROPOSAL):
                state = player.states[run]
                if state is None:
                    continue
                advanced = advance(state, until, self._rules[run])
                self._advanced(player, run, advanced.outputs)
                player.states[run] = advanced.state
                ranks.append(advanced.state.level_held_at(until))  # a change at `until` is after
            if len(ranks) < RUNS:
                continue  # refused in one run only: no record to compare
            moves[ranks[0], ranks[1]] = moves.get((ranks[0], ranks[1]), 0) + 1
            standings.append(
                Affected(player.player_id, ranks[0], ranks[1], player.points[0], player.points[1])
            )
        return ShareFigures(
            baseline=self._tallies[BASELINE].figures,
            proposal=self._tallies[PROPOSAL].figures,
            moves=moves,
            affected=most_affected(standings, self.plan.top),
            events=self._events,
            folds=2 * self._events - self._shared + self._rechecks,
            players=len(self._players),
            first_event=self._first,
            duplicates=self._duplicates,
            unprogrammed=self._unprogrammed,
            misrouted=self._misrouted,
        )


def _prune(bets: dict[str, PlacedBet], now: datetime) -> int:
    """Forget the bets placed more than `BET_DAYS` before `now` (event time); gives the count
    of bets at which to look again."""
    cutoff = now - BET_KEPT
    for bet_id in [bet_id for bet_id, bet in bets.items() if bet.placed_at < cutoff]:
        del bets[bet_id]
    return max(BETS_PRUNED, 2 * len(bets))


def fold_share(plan: Plan, source: Source, share: int, shares: int) -> ShareFigures:
    """Fold one share of the players (partitions p with p % shares == share) in this process."""
    fold = ShareFold(plan)
    fold.fold_all(source(share, shares))
    return fold.finish()


def _child(plan: Plan, source: Source, share: int, shares: int, results: Connection) -> None:
    """A process's work: its share's figures, or the traceback of what failed, sent back."""
    try:
        tune_collector()  # as the worker does: this process folds events
        results.send(("figures", fold_share(plan, source, share, shares)))
    except BaseException:
        results.send(("error", traceback.format_exc()))
    finally:
        results.close()


def fold_in_processes(
    plan: Plan, source: Source, processes: int, start_method: str = "fork"
) -> ShareFigures:
    """Fold every share (`processes` of them: in this process when 1), and add their figures
    up. Processes are forked by default (the source is not pickled; fork only from a process
    that runs no Kafka client: librdkafka is not fork-safe), or started with `start_method`
    ("spawn", "forkserver": the plan and the source are pickled). Raises `RuntimeError` when a
    process fails or dies, naming it and what it raised."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    if processes == 1:
        return fold_share(plan, source, 0, 1)
    context = multiprocessing.get_context(start_method)
    started: list[tuple[Connection, multiprocessing.process.BaseProcess]] = []
    try:
        for share in range(processes):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(  # type: ignore[attr-defined]  # every context has it
                target=_child,
                args=(plan, source, share, processes, send),
                name=f"what-if-{share}",
                daemon=True,
            )
            child.start()
            send.close()
            started.append((receive, child))
        merged: ShareFigures | None = None
        for share, (receive, child) in enumerate(started):
            try:
                kind, payload = receive.recv()
            except EOFError:
                child.join()
                raise RuntimeError(
                    f"what-if process {share} died (exit code {child.exitcode})"
                ) from None
            if kind == "error":
                raise RuntimeError(f"what-if process {share} failed:\n{payload}")
            if merged is None:
                merged = payload
            else:
                merged.merge(payload, plan.top)
        assert merged is not None
        return merged
    finally:
        for receive, child in started:
            receive.close()
            child.join(1.0)
            if child.is_alive():
                child.terminate()
                child.join()


def default_processes() -> int:
    """One process per CPU this process may use (per CPU, where the system cannot say)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
