"""What a player's record means under their programme: the answer of a table lookup.

The lookup view and, later, the API show this; the arithmetic (30-day sum at `now`, what is still
needed for the next level) belongs to the rules, so it lives here and not at the edge.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from loyalty_streams.domain.event_rules import cumulative_basis
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


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
