"""The level's multipliers on amounts granted elsewhere (VIP-table spec): daily login rewards,
coin packs.

final = base x the level's multiplier, rounded *down* to 0.01: the platform asks with its base
amount and the player's level, and never grants more than the rule earns.
"""

from decimal import ROUND_DOWN, Decimal, localcontext
from enum import StrEnum

from loyalty_streams.domain.money import CENT, EXACT
from loyalty_streams.domain.programme import Programme


class Boost(StrEnum):
    DAILY_BONUS = "daily_bonus"  # on the base daily login reward
    STORE = "store"  # on the coins of a purchased package


def boosted(programme: Programme, rank: int, boost: Boost, base: Decimal) -> Decimal:
    """`base` multiplied by the level of `rank`'s multiplier for `boost`."""
    if base < 0:
        raise ValueError(f"base amount {base} is negative")
    level = programme.level_at(rank)
    factor = level.daily_bonus_multiplier if boost is Boost.DAILY_BONUS else level.store_multiplier
    with localcontext(EXACT):
        return (base * factor).quantize(CENT, rounding=ROUND_DOWN)
