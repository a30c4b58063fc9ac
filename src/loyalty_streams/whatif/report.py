"""The what-if's figures: a run's outputs added up by brand day, and the report built from them.

Nothing here decides anything a rule decides: `Tally` only adds up what the domain emitted
(`PointsAccrued`, `PointsReversed`, `LevelChanged`, `CashbackAwarded`, `TierRewardGranted`) and
the players' records (the level each run's record holds at the end of the range), and
`build_report` groups the days into periods (brand days or calendar months in the brand's
zone) and names levels with the run's programme.

Money and points stay `Decimal` throughout; every addend is the domain's own figure, rounded to
0.01 by the rules, so the sums are exact (28 significant digits). The liability is the one
figure computed here: points x `redemption_value` / `redemption_points` of the version that
valued them, rounded half-even to 0.01 per period and currency.
"""

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from enum import StrEnum
from typing import TypeVar

from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.money import CENT, EXACT
from loyalty_streams.domain.outputs import (
    CashbackAwarded,
    Direction,
    LevelChanged,
    Output,
    PointsAccrued,
    PointsReversed,
    TierRewardGranted,
)
from loyalty_streams.domain.player import ZERO
from loyalty_streams.domain.programme import Programme

BEFORE = 0
"""The day key of what happened before the reported range (brand days are ordinals from 1):
only level moves are kept for it, for the players per level at the first period's end."""

EPSILON = timedelta(microseconds=1)

NONE = Decimal("0.00")
"""Nothing, of points or money (both in hundredths): the start of every sum reported."""

Rate = tuple[str, Decimal, int]
"""A version's redemption rate: its currency, `redemption_value` and `redemption_points`."""

K = TypeVar("K")
V = TypeVar("V", Decimal, int)


class Period(StrEnum):
    """How the report groups brand days."""

    DAY = "day"
    MONTH = "month"


def rate(programme: Programme) -> Rate:
    """A programme's redemption rate."""
    policies = programme.policies
    return (
        policies.redemption_currency.value,
        policies.redemption_value,
        policies.redemption_points,
    )


@dataclass
class RunFigures:
    """One run's figures by brand day (a proleptic ordinal of the brand's calendar; `BEFORE`
    for level moves before the range). Amounts are sums of the outputs' own amounts."""

    accrued: dict[tuple[int, Rate], Decimal] = field(default_factory=dict)
    """Points of `PointsAccrued`, by day and the rate of the version that accrued them."""
    reversed: dict[tuple[int, Rate], Decimal] = field(default_factory=dict)
    """Points cancelled bets took back (`PointsReversed.points_reversed`), by day and the rate
    of the version their bet was placed under."""
    cashback: dict[tuple[int, str], Decimal] = field(default_factory=dict)
    """`CashbackAwarded.amount` by day and currency."""
    caps: dict[int, int] = field(default_factory=dict)
    """Cashback awards cut to the level's daily cap."""
    tier_rewards: dict[int, int] = field(default_factory=dict)
    tier_gc: dict[int, Decimal] = field(default_factory=dict)
    ups: dict[int, int] = field(default_factory=dict)
    downs: dict[int, int] = field(default_factory=dict)
    levels: dict[tuple[int, int], int] = field(default_factory=dict)
    """Players by (day, rank): +1 the day a player's record is made at its first level or
    reaches a rank, -1 the day it leaves one. Summed up to a day's end: players per rank."""
    rejected: int = 0
    """Events the rules refused (`EventRejected`): a worker dead-letters them."""
    failed: int = 0
    """Events the rules failed on otherwise: a worker dead-letters them too."""
    failures: list[str] = field(default_factory=list)
    """The first few failures' messages."""

    def merge(self, other: "RunFigures") -> None:
        """Add another share's figures to these."""
        _add_all(self.accrued, other.accrued, ZERO)
        _add_all(self.reversed, other.reversed, ZERO)
        _add_all(self.cashback, other.cashback, ZERO)
        _add_all(self.tier_gc, other.tier_gc, ZERO)
        _add_all(self.caps, other.caps, 0)
        _add_all(self.tier_rewards, other.tier_rewards, 0)
        _add_all(self.ups, other.ups, 0)
        _add_all(self.downs, other.downs, 0)
        _add_all(self.levels, other.levels, 0)
        self.rejected += other.rejected
        self.failed += other.failed
        self.failures.extend(other.failures[: FAILURES_KEPT - len(self.failures)])


