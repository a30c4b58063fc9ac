"""Cancelled bets: a voided game round, a technical rollback, a voided sports bet.

A bet's record (`PlacedBet`) is written beside the player's when the bet is folded and kept
`CANCELLABLE_DAYS`: what it wagered, the points it earned and the factors it earned them with,
what it added to the level figures, and whether its day's cashback ledger counted it. A
`BetCancelled` of `amount` (the whole bet or a part) then reverses exactly what that part did:

- **points**: the bet is scored again at its remaining amount with the factors it earned at,
  rounded down as an accrual is; the cancellation takes back the difference, so cancelling a
  bet whole, in one part or in several, takes back exactly the points it earned. The points are
  taken from the available balance; what is held for a redemption is owed (`points_owed`):
  taken when the hold is given back, unrecovered if the redemption is confirmed; points since
  redeemed or expired are not there to take. What is not taken is recorded, never taken below
  zero: `points_unrecovered` on the outputs and on the record (conservation:
  accrued - reversed - redeemed - expired - debited + credited = available + held, where
  reversed counts what was taken);
- **turnover and VIP points**: the cumulative figures, and the 30-day figure if the bet's day is
  still in the window;
- **the day's cashback ledger**: a day not closed yet loses the bet's stake; a day already
  closed is corrected on the next close (the stake comes off the ledger of the cancellation's
  own brand day; cashback is never negative, so a correction above that day's NGR lowers its
  cashback to zero and goes no further);
- **the level**: re-evaluated under the normal rules (a level the figures no longer hold starts
  the downgrade grace). A tier-up reward already granted is not taken back (the wallet paid it);
  reaching that level again never pays it twice.

A cancellation that cannot be carried out changes nothing and says why (`CancellationRefused`):
an unknown bet (never placed, placed for another player, or placed more than
`CANCELLABLE_DAYS` ago), a cancellation dated before the bet, a bet cancelled whole already, an
amount above what is left of the bet, a currency other than the bet's. Wins paid on the bet are
the platform's to roll back; they are play of the day, not points.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import orjson

from loyalty_streams.domain.event_rules import (
    POINT_STEP,
    EventRejected,
    apply,
    settle_level,
)
from loyalty_streams.domain.events import BetCancelled, BetPlaced, PlayerEvent
from loyalty_streams.domain.money import EXACT
from loyalty_streams.domain.outputs import (
    CancellationRefused,
    Output,
    PointsAccrued,
    PointsFactors,
    PointsReversed,
)
from loyalty_streams.domain.player import (
    RECENT_EVENT_IDS,
    ZERO,
    DayLedger,
    PlayerState,
    SourcePosition,
)
from loyalty_streams.domain.programme import LevelBasis, Programme

CANCELLABLE_DAYS = 30
"""How long after it was placed (event time) a bet can be cancelled: as long as it counts in the
30-day figure. The store keeps a bet's record that long (`state.keyspace.BET_DAYS`)."""


@dataclass(slots=True)
class PlacedBet:
    """What one bet did to its player's record, remembered to reverse it exactly. Never changed
    once made (`cancel` gives a new one); not frozen, for one is made per bet (a frozen
    dataclass sets each field through `object.__setattr__`: docs/decisions/fold-hot-path.md)."""

    bet_id: str
    event_id: str
    placed_at: datetime
    """The bet's event time (UTC offset as sent)."""
    day: int
    """The brand day (proleptic ordinal) its play was booked on."""
    amount: Decimal
    currency: str
    points: Decimal
    """Points it earned, rounded down to 0.01."""
    factors: PointsFactors
    turnover_per_unit: Decimal
    """Units of the turnover currency per unit wagered, when it was placed."""
    basis: str
    """The level basis (`LevelBasis`) its 30-day bucket was counted in."""
    booked: bool
    """Whether its day's cashback ledger counted it (play arriving too late does not)."""
    programme_version: int
    cancellations: tuple[tuple[str, Decimal], ...] = ()
    """The cancellations carried out, in order: event id and amount. A cancellation folded again
    (a replay after a crash whose checkpoint kept this record but not the player's) is judged
    against the bet as it was before it (`before`), so it does exactly what it did."""

    @property
    def cancelled(self) -> Decimal:
        """Amount cancelled so far."""
        return sum((amount for _, amount in self.cancellations), ZERO)

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.cancelled

    def before(self, event_id: str) -> "PlacedBet":
        """The bet as it was before the cancellation `event_id`; itself if that is none of
        its cancellations."""
        ids = [cancelled_by for cancelled_by, _ in self.cancellations]
        if event_id not in ids:
            return self
        return replace(self, cancellations=self.cancellations[: ids.index(event_id)])

    def points_for(self, amount: Decimal) -> Decimal:
        """The points `amount` of this bet earns with its factors, rounded down to 0.01, as
        `event_rules` scores a bet (under the EXACT context)."""
        f = self.factors
        exact = (
            amount
            * f.points_per_unit
            * f.category_weight
            * f.promotion_multiplier
            * f.level_multiplier
        )
        return exact.quantize(POINT_STEP)

    def to_json(self) -> bytes:
        return orjson.dumps(self, default=Decimal.__str__)

    @classmethod
    def from_json(cls, raw: bytes) -> "PlacedBet":
        data: dict[str, Any] = orjson.loads(raw)
        factors = data["factors"]
        return cls(
            bet_id=data["bet_id"],
            event_id=data["event_id"],
            placed_at=datetime.fromisoformat(data["placed_at"]),
            day=data["day"],
            amount=Decimal(data["amount"]),
            currency=data["currency"],
            points=Decimal(data["points"]),
            factors=PointsFactors(
                Decimal(factors["points_per_unit"]),
                Decimal(factors["category_weight"]),
                Decimal(factors["promotion_multiplier"]),
                tuple(factors["promotions"]),
                Decimal(factors["level_multiplier"]),
                factors["level"],
            ),
            turnover_per_unit=Decimal(data["turnover_per_unit"]),
            basis=data["basis"],
            booked=data["booked"],
            programme_version=data["programme_version"],
            cancellations=tuple(
                (event_id, Decimal(amount)) for event_id, amount in data["cancellations"]
            ),
        )


