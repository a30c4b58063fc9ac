"""The engine against the seeds' tables: points, levels, decay, grace and idempotency."""

from datetime import timedelta
from decimal import Decimal

import pytest

from loyalty_streams.domain.event_rules import EventRejected, apply
from loyalty_streams.domain.outputs import Direction, LevelChanged, PointsAccrued
from loyalty_streams.domain.player import PlayerState, SourcePosition
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import advance
from tests.domain.builders import T0, bet, bonus, deposit, programme, win


def fold(events: list, prog: Programme | None = None) -> tuple[PlayerState, list]:
    prog = prog or programme()
    state, outputs = None, []
    for event in events:
        state, emitted = apply(state, event, prog)
        outputs.extend(emitted)
    assert state is not None
    return state, outputs


def level_name(state: PlayerState, prog: Programme | None = None) -> str:
    prog = prog or programme()
    return prog.levels[prog.level_index(state.level_rank)].name


def test_ten_thousand_eur_on_slots_makes_a_bronze_player_silver() -> None:
    state, outputs = fold([bet("10000.00", "slots")])
    accrued, change = outputs
    assert isinstance(accrued, PointsAccrued) and accrued.points == Decimal("10000.00")
    assert accrued.factors.level == "Bronze"  # the bet is paid at the level it was placed in
    assert isinstance(change, LevelChanged)
    assert (change.direction, change.from_level, change.to_level) == (
        Direction.UP,
        "Bronze",
        "Silver",
    )
    assert change.output_id == f"{accrued.event_id}:level"
    assert level_name(state) == "Silver"


def test_just_below_the_threshold_stays_bronze() -> None:
    state, outputs = fold([bet("9999.99")])
    assert level_name(state) == "Bronze"
    assert [o.type for o in outputs] == ["PointsAccrued"]


def test_live_casino_earns_one_and_a_half_times_slots() -> None:
    _, (slots, *_) = fold([bet("10000.00", "slots")])
    _, (live, *_) = fold([bet("10000.00", "live_casino")])
    assert live.points == slots.points * Decimal("1.5") == Decimal("15000.00")


@pytest.mark.parametrize(
    ("category", "points"),
    [("slots", "100.00"), ("table", "50.00"), ("live_casino", "150.00"), ("exclusive", "200.00")],
)
def test_category_weights(category: str, points: str) -> None:
    _, (accrued,) = fold([bet("100", category)])
    assert accrued.points == Decimal(points)
    assert accrued.factors.category_weight * 100 == Decimal(points)


def test_level_multiplier_applies_from_the_next_bet_and_rounds_down() -> None:
    _, outputs = fold([bet("10000"), bet("0.19")])
    # 0.19 x 1 x 1.1 = 0.209 -> 0.20: rounded down to the cent of a point
    assert outputs[-1].points == Decimal("0.20")
    assert outputs[-1].factors.level_multiplier == Decimal("1.1")
    assert outputs[-1].points_available == Decimal("10000.20")


def test_a_promotion_multiplies_only_inside_its_window_and_categories() -> None:
    week = programme().promotions[0]  # DoublePointsWeek x2, slots
    inside = week.starts_at + timedelta(hours=1)
    _, outputs = fold(
        [
            bet("10", "slots", occurred_at=inside),
            bet("10", "live_casino", occurred_at=inside),
            bet("10", "slots", occurred_at=week.ends_at),
        ]
    )
    assert [o.points for o in outputs] == [Decimal(20), Decimal(15), Decimal(10)]
    assert outputs[0].factors.promotions == ("DoublePointsWeek",)


def test_gc_earns_one_vip_point_per_hundred_thousand() -> None:
    sweeps = programme("lucky-sweeps")
    state, (accrued,) = fold([bet("250000.00", currency="GC", brand_id="lucky-sweeps")], sweeps)
    assert accrued.points == Decimal("2.50")
    assert state.vip_points == Decimal("2.5")
    assert state.cumulative_turnover == 0  # GC is play money: no turnover


def test_sweepstakes_levels_follow_vip_points() -> None:
    sweeps = programme("lucky-sweeps")
    state, outputs = fold([bet("5000.00", currency="SC", brand_id="lucky-sweeps")], sweeps)
    assert level_name(state, sweeps) == "Gold"
    (change,) = [o for o in outputs if isinstance(o, LevelChanged)]
    assert change.basis == "vip_points"


def test_one_bet_can_jump_two_levels() -> None:
    state, outputs = fold([bet("50000")])
    change = outputs[-1]
    assert (change.from_level, change.to_level) == ("Bronze", "Gold")
    assert level_name(state) == "Gold"