FAILURES_KEPT = 5


def _add_all(into: dict[K, V], more: Mapping[K, V], zero: V) -> None:
    for key, value in more.items():
        into[key] = into.get(key, zero) + value


PROPOSED = -1
"""The version slot of points the proposal valued (its version number may be any)."""


class Tally:
    """Adds one run's outputs up into its `RunFigures`, by the brand day they are dated in.

    `calendar` gives brand days (`Programme.day_of`, the brand's zone); `since` (None: no
    range before) and `until` bound the range: outputs dated before `since` count only as
    level moves, those at or after `until` not at all. Points are valued at `rates`, by the
    version number that accrued them (the bet's, for a reversal) or `PROPOSED`; with
    `proposal`, points of bets placed from `since` on (always, when it is None) are the
    proposal's.
    """

    def __init__(
        self,
        calendar: Programme,
        since: datetime | None,
        until: datetime,
        rates: Mapping[int, Rate],
        proposal: bool,
    ) -> None:
        self._figures = RunFigures()
        self._day_of = calendar.day_of
        self._since = since
        self._until = until
        self._rates = rates
        self._proposal = proposal
        # points by (day, version slot): hashing a Rate, which holds a Decimal, costs more
        self._accrued: dict[tuple[int, int], Decimal] = {}
        self._reversed: dict[tuple[int, int], Decimal] = {}

    @property
    def figures(self) -> RunFigures:
        """What was added up so far."""
        figures = self._figures
        rates = self._rates
        for mine, theirs in ((self._accrued, figures.accrued), (self._reversed, figures.reversed)):
            theirs.clear()
            for (day, slot), points in mine.items():
                key = (day, rates[slot])
                theirs[key] = theirs.get(key, ZERO) + points
        return figures

    def day(self, moment: datetime) -> int | None:
        """The brand day of `moment`, `BEFORE` the range, or None at or after its end."""
        if moment >= self._until:
            return None
        if self._since is not None and moment < self._since:
            return BEFORE
        return self._day_of(moment)

    def _slot(self, version: int, placed_at: datetime) -> int:
        since = self._since
        if self._proposal and (since is None or placed_at >= since):
            return PROPOSED
        return version

    def created(self, moment: datetime, rank: int) -> None:
        """A player's record made at `moment`, at rank `rank`."""
        day = self.day(moment)
        if day is not None:
            levels = self._figures.levels
            levels[day, rank] = levels.get((day, rank), 0) + 1

    def refused(self) -> None:
        """An event the rules refused (`EventRejected`)."""
        self._figures.rejected += 1

    def add(self, outputs: Iterable[Output]) -> Decimal:
        """Add outputs up; gives the points they issued in the range (accrued less reversed)."""
        issued = ZERO
        for output in outputs:
            if isinstance(output, PointsAccrued):
                moment = output.occurred_at
                since = self._since
                if moment >= self._until or (since is not None and moment < since):
                    continue
                points = output.points
                key = (self._day_of(moment), self._slot(output.programme_version, moment))
                accrued = self._accrued
                accrued[key] = accrued.get(key, ZERO) + points
                issued += points
            elif isinstance(output, LevelChanged):
                self._moved(output)
            elif isinstance(output, PointsReversed):
                issued -= self._reversal(output)
            elif isinstance(output, CashbackAwarded):
                self._cashback(output)
            elif isinstance(output, TierRewardGranted):
                self._tier_reward(output)
        return issued

    def _reversal(self, reversal: PointsReversed) -> Decimal:
        day = self.day(reversal.occurred_at)
        if day is None or day == BEFORE:
            return ZERO
        taken = reversal.points_reversed
        key = (day, self._slot(reversal.programme_version, reversal.placed_at))
        self._reversed[key] = self._reversed.get(key, ZERO) + taken
        return taken

    def _tier_reward(self, reward: TierRewardGranted) -> None:
        day = self.day(reward.occurred_at)
        if day is None or day == BEFORE:
            return
        figures = self._figures
        figures.tier_rewards[day] = figures.tier_rewards.get(day, 0) + 1
        figures.tier_gc[day] = figures.tier_gc.get(day, ZERO) + reward.gc

    def _moved(self, change: LevelChanged) -> None:
        day = self.day(change.occurred_at)
        if day is None:
            return
        figures = self._figures
        levels = figures.levels
        levels[day, change.from_rank] = levels.get((day, change.from_rank), 0) - 1
        levels[day, change.to_rank] = levels.get((day, change.to_rank), 0) + 1
        if day != BEFORE:
            counts = figures.ups if change.direction is Direction.UP else figures.downs
            counts[day] = counts.get(day, 0) + 1

    def _cashback(self, award: CashbackAwarded) -> None:
        day = self.day(award.occurred_at)
        if day is None or day == BEFORE:
            return
        figures = self._figures
        key = (day, award.currency.value)
        figures.cashback[key] = figures.cashback.get(key, ZERO) + award.amount
        if award.capped:
            figures.caps[day] = figures.caps.get(day, 0) + 1

    def failure(self, error: Exception) -> None:
        """An event the rules failed on (not a refusal): counted, its message kept."""
        figures = self._figures
        figures.failed += 1
        if len(figures.failures) < FAILURES_KEPT:
            figures.failures.append(f"{type(error).__name__}: {error}")


