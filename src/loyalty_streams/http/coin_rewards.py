"""The sweepstakes coin rewards a player claims, like the birthday gift: the daily login reward
(`POST /loyalty/daily-reward/claim`, a `ClaimDailyReward` command: once per brand day, the
streak's base x the level's daily bonus multiplier) and the monthly bonus
(`POST /loyalty/monthly-bonus/claim`, a `ClaimMonthlyBonus` command: once per calendar month, to
a level with the perk). The rules are `domain.coin_rewards`'."""

from loyalty_streams.domain.commands import ClaimDailyReward, ClaimMonthlyBonus
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.commands import ClaimView


class DailyRewardView(ClaimView):
    claim = ClaimDailyReward


class MonthlyBonusView(ClaimView):
    claim = ClaimMonthlyBonus


ROUTES: dict[str, type[ApiView]] = {
    "/loyalty/daily-reward/claim": DailyRewardView,
    "/loyalty/monthly-bonus/claim": MonthlyBonusView,
}