def placed(
    event: BetPlaced, accrued: PointsAccrued, state: PlayerState, programme: Programme
) -> PlacedBet:
    """The record of a bet just folded into `state` (under `programme`), from its accrual."""
    day = programme.day_of(event.occurred_at)
    return PlacedBet(
        event.bet_id,
        event.event_id,
        event.occurred_at,
        day,
        event.amount,
        event.currency.value,
        accrued.points,
        accrued.factors,
        programme.currencies[event.currency].turnover_per_unit,
        programme.level_basis.value,
        day in state.ledgers,
        programme.version,
    )


def fold_with_bet(
    state: PlayerState | None,
    event: PlayerEvent,
    programme: Programme,
    source: SourcePosition | None = None,
    bet: PlacedBet | None = None,
) -> tuple[PlayerState, tuple[Output, ...], PlacedBet | None]:
    """Fold one event with the record of the bet it names (`bet`: the stored record a
    `BetCancelled` cancels, None when unknown or for other events): `cancel` for a cancellation,
    `event_rules.apply` otherwise. Gives the new record, its outputs, and the bet's record to
    store (a bet placed, a bet cancelled; None when nothing is to be written)."""
    if isinstance(event, BetCancelled):
        return cancel(state, event, bet, programme, source)
    new, outputs = apply(state, event, programme, source)
    if new is state or not isinstance(event, BetPlaced):
        return new, outputs, None
    accrued = outputs[0]
    assert isinstance(accrued, PointsAccrued)  # a bet's first output
    return new, outputs, placed(event, accrued, new, programme)


def cancel(
    state: PlayerState | None,
    event: BetCancelled,
    bet: PlacedBet | None,
    programme: Programme,
    source: SourcePosition | None = None,
) -> tuple[PlayerState, tuple[Output, ...], PlacedBet | None]:
    """Fold a cancellation of `bet` (its stored record, None when unknown) into the player's
    record: the new record, its outputs, and the bet's record after it (None when unchanged).
    Pure like `event_rules.apply`; a repeat returns `state` itself and emits nothing. Raises
    `EventRejected` for a player with no record (nothing was ever placed to cancel)."""
    if event.brand_id != programme.brand_id:
        raise EventRejected(
            f"event for brand {event.brand_id!r} given programme of {programme.brand_id!r}"
        )
    if state is None:  # no record to say it in: the record is of no use (a dead letter)
        raise EventRejected(
            f"unknown_bet: bet {event.bet_id!r} is not known: player {event.key!r} has no record"
        )
    if state.seen(event.event_id, source):
        return state, (), None
    new = state.clone()
    new.recent_event_ids = (*new.recent_event_ids[1 - RECENT_EVENT_IDS :], event.event_id)
    if source is not None:
        new.applied_offsets[source.topic_partition] = source.offset
    clock = new.last_activity = new.time_at(event.occurred_at)
    if bet is not None:
        bet = bet.before(event.event_id)
    refusal = _refusal(event, bet)
    if refusal is not None:
        return new, (_refused(new, event, *refusal),), None
    assert bet is not None  # _refusal refuses an unknown bet
    with localcontext(EXACT):
        return _reverse(new, event, bet, programme, clock)