@dataclass(frozen=True, slots=True)
class Affected:
    """A player's standing at the end of the range in both runs: ranks held then, and the
    points issued to them in the range."""

    player_id: str
    baseline_rank: int
    proposal_rank: int
    baseline_points: Decimal
    proposal_points: Decimal

    @property
    def order(self) -> tuple[int, Decimal, str]:
        """Most affected first: the larger difference of rank, then of points, then by id."""
        return (
            -abs(self.proposal_rank - self.baseline_rank),
            -abs(self.proposal_points - self.baseline_points),
            self.player_id,
        )


@dataclass
class ShareFigures:
    """What one process folded: both runs' figures, the level moves between them, the most
    affected players it holds (at most `top`), and counts."""

    baseline: RunFigures
    proposal: RunFigures
    moves: dict[tuple[int, int], int]
    """Players by (rank at the end in the baseline, in the proposal)."""
    affected: list[Affected]
    events: int
    """Events folded (each once, whether folded once before `since` or once per run)."""
    folds: int
    """`on_event` calls of both runs, and the proposal's re-checks."""
    players: int
    first_event: datetime | None
    duplicates: int = 0
    """Events skipped as published again (their id applied from another record)."""
    unprogrammed: int = 0
    """Events skipped for no programme in effect at their time (dead letters to a worker)."""
    misrouted: int = 0
    """Events skipped for sitting on a partition other than their key's (dead letters too)."""

    def merge(self, other: "ShareFigures", top: int) -> None:
        """Add another share's figures to these, keeping the `top` most affected players."""
        self.baseline.merge(other.baseline)
        self.proposal.merge(other.proposal)
        _add_all(self.moves, other.moves, 0)
        self.affected = most_affected([*self.affected, *other.affected], top)
        self.events += other.events
        self.folds += other.folds
        self.players += other.players
        self.duplicates += other.duplicates
        self.unprogrammed += other.unprogrammed
        self.misrouted += other.misrouted
        if other.first_event is not None and (
            self.first_event is None or other.first_event < self.first_event
        ):
            self.first_event = other.first_event


def most_affected(players: Iterable[Affected], top: int) -> list[Affected]:
    """The `top` players whose standing differs most between the runs (none that do not)."""
    differ = [
        player
        for player in players
        if player.baseline_rank != player.proposal_rank
        or player.baseline_points != player.proposal_points
    ]
    return sorted(differ, key=lambda player: player.order)[:top]


# -- the report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunPeriod:
    """One run's figures over one period (or the whole range)."""

    players: dict[str, int]
    """Players per level at the period's end (players with a record then), by level name."""
    points_accrued: Decimal
    points_reversed: Decimal
    points_issued: Decimal
    """Accrued less reversed."""
    liability: dict[str, Decimal]
    """Points issued at the redemption rate, by redemption currency, rounded to 0.01."""
    cashback: dict[str, Decimal]
    """Cashback paid (dated in the period: a brand day's is paid at its end), by currency."""
    cashback_caps: int
    tier_rewards: int
    tier_reward_gc: Decimal
    level_ups: int
    level_downs: int


@dataclass(frozen=True, slots=True)
class PeriodFigures:
    """A period, [start, end) in UTC, and both runs' figures over it."""

    label: str
    """`YYYY-MM-DD` (a brand day) or `YYYY-MM` (a calendar month in the brand's zone)."""
    start: datetime
    end: datetime
    baseline: RunPeriod
    proposal: RunPeriod


