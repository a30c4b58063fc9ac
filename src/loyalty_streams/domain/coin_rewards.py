"""The sweepstakes brand's coin rewards beyond the level table's own (VIP-table spec): the daily
login reward, the store bonus on coin packages, the monthly bonus.

Each pays gold coins (GC) and sweeps coins (SC) through the wallet, like the birthday gift: the
engine decides and records what is due (`loyalty.rewards`, the player's history), and never
touches the points balance.

- **Daily login reward** (`ClaimDailyReward`): the programme's base reward for the day of the
  player's streak (`Rewards.daily_login`) x the level's `daily_bonus_multiplier`, once per brand
  day. The streak counts consecutive brand days claimed: a claim the day after the last one
  goes on with it, a day missed starts it again at 1.
- **Store bonus** (`CoinPackPurchased`): the package's coins x (the level's `store_multiplier`
  - 1), at the level held at the purchase, once per purchase id (the purchase id is the event's
  `dedupe_id`: remembered as long as event ids are); nothing when the multiplier is 1.
- **Monthly bonus** (`ClaimMonthlyBonus`): the programme's amount (`Rewards.monthly_bonus`) to a
  level with the `monthly_bonus` perk, once per calendar month of the brand's zone.

Rounding: base x multiplier is rounded *down* to 0.01 (`multipliers.boosted`), so a player is
never paid a fraction the rule did not earn; a store bonus is the boosted coins less the coins.
"""

from datetime import date, datetime

from loyalty_streams.domain.commands import ClaimDailyReward, ClaimMonthlyBonus
from loyalty_streams.domain.events import CoinPackPurchased
from loyalty_streams.domain.multipliers import Boost, boosted
from loyalty_streams.domain.outputs import (
    DailyRewardGranted,
    MonthlyBonusGranted,
    StoreBonusGranted,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.refusal import Refused


def daily_reward(
    state: PlayerState, command: ClaimDailyReward, programme: Programme, at: datetime
) -> DailyRewardGranted:
    """Pay the daily login reward claimed at `at` (UTC), in place; `Refused` when the brand pays
    none (`no_daily_reward`) or the brand day's was claimed (`already_claimed`)."""
    daily = programme.rewards.daily_login
    if daily is None:
        raise Refused("no_daily_reward", f"brand {programme.brand_id!r} pays no daily reward")
    today = programme.day_of(at)
    last = state.daily_reward_day
    if last is not None and last >= today:
        raise Refused(
            "already_claimed",
            f"the daily reward of {date.fromordinal(last).isoformat()} was already claimed; "
            f"the next one can be claimed from {programme.day_start(last + 1).isoformat()}",
        )
    streak = state.daily_streak + 1 if last == today - 1 else 1
    base = daily.base(streak)
    rank = state.level_rank
    level = programme.level_at(rank)
    state.daily_reward_day = today
    state.daily_streak = streak
    state.touch(at)
    return DailyRewardGranted(
        output_id=f"{command.command_id}:daily-reward",
        command_id=command.command_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        day=date.fromordinal(today),
        streak=streak,
        level=level.name,
        multiplier=level.daily_bonus_multiplier,
        base_gc=base.gc,
        base_sc=base.sc,
        gc=boosted(programme, rank, Boost.DAILY_BONUS, base.gc),
        sc=boosted(programme, rank, Boost.DAILY_BONUS, base.sc),
        programme_version=programme.version,
    )


def monthly_bonus(
    state: PlayerState, command: ClaimMonthlyBonus, programme: Programme, at: datetime
) -> MonthlyBonusGranted:
    """Pay the monthly bonus claimed at `at` (UTC), in place; `Refused` when the brand pays none
    (`no_monthly_bonus`), the level has not the perk (`not_eligible`) or the month's was claimed
    (`already_claimed`)."""
    amount = programme.rewards.monthly_bonus
    if amount is None:
        raise Refused("no_monthly_bonus", f"brand {programme.brand_id!r} pays no monthly bonus")
    level = programme.level_at(state.level_rank)
    if not level.perks.monthly_bonus:
        raise Refused("not_eligible", f"level {level.name} has no monthly bonus")
    month = at.astimezone(programme.zone).strftime("%Y-%m")
    if state.monthly_bonus_month is not None and state.monthly_bonus_month >= month:
        raise Refused(
            "already_claimed", f"the monthly bonus of {state.monthly_bonus_month} was claimed"
        )
    state.monthly_bonus_month = month
    state.touch(at)
    return MonthlyBonusGranted(
        output_id=f"{command.command_id}:monthly-bonus",
        command_id=command.command_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        month=month,
        level=level.name,
        gc=amount.gc,
        sc=amount.sc,
        programme_version=programme.version,
    )


def store_bonus(
    state: PlayerState, event: CoinPackPurchased, programme: Programme
) -> StoreBonusGranted | None:
    """The bonus coins of a purchase, at the level `state` held at its time; None when the
    level's `store_multiplier` adds nothing. Changes nothing."""
    rank = state.level_held_at(event.occurred_at)
    gc = boosted(programme, rank, Boost.STORE, event.gc) - event.gc
    sc = boosted(programme, rank, Boost.STORE, event.sc) - event.sc
    if gc <= 0 and sc <= 0:
        return None
    level = programme.level_at(rank)
    return StoreBonusGranted(
        output_id=f"store-bonus:{state.key}:{event.purchase_id}",
        event_id=event.event_id,
        purchase_id=event.purchase_id,
        package_id=event.package_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=event.occurred_at,
        level=level.name,
        multiplier=level.store_multiplier,
        gc=event.gc,
        sc=event.sc,
        bonus_gc=gc,
        bonus_sc=sc,
        price=event.amount,
        currency=event.currency,
        programme_version=programme.version,
    )
