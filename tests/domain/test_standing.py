"""What a lookup shows: level, balances, 30-day turnover and what the next level still needs."""

from datetime import timedelta

from loyalty_streams.domain.event_rules import apply
from loyalty_streams.domain.standing import standing
from tests.domain.builders import T0, bet, command, programme, received

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