@dataclass(frozen=True, slots=True)
class Move:
    """Players at `baseline` at the end of the range in the baseline, at `proposal` in the
    proposal."""

    baseline: str
    proposal: str
    players: int


@dataclass(frozen=True, slots=True)
class AffectedPlayer:
    """One of the players most affected: levels at the end of the range and points issued in
    it, in both runs. `level_change` is the proposal's rank less the baseline's."""

    player_id: str
    baseline_level: str
    proposal_level: str
    level_change: int
    baseline_points: Decimal
    proposal_points: Decimal
    points_change: Decimal


@dataclass(frozen=True, slots=True)
class Stats:
    """How the replay ran: `events` counts each event once (both runs were folded for it,
    or one shared fold before `since`), `folds` the domain's steps: `on_event` calls of both
    runs (one for an event before `since`) and the proposal's re-checks at `since`."""

    events: int
    folds: int
    players: int
    processes: int
    seconds: float
    duplicates: int
    unprogrammed: int
    misrouted: int
    rejected: tuple[int, int]
    """Events refused by the rules, in the baseline and in the proposal."""
    failed: tuple[int, int]
    failures: tuple[str, ...]

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Report:
    """A what-if's report: per period and over the whole range [since, until) (UTC), both
    runs' figures; the level moves between the runs at `until`; the players most affected."""

    brand_id: str
    since: datetime
    until: datetime
    by: Period
    timezone: str
    baseline_versions: tuple[int, ...]
    """The brand's versions in effect at some time of the range (the baseline's)."""
    proposed_version: int
    proposed_name: str
    proposal_from: datetime | None
    """From when the proposal governs (None: all of the history)."""
    levels: tuple[str, ...]
    """Level names of both runs, by rank."""
    periods: tuple[PeriodFigures, ...]
    total: PeriodFigures
    moves: tuple[Move, ...]
    """Every pair of levels with players, baseline's order then proposal's."""
    affected: tuple[AffectedPlayer, ...]
    stats: Stats


@dataclass(frozen=True, slots=True)
class Setup:
    """What a report is built against: the brand, the baseline's versions, the proposal and
    from when it governs, the range and how it is grouped."""

    brand_id: str
    baseline: Catalogue
    proposed: Programme
    proposal_from: datetime | None
    until: datetime
    by: Period
    top: int

    def rules(self, proposal: bool) -> Callable[[datetime], Programme]:
        """The version a run applies at each instant (`Catalogue.in_effect`; the brand's
        first before any): the baseline's, or the proposal from `proposal_from` on."""
        versions = self.baseline.versions(self.brand_id)
        starts = [programme.effective_from for programme in versions]
        first = versions[0]

        def baseline(moment: datetime) -> Programme:
            index = bisect_right(starts, moment) - 1
            return versions[index] if index >= 0 else first

        if not proposal:
            return (lambda _: first) if len(versions) == 1 else baseline
        since, proposed = self.proposal_from, self.proposed
        if since is None:
            return lambda _: proposed

        def with_proposal(moment: datetime) -> Programme:
            return proposed if moment >= since else baseline(moment)

        return with_proposal

    def programme_at(self, proposal: bool, moment: datetime) -> Programme:
        """The version a run applies at `moment` (`rules`)."""
        return self.rules(proposal)(moment)

    @property
    def calendar(self) -> Programme:
        """The version whose zone makes the brand days of the report: the baseline's at the
        end of the range."""
        return self.programme_at(False, self.until - EPSILON)


