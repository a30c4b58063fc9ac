"""The rules for events: fold an event into a player's record, and the level rules.

`apply(state, event, programme)` is pure: no I/O, no wall clock, the record passed in is never
changed, and the same inputs give the same record and outputs. What time alone does (closes,
downgrades after the grace, expiry) is `domain.time_rules`, which runs before `apply`.

Rounding: every product and sum of money or points is computed exactly (64 significant digits,
with overflow and invalid operations trapped), and the points of one bet are rounded *down* to
0.01 at the end, so a player is never credited a fraction the rules did not earn.
"""

from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, getcontext, setcontext

from loyalty_streams.domain.coin_rewards import store_bonus
from loyalty_streams.domain.events import (
    BetCancelled,
    BetPlaced,
    BonusRedeemed,
    CoinPackPurchased,
    DepositMade,
    PlayerEvent,
    WinCredited,
)
from loyalty_streams.domain.money import EXACT
from loyalty_streams.domain.outputs import (
    Direction,
    LevelChanged,
    Output,
    PointsAccrued,
    PointsFactors,
    TierRewardGranted,
)
from loyalty_streams.domain.player import (
    LEVEL_CHANGES_KEPT,
    RECENT_EVENT_IDS,
    WINDOW_DAYS,
    ZERO,
    DayLedger,
    PlayerState,
    SourcePosition,
)
from loyalty_streams.domain.programme import LevelBasis, Programme

POINT_STEP = Decimal("0.01")
LATE_PLAY_DAYS = 7
"""How many brand days late play may arrive and still count for its day's cashback, if that day
has not been closed yet."""


class EventRejected(ValueError):
    """The event is valid JSON but cannot be applied under the brand's programme."""


def new_player(brand_id: str, player_id: str, programme: Programme, since: datetime) -> PlayerState:
    return PlayerState(brand_id, player_id, programme.levels[0].rank, since, None, ZERO, ZERO, {})


def _bet_points(
    event: BetPlaced, amount: Decimal, programme: Programme, level_index: int
) -> tuple[Decimal, PointsFactors]:
    """amount x currency rate x category weight x promotions x level multiplier, rounded down.

    Runs with EXACT as the current context (set by `apply`).
    """
    rule = programme.currencies[event.currency]
    level = programme.levels[level_index]
    category = event.game_category
    promotion, promotions = programme.promotion_factor(event.occurred_at, category)
    weight = programme.category_weights[category]
    exact = amount * rule.points_per_unit * weight * promotion * level.points_multiplier
    cache = programme.points_factors
    key = (event.currency, category, level_index, promotion, promotions)
    factors = cache.get(key)
    if factors is None:
        factors = cache[key] = PointsFactors(
            rule.points_per_unit, weight, promotion, promotions, level.points_multiplier, level.name
        )
    return exact.quantize(POINT_STEP), factors


def apply(
    state: PlayerState | None,
    event: PlayerEvent,
    programme: Programme,
    source: SourcePosition | None = None,
) -> tuple[PlayerState, tuple[Output, ...]]:
    """Fold one inbound event into the player's record; a repeat changes and emits nothing."""
    caller = getcontext()
    # Decimal operators below compute under EXACT, cheaper than its methods (why:
    # docs/decisions/fold-hot-path.md)
    setcontext(EXACT)
    try:
        return _apply(state, event, programme, source)
    finally:
        setcontext(caller)


