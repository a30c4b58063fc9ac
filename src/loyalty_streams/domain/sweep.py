"""What happens to a player with time alone: the work of the periodic sweep, at an injected `now`.

In order: every brand day before today is closed for cashback, at the level the player held
through it; then the level is re-checked (30-day decay, the grace period, a forced level ending),
redemption holds past their timeout are released, and an idle balance is warned about and then
expired.

Every output's id and time come from the record and the rules, not from when the sweep ran, so a
sweep repeated after a crash emits the same outputs, and one that finds nothing due changes
nothing.

Cashback of a closed day: NGR = bets - wins - bonus releases (in the turnover currency); when it
is above zero, cashback = NGR x the level's percent / 100, rounded *down* to 0.01, then capped by
the level's daily maximum. The level is the one held at the close, before the sweep re-checks
it: a decay noticed after midnight does not cut the cashback of the day played.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from loyalty_streams.domain.engine import EXACT, reevaluate
from loyalty_streams.domain.lifecycle import timed_out
from loyalty_streams.domain.money import CENT
from loyalty_streams.domain.outputs import (
    CashbackAwarded,
    Output,
    PointsExpired,
    PointsExpiring,
)
from loyalty_streams.domain.player import ZERO, PlayerState
from loyalty_streams.domain.programme import Programme

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class CashbackDay:
    """One row of the daily cashback log: a closed day's play and what it paid, paid or not."""

    brand_id: str
    player_id: str
    day: date
    level: str
    rank: int
    currency: str
    bets: Decimal
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
class Swept:
    state: PlayerState
    outputs: tuple[Output, ...]
    cashback: tuple[CashbackDay, ...]


def sweep_player(state: PlayerState, now: datetime, programme: Programme) -> Swept:
    """Everything due for one player at `now`; the record passed in is never changed."""
    with localcontext(EXACT):
        new = state.clone()
        awarded, log = _close_days(new, now, programme)
        outputs = reevaluate(new, now, programme)
        released = _release_timed_out(new, now, programme)
        expiry = _expire(new, now, programme)
    return Swept(new, (*awarded, *outputs, *released, *expiry), log)


def _release_timed_out(state: PlayerState, now: datetime, programme: Programme) -> list[Output]:
    due = [(rid, hold) for rid, hold in state.holds.items() if hold.expires_at <= now]
    return [timed_out(state, rid, hold, programme) for rid, hold in due]


def _expire(state: PlayerState, now: datetime, programme: Programme) -> list[Output]:
    """After the inactivity period the whole available balance expires; warn some days ahead."""
    active = state.points_active_at
    points = state.points_available
    expires_at = expiry_of(state, programme)
    if active is None or expires_at is None:
        return []
    policies = programme.policies
    lull = f"{state.key}:{active.isoformat()}"
    if now >= expires_at:
        state.points_available = ZERO
        state.points_expired += points
        return [
            PointsExpired(
                output_id=f"expired:{lull}",
                brand_id=state.brand_id,
                player_id=state.player_id,
                occurred_at=expires_at,
                points=points,
                inactive_since=active,
                programme_version=programme.version,
            )
        ]
    warn_at = expires_at - timedelta(days=policies.expiry_warning_days)
    if policies.expiry_warning_days and now >= warn_at and state.expiry_warned_for != active:
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
    state: PlayerState, now: datetime, programme: Programme
) -> tuple[list[Output], tuple[CashbackDay, ...]]:
    """Close every brand day before today: one log row each, and cashback when it pays."""
    today = programme.day_of(now)
    due = sorted(day for day in state.ledgers if day < today)
    if not due:
        return [], ()
    level = programme.level_at(state.level_rank)
    currency = programme.turnover_currency
    awarded: list[Output] = []
    log = []
    for day in due:
        ledger = state.ledgers.pop(day)
        ngr = ledger.bets - ledger.wins - ledger.bonuses
        amount = ZERO
        if ngr > 0:
            amount = (ngr * level.cashback_percent / HUNDRED).quantize(CENT, rounding=ROUND_DOWN)
        cap = level.cashback_daily_cap
        capped = cap is not None and amount > cap
        if capped:
            assert cap is not None
            amount = cap
        calendar_day = date.fromordinal(day)
        log.append(
            CashbackDay(
                state.brand_id,
                state.player_id,
                calendar_day,
                level.name,
                level.rank,
                currency.value,
                ledger.bets,
                ledger.wins,
                ledger.bonuses,
                ngr,
                level.cashback_percent,
                cap,
                amount,
                capped,
                now,
                programme.version,
            )
        )
        if amount > 0:
            awarded.append(
                CashbackAwarded(
                    output_id=f"cashback:{state.key}:{calendar_day.isoformat()}",
                    brand_id=state.brand_id,
                    player_id=state.player_id,
                    occurred_at=_day_end(calendar_day, programme),
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
    state.cashback_closed_day = due[-1]
    return awarded, tuple(log)


def _day_end(day: date, programme: Programme) -> datetime:
    """The brand's day boundary that closed `day`: the next midnight in its time zone."""
    return datetime.combine(day + timedelta(days=1), time(), programme.zone)
