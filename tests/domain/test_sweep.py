"""The sweep: hold timeouts, inactivity expiry, the daily cashback close; and tier-up rewards."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from loyalty_streams.domain.engine import apply
from loyalty_streams.domain.outputs import (
    CashbackAwarded,
    LevelChanged,
    Output,
    PointsExpired,
    PointsExpiring,
    RedemptionReleased,
    ReleaseReason,
    TierRewardGranted,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.sweep import sweep_player
from tests.domain.builders import T0, bet, bonus, command, programme, received, win

T = TypeVar("T")
SWEEPS = "lucky-sweeps"
MIDDAY = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)  # 12:00 in New York, lucky-sweeps' zone
NEXT_DAY = MIDDAY + timedelta(days=1)


def fold(events: list, brand_id: str = "aurora-casino") -> tuple[PlayerState, list[Output]]:  # type: ignore[type-arg]
    state, outputs = None, []
    for event in events:
        state, emitted = apply(state, event, programme(brand_id))
        outputs.extend(emitted)
    assert state is not None
    return state, outputs


def sc(kind, amount: str, **fields):  # type: ignore[no-untyped-def]
    return kind(amount, **{"brand_id": SWEEPS, "currency": "SC", "occurred_at": MIDDAY} | fields)


def of_type(outputs: tuple[Output, ...] | list[Output], kind: type[T]) -> list[T]:
    return [o for o in outputs if isinstance(o, kind)]


# -- tier-up rewards --------------------------------------------------------------------------


def test_a_jump_pays_each_level_reached_once_and_never_again_after_a_downgrade() -> None:
    state, outputs = fold([sc(bet, "5000")], SWEEPS)  # Bronze -> Gold: Silver and Gold rewards
    rewards = of_type(outputs, TierRewardGranted)
    assert [(r.level, r.gc) for r in rewards] == [("Silver", 10000), ("Gold", 50000)]
    # 30 days without play: Gold needs 1,000 points in 30 days, so down to Silver after grace
    pending = sweep_player(state, MIDDAY + timedelta(days=40), programme(SWEEPS))
    idle = sweep_player(pending.state, MIDDAY + timedelta(days=47), programme(SWEEPS))
    down = of_type(idle.outputs, LevelChanged)
    assert down and down[-1].to_level == "Silver" and idle.state.downgrade_pending_since is None
    back, outputs = apply(
        idle.state, sc(bet, "5000", occurred_at=MIDDAY + timedelta(days=41)), programme(SWEEPS)
    )
    assert back.level_rank == 3 and not of_type(outputs, TierRewardGranted)


def test_a_level_without_a_reward_pays_nothing() -> None:
    _, outputs = fold([bet("10000")])  # aurora Silver has no GC reward
    assert of_type(outputs, LevelChanged) and not of_type(outputs, TierRewardGranted)


# -- hold timeouts ----------------------------------------------------------------------------


def test_the_sweep_releases_a_hold_left_past_its_timeout() -> None:
    state, _ = fold([bet("2000")])
    held, _ = received(state, command("RedeemPoints", points="1000", command_id="r9"), programme())
    early = sweep_player(held, T0 + timedelta(minutes=29), programme())
    assert early.state.points_held == 1000 and not of_type(early.outputs, RedemptionReleased)
    late = sweep_player(held, T0 + timedelta(minutes=30), programme())
    (released,) = of_type(late.outputs, RedemptionReleased)
    assert released.reason is ReleaseReason.TIMED_OUT and released.output_id == "r9:released"
    assert released.occurred_at == T0 + timedelta(minutes=30)
    assert (late.state.points_available, late.state.points_held) == (2000, 0)


# -- expiry -----------------------------------------------------------------------------------


def test_an_idle_balance_is_warned_thirty_days_ahead_then_expires_whole() -> None:
    state, _ = fold([bet("1234.50")])
    expires = T0 + timedelta(days=365)
    quiet = sweep_player(state, expires - timedelta(days=31), programme())
    assert quiet.outputs == ()
    warned = sweep_player(state, expires - timedelta(days=30), programme())
    (warning,) = of_type(warned.outputs, PointsExpiring)
    assert warning.expires_at == expires and warning.points == Decimal("1234.50")
    assert sweep_player(warned.state, expires - timedelta(days=1), programme()).outputs == ()
    gone = sweep_player(warned.state, expires, programme())
    (expired,) = of_type(gone.outputs, PointsExpired)
    assert expired.points == Decimal("1234.50") and expired.occurred_at == expires
    assert gone.state.points_available == 0 and gone.state.points_expired == Decimal("1234.50")
    assert sweep_player(gone.state, expires + timedelta(days=1), programme()).outputs == ()


def test_play_or_a_credit_restarts_the_expiry_clock() -> None:
    state, _ = fold([bet("100")])
    later = T0 + timedelta(days=300)
    played, _ = apply(state, bet("1", occurred_at=later), programme())
    credited, _ = received(
        state,
        command("AdjustPoints", direction="credit", points="5", reason="win-back", actor="crm",
                issued_at=later),
        programme(),
    )  # fmt: skip
    for record in (played, credited):
        assert sweep_player(record, T0 + timedelta(days=365), programme()).outputs == ()


# -- daily cashback ---------------------------------------------------------------------------


def silver_with_play(*play) -> PlayerState:  # type: ignore[no-untyped-def]
    """A Silver sweepstakes player (1 % cashback, 10 SC a day at most) after today's play."""
    start = sc(bet, "1000", occurred_at=MIDDAY - timedelta(days=1))
    state, _ = fold([start, *play], SWEEPS)
    closed = sweep_player(state, MIDDAY, programme(SWEEPS)).state  # yesterday is closed
    assert closed.level_rank == 2 and closed.cashback_closed_day is not None
    return closed