def _apply(
    state: PlayerState | None,
    event: PlayerEvent,
    programme: Programme,
    source: SourcePosition | None,
) -> tuple[PlayerState, tuple[Output, ...]]:
    if event.brand_id != programme.brand_id:
        raise EventRejected(
            f"event for brand {event.brand_id!r} given programme of {programme.brand_id!r}"
        )
    rule = programme.currencies.get(event.currency)
    if rule is None and not isinstance(event, CoinPackPurchased):  # a purchase's is its price's
        raise EventRejected(
            f"currency {event.currency} is not accepted by brand {programme.brand_id!r}"
        )
    if isinstance(event, BetCancelled):
        raise TypeError("a cancellation folds with its bet: domain.cancellations.cancel")
    event_id = event.dedupe_id
    amount = event.amount
    clock = event.occurred_at
    if state is None:
        new = PlayerState(
            event.brand_id, event.player_id, programme.levels[0].rank, clock, None, ZERO, ZERO, {}
        )
        recent: tuple[str, ...] = ()
    elif state.seen(event_id, source):
        return state, ()
    else:
        new = state.clone()
        recent = new.recent_event_ids
        if len(recent) >= RECENT_EVENT_IDS:
            recent = recent[1 - RECENT_EVENT_IDS :]

    day = today = programme.day_of(clock)
    clock = new.time_at(clock)
    if clock is not event.occurred_at:
        today = programme.day_of(clock)
    new.last_activity = clock
    if new.points_active_at is None or new.points_active_at < clock:
        new.points_active_at = clock
    new.recent_event_ids = (*recent, event_id)
    if source is not None:
        new.applied_offsets[source.topic_partition] = source.offset

    turnover = ZERO if rule is None else amount * rule.turnover_per_unit
    granted: Output | None = None
    if isinstance(event, BetPlaced):
        assert rule is not None  # refused above
        base_points = amount * rule.points_per_unit
        points, factors = _bet_points(
            event, amount, programme, programme.level_index(new.level_rank)
        )
        new.cumulative_turnover = new.cumulative_turnover + turnover
        new.vip_points = new.vip_points + base_points
        qualifying = turnover if programme.level_basis is LevelBasis.TURNOVER else base_points
        _add_to_bucket(new.buckets, day, today, qualifying)
        available = new.points_available = new.points_available + points
        new.points_accrued = new.points_accrued + points
        _book(new, day, today, turnover, ZERO, ZERO)
        granted = PointsAccrued(
            f"{event_id}:points",
            event_id,
            event.bet_id,
            event.brand_id,
            event.player_id,
            event.occurred_at,
            amount,
            event.currency,
            event.game_category,
            points,
            factors,
            programme.version,
            available,
        )
    elif isinstance(event, WinCredited):
        _book(new, day, today, ZERO, turnover, ZERO)
    elif isinstance(event, BonusRedeemed):
        _book(new, day, today, ZERO, ZERO, turnover)
    elif isinstance(event, CoinPackPurchased):
        granted = store_bonus(new, event, programme)
    else:
        assert isinstance(event, DepositMade)

    changes = settle_level(new, programme, clock, today, event_id, None)
    if granted is None:
        return new, changes
    return new, (granted, *changes) if changes else (granted,)


def settle_at(
    state: PlayerState, at: datetime, programme: Programme, cause_id: str
) -> tuple[Output, ...]:
    """The level rules at `at` (UTC) without an event, in place: the 30-day window moves on, a
    retention missed starts the grace, a grace ended downgrades, a forced level ended resumes
    evaluation. A record's time never runs backwards: before its last activity or its last
    level change (a late event folded after a later one, or a day closed late), the later of
    them is used, so the 30-day window never holds days the record has let go. A change's output
    id is `<cause_id>:level`."""
    at = state.time_at(at)
    today = programme.day_of(at)
    start = today - WINDOW_DAYS
    state.buckets = {day: amount for day, amount in state.buckets.items() if day > start}
    return settle_level(state, programme, at, today, cause_id, None)


def target_index(programme: Programme, cumulative: Decimal, rolling: Callable[[], Decimal]) -> int:
    """The highest level whose threshold is reached and whose retention the 30 days meet.

    `rolling` is asked only when a retention requirement is above zero: summing the buckets is
    the costliest step of a bet, and most checks never need it.
    """
    retentions = programme.retentions
    for i in range(bisect_right(programme.thresholds, cumulative) - 1, 0, -1):
        if not retentions[i] or rolling() >= retentions[i]:
            return i
    return 0


def cumulative_basis(state: PlayerState, programme: Programme) -> Decimal:
    """The lifetime figure level thresholds are measured against."""
    if programme.level_basis is LevelBasis.TURNOVER:
        return state.cumulative_turnover
    return state.vip_points


def settle_level(
    state: PlayerState,
    programme: Programme,
    clock: datetime,
    today: int,
    cause_id: str,
    output_id: str | None,
) -> tuple[Output, ...]:
    """Move the record to its target level (upgrades at once, downgrades after the grace).

    A forced level holds until its end; then normal evaluation resumes. An upgrade grants the
    one-time reward of every level it reaches for the first time. `output_id` None means
    `<cause_id>:level`, built only when the level changes.
    """
    forced = state.forced
    if forced is not None:
        if forced.until is None or clock < forced.until:
            state.downgrade_pending_since = None
            return ()
        state.forced = None
    cumulative = (
        state.cumulative_turnover
        if programme.level_basis is LevelBasis.TURNOVER
        else state.vip_points
    )
    current = programme.level_index(state.level_rank)
    reached = bisect_right(programme.thresholds, cumulative) - 1
    if reached == 0:
        target = 0  # the lowest level has no retention to meet
    else:
        retentions = programme.retentions
        rolling: Decimal | None = None
        target = 0
        for i in range(reached, 0, -1):
            need = retentions[i]
            if not need:
                target = i
                break
            if rolling is None:
                rolling = state.rolling_sum(today)
            if rolling >= need:
                target = i
                break
    if target == current:
        state.downgrade_pending_since = None
        return ()
    if target < current:
        pending = state.downgrade_pending_since or clock
        if clock < programme.grace_ends(pending):
            state.downgrade_pending_since = pending
            return ()
    reason = "threshold_reached" if target > current else "retention_missed"
    change = move_level(state, programme, target, clock, today, cause_id, output_id, reason)
    if target < current:
        return (change,)
    return (change, *_tier_rewards(state, programme, current, target, clock, cause_id))


