"""What time alone does to a player: the rules' timers, each run at the instant the rules say.

A player's record carries `timer_at`, the earliest instant at which something is due with time
alone (`due_at`); the stream runtime keeps an index of these by time and calls `advance` when
the instant has passed, or runs it first when a record of the player arrives dated after it.
What is due, and when (all instants in UTC):

- **day close**: a brand day with play closes at its end (the next midnight in the brand's zone),
  at the level held at that instant; the cashback log gets a row, and `CashbackAwarded` goes out
  when it pays;
- **retention missed**: the instant the 30-day figure falls below the current level's retention
  with no more play (the start of the brand day on which a bucket leaves the window) starts the
  grace period; the downgrade happens when the grace ends, if the figure has not recovered;
- **hold timeout**: a redemption hold not confirmed by its `expires_at` is released then;
- **expiry**: an idle balance is warned about `expiry_warning_days` ahead and expires whole
  `inactivity_expiry_days` after the last play, redemption, credit or gift;
- **forced level end**: a forced level's `until`, when normal evaluation resumes.

Several due at once run in that order; overdue ones (after downtime) run one by one in time
order, each at its own instant, so the result is the same whenever the worker notices. Every
output's time is that instant and its id derives from what it records, so running `advance`
again after a crash emits the same outputs.

Cashback of a closed day: NGR = bets - cancelled stakes - wins - bonus releases (in the turnover
currency; see `cancellations`); when it
is above zero, cashback = NGR x the level's percent / 100, rounded *down* to 0.01, then capped by
the level's daily maximum. Amounts are written in the currency's places (NGR rounded half-even
for display; the cashback is computed from the exact NGR).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal, localcontext

from loyalty_streams.domain.cancellations import PlacedBet, fold_with_bet
from loyalty_streams.domain.command_rules import execute, timed_out
from loyalty_streams.domain.commands import Command
from loyalty_streams.domain.event_rules import settle_at
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.money import CENT, EXACT
from loyalty_streams.domain.outputs import (
    CashbackAwarded,
    Output,
    PointsExpired,
    PointsExpiring,
)
from loyalty_streams.domain.player import (
    CLOSED_DAYS_KEPT,
    WINDOW_DAYS,
    ZERO,
    PlayerState,
    SourcePosition,
)
from loyalty_streams.domain.programme import Programme

HUNDRED = Decimal(100)

ProgrammeAt = Callable[[datetime], Programme]
"""The brand's programme version in effect at an instant: each timer runs under its own."""

Programmes = Programme | ProgrammeAt
"""One programme for every instant, or the version in effect at each."""


@dataclass(frozen=True, slots=True)
class CashbackDay:
    """One row of the daily cashback log: a closed day's play and what it paid, paid or not.

    Amounts in the turnover currency's places; `closed_at` is the day's end (UTC).
    """

    brand_id: str
    player_id: str
    day: date
    level: str
    rank: int
    currency: str
    bets: Decimal
    cancelled: Decimal
    """Stakes of cancelled bets the day took off (its own, or of a day closed before)."""
    wins: Decimal
    bonuses: Decimal
    ngr: Decimal
    percent: Decimal
    daily_cap: Decimal | None
    amount: Decimal
    capped: bool
    closed_at: datetime
    programme_version: int


@dataclass(frozen=True, slots=True)
class Advanced:
    """A player's record after a step, what it emits, the days it closed, and the record of
    the bet it placed or cancelled (kept beside the player's, see `domain.cancellations`)."""

    state: PlayerState
    outputs: tuple[Output, ...] = ()
    cashback: tuple[CashbackDay, ...] = ()
    bet: PlacedBet | None = None


def on_event(
    state: PlayerState | None,
    event: PlayerEvent,
    programmes: Programmes,
    source: SourcePosition | None = None,
    bet: PlacedBet | None = None,
) -> Advanced:
    """Run the player's timers due by the event's time, then fold the event with the record of
    the bet it names, its stored record or None (`cancellations.fold_with_bet`, under the
    version in effect at the event's time).

    So a day closes at the level held at its end even when the first news of the next day is a
    bet that raises the level, and a downgrade that fell due before the bet happens before it.
    A repeat returns `state` itself.
    """
    at = _rules(programmes)
    programme = at(event.occurred_at)
    early = _due_by(state, event.occurred_at, at)
    new, outputs, bet = fold_with_bet(
        early.state if early else state, event, programme, source, bet
    )
    if new is not state:
        new.timer_at = due_at(new, programme)
    if early is None:
        return Advanced(new, outputs, (), bet)
    return Advanced(new, (*early.outputs, *outputs), early.cashback, bet)


