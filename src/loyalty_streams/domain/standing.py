"""What a player's record means under their programme: the answer of a table lookup.

The lookup view and, later, the API show this; the arithmetic (30-day sum at `now`, what is still
needed for the next level) belongs to the rules, so it lives here and not at the edge.
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from loyalty_streams.domain.event_rules import cumulative_basis
from loyalty_streams.domain.multipliers import Boost, boosted
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import LevelBasis, Programme
from loyalty_streams.domain.time_rules import expiry_of

ZERO = Decimal(0)


def standing(state: PlayerState, programme: Programme, now: datetime) -> dict[str, Any]:
    """The player's level, balances, turnover, progress and perks, as JSON-ready values."""
    index = programme.level_index(state.level_rank)
    level = programme.levels[index]
    rolling = state.rolling_sum(programme.day_of(now))
    reached = cumulative_basis(state, programme)
    by_turnover = programme.level_basis is LevelBasis.TURNOVER
    following = programme.levels[index + 1] if index + 1 < len(programme.levels) else None
    forced = state.forced
    expires_at = expiry_of(state, programme)
    return {
        "brand_id": state.brand_id,
        "player_id": state.player_id,
        "programme_version": programme.version,
        "level": {
            "name": level.name,
            "rank": level.rank,
            "since": state.level_since.isoformat(),
            "downgrade_pending_since": _iso(state.downgrade_pending_since),
            "description": level.description,
            "image_url": level.image_url,
            "icon_url": level.icon_url,
        },
        "points": {
            "available": str(state.points_available),
            "held": str(state.points_held),
            "accrued": str(state.points_accrued),
            "redeemed": str(state.points_redeemed),
            "expired": str(state.points_expired),
            "credited": str(state.points_credited),
            "debited": str(state.points_debited),
            "reversed": str(state.points_reversed),
            "unrecovered": str(state.points_unrecovered),
            "owed": str(state.points_owed),
            "expires_at": _iso(expires_at),
        },
        "holds": [
            {
                "redemption_id": redemption_id,
                "points": str(hold.points),
                "value": str(hold.value),
                "currency": hold.currency,
                "held_at": hold.held_at.isoformat(),
                "expires_at": hold.expires_at.isoformat(),
            }
            for redemption_id, hold in state.holds.items()
        ],
        "forced_level": None
        if forced is None
        else {
            "level": programme.level_at(forced.rank).name,
            "reason": forced.reason,
            "actor": forced.actor,
            "since": forced.since.isoformat(),
            "until": _iso(forced.until),
        },
        "rewards": {
            "tier_rewards_granted_for": [
                lv.name for lv in programme.levels if lv.rank in state.rewarded_ranks
            ],
            "birthday_gift": {
                "gc": str(level.birthday_gift_gc),
                "sc": str(level.birthday_gift_sc),
                "last_claimed_year": state.birthday_year,
            },
            "daily_reward": _daily_reward(state, programme, now),
            "monthly_bonus": _monthly_bonus(state, programme),
        },
        "turnover": {
            "currency": programme.turnover_currency.value,
            "cumulative": str(state.cumulative_turnover),
            # the 30 daily buckets hold the level basis: turnover only when that is the basis
            "rolling_30d": str(rolling) if by_turnover else None,
        },
        "vip_points": str(state.vip_points),
        "progress": {
            "basis": programme.level_basis.value,
            "reached": str(reached),
            "rolling_30d": str(rolling),
            "retention_30d": str(programme.retentions[index]),
            "next_level": None
            if following is None
            else {
                "name": following.name,
                "rank": following.rank,
                "threshold": str(following.threshold),
                "still_needed": str(max(following.threshold - reached, ZERO)),
            },
        },
        "perks": level.perks.model_dump(),
        "multipliers": {
            "points": str(level.points_multiplier),
            "daily_bonus": str(level.daily_bonus_multiplier),
            "store": str(level.store_multiplier),
        },
        "cashback": {
            "percent": str(level.cashback_percent),
            "daily_cap": None
            if level.cashback_daily_cap is None
            else str(level.cashback_daily_cap),
        },
        "last_activity": _iso(state.last_activity),
    }


def _daily_reward(state: PlayerState, programme: Programme, now: datetime) -> dict[str, Any] | None:
    """The player's daily login reward at `now` (UTC), as `coin_rewards.daily_reward` would pay
    it; None when the brand pays none.

    `streak`: the consecutive brand days claimed, while it still goes on (the last claim today
    or yesterday), else 0. `next_claim_from`: when the next claim is allowed, the start of the
    brand day after the last one claimed (of today when that is later: a time not after `now`
    means it can be claimed now). `next_base` and `next_reward`: what that claim pays, the
    streak day's base and that base x the level's daily bonus multiplier (rounded down).
    """
    daily = programme.rewards.daily_login
    if daily is None:
        return None
    today = programme.day_of(now)
    last = state.daily_reward_day
    # a claim the day after the last one goes on with the streak; a day missed starts it again
    going_on = last is not None and last >= today - 1
    next_day = today if last is None else max(last + 1, today)
    base = daily.base(state.daily_streak + 1 if going_on else 1)
    rank = state.level_rank
    return {
        "streak": state.daily_streak if going_on else 0,
        "last_claimed_day": None if last is None else date.fromordinal(last).isoformat(),
        "next_claim_from": programme.day_start(next_day).isoformat(),
        "next_base": {"gc": str(base.gc), "sc": str(base.sc)},
        "next_reward": {
            "gc": str(boosted(programme, rank, Boost.DAILY_BONUS, base.gc)),
            "sc": str(boosted(programme, rank, Boost.DAILY_BONUS, base.sc)),
        },
    }


def _monthly_bonus(state: PlayerState, programme: Programme) -> dict[str, Any] | None:
    """The brand's monthly bonus for the player: whether their level has the perk (`eligible`),
    the month (`YYYY-MM`, brand zone) last claimed, and the coins; None when the brand pays
    none."""
    amount = programme.rewards.monthly_bonus
    if amount is None:
        return None
    return {
        "eligible": programme.level_at(state.level_rank).perks.monthly_bonus,
        "last_claimed_month": state.monthly_bonus_month,
        "gc": str(amount.gc),
        "sc": str(amount.sc),
    }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
