"""What a lookup shows: level, balances, 30-day turnover and what the next level still needs."""

from datetime import UTC, datetime, timedelta
from typing import cast

from loyalty_streams.domain.cancellations import cancel, placed
from loyalty_streams.domain.event_rules import apply
from loyalty_streams.domain.events import BetPlaced
from loyalty_streams.domain.outputs import (
    DailyRewardGranted,
    MonthlyBonusGranted,
    Output,
    PointsAccrued,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.standing import standing
from tests.domain.builders import T0, bet, cancellation, command, programme, received

AURORA = programme()


def test_progress_names_the_next_level_and_the_amount_still_needed() -> None:
    state, _ = apply(None, bet("12000"), AURORA)
    view = standing(state, AURORA, T0)
    assert view["level"]["name"] == "Silver"
    assert view["progress"]["next_level"] == {
        "name": "Gold",
        "rank": 3,
        "threshold": "50000",
        "still_needed": "38000",
    }
    assert view["turnover"] == {"currency": "EUR", "cumulative": "12000", "rolling_30d": "12000"}
    assert view["progress"]["rolling_30d"] == "12000"
    assert view["multipliers"]["points"] == "1.1"
    assert view["points"]["available"] == "12000.00"


def test_the_rolling_turnover_is_read_at_the_moment_asked_and_the_top_has_no_next() -> None:
    state, _ = apply(None, bet("250000"), AURORA)
    later = standing(state, AURORA, T0 + timedelta(days=31))
    assert later["turnover"]["rolling_30d"] == "0"
    assert later["progress"]["next_level"] is None
    assert later["perks"]["personal_manager"] is True


def test_a_points_based_brand_shows_its_30_days_in_points_not_as_turnover() -> None:
    sweeps = programme("lucky-sweeps")
    state, _ = apply(
        None, bet("1200", "live_casino", brand_id="lucky-sweeps", currency="SC"), sweeps
    )
    view = standing(state, sweeps, T0)
    assert view["turnover"] == {"currency": "SC", "cumulative": "1200", "rolling_30d": None}
    assert view["progress"]["basis"] == "vip_points"
    assert view["progress"]["rolling_30d"] == view["vip_points"] == "1200"  # base points


def test_holds_a_forced_level_rewards_and_the_expiry_date_are_shown() -> None:
    sweeps = programme("lucky-sweeps")
    state, _ = apply(None, bet("1500", brand_id="lucky-sweeps", currency="SC"), sweeps)
    until = T0 + timedelta(days=7)
    for kind, fields in (
        ("RedeemPoints", {"points": "1000", "command_id": "r1"}),
        ("ForceLevel", {"level": "Gold", "reason": "status match", "actor": "ops", "until": until}),
    ):
        state, _ = received(state, command(kind, brand_id="lucky-sweeps", **fields), sweeps)
    view = standing(state, sweeps, T0)
    assert (view["points"]["available"], view["points"]["held"]) == ("500.00", "1000")
    assert view["points"]["expires_at"] == (T0 + timedelta(days=365)).isoformat()
    (hold,) = view["holds"]
    assert (hold["redemption_id"], hold["value"], hold["currency"]) == ("r1", "10.00", "SC")
    assert view["level"]["name"] == view["forced_level"]["level"] == "Gold"
    assert view["forced_level"]["until"] == until.isoformat()
    assert view["rewards"]["tier_rewards_granted_for"] == ["Silver"]  # by play, not by force
    assert view["rewards"]["birthday_gift"] == {"gc": "50", "sc": "20", "last_claimed_year": None}


# -- cancelled bets and the coin rewards ---------------------------------------------------------

SWEEPS = "lucky-sweeps"
NEW_YORK_NOON = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)  # 12:00 in New York (EST)


def sweeps_player(stake: str, at: datetime = NEW_YORK_NOON) -> tuple[PlayerState, BetPlaced]:
    """A lucky-sweeps player after one SC wager of `stake` (its VIP points set the level)."""
    placed_bet = bet(stake, brand_id=SWEEPS, currency="SC", occurred_at=at - timedelta(days=3))
    state, _ = apply(None, placed_bet, programme(SWEEPS))
    return state, placed_bet


def claimed(state: PlayerState, kind: str, at: datetime) -> tuple[PlayerState, Output]:
    made = command(kind, brand_id=SWEEPS, issued_at=at)
    new, (output, *_) = received(state, made, programme(SWEEPS))
    return new, output