def on_command(
    state: PlayerState | None,
    command: Command,
    programmes: Programmes,
    at: datetime,
    max_skew: timedelta,
    source: SourcePosition | None = None,
) -> Advanced:
    """Run the player's timers due by `at` (UTC), then carry out the command (`command_rules`,
    under the version in effect at `at`)."""
    rules = _rules(programmes)
    programme = rules(at)
    early = _due_by(state, at, rules)
    before = early.state if early else state
    new, outputs = execute(before, command, programme, at, max_skew, source)
    if new is not state:
        new.timer_at = due_at(new, programme)
    if early is None:
        return Advanced(new, outputs)
    return Advanced(new, (*early.outputs, *outputs), early.cashback)


def _rules(programmes: Programmes) -> ProgrammeAt:
    if isinstance(programmes, Programme):
        return lambda _: programmes
    return programmes


def _due_by(state: PlayerState | None, moment: datetime, at: ProgrammeAt) -> Advanced | None:
    if state is None or state.timer_at is None or state.timer_at > moment:
        return None
    return advance(state, moment, at)


def advance(state: PlayerState, until: datetime, programmes: Programmes) -> Advanced:
    """Everything due for the player up to `until` (UTC), each at its own instant, in time order,
    each under the programme version in effect at its instant.

    The record passed in is never changed. The result's `timer_at` is the next instant due
    after `until`, or None. The result depends on the record, the versions and `until` only,
    never on how often or when it was asked.
    """
    at = _rules(programmes)
    new = state.clone()
    outputs: list[Output] = []
    cashback: list[CashbackDay] = []
    with localcontext(EXACT):
        programme = at(new.time_at(new.level_since))
        due = due_at(new, programme)
        while due is not None and due <= until:
            programme = at(due)
            _fire(new, due, programme, outputs, cashback)
            following = due_at(new, programme)
            if following is not None and following <= due:
                raise RuntimeError(f"timer of {new.key} at {due.isoformat()} did not move on")
            due = following
    new.timer_at = due
    return Advanced(new, tuple(outputs), tuple(cashback))


def recheck(state: PlayerState, at: datetime, programmes: Programmes, cause_id: str) -> Advanced:
    """Run what is due by `at` (UTC), then re-check the level at `at` under the version in
    effect then: an operator's re-check of a brand, after a programme change (a retention no
    longer met starts the grace then). A level change's output id is `<cause_id>:level`."""
    programme = _rules(programmes)(at)
    advanced = advance(state, at, programmes)
    new = advanced.state
    with localcontext(EXACT):
        changes = settle_at(new, at, programme, cause_id)
    new.timer_at = due_at(new, programme)
    return Advanced(new, (*advanced.outputs, *changes), advanced.cashback)


def due_at(state: PlayerState, programme: Programme) -> datetime | None:
    """The earliest instant (UTC) something is due for the player with time alone, or None."""
    due: datetime | None = None
    if state.ledgers:
        due = programme.day_start(min(state.ledgers) + 1)
    forced = state.forced
    if forced is not None:
        if forced.until is not None and (due is None or forced.until < due):
            due = forced.until
    elif state.downgrade_pending_since is not None:
        ends = programme.grace_ends(state.downgrade_pending_since)
        if due is None or ends < due:
            due = ends
    elif due is None:  # a close comes first: the figure only falls from the next day on
        due = _retention_missed_at(state, programme)
    for hold in state.holds.values():
        if due is None or hold.expires_at < due:
            due = hold.expires_at
    expiry = _expiry_due(state, programme)
    if expiry is not None and (due is None or expiry < due):
        due = expiry
    return due


def _retention_missed_at(state: PlayerState, programme: Programme) -> datetime | None:
    """When the 30-day figure falls below the current level's retention if nothing is played.

    A bucket of day d leaves the window at the start of day d + 30. None when the level asks no
    retention, or when the figure is below it already (only a programme change does that: an
    operator's re-check, or the player's next play, starts the grace then).
    """
    index = programme.level_index(state.level_rank)
    need = programme.retentions[index]
    if not index or not need:
        return None
    today = programme.day_of(state.time_at(state.level_since))
    buckets = state.buckets
    days = sorted(day for day in buckets if day > today - WINDOW_DAYS)
    remaining = sum((buckets[day] for day in days), ZERO)
    if remaining < need:
        return None
    leaves = None
    for day in days:  # oldest first: the order they leave the window
        remaining -= buckets[day]
        leaves = programme.day_start(day + WINDOW_DAYS)
        if remaining < need:
            break
    return leaves


def _expiry_due(state: PlayerState, programme: Programme) -> datetime | None:
    expires_at = expiry_of(state, programme)
    if expires_at is None:
        return None
    warning = programme.policies.expiry_warning_days
    if warning and state.expiry_warned_for != state.points_active_at:
        return expires_at - timedelta(days=warning)
    return expires_at