def build_report(setup: Setup, figures: ShareFigures, processes: int, seconds: float) -> Report:
    """The report of merged figures. The range starts at `setup.proposal_from`, or (None) at
    the start of the brand day of the first event folded (`until` if none was)."""
    calendar = setup.calendar
    if setup.proposal_from is not None:
        since = setup.proposal_from
    elif figures.first_event is not None:
        since = min(calendar.day_start(calendar.day_of(figures.first_event)), setup.until)
    else:
        since = setup.until
    bounds = _periods(calendar, since, setup.until, setup.by)
    runs = (figures.baseline, figures.proposal)
    first = bounds[0][3][0] if bounds else None
    counts = [_levels_before(run, first) for run in runs]
    periods = []
    for label, start, end, days in bounds:
        results = [
            _run_period(setup, run, days, counts[proposal], bool(proposal), end)
            for proposal, run in enumerate(runs)
        ]
        periods.append(PeriodFigures(label, start, end, *results))
    total = PeriodFigures(
        "total",
        since,
        setup.until,
        *(_total(periods, proposal, setup, counts[proposal]) for proposal in (False, True)),
    )
    return Report(
        brand_id=setup.brand_id,
        since=since,
        until=setup.until,
        by=setup.by,
        timezone=calendar.policies.timezone,
        baseline_versions=_versions_in(setup, since),
        proposed_version=setup.proposed.version,
        proposed_name=setup.proposed.name,
        proposal_from=setup.proposal_from,
        levels=_level_names(setup),
        periods=tuple(periods),
        total=total,
        moves=_moves(setup, figures.moves),
        affected=tuple(_affected(setup, player) for player in figures.affected),
        stats=Stats(
            events=figures.events,
            folds=figures.folds,
            players=figures.players,
            processes=processes,
            seconds=seconds,
            duplicates=figures.duplicates,
            unprogrammed=figures.unprogrammed,
            misrouted=figures.misrouted,
            rejected=(figures.baseline.rejected, figures.proposal.rejected),
            failed=(figures.baseline.failed, figures.proposal.failed),
            failures=tuple(figures.baseline.failures + figures.proposal.failures),
        ),
    )


def _periods(
    calendar: Programme, since: datetime, until: datetime, by: Period
) -> list[tuple[str, datetime, datetime, list[int]]]:
    """Each period of [since, until): its label, bounds (UTC) and brand days."""
    if since >= until:
        return []
    first, last = calendar.day_of(since), calendar.day_of(until - EPSILON)
    periods: list[tuple[str, datetime, datetime, list[int]]] = []
    for day in range(first, last + 1):
        when = date.fromordinal(day)
        label = when.isoformat() if by is Period.DAY else when.isoformat()[:7]
        if periods and periods[-1][0] == label:
            periods[-1][3].append(day)
        else:
            periods.append((label, max(since, calendar.day_start(day)), until, [day]))
    bounded = []
    for index, (label, start, _, days) in enumerate(periods):
        end = periods[index + 1][1] if index + 1 < len(periods) else until
        bounded.append((label, start, end, days))
    return bounded


def _levels_before(run: RunFigures, first: int | None) -> dict[int, int]:
    """Players by rank before brand day `first` (None: after everything counted)."""
    counts: dict[int, int] = {}
    for (day, rank), change in run.levels.items():
        if first is None or day < first:  # BEFORE is below every day
            counts[rank] = counts.get(rank, 0) + change
    return counts


def _count_levels(run: RunFigures, counts: dict[int, int], days: set[int]) -> None:
    """Move `counts` (players by rank) on to the end of `days`."""
    for (day, rank), change in run.levels.items():
        if day in days:
            counts[rank] = counts.get(rank, 0) + change


def _run_period(
    setup: Setup,
    run: RunFigures,
    days: Sequence[int],
    counts: dict[int, int],
    proposal: bool,
    end: datetime,
) -> RunPeriod:
    wanted = set(days)
    _count_levels(run, counts, wanted)
    return RunPeriod(
        players=_by_name(setup.programme_at(proposal, end - EPSILON), counts),
        points_accrued=_points(run.accrued, wanted),
        points_reversed=_points(run.reversed, wanted),
        points_issued=_points(run.accrued, wanted) - _points(run.reversed, wanted),
        liability=_liability(run, wanted),
        cashback=_by_currency(run.cashback, wanted),
        cashback_caps=_count(run.caps, wanted),
        tier_rewards=_count(run.tier_rewards, wanted),
        tier_reward_gc=_sum(run.tier_gc, wanted),
        level_ups=_count(run.ups, wanted),
        level_downs=_count(run.downs, wanted),
    )


def _total(
    periods: Sequence[PeriodFigures], proposal: bool, setup: Setup, counts: dict[int, int]
) -> RunPeriod:
    runs = [period.proposal if proposal else period.baseline for period in periods]
    with localcontext(EXACT):
        return RunPeriod(
            players=_by_name(setup.programme_at(proposal, setup.until - EPSILON), counts),
            points_accrued=sum((run.points_accrued for run in runs), NONE),
            points_reversed=sum((run.points_reversed for run in runs), NONE),
            points_issued=sum((run.points_issued for run in runs), NONE),
            liability=_merged([run.liability for run in runs]),
            cashback=_merged([run.cashback for run in runs]),
            cashback_caps=sum(run.cashback_caps for run in runs),
            tier_rewards=sum(run.tier_rewards for run in runs),
            tier_reward_gc=sum((run.tier_reward_gc for run in runs), NONE),
            level_ups=sum(run.level_ups for run in runs),
            level_downs=sum(run.level_downs for run in runs),
        )


