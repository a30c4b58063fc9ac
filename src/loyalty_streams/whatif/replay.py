"""The what-if replay: a brand's event history folded twice with the domain's own rules, as a
worker folds it, through the versions that were in effect (the baseline) and through a proposed
programme that governs from an instant on (the proposal).

Same rules, same code: each event is folded with `domain.time_rules.on_event`, with the record
of the bet it names kept beside the player's (`domain.cancellations`), its source position as
the worker passes it, under the version in effect at each instant; after the last event, each
player's time-driven work (day closes, downgrades at the end of their grace, expiries) runs to
the end of the range with `time_rules.advance`. What the worker's store adds is mirrored: an
event id applied from another record within `SEEN_DAYS` is a re-publish and is skipped, a bet's
record is kept `BET_DAYS` (both by event time here, by the day applied in a worker), and an event
with no programme in effect at its time, or one the rules refuse, changes nothing.

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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
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
    Affected,
    Period,
    Setup,
    ShareFigures,
    Tally,
    most_affected,
    rate,
)

SEEN_DAYS = 7
"""How long an applied event id is remembered (`state.keyspace.SEEN_DAYS`, by event time here):
the same id from another record within it is a re-publish."""

BET_DAYS = CANCELLABLE_DAYS + 1
"""How long a bet's record is kept (`state.keyspace.BET_DAYS`, by event time here)."""

BET_KEPT = timedelta(days=BET_DAYS)

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


@dataclass(frozen=True)
class MemorySource:
    """A history held in memory (tests, benchmarks): positioned events in offset order."""

    events: Sequence[Positioned]

    def __call__(self, share: int, shares: int) -> Iterator[Positioned]:
        if shares == 1:
            yield from self.events
            return
        partitions: dict[str, int] = {}
        for item in self.events:
            name = item[0].topic_partition
            number = partitions.get(name)
            if number is None:
                number = partitions[name] = partition_number(item[0])
            if number % shares == share:
                yield item


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

    __slots__ = ("bets", "home", "placed", "player_id", "points", "split", "states")

    def __init__(self, player_id: str, split: bool, home: str | None) -> None:
        self.player_id = player_id
        self.split = split
        self.home = home
        """`<topic>:<partition>` of the player's key, when checked."""
        self.states: list[PlayerState | None] = [None, None]
        bets: dict[str, PlacedBet] = {}
        placed: deque[tuple[datetime, str]] = deque()
        self.bets = [bets, bets if not split else {}]
        self.placed = [placed, placed if not split else deque()]
        self.points = [ZERO, ZERO]
        """Points issued in the range (accrued less reversed), by run."""