def _refusal(event: BetCancelled, bet: PlacedBet | None) -> tuple[str, str] | None:
    """Why the cancellation cannot be carried out (a code and a sentence), or None."""
    bet_id = event.bet_id
    if bet is None:
        return (
            "unknown_bet",
            f"bet {bet_id!r} is not known: never placed for this player, or placed more than "
            f"{CANCELLABLE_DAYS} days ago",
        )
    if event.currency.value != bet.currency:
        return (
            "currency_mismatch",
            f"bet {bet_id!r} was placed in {bet.currency}, the cancellation is in "
            f"{event.currency.value}",
        )
    if event.occurred_at < bet.placed_at:
        return (
            "before_bet",
            f"bet {bet_id!r} was placed at {bet.placed_at.isoformat()}, after the cancellation's "
            f"time {event.occurred_at.isoformat()}",
        )
    if event.occurred_at - bet.placed_at > timedelta(days=CANCELLABLE_DAYS):
        return (
            "too_late",
            f"bet {bet_id!r} was placed at {bet.placed_at.isoformat()}, more than "
            f"{CANCELLABLE_DAYS} days before {event.occurred_at.isoformat()}",
        )
    if not bet.remaining:
        return "already_cancelled", f"bet {bet_id!r} was cancelled whole already"
    if event.amount > bet.remaining:
        return (
            "exceeds_remaining",
            f"{event.amount} {bet.currency} cancelled, {bet.remaining} of bet {bet_id!r} left",
        )
    return None


def _reverse(
    state: PlayerState,
    event: BetCancelled,
    bet: PlacedBet,
    programme: Programme,
    clock: datetime,
) -> tuple[PlayerState, tuple[Output, ...], PlacedBet]:
    remaining = bet.remaining - event.amount
    # what is left was scored at the bet's factors: it keeps those points, the rest goes
    points = bet.points_for(bet.remaining) - bet.points_for(remaining)
    taken = min(points, state.points_available)
    owed = min(points - taken, state.points_held - state.points_owed)
    unrecovered = points - taken - owed
    state.points_available -= taken
    state.points_reversed += taken
    state.points_owed += owed
    state.points_unrecovered += unrecovered
    turnover = event.amount * bet.turnover_per_unit
    vip_points = event.amount * bet.factors.points_per_unit
    state.cumulative_turnover -= turnover
    state.vip_points -= vip_points
    qualifying = turnover if bet.basis == LevelBasis.TURNOVER.value else vip_points
    if bet.day in state.buckets:
        state.buckets[bet.day] -= qualifying
    today = programme.day_of(clock)
    if bet.booked:
        _unbook(state, bet.day if bet.day in state.ledgers else _open_day(state, today), turnover)
    reversed_ = PointsReversed(
        output_id=f"{event.event_id}:reversed",
        event_id=event.event_id,
        bet_id=bet.bet_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=event.occurred_at,
        placed_at=bet.placed_at,
        reason=event.reason.value,
        amount=event.amount,
        currency=event.currency,
        remaining=remaining,
        points=points,
        points_reversed=taken,
        points_owed=owed,
        points_unrecovered=unrecovered,
        turnover=turnover,
        vip_points=vip_points,
        factors=bet.factors,
        programme_version=bet.programme_version,
        points_available=state.points_available,
    )
    changes = settle_level(state, programme, clock, today, event.event_id, None)
    after = replace(bet, cancellations=(*bet.cancellations, (event.event_id, event.amount)))
    return state, (reversed_, *changes), after


def _open_day(state: PlayerState, today: int) -> int:
    """The first brand day from `today` on whose cashback is not closed yet (a late
    cancellation's own day may be closed already)."""
    closed = max((*state.closed_days, state.cashback_closed_day or 0), default=0)
    return max(today, closed + 1)


def _unbook(state: PlayerState, day: int, stake: Decimal) -> None:
    """Take a cancelled stake off a day's play (its ledger's `cancelled`): the bet's own day
    while it is open, else the first day still open (the correction of a day already closed,
    on the next close)."""
    old = state.ledgers.get(day)
    if old is None:
        state.ledgers[day] = DayLedger(ZERO, ZERO, ZERO, stake)
    else:
        state.ledgers[day] = DayLedger(old.bets, old.wins, old.bonuses, old.cancelled + stake)


def _refused(
    state: PlayerState, event: BetCancelled, code: str, reason: str
) -> CancellationRefused:
    return CancellationRefused(
        output_id=f"{event.event_id}:refused",
        event_id=event.event_id,
        bet_id=event.bet_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=event.occurred_at,
        code=code,
        reason=reason,
    )