def _merged(amounts: Iterable[Mapping[str, Decimal]]) -> dict[str, Decimal]:
    merged: dict[str, Decimal] = {}
    for by_currency in amounts:
        _add_all(merged, by_currency, ZERO)
    return dict(sorted(merged.items()))


def _sum(by_day: Mapping[int, Decimal], days: set[int]) -> Decimal:
    with localcontext(EXACT):
        return sum((amount for day, amount in by_day.items() if day in days), NONE)


def _count(by_day: Mapping[int, int], days: set[int]) -> int:
    return sum(count for day, count in by_day.items() if day in days)


def _by_currency(amounts: Mapping[tuple[int, str], Decimal], days: set[int]) -> dict[str, Decimal]:
    found: dict[str, Decimal] = {}
    with localcontext(EXACT):
        for (day, currency), amount in amounts.items():
            if day in days:
                found[currency] = found.get(currency, ZERO) + amount
    return dict(sorted(found.items()))


def _points(points: Mapping[tuple[int, Rate], Decimal], days: set[int]) -> Decimal:
    with localcontext(EXACT):
        return sum((amount for (day, _), amount in points.items() if day in days), NONE)


def _liability(run: RunFigures, days: set[int]) -> dict[str, Decimal]:
    """Points accrued less reversed x value / points of their rate, summed by currency,
    rounded half-even to 0.01."""
    found: dict[str, Decimal] = {}
    with localcontext(EXACT):
        for points, sign in ((run.accrued, 1), (run.reversed, -1)):
            for (day, (currency, value, per)), amount in points.items():
                if day in days:
                    found[currency] = found.get(currency, ZERO) + sign * amount * value / per
    return {
        currency: amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
        for currency, amount in sorted(found.items())
    }


def _by_name(programme: Programme, counts: Mapping[int, int]) -> dict[str, int]:
    """Players per level name (`Programme.level_at`: a rank the version lacks is its lowest),
    every level of the version listed."""
    named = {level.name: 0 for level in programme.levels}
    for rank, players in counts.items():
        name = programme.level_at(rank).name
        named[name] += players
    return named


def _level_names(setup: Setup) -> tuple[str, ...]:
    """Every level name of the versions involved, by rank (then name)."""
    programmes = [*setup.baseline.versions(setup.brand_id), setup.proposed]
    ranked = {(level.rank, level.name) for p in programmes for level in p.levels}
    names: list[str] = []
    for _, name in sorted(ranked):
        if name not in names:
            names.append(name)
    return tuple(names)


def _versions_in(setup: Setup, since: datetime) -> tuple[int, ...]:
    """The baseline's versions in effect at some time of [since, until)."""
    versions = setup.baseline.versions(setup.brand_id)
    found = []
    for index, programme in enumerate(versions):
        ends = versions[index + 1].effective_from if index + 1 < len(versions) else None
        if programme.effective_from < setup.until and (ends is None or ends > since):
            found.append(programme.version)
    return tuple(found)


def _moves(setup: Setup, moves: Mapping[tuple[int, int], int]) -> tuple[Move, ...]:
    last = setup.until - EPSILON
    baseline, proposal = setup.programme_at(False, last), setup.programme_at(True, last)
    named: dict[tuple[str, str], int] = {}
    for (from_rank, to_rank), players in moves.items():
        key = (baseline.level_at(from_rank).name, proposal.level_at(to_rank).name)
        named[key] = named.get(key, 0) + players
    order = {name: index for index, name in enumerate(_level_names(setup))}
    return tuple(
        Move(b, p, players)
        for (b, p), players in sorted(named.items(), key=lambda i: (order[i[0][0]], order[i[0][1]]))
    )


def _affected(setup: Setup, player: Affected) -> AffectedPlayer:
    last = setup.until - EPSILON
    baseline, proposal = setup.programme_at(False, last), setup.programme_at(True, last)
    return AffectedPlayer(
        player_id=player.player_id,
        baseline_level=baseline.level_at(player.baseline_rank).name,
        proposal_level=proposal.level_at(player.proposal_rank).name,
        level_change=player.proposal_rank - player.baseline_rank,
        baseline_points=player.baseline_points,
        proposal_points=player.proposal_points,
        points_change=player.proposal_points - player.baseline_points,
    )