def move_level(
    state: PlayerState,
    programme: Programme,
    target: int,
    clock: datetime,
    today: int,
    cause_id: str,
    output_id: str | None,
    reason: str,
) -> LevelChanged:
    """Put the record on level `target` (an index) and say so, with the figures behind it."""
    current = programme.level_index(state.level_rank)
    before, after = programme.levels[current], programme.levels[target]
    changes = (*state.level_changes, (clock, state.level_rank))
    state.level_changes = changes[-LEVEL_CHANGES_KEPT:]
    state.level_rank = after.rank
    state.level_since = clock
    state.downgrade_pending_since = None
    return LevelChanged(
        output_id=f"{cause_id}:level" if output_id is None else output_id,
        cause_id=cause_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=clock,
        direction=Direction.UP if target > current else Direction.DOWN,
        from_level=before.name,
        from_rank=before.rank,
        to_level=after.name,
        to_rank=after.rank,
        reason=reason,
        basis=programme.level_basis.value,
        cumulative=cumulative_basis(state, programme),
        rolling_30d=state.rolling_sum(today),
        programme_version=programme.version,
    )


def _tier_rewards(
    state: PlayerState,
    programme: Programme,
    current: int,
    target: int,
    clock: datetime,
    cause_id: str,
) -> tuple[TierRewardGranted, ...]:
    """The reward of each level above `current` up to `target` not reached before.

    A jump over several levels reaches each of them; a level reached again after a downgrade is
    never paid twice.
    """
    granted = []
    for level in programme.levels[current + 1 : target + 1]:
        if level.rank in state.rewarded_ranks:
            continue
        state.rewarded_ranks = (*state.rewarded_ranks, level.rank)
        if level.tier_up_reward_gc > 0:
            granted.append(
                TierRewardGranted(
                    output_id=f"{cause_id}:tier-reward:{level.rank}",
                    cause_id=cause_id,
                    brand_id=state.brand_id,
                    player_id=state.player_id,
                    occurred_at=clock,
                    level=level.name,
                    rank=level.rank,
                    gc=level.tier_up_reward_gc,
                    programme_version=programme.version,
                )
            )
    return tuple(granted)


def _add_to_bucket(buckets: dict[int, Decimal], day: int, today: int, amount: Decimal) -> None:
    """Add to a day's bucket; on a new day, drop days that left the window ending `today`."""
    # called with the EXACT context current (from apply)
    start = today - WINDOW_DAYS
    if day <= start:
        return
    old = buckets.get(day)
    if old is not None:
        buckets[day] = old + amount
        return
    if buckets:
        for stale in [d for d in buckets if d <= start]:
            del buckets[stale]
    buckets[day] = amount


def _book(
    state: PlayerState,
    day: int,
    today: int,
    bets: Decimal = ZERO,
    wins: Decimal = ZERO,
    bonuses: Decimal = ZERO,
) -> None:
    """Add play to a day's ledger, for the daily cashback close (`domain.time_rules`).

    Play that arrives for a day already closed no longer counts: a day closes once. Play that
    arrives late, up to `LATE_PLAY_DAYS` brand days, for a day not closed yet (out of order
    across midnight, a game server catching up) opens that day's ledger: its close is due at
    once, at the level held at the day's end. Older play counts for points and levels only.
    """
    legacy = state.cashback_closed_day
    if (
        day <= today - LATE_PLAY_DAYS
        or day in state.closed_days
        or (legacy is not None and day <= legacy)
    ):
        return
    ledgers = state.ledgers
    old = ledgers.get(day)
    if old is None:
        ledgers[day] = DayLedger(bets, wins, bonuses)
    else:
        ledgers[day] = DayLedger(
            old.bets + bets, old.wins + wins, old.bonuses + bonuses, old.cancelled
        )
