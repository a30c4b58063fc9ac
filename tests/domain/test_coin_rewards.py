"""domain.coin_rewards: the daily login reward, the store bonus and the monthly bonus."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from loyalty_streams.domain.commands import Command
from loyalty_streams.domain.event_rules import apply
from loyalty_streams.domain.events import CoinPackPurchased
from loyalty_streams.domain.outputs import (
    AuditEntry,
    CommandRejected,
    DailyRewardGranted,
    MonthlyBonusGranted,
    Output,
    StoreBonusGranted,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import AfterSchedule, Programme
from tests.domain.builders import bet, command, programme, purchase, received

D = Decimal
SWEEPS = "lucky-sweeps"
NEW_YORK_NOON = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)  # 12:00 in New York (EST)


def sweeps() -> Programme:
    return programme(SWEEPS)


def at_level(level: str, rules: Programme | None = None) -> PlayerState:
    """A lucky-sweeps player who played their way to `level` (VIP points from SC wagers)."""
    rules = rules or sweeps()
    threshold = next(lv.threshold for lv in rules.levels if lv.name == level)
    stake = max(threshold, D(1))
    state, _ = apply(
        None,
        bet(stake, brand_id=SWEEPS, currency="SC", occurred_at=NEW_YORK_NOON - timedelta(days=3)),
        rules,
    )
    assert rules.level_at(state.level_rank).name == level
    return state


def claim(
    state: PlayerState, kind: str, at: datetime, rules: Programme | None = None, **fields: object
) -> tuple[PlayerState, tuple[Output, ...]]:
    made: Command = command(kind, brand_id=SWEEPS, issued_at=at, **fields)
    return received(state, made, rules or sweeps())


# -- the daily login reward ----------------------------------------------------------------------


def test_a_daily_reward_is_the_base_of_the_streak_day_times_the_levels_multiplier() -> None:
    state, (granted,) = claim(at_level("Silver"), "ClaimDailyReward", NEW_YORK_NOON)
    assert isinstance(granted, DailyRewardGranted)
    assert (granted.streak, granted.level, granted.multiplier) == (1, "Silver", D("1.1"))
    assert (granted.base_gc, granted.base_sc) == (D(5000), D("0.2"))
    assert (granted.gc, granted.sc) == (D("5500.00"), D("0.22"))
    assert granted.day.isoformat() == "2026-11-02" and granted.occurred_at == NEW_YORK_NOON
    assert state.daily_streak == 1 and state.points_active_at == NEW_YORK_NOON


def test_a_second_claim_the_same_brand_day_is_refused_with_when_the_next_one_opens() -> None:
    state, _ = claim(at_level("Bronze"), "ClaimDailyReward", NEW_YORK_NOON)
    # 23:59 in New York is the next UTC day, still the same brand day
    late = datetime(2026, 11, 3, 4, 59, tzinfo=UTC)
    again, (refused,) = claim(state, "ClaimDailyReward", late)
    assert isinstance(refused, CommandRejected) and refused.code == "already_claimed"
    assert "2026-11-03T05:00:00+00:00" in refused.reason  # midnight in New York
    assert (again.daily_reward_day, again.daily_streak) == (state.daily_reward_day, 1)


def test_the_streak_grows_day_after_day_restarts_its_schedule_and_resets_after_a_gap() -> None:
    state = at_level("Bronze")
    paid = []
    for day in range(9):
        state, (granted,) = claim(state, "ClaimDailyReward", NEW_YORK_NOON + timedelta(days=day))
        assert isinstance(granted, DailyRewardGranted)
        paid.append((granted.streak, granted.gc))
    schedule = [D(g) for g in ("5000", "6000", "7000", "8000", "9000", "10000", "15000")]
    assert [s for s, _ in paid] == list(range(1, 10))
    assert [gc for _, gc in paid] == schedule + schedule[:2]  # after_schedule: restart
    state, (granted,) = claim(state, "ClaimDailyReward", NEW_YORK_NOON + timedelta(days=11))
    assert isinstance(granted, DailyRewardGranted) and granted.streak == 1 and granted.gc == 5000


def test_after_its_schedule_a_streak_may_repeat_the_last_days_reward() -> None:
    rules = sweeps()
    daily = rules.rewards.daily_login
    assert daily is not None
    repeat = daily.model_copy(update={"after_schedule": AfterSchedule.REPEAT_LAST})
    assert [repeat.base(n).gc for n in (1, 7, 8, 30)] == [D(5000), D(15000), D(15000), D(15000)]
    assert [daily.base(n).gc for n in (1, 7, 8, 15)] == [D(5000), D(15000), D(5000), D(5000)]


def test_a_brand_without_a_daily_reward_refuses_the_claim() -> None:
    rules = sweeps().model_copy(update={"rewards": {"daily_login": None}})
    _, (refused,) = claim(at_level("Bronze", rules), "ClaimDailyReward", NEW_YORK_NOON, rules)
    assert isinstance(refused, CommandRejected) and refused.code == "no_daily_reward"


def test_an_operators_claim_is_audited() -> None:
    _, outputs = claim(at_level("Gold"), "ClaimDailyReward", NEW_YORK_NOON, actor="host-kim")
    granted, audit = outputs
    assert isinstance(granted, DailyRewardGranted) and granted.gc == D("6000.00")  # x1.2
    assert isinstance(audit, AuditEntry) and audit.action == "daily_reward.claim"


# -- the monthly bonus ---------------------------------------------------------------------------


def test_the_monthly_bonus_is_paid_once_per_calendar_month_of_the_brands_zone() -> None:
    state, (granted,) = claim(at_level("Platinum"), "ClaimMonthlyBonus", NEW_YORK_NOON)
    assert isinstance(granted, MonthlyBonusGranted)
    assert (granted.month, granted.level, granted.gc, granted.sc) == (
        "2026-11",
        "Platinum",
        D(100000),
        D(10),
    )
    # 30 November 23:30 in New York is December in UTC: still November's bonus
    month_end = datetime(2026, 12, 1, 4, 30, tzinfo=UTC)
    state, (refused,) = claim(state, "ClaimMonthlyBonus", month_end)
    assert isinstance(refused, CommandRejected) and refused.code == "already_claimed"
    december = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # midnight in New York
    _, (granted,) = claim(state, "ClaimMonthlyBonus", december)
    assert isinstance(granted, MonthlyBonusGranted) and granted.month == "2026-12"


@pytest.mark.parametrize("level", ["Bronze", "Silver", "Gold"])
def test_levels_without_the_perk_are_not_eligible(level: str) -> None:
    state, (refused,) = claim(at_level(level), "ClaimMonthlyBonus", NEW_YORK_NOON)
    assert isinstance(refused, CommandRejected) and refused.code == "not_eligible"
    assert state.monthly_bonus_month is None


def test_a_brand_without_a_monthly_bonus_refuses_the_claim() -> None:
    rules = sweeps().model_copy(update={"rewards": {"monthly_bonus": None}})
    _, (refused,) = claim(at_level("Diamond", rules), "ClaimMonthlyBonus", NEW_YORK_NOON, rules)
    assert isinstance(refused, CommandRejected) and refused.code == "no_monthly_bonus"


# -- the store bonus -----------------------------------------------------------------------------


def test_a_purchase_pays_the_levels_bonus_coins_rounded_down_to_the_cent() -> None:
    state, outputs = apply(
        at_level("Silver"), purchase("10000", "9.99", occurred_at=NEW_YORK_NOON), sweeps()
    )
    (bonus,) = outputs
    assert isinstance(bonus, StoreBonusGranted)
    assert (bonus.level, bonus.multiplier) == ("Silver", D("1.05"))
    assert (bonus.bonus_gc, bonus.bonus_sc) == (D("500.00"), D("0.49"))  # 0.4995 rounds down
    assert (bonus.price, bonus.currency) == (D("9.99"), "USD")
    # the player's purchase: another player's purchase of the same id is another output
    assert bonus.output_id == f"store-bonus:lucky-sweeps:p1:{bonus.purchase_id}"
    assert state.points_available == at_level("Silver").points_available  # coins, not points


def test_a_purchase_at_a_multiplier_of_one_pays_nothing() -> None:
    _, outputs = apply(at_level("Bronze"), purchase("10000", "10"), sweeps())
    assert outputs == ()


def test_the_same_purchase_published_again_pays_once() -> None:
    state, (first,) = apply(at_level("Gold"), purchase("20000", "5", purchase_id="pur-1"), sweeps())
    again, outputs = apply(state, purchase("20000", "5", purchase_id="pur-1"), sweeps())
    assert isinstance(first, StoreBonusGranted) and first.bonus_gc == D("2000.00")
    assert outputs == () and again is state


def test_two_players_purchases_with_one_purchase_id_are_two_purchases() -> None:
    first = purchase("20000", "5", purchase_id="pur-1")
    second = purchase("20000", "5", purchase_id="pur-1", player_id="p2")
    assert first.dedupe_id != second.dedupe_id
    gold = at_level("Gold")
    other = PlayerState.from_json(gold.to_json().replace(b'"p1"', b'"p2"'))
    (one,) = apply(gold, first, sweeps())[1]
    (two,) = apply(other, second, sweeps())[1]
    assert isinstance(one, StoreBonusGranted) and isinstance(two, StoreBonusGranted)
    assert one.output_id != two.output_id


def test_a_purchase_arriving_late_is_paid_at_the_level_held_when_it_was_made() -> None:
    state = at_level("Bronze")
    level_up = NEW_YORK_NOON
    state, _ = apply(
        state, bet("6000", brand_id=SWEEPS, currency="SC", occurred_at=level_up), sweeps()
    )
    assert sweeps().level_at(state.level_rank).name == "Gold"
    before = level_up - timedelta(hours=1)
    _, outputs = apply(state, purchase("10000", "0", occurred_at=before), sweeps())
    assert outputs == ()  # Bronze then: no bonus
    after = level_up + timedelta(minutes=1)
    _, (bonus,) = apply(state, purchase("10000", "0", occurred_at=after), sweeps())
    assert isinstance(bonus, StoreBonusGranted) and bonus.level == "Gold"


coins = st.decimals(min_value=D("0"), max_value=D("10000000"), places=2)


@settings(max_examples=200, deadline=None)
@given(gc=coins, sc=coins, level=st.sampled_from(["Silver", "Gold", "Platinum", "Diamond"]))
def test_a_store_bonus_is_the_coins_times_the_multiplier_less_one_never_above_it(
    gc: Decimal, sc: Decimal, level: str
) -> None:
    if not gc and not sc:
        return
    multiplier = next(lv.store_multiplier for lv in sweeps().levels if lv.name == level)
    _, outputs = apply(at_level(level), purchase(str(gc), str(sc)), sweeps())
    for coins_, bonus in ((gc, _bonus(outputs, "gc")), (sc, _bonus(outputs, "sc"))):
        exact = coins_ * (multiplier - 1)
        assert bonus == exact.quantize(D("0.01"), rounding=ROUND_DOWN)
        assert exact - D("0.01") < bonus <= exact


def _bonus(outputs: tuple[Output, ...], coin: str) -> Decimal:
    granted = [o for o in outputs if isinstance(o, StoreBonusGranted)]
    if not granted:
        return D(0)
    value: Decimal = getattr(granted[0], f"bonus_{coin}")
    return value


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"currency": "SC"}, "paid for in money, not in SC"),
        ({"gc": "0", "sc": "0"}, "a package holds coins"),
        ({"sc": "0.005"}, "sc: 0.005 has more than 2 decimal places"),
    ],
)
def test_a_purchase_the_store_could_not_have_made_is_refused(
    fields: dict[str, str], error: str
) -> None:
    data = purchase("10000", "1").model_dump(mode="json") | fields
    with pytest.raises(ValidationError, match=error):
        CoinPackPurchased.model_validate(data)