def _fire(
    state: PlayerState,
    at: datetime,
    programme: Programme,
    outputs: list[Output],
    cashback: list[CashbackDay],
) -> None:
    """Run what is due at `at`, in place: closes, the level, holds, then expiry."""
    _close_days(state, at, programme, outputs, cashback)
    outputs.extend(settle_at(state, at, programme, f"timers:{state.key}:{at.isoformat()}"))
    for rid, hold in [(rid, hold) for rid, hold in state.holds.items() if hold.expires_at <= at]:
        outputs.append(timed_out(state, rid, hold, programme))
    outputs.extend(_expire(state, at, programme))


def _expire(state: PlayerState, at: datetime, programme: Programme) -> list[Output]:
    """After the inactivity period the whole available balance expires; warn some days ahead.

    One warning per lull (`expiry_warned_for`); the write-off's id carries the points expired
    before it, so a second write-off of the same lull (points from a late bet) has its own.
    """
    active = state.points_active_at
    points = state.points_available
    expires_at = expiry_of(state, programme)
    if active is None or expires_at is None:
        return []
    policies = programme.policies
    lull = f"{state.key}:{active.isoformat()}"
    if at >= expires_at:
        written_off = state.points_expired
        state.points_available = ZERO
        state.points_expired += points
        return [
            PointsExpired(
                output_id=f"expired:{lull}:{written_off}",
                brand_id=state.brand_id,
                player_id=state.player_id,
                occurred_at=expires_at,
                points=points,
                inactive_since=active,
                programme_version=programme.version,
            )
        ]
    warn_at = expires_at - timedelta(days=policies.expiry_warning_days)
    if policies.expiry_warning_days and at >= warn_at and state.expiry_warned_for != active:
        state.expiry_warned_for = active
        return [
            PointsExpiring(
                output_id=f"expiring:{lull}",
                brand_id=state.brand_id,
                player_id=state.player_id,
                occurred_at=warn_at,
                points=points,
                inactive_since=active,
                expires_at=expires_at,
                programme_version=programme.version,
            )
        ]
    return []


def expiry_of(state: PlayerState, programme: Programme) -> datetime | None:
    """When the available balance expires if the player stays away; None with nothing to lose."""
    if state.points_active_at is None or state.points_available <= 0:
        return None
    return state.points_active_at + timedelta(days=programme.policies.inactivity_expiry_days)


def _close_days(
    state: PlayerState,
    at: datetime,
    programme: Programme,
    outputs: list[Output],
    cashback: list[CashbackDay],
) -> None:
    """Close every brand day that ended by `at`, each at the level held at its end: one log row
    each, and cashback when it pays."""
    today = programme.day_of(at)
    due = sorted(day for day in state.ledgers if day < today)
    if not due:
        return
    currency = programme.turnover_currency
    for day in due:
        closed_at = programme.day_start(day + 1)
        level = programme.level_at(state.level_held_at(closed_at))
        ledger = state.ledgers.pop(day)
        ngr = ledger.bets - ledger.cancelled - ledger.wins - ledger.bonuses
        amount = ZERO
        if ngr > 0:
            amount = (ngr * level.cashback_percent / HUNDRED).quantize(CENT, rounding=ROUND_DOWN)
        cap = level.cashback_daily_cap
        capped = cap is not None and amount > cap
        if cap is not None and capped:
            amount = cap
        amount = _cents(amount)
        ngr = _cents(ngr)
        calendar_day = date.fromordinal(day)
        cashback.append(
            CashbackDay(
                state.brand_id,
                state.player_id,
                calendar_day,
                level.name,
                level.rank,
                currency.value,
                _cents(ledger.bets),
                _cents(ledger.cancelled),
                _cents(ledger.wins),
                _cents(ledger.bonuses),
                ngr,
                level.cashback_percent,
                None if cap is None else _cents(cap),
                amount,
                capped,
                closed_at,
                programme.version,
            )
        )
        if amount > 0:
            outputs.append(
                CashbackAwarded(
                    output_id=f"cashback:{state.key}:{calendar_day.isoformat()}",
                    brand_id=state.brand_id,
                    player_id=state.player_id,
                    occurred_at=closed_at,
                    day=calendar_day,
                    level=level.name,
                    ngr=ngr,
                    percent=level.cashback_percent,
                    amount=amount,
                    currency=currency,
                    capped=capped,
                    programme_version=programme.version,
                )
            )
    state.closed_days = (*state.closed_days, *due)[-CLOSED_DAYS_KEPT:]


def _cents(amount: Decimal) -> Decimal:
    """An amount in the currency's places (every currency of the platform has two)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