def test_points_taken_back_by_a_cancellation_and_those_no_longer_there_are_shown() -> None:
    sweeps = programme(SWEEPS)
    placed_bet = bet("1500", brand_id=SWEEPS, currency="SC", occurred_at=NEW_YORK_NOON)
    state, (accrued, *_) = apply(None, placed_bet, sweeps)
    record = placed(placed_bet, cast(PointsAccrued, accrued), state, sweeps)
    state, _ = received(state, command("RedeemPoints", brand_id=SWEEPS, points="1000",
                                       issued_at=NEW_YORK_NOON), sweeps)  # fmt: skip
    voided = cancellation(placed_bet.bet_id, "1500", brand_id=SWEEPS, currency="SC",
                          occurred_at=NEW_YORK_NOON)  # fmt: skip
    state, _, _ = cancel(state, voided, record, sweeps)
    points = standing(state, sweeps, NEW_YORK_NOON)["points"]
    # 1,500 earned: the 500 still available taken back, the 1,000 held for a redemption owed
    owed = (points["reversed"], points["owed"], points["unrecovered"])
    assert owed == ("500.00", "1000.00", "0.00")
    assert (points["available"], points["held"]) == ("0.00", "1000")
    fresh = standing(sweeps_player("10")[0], sweeps, NEW_YORK_NOON)["points"]
    assert (fresh["reversed"], fresh["owed"], fresh["unrecovered"]) == ("0", "0", "0")


def test_the_daily_reward_before_and_after_a_claim() -> None:
    sweeps = programme(SWEEPS)
    state, _ = sweeps_player("1200")  # Silver: daily bonus x 1.1
    before = standing(state, sweeps, NEW_YORK_NOON)["rewards"]["daily_reward"]
    assert before == {
        "streak": 0,
        "last_claimed_day": None,
        "next_claim_from": "2026-11-02T05:00:00+00:00",  # midnight in New York: claimable now
        "next_base": {"gc": "5000", "sc": "0.2"},
        "next_reward": {"gc": "5500.00", "sc": "0.22"},
    }
    state, granted = claimed(state, "ClaimDailyReward", NEW_YORK_NOON)
    assert isinstance(granted, DailyRewardGranted)
    assert before["next_reward"] == {"gc": str(granted.gc), "sc": str(granted.sc)}
    after = standing(state, sweeps, NEW_YORK_NOON + timedelta(hours=1))["rewards"]
    assert after["daily_reward"] == {
        "streak": 1,
        "last_claimed_day": "2026-11-02",
        "next_claim_from": "2026-11-03T05:00:00+00:00",
        "next_base": {"gc": "6000", "sc": "0.2"},  # day 2 of the streak
        "next_reward": {"gc": "6600.00", "sc": "0.22"},
    }


def test_the_daily_reward_shown_is_what_the_next_claim_pays_through_a_streak_and_a_gap() -> None:
    sweeps = programme(SWEEPS)
    state, _ = sweeps_player("100")  # Bronze
    for day in (0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 14):  # a day missed twice
        now = NEW_YORK_NOON + timedelta(days=day)
        shown = standing(state, sweeps, now)["rewards"]["daily_reward"]
        assert datetime.fromisoformat(shown["next_claim_from"]) <= now
        state, granted = claimed(state, "ClaimDailyReward", now)
        assert isinstance(granted, DailyRewardGranted), granted
        assert shown["next_reward"] == {"gc": str(granted.gc), "sc": str(granted.sc)}
        assert shown["next_base"] == {"gc": str(granted.base_gc), "sc": str(granted.base_sc)}
        assert granted.streak == shown["streak"] + 1
        later = standing(state, sweeps, now)["rewards"]["daily_reward"]
        assert later["streak"] == granted.streak
        assert datetime.fromisoformat(later["next_claim_from"]) > now
    # two days after the last claim the streak is over: the next one starts again at day 1
    gone = standing(state, sweeps, NEW_YORK_NOON + timedelta(days=16))["rewards"]["daily_reward"]
    assert (gone["streak"], gone["last_claimed_day"]) == (0, "2026-11-16")
    assert gone["next_base"] == {"gc": "5000", "sc": "0.2"}


def test_the_monthly_bonus_shows_whether_the_level_has_the_perk_and_the_month_claimed() -> None:
    sweeps = programme(SWEEPS)
    bronze, _ = sweeps_player("100")
    assert standing(bronze, sweeps, NEW_YORK_NOON)["rewards"]["monthly_bonus"] == {
        "eligible": False,
        "last_claimed_month": None,
        "gc": "100000",
        "sc": "10",
    }
    platinum, _ = sweeps_player("30000")
    platinum, granted = claimed(platinum, "ClaimMonthlyBonus", NEW_YORK_NOON)
    assert isinstance(granted, MonthlyBonusGranted)
    bonus = standing(platinum, sweeps, NEW_YORK_NOON)["rewards"]["monthly_bonus"]
    assert (bonus["eligible"], bonus["last_claimed_month"]) == (True, "2026-11")
    assert (bonus["gc"], bonus["sc"]) == (str(granted.gc), str(granted.sc))


def test_a_brand_without_coin_rewards_shows_none() -> None:
    state, _ = apply(None, bet("100"), AURORA)
    rewards = standing(state, AURORA, T0)["rewards"]
    assert (rewards["daily_reward"], rewards["monthly_bonus"]) == (None, None)