def test_cashback_is_the_percent_of_ngr_once_per_day() -> None:
    state = silver_with_play(sc(bet, "500"), sc(win, "150"), sc(bonus, "50"))
    closed = sweep_player(state, NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(closed.outputs, CashbackAwarded)
    assert (award.ngr, award.amount, award.capped) == (Decimal(300), Decimal("3.00"), False)
    assert award.output_id == "cashback:lucky-sweeps:p1:2026-11-02"
    (row,) = closed.cashback
    assert (row.bets, row.wins, row.bonuses, row.amount) == (500, 150, 50, Decimal("3.00"))
    assert (
        sweep_player(closed.state, NEXT_DAY + timedelta(hours=1), programme(SWEEPS)).outputs == ()
    )


def test_cashback_exactly_at_the_cap_is_not_capped_and_a_cent_above_it_is() -> None:
    at_cap = sweep_player(silver_with_play(sc(bet, "1000")), NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(at_cap.outputs, CashbackAwarded)
    assert (award.amount, award.capped) == (Decimal(10), False)
    above = sweep_player(silver_with_play(sc(bet, "1001")), NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(above.outputs, CashbackAwarded)
    assert (award.amount, award.capped) == (Decimal(10), True)


def test_negative_ngr_pays_nothing_but_is_logged() -> None:
    state = silver_with_play(sc(bet, "100"), sc(win, "400"))
    closed = sweep_player(state, NEXT_DAY, programme(SWEEPS))
    assert not of_type(closed.outputs, CashbackAwarded)
    (row,) = closed.cashback
    assert (row.ngr, row.amount) == (Decimal(-300), 0)


def test_cashback_rounds_down_to_the_cent() -> None:
    closed = sweep_player(silver_with_play(sc(bet, "1.99")), NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(closed.outputs, CashbackAwarded)
    assert award.amount == Decimal("0.01")  # 1 % of 1.99 is 0.0199


def test_today_is_not_closed_and_late_play_on_a_closed_day_does_not_count() -> None:
    state = silver_with_play(sc(bet, "500"))
    assert not sweep_player(state, MIDDAY + timedelta(hours=11), programme(SWEEPS)).cashback
    closed = sweep_player(state, NEXT_DAY, programme(SWEEPS)).state
    late, _ = apply(closed, sc(bet, "500", occurred_at=MIDDAY), programme(SWEEPS))
    assert sweep_player(late, NEXT_DAY + timedelta(days=1), programme(SWEEPS)).cashback == ()


def test_a_day_is_paid_at_the_level_held_through_it_even_if_the_same_sweep_downgrades() -> None:
    policies = programme().policies.model_copy(update={"downgrade_grace_days": 0})
    no_grace = programme().model_copy(update={"policies": policies})
    state, _ = apply(None, bet("60000"), no_grace)  # Gold: 2 %, at most 500 a day
    swept = sweep_player(state, T0 + timedelta(days=40), no_grace)
    (award,) = of_type(swept.outputs, CashbackAwarded)
    (change,) = of_type(swept.outputs, LevelChanged)
    assert (award.level, award.amount, change.to_level) == ("Gold", 500, "Silver")