class ShareFold:
    """The replay of one share of the players (`Plan`): `fold` each event in order, then
    `finish` for the share's figures. `seen` (tests) hears every fold's outputs."""

    def __init__(self, plan: Plan, seen: OutputsSeen | None = None) -> None:
        self.plan = plan
        setup = plan.setup
        self._setup = setup
        brand = plan.brand_id
        versions = setup.baseline.versions(brand)
        if not versions:
            raise ValueError(f"no programme version of brand {brand!r}")
        self._opens = versions[0].effective_from
        rates = {programme.version: rate(programme) for programme in versions}
        proposed_rate = rate(plan.proposed)
        since = plan.since

        def baseline_rate(version: int, _: datetime) -> tuple[str, Decimal, int]:
            return rates[version]

        def proposal_rate(version: int, moment: datetime) -> tuple[str, Decimal, int]:
            if since is None or moment >= since:
                return proposed_rate
            return rates[version]

        calendar = setup.calendar
        self._tallies = (
            Tally(calendar, since, plan.until, baseline_rate),
            Tally(calendar, since, plan.until, proposal_rate),
        )
        self._rules = (setup.rules(False), setup.rules(True))
        self._alone = ((self._tallies[BASELINE],), (self._tallies[PROPOSAL],))
        self._seen = seen
        self._players: dict[str, _Player] = {}
        self._applied: dict[str, SourcePosition] = {}
        self._applied_order: deque[tuple[datetime, str]] = deque()
        self._events = self._folds = self._duplicates = self._unprogrammed = 0
        self._misrouted = 0
        self._first: datetime | None = None

    def fold_all(self, events: Iterable[Positioned]) -> None:
        """Fold every event of the brand before the end of the range, in the order given."""
        brand, until, since = self.plan.brand_id, self.plan.until, self.plan.since
        partitions = self.plan.partitions
        opens = self._opens
        players = self._players
        applied, applied_order = self._applied, self._applied_order
        fold = self._fold
        forget = timedelta(days=SEEN_DAYS)
        first = self._first
        for position, event in events:
            moment = event.occurred_at
            if event.brand_id != brand or moment >= until:
                continue
            if moment < opens:  # no programme in effect: a worker dead-letters it
                self._unprogrammed += 1
                continue
            event_id = event.dedupe_id
            source = applied.get(event_id)
            if source is None:
                applied[event_id] = position
                applied_order.append((moment, event_id))
                while applied_order[0][0] < moment - forget:
                    del applied[applied_order.popleft()[1]]
            elif source != position:  # published again
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
                    fold(player, BASELINE, event, position, True)
                    continue
                self._split(player)
            fold(player, BASELINE, event, position, False)
            fold(player, PROPOSAL, event, position, False)

    def _fold(
        self,
        player: _Player,
        run: int,
        event: PlayerEvent,
        position: SourcePosition,
        shared: bool,
    ) -> None:
        """Fold one event into one run's record (`shared`: the record both runs share)."""
        self._folds += 1
        state = player.states[run]
        bets = player.bets[run]
        bet = bets.get(event.bet_id) if type(event) is BetCancelled else None
        try:
            advanced = on_event(state, event, self._rules[run], position, bet)
        except EventRejected:
            for tally in self._tallies if shared else self._alone[run]:
                tally.figures.rejected += 1
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
            if placed.bet_id not in bets:
                order = player.placed[run]
                order.append((placed.placed_at, placed.bet_id))
                if order[0][0] < placed.placed_at - BET_KEPT:
                    cutoff = placed.placed_at - BET_KEPT
                    while order[0][0] < cutoff:
                        bets.pop(order.popleft()[1], None)
            bets[placed.bet_id] = placed
        if state is None:
            self._created(new, outputs, self._tallies if shared else self._alone[run])
        if outputs:
            self._tally(player, run, outputs, shared)

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

    def _tally(self, player: _Player, run: int, outputs: tuple[Output, ...], shared: bool) -> None:
        if shared:
            for each in (BASELINE, PROPOSAL):
                player.points[each] += self._tallies[each].add(outputs)
                if self._seen is not None:
                    self._seen(each, outputs)
            return
        player.points[run] += self._tallies[run].add(outputs)
        if self._seen is not None:
            self._seen(run, outputs)

    def _split(self, player: _Player) -> None:
        """From now on the runs differ: the proposal's copy of the record, re-checked at
        `since` under the proposal."""
        player.split = True
        player.bets[PROPOSAL] = dict(player.bets[BASELINE])
        player.placed[PROPOSAL] = deque(player.placed[BASELINE])
        shared = player.states[BASELINE]
        if shared is None:
            return
        since = self.plan.since
        assert since is not None  # players are made split when it is None
        cause = f"{RECHECK_ID}:{shared.key}"  # as runtime.timers names a brand's re-check
        advanced = recheck(shared, since, self._rules[PROPOSAL], cause)
        self._folds += 1
        player.states[PROPOSAL] = advanced.state
        if advanced.outputs:
            self._tally(player, PROPOSAL, advanced.outputs, False)

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
                if advanced.outputs:
                    self._tally(player, run, advanced.outputs, False)
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
            folds=self._folds,
            players=len(self._players),
            first_event=self._first,
            duplicates=self._duplicates,
            unprogrammed=self._unprogrammed,
            misrouted=self._misrouted,
        )


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
    """One process per CPU this process may use."""
    return len(os.sched_getaffinity(0))