def test_platinum_needs_fifty_thousand_in_the_last_thirty_days() -> None:
    old = T0 - timedelta(days=60)
    state, _ = fold([bet("190000", occurred_at=old), bet("20000")])
    # 210,000 cumulative, but only 20,000 in 30 days: Gold's retention met, Platinum's not
    assert level_name(state) == "Gold"
    state, _ = apply(state, bet("30000"), programme())
    assert level_name(state) == "Platinum"


def test_gold_player_is_downgraded_after_the_grace_period_and_not_re_promoted() -> None:
    prog = programme()
    state, _ = fold([bet("60000")])
    assert level_name(state) == "Gold"

    # the bet leaves the 30 days at the start of the brand day 30 days later: the grace starts
    decayed = prog.day_start(prog.day_of(T0) + 30)
    step = advance(state, decayed, prog)
    state, outputs = step.state, step.outputs
    assert [o.type for o in outputs] == ["CashbackAwarded"]  # the day played, at Gold
    assert level_name(state) == "Gold" and state.downgrade_pending_since == decayed

    step = advance(state, decayed + timedelta(days=7, seconds=-1), prog)
    state, outputs = step.state, step.outputs
    assert outputs == () and level_name(state) == "Gold"

    step = advance(state, decayed + timedelta(days=7), prog)
    state, (change,) = step.state, step.outputs
    assert isinstance(change, LevelChanged) and change.occurred_at == decayed + timedelta(days=7)
    assert (change.direction, change.from_level, change.to_level) == (
        Direction.DOWN,
        "Gold",
        "Silver",
    )
    assert change.reason == "retention_missed" and change.rolling_30d == 0
    assert change.cumulative == 60000

    state, outputs = apply(state, bet("50", occurred_at=decayed + timedelta(days=8)), prog)
    assert [o.type for o in outputs] == ["PointsAccrued"]
    assert level_name(state) == "Silver"


def test_play_during_the_grace_period_cancels_the_downgrade() -> None:
    prog = programme()
    state, _ = fold([bet("60000")])
    state = advance(state, T0 + timedelta(days=31), prog).state
    assert state.downgrade_pending_since is not None
    state, _ = apply(state, bet("10000", occurred_at=T0 + timedelta(days=33)), prog)
    assert state.downgrade_pending_since is None
    later = advance(state, T0 + timedelta(days=40), prog)
    assert not [o for o in later.outputs if isinstance(o, LevelChanged)]
    assert level_name(later.state) == "Gold"


def test_wins_bonuses_and_deposits_are_activity_and_fill_the_day_ledger() -> None:
    state, outputs = fold([bet("100"), win("30"), bonus("5"), deposit("200")])
    assert [o.type for o in outputs] == ["PointsAccrued"]
    (ledger,) = state.ledgers.values()
    assert (ledger.bets, ledger.wins, ledger.bonuses) == (100, 30, 5)
    assert state.cumulative_turnover == 100 and state.points_available == 100
    assert state.last_activity == T0


def test_ledger_day_follows_the_brand_time_zone() -> None:
    # Europe/Malta is UTC+1 in November: 23:30 UTC is already the next brand day
    late = T0.replace(hour=23, minute=30)
    state, _ = fold([bet("10"), bet("20", occurred_at=late)])
    assert sorted(ledger.bets for ledger in state.ledgers.values()) == [10, 20]


def test_same_event_id_twice_changes_nothing() -> None:
    prog = programme()
    first = bet("100")
    state, _ = apply(None, first, prog)
    again, outputs = apply(state, first, prog)
    assert outputs == () and again == state


def test_replayed_offsets_are_skipped() -> None:
    prog = programme()
    state, _ = apply(None, bet("100"), prog, SourcePosition("casino.player-events:3", 41))
    replay, outputs = apply(state, bet("100"), prog, SourcePosition("casino.player-events:3", 41))
    assert outputs == () and replay == state
    newer, outputs = apply(state, bet("1"), prog, SourcePosition("casino.player-events:3", 42))
    assert len(outputs) == 1 and newer.points_available == 101


def test_apply_never_changes_the_record_it_was_given() -> None:
    prog = programme()
    state, _ = fold([bet("100")])
    snapshot = PlayerState.from_json(state.to_json())
    apply(state, bet("20000"), prog)
    advance(state, T0 + timedelta(days=90), prog)
    assert state == snapshot


def test_currency_outside_the_programme_is_rejected() -> None:
    with pytest.raises(EventRejected, match="currency SC is not accepted"):
        apply(None, bet("10", currency="SC"), programme())


def test_event_of_another_brand_is_rejected() -> None:
    with pytest.raises(EventRejected, match="lucky-sweeps"):
        apply(None, bet("10", brand_id="lucky-sweeps", currency="SC"), programme())


def test_record_survives_json() -> None:
    state, _ = fold([bet("100"), win("10"), bet("60000", "table")])
    assert PlayerState.from_json(state.to_json()) == state
