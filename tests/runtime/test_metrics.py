"""The worker's metrics without a broker: the census, closed days' play, lag series."""

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import Counter

from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import CashbackAwarded, LevelChanged
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme, shipped_programmes
from loyalty_streams.domain.time_rules import advance, on_event
from loyalty_streams.runtime.fold import fire
from loyalty_streams.runtime.metrics import Census, Metrics
from loyalty_streams.state.keyspace import CASHBACK_PREFIX
from loyalty_streams.state.store import PLAYER_FORMAT, UnknownFormat, encode_player
from tests.domain.builders import T0, bet, bonus, cancellation, programme, win

AURORA = "aurora-casino"


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def series(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of `name`, by its sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def shipped(brand_id: str, at: datetime) -> Programme | None:
    """The shipped programme of a brand, None for any other (as the catalogue answers)."""
    return {p.brand_id: p for p in shipped_programmes()}.get(brand_id)


def no_grace() -> Programme:
    """Aurora without a downgrade grace period: a decayed level drops when the figure falls."""
    policies = programme().policies.model_copy(update={"downgrade_grace_days": 0})
    return programme().model_copy(update={"policies": policies})


def player(*events: PlayerEvent, brand_programme: Programme | None = None) -> PlayerState:
    state = None
    for event in events:
        state = on_event(state, event, brand_programme or programme()).state
    assert state is not None
    return state


# -- closed days: bets, wins, bonus releases by the level the day was paid at ------------------


def test_closed_days_count_bets_wins_and_bonuses_by_the_level_the_day_was_paid_at() -> None:
    rules = no_grace()
    # Gold from the first bet (2 %, at most 500 a day); idle 40 days, so the timers close the
    # day and then drop the player to Silver: the day still counts at Gold, as it was paid
    gold = player(bet("60000"), win("1000"), bonus("500"), brand_programme=rules)
    outcome = fire(gold, lambda brand, at: rules, T0 + timedelta(days=40))
    (award,) = [o for o in outcome.outputs if isinstance(o, CashbackAwarded)]
    (change,) = [o for o in outcome.outputs if isinstance(o, LevelChanged)]
    assert (award.level, change.to_level) == ("Gold", "Silver")

    metrics = Metrics()
    metrics.count_closed_days(row for key, row in outcome.writes if key.startswith(CASHBACK_PREFIX))
    gold_eur = {"brand": AURORA, "level": "Gold", "currency": "EUR"}
    assert value(metrics, "loyalty_closed_day_bets_total", **gold_eur) == 60000
    assert value(metrics, "loyalty_closed_day_wins_total", **gold_eur) == 1000
    assert value(metrics, "loyalty_closed_day_bonus_releases_total", **gold_eur) == 500
    assert value(metrics, "loyalty_closed_player_days_total", brand=AURORA, level="Gold") == 1
    assert series(metrics, "loyalty_closed_day_bets_total") == {
        (("brand", AURORA), ("currency", "EUR"), ("level", "Gold")): 60000
    }


def test_a_losing_day_for_the_house_counts_and_all_three_series_appear_together() -> None:
    # wins above bets: NGR is negative, which a counter of NGR could not take
    lucky = player(bet("100"), win("400"))
    outcome = fire(lucky, shipped, T0 + timedelta(days=1))
    metrics = Metrics()
    metrics.count_closed_days(row for key, row in outcome.writes if key.startswith(CASHBACK_PREFIX))
    bronze = {"brand": AURORA, "level": "Bronze", "currency": "EUR"}
    assert value(metrics, "loyalty_closed_day_bets_total", **bronze) == 100
    assert value(metrics, "loyalty_closed_day_wins_total", **bronze) == 400
    assert value(metrics, "loyalty_closed_day_bonus_releases_total", **bronze) == 0
    assert value(metrics, "loyalty_closed_day_cancelled_total", **bronze) == 0


def test_a_day_that_took_off_a_cancelled_stake_counts_it_apart_never_negative() -> None:
    """A bet cancelled after its day closed comes off the next open day: a day with no bets of
    its own then closes with the stake cancelled, which its own counter takes (a counter
    refuses a negative increment, and the fold loop would stop)."""
    rules = programme()
    placed = on_event(None, bet("50", bet_id="b1"), rules)
    closed = advance(placed.state, rules.day_start(rules.day_of(T0) + 1), rules)
    later = T0 + timedelta(days=1, hours=1)
    voided = on_event(
        closed.state, cancellation("b1", "50", occurred_at=later), rules, bet=placed.bet
    )
    outcome = fire(voided.state, shipped, T0 + timedelta(days=3))
    metrics = Metrics()
    metrics.count_closed_days(row for key, row in outcome.writes if key.startswith(CASHBACK_PREFIX))
    bronze = {"brand": AURORA, "level": "Bronze", "currency": "EUR"}
    assert value(metrics, "loyalty_closed_day_bets_total", **bronze) == 0
    assert value(metrics, "loyalty_closed_day_cancelled_total", **bronze) == 50


def test_closed_days_are_summed_first_one_increment_per_series_and_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = []
    for n in range(3):
        state = player(bet("10", player_id=f"p{n}"), bet("5", player_id=f"p{n}"))
        outcome = fire(state, shipped, T0 + timedelta(days=1))
        rows.extend(row for key, row in outcome.writes if key.startswith(CASHBACK_PREFIX) and row)
    increments: list[float] = []
    inc = Counter.inc

    def counted(counter: Counter, amount: float = 1) -> None:
        increments.append(amount)
        inc(counter, amount)

    monkeypatch.setattr(Counter, "inc", counted)
    metrics = Metrics()
    metrics.count_closed_days(rows)
    # bets, cancelled stakes, wins, bonus releases, player days: one series each
    assert sorted(increments) == [0, 0, 0, 3, 45]
    assert value(metrics, "loyalty_closed_player_days_total", brand=AURORA, level="Bronze") == 3


# -- the census: players per level, active in the last 7 and 30 days ---------------------------


def test_the_census_counts_players_and_those_active_in_each_window_per_level() -> None:
    now = T0 + timedelta(days=60)
    census = Census(shipped, now)
    for player_id, idle_days, amount in [
        ("fresh", 1, "10"),  # Bronze, active in both windows
        ("week", 8, "20"),  # Bronze, active in 30 days only
        ("gone", 45, "30"),  # Bronze, neither
        ("silver", 3, "10000"),  # Silver, both
    ]:
        census.add(
            encode_player(
                player(bet(amount, player_id=player_id, occurred_at=now - timedelta(idle_days)))
            )
        )
    census.add(encode_player(replace(player(bet("10")), brand_id="nowhere")))  # no programme

    metrics = Metrics()
    metrics.set_population(census)
    assert series(metrics, "players_per_level") == {
        (("brand", AURORA), ("level", "Bronze")): 3,
        (("brand", AURORA), ("level", "Silver")): 1,
    }
    assert series(metrics, "loyalty_active_players") == {
        (("brand", AURORA), ("level", "Bronze"), ("window", "7d")): 1,
        (("brand", AURORA), ("level", "Bronze"), ("window", "30d")): 2,
        (("brand", AURORA), ("level", "Silver"), ("window", "7d")): 1,
        (("brand", AURORA), ("level", "Silver"), ("window", "30d")): 1,
    }
    assert value(metrics, "loyalty_last_census_timestamp_seconds") == now.timestamp()
    assert value(metrics, "avg_points_per_user", brand=AURORA) == pytest.approx(
        float(sum(Decimal(a) for a in ("10", "20", "30", "10000")) / 4)
    )


def test_a_level_without_active_players_reads_zero_and_a_new_census_replaces_the_last() -> None:
    now = T0 + timedelta(days=60)
    old = Census(shipped, now)
    old.add(encode_player(player(bet("10000", player_id="silver"))))
    idle = Census(shipped, now)
    idle.add(encode_player(player(bet("10", player_id="idle"))))
    metrics = Metrics()
    metrics.set_population(old)
    metrics.set_population(idle)
    assert series(metrics, "loyalty_active_players") == {
        (("brand", AURORA), ("level", "Bronze"), ("window", "7d")): 0,
        (("brand", AURORA), ("level", "Bronze"), ("window", "30d")): 0,
    }  # and no Silver series left from the earlier census
    assert series(metrics, "players_per_level") == {(("brand", AURORA), ("level", "Bronze")): 1}


def test_the_census_counts_records_written_before_formats_and_refuses_a_later_format() -> None:
    census = Census(shipped, T0)
    census.add(player(bet("10")).to_json())  # format 1: no number
    assert census.levels == {(AURORA, "Bronze"): 1}
    newer = b'{"format":%d,' % (PLAYER_FORMAT + 1) + player(bet("10")).to_json()[1:]
    with pytest.raises(UnknownFormat):
        census.add(newer)


# -- consumer lag ---------------------------------------------------------------------------------


def test_a_partition_given_away_loses_its_lag_series() -> None:
    metrics = Metrics()
    metrics.set_lag({("casino.player-events", 0): 5, ("casino.player-events", 1): 0})
    metrics.set_lag({("casino.player-events", 1): 2})
    assert series(metrics, "loyalty_consumer_lag") == {
        (("partition", "1"), ("topic", "casino.player-events")): 2
    }
