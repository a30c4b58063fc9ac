"""Time-driven rules at their instants: closes, downgrades, holds, expiry; and tier-up rewards."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_streams.domain.event_rules import apply
from loyalty_streams.domain.outputs import (
    CashbackAwarded,
    LevelChanged,
    Output,
    PointsExpired,
    PointsExpiring,
    RedemptionReleased,
    ReleaseReason,
    TierRewardGranted,
    encode,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import Advanced, advance, due_at, on_event
from tests.domain.builders import T0, bet, bonus, command, programme, received, win

T = TypeVar("T")
SWEEPS = "lucky-sweeps"
MIDDAY = datetime(2026, 11, 2, 17, 0, tzinfo=UTC)  # 12:00 in New York, lucky-sweeps' zone
NEXT_DAY = MIDDAY + timedelta(days=1)


def fold(events: list, brand_id: str = "aurora-casino") -> tuple[PlayerState, list[Output]]:  # type: ignore[type-arg]
    state, outputs = None, []
    for event in events:
        step = on_event(state, event, programme(brand_id))
        state = step.state
        outputs.extend(step.outputs)
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
    idle = advance(state, MIDDAY + timedelta(days=40), programme(SWEEPS))
    (down,) = of_type(idle.outputs, LevelChanged)
    assert down.to_level == "Silver" and idle.state.downgrade_pending_since is None
    back, outputs = apply(
        idle.state, sc(bet, "5000", occurred_at=MIDDAY + timedelta(days=41)), programme(SWEEPS)
    )
    assert back.level_rank == 3 and not of_type(outputs, TierRewardGranted)


def test_a_level_without_a_reward_pays_nothing() -> None:
    _, outputs = fold([bet("10000")])  # aurora Silver has no GC reward
    assert of_type(outputs, LevelChanged) and not of_type(outputs, TierRewardGranted)


# -- hold timeouts ----------------------------------------------------------------------------


def test_a_timer_releases_a_hold_left_past_its_timeout() -> None:
    state, _ = fold([bet("2000")])
    held, _ = received(state, command("RedeemPoints", points="1000", command_id="r9"), programme())
    early = advance(held, T0 + timedelta(minutes=29), programme())
    assert early.state.points_held == 1000 and not of_type(early.outputs, RedemptionReleased)
    late = advance(held, T0 + timedelta(minutes=30), programme())
    (released,) = of_type(late.outputs, RedemptionReleased)
    assert released.reason is ReleaseReason.TIMED_OUT and released.output_id == "r9:released"
    assert released.occurred_at == T0 + timedelta(minutes=30)
    assert (late.state.points_available, late.state.points_held) == (2000, 0)


# -- expiry -----------------------------------------------------------------------------------


def test_an_idle_balance_is_warned_thirty_days_ahead_then_expires_whole() -> None:
    state, _ = fold([bet("1234.50")])
    expires = T0 + timedelta(days=365)
    quiet = advance(state, expires - timedelta(days=31), programme())
    assert quiet.outputs == ()
    warned = advance(state, expires - timedelta(days=30), programme())
    (warning,) = of_type(warned.outputs, PointsExpiring)
    assert warning.expires_at == expires and warning.points == Decimal("1234.50")
    assert advance(warned.state, expires - timedelta(days=1), programme()).outputs == ()
    gone = advance(warned.state, expires, programme())
    (expired,) = of_type(gone.outputs, PointsExpired)
    assert expired.points == Decimal("1234.50") and expired.occurred_at == expires
    assert gone.state.points_available == 0 and gone.state.points_expired == Decimal("1234.50")
    assert advance(gone.state, expires + timedelta(days=1), programme()).outputs == ()


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
        assert advance(record, T0 + timedelta(days=365), programme()).outputs == ()


# -- daily cashback ---------------------------------------------------------------------------


def silver_with_play(*play) -> PlayerState:  # type: ignore[no-untyped-def]
    """A Silver sweepstakes player (1 % cashback, 10 SC a day at most) after today's play."""
    start = sc(bet, "1000", occurred_at=MIDDAY - timedelta(days=1))
    state, _ = fold([start, *play], SWEEPS)
    closed = advance(state, MIDDAY, programme(SWEEPS)).state  # yesterday is closed
    assert closed.level_rank == 2 and closed.closed_days
    return closed


def test_cashback_is_the_percent_of_ngr_once_per_day() -> None:
    state = silver_with_play(sc(bet, "500"), sc(win, "150"), sc(bonus, "50"))
    closed = advance(state, NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(closed.outputs, CashbackAwarded)
    assert (award.ngr, award.amount, award.capped) == (Decimal(300), Decimal("3.00"), False)
    assert award.output_id == "cashback:lucky-sweeps:p1:2026-11-02"
    (row,) = closed.cashback
    assert (row.bets, row.wins, row.bonuses, row.amount) == (500, 150, 50, Decimal("3.00"))
    assert advance(closed.state, NEXT_DAY + timedelta(hours=1), programme(SWEEPS)).outputs == ()


def test_cashback_exactly_at_the_cap_is_not_capped_and_a_cent_above_it_is() -> None:
    at_cap = advance(silver_with_play(sc(bet, "1000")), NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(at_cap.outputs, CashbackAwarded)
    assert (award.amount, award.capped) == (Decimal(10), False)
    above = advance(silver_with_play(sc(bet, "1001")), NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(above.outputs, CashbackAwarded)
    assert (award.amount, award.capped) == (Decimal(10), True)


def test_negative_ngr_pays_nothing_but_is_logged() -> None:
    state = silver_with_play(sc(bet, "100"), sc(win, "400"))
    closed = advance(state, NEXT_DAY, programme(SWEEPS))
    assert not of_type(closed.outputs, CashbackAwarded)
    (row,) = closed.cashback
    assert (row.ngr, row.amount) == (Decimal(-300), 0)


def test_cashback_rounds_down_to_the_cent() -> None:
    closed = advance(silver_with_play(sc(bet, "1.99")), NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(closed.outputs, CashbackAwarded)
    assert award.amount == Decimal("0.01")  # 1 % of 1.99 is 0.0199


def test_today_is_not_closed_and_late_play_on_a_closed_day_does_not_count() -> None:
    state = silver_with_play(sc(bet, "500"))
    assert not advance(state, MIDDAY + timedelta(hours=11), programme(SWEEPS)).cashback
    closed = advance(state, NEXT_DAY, programme(SWEEPS)).state
    late, _ = apply(closed, sc(bet, "500", occurred_at=MIDDAY), programme(SWEEPS))
    assert advance(late, NEXT_DAY + timedelta(days=1), programme(SWEEPS)).cashback == ()


def test_a_day_is_paid_at_the_level_held_through_it_even_if_it_downgrades_at_that_midnight() -> (
    None
):
    policies = programme().policies.model_copy(update={"downgrade_grace_days": 0})
    no_grace = programme().model_copy(update={"policies": policies})
    state, _ = apply(None, bet("60000"), no_grace)  # Gold: 2 %, at most 500 a day
    swept = advance(state, T0 + timedelta(days=40), no_grace)
    (award,) = of_type(swept.outputs, CashbackAwarded)
    (change,) = of_type(swept.outputs, LevelChanged)
    assert (award.level, award.amount, change.to_level) == ("Gold", 500, "Silver")


# -- event time: each rule at its instant, whenever the worker notices --------------------------

MALTA = ZoneInfo("Europe/Malta")
NEW_YORK = ZoneInfo("America/New_York")


def test_a_downgrade_happens_when_the_grace_ends_however_late_it_is_noticed() -> None:
    # Gold on 20 Oct; that bet leaves the 30 days on 19 Nov; 7 days' grace: Silver on 26 Nov
    gold, _ = fold([bet("60000", occurred_at=datetime(2026, 10, 20, 12, tzinfo=UTC))])
    assert gold.level_rank == 3 and gold.timer_at == datetime(2026, 10, 21, tzinfo=MALTA)
    closed = advance(gold, datetime(2026, 10, 21, 1, tzinfo=UTC), programme()).state
    assert closed.timer_at == datetime(2026, 11, 19, tzinfo=MALTA)  # when the figure falls
    for noticed in (datetime(2026, 11, 29, 5, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)):
        later = advance(gold, noticed, programme())
        (down,) = of_type(later.outputs, LevelChanged)
        assert (down.to_level, down.occurred_at) == ("Silver", datetime(2026, 11, 26, tzinfo=MALTA))
        assert down.occurred_at.tzinfo is UTC and later.state.level_since == down.occurred_at
    pending = advance(gold, datetime(2026, 11, 20, tzinfo=UTC), programme()).state
    assert pending.downgrade_pending_since == datetime(2026, 11, 19, tzinfo=MALTA)
    assert pending.level_rank == 3 and pending.timer_at == datetime(2026, 11, 26, tzinfo=MALTA)


def test_play_during_the_grace_that_meets_the_retention_again_keeps_the_level() -> None:
    gold, _ = fold([bet("60000", occurred_at=datetime(2026, 10, 20, 12, tzinfo=UTC))])
    pending = advance(gold, datetime(2026, 11, 20, tzinfo=UTC), programme()).state
    kept = on_event(pending, bet("10000", occurred_at=datetime(2026, 11, 21, tzinfo=UTC)),
                    programme()).state  # fmt: skip
    assert kept.downgrade_pending_since is None and kept.level_rank == 3
    later = advance(kept, datetime(2026, 11, 30, tzinfo=UTC), programme())
    assert not of_type(later.outputs, LevelChanged)


def test_a_day_closes_at_the_level_held_at_its_midnight_not_one_reached_after_it() -> None:
    bronze_day = sc(bet, "500", occurred_at=datetime(2026, 11, 24, 17, tzinfo=UTC))
    to_gold = sc(bet, "5000", occurred_at=datetime(2026, 11, 25, 5, 10, tzinfo=UTC))  # 00:10 NY
    state, outputs = fold([bronze_day, to_gold], SWEEPS)
    assert state.level_rank == 3 and not of_type(outputs, CashbackAwarded)
    step = on_event(
        fold([bronze_day], SWEEPS)[0], to_gold, programme(SWEEPS)
    )  # the close comes with the bet that follows midnight, before the bet
    (row,) = step.cashback
    assert (row.level, row.amount, row.day.isoformat()) == ("Bronze", 0, "2026-11-24")
    assert row.closed_at == datetime(2026, 11, 25, tzinfo=NEW_YORK)


def test_a_gold_day_is_paid_at_gold_when_the_downgrade_falls_due_at_its_midnight() -> None:
    start = datetime(2026, 10, 1, 16, tzinfo=UTC)  # noon in New York
    gold, _ = fold([sc(bet, "5000", occurred_at=start)], SWEEPS)
    gold = advance(gold, start + timedelta(days=1), programme(SWEEPS)).state  # day closed
    downgrade = gold.timer_at
    assert downgrade is not None
    downgrade = programme(SWEEPS).grace_ends(downgrade)  # from when the bet left the window
    last_day = downgrade - timedelta(hours=12)
    played = on_event(gold, sc(bet, "100", occurred_at=last_day), programme(SWEEPS)).state
    assert played.level_rank == 3 and played.downgrade_pending_since is not None
    after = on_event(played, sc(bet, "1", occurred_at=downgrade + timedelta(minutes=10)),
                     programme(SWEEPS))  # fmt: skip
    (award,) = of_type(after.outputs, CashbackAwarded)
    (down,) = of_type(after.outputs, LevelChanged)
    assert (award.level, award.amount, down.to_level) == ("Gold", Decimal("2.00"), "Silver")
    assert award.occurred_at == down.occurred_at == downgrade


def test_no_day_with_play_is_dropped_when_nothing_ran_between_two_days() -> None:
    silver = datetime(2026, 11, 9, 17, tzinfo=UTC)
    state, outputs = fold(
        [
            sc(bet, "1000", occurred_at=silver),
            sc(bet, "800", occurred_at=silver + timedelta(days=1)),
            sc(bet, "300", occurred_at=silver + timedelta(days=8)),
        ],
        SWEEPS,
    )
    later = advance(state, silver + timedelta(days=9), programme(SWEEPS))
    paid = [(a.day.isoformat(), a.amount) for a in of_type([*outputs, *later.outputs],
                                                          CashbackAwarded)]  # fmt: skip
    assert paid == [
        ("2026-11-09", Decimal("10.00")),
        ("2026-11-10", Decimal("8.00")),
        ("2026-11-17", Decimal("3.00")),
    ]


def test_a_second_write_off_of_the_same_lull_has_its_own_id() -> None:
    played = datetime(2026, 1, 10, 12, tzinfo=UTC)
    state, _ = fold([bet("100", occurred_at=played)])
    first = advance(state, datetime(2027, 1, 11, tzinfo=UTC), programme())
    (gone,) = of_type(first.outputs, PointsExpired)
    late = on_event(first.state, bet("50", occurred_at=played - timedelta(days=1)), programme())
    assert late.state.timer_at is not None
    assert late.state.timer_at <= gone.occurred_at  # already due: the next slice writes it off
    second = advance(late.state, datetime(2027, 1, 12, tzinfo=UTC), programme())
    (again,) = of_type(second.outputs, PointsExpired)
    assert again.points == 50 and again.output_id != gone.output_id


def test_a_capped_cashback_is_written_in_the_currency_places_and_in_utc() -> None:
    closed = advance(silver_with_play(sc(bet, "1500")), NEXT_DAY, programme(SWEEPS))
    (award,) = of_type(closed.outputs, CashbackAwarded)
    written = orjson.loads(encode(award))
    assert (written["amount"], written["ngr"], written["capped"]) == ("10.00", "1500.00", True)
    assert written["occurred_at"] == "2026-11-03T05:00:00+00:00"  # midnight in New York


@settings(max_examples=300, deadline=None)
@given(
    play=st.lists(
        st.tuples(
            st.integers(0, 90 * 24),  # hours after the start
            st.sampled_from(["1", "50", "999.99", "1000", "4000"]),
        ),
        min_size=1,
        max_size=12,
    ),
    checks=st.lists(st.integers(0, 120 * 24), max_size=4),
)
def test_noticing_time_in_any_number_of_steps_gives_the_same_record_and_outputs(
    play: list[tuple[int, str]], checks: list[int]
) -> None:
    """Event time: however often the worker noticed time passing, and whenever, the player
    ends in the same record with the same outputs (ids, times, amounts)."""
    rules = programme(SWEEPS)
    start = datetime(2026, 9, 1, 16, tzinfo=UTC)
    events = [sc(bet, amount, occurred_at=start + timedelta(hours=h)) for h, amount in sorted(play)]
    end = start + timedelta(days=130)

    def run(stops: list[datetime]) -> tuple[PlayerState, list[Output]]:
        state, outputs = None, []
        pending = sorted(stops)
        for event in events:
            while pending and pending[0] < event.occurred_at and state is not None:
                step: Advanced = advance(state, pending.pop(0), rules)
                state = step.state
                outputs.extend(step.outputs)
            step = on_event(state, event, rules)
            state = step.state
            outputs.extend(step.outputs)
        assert state is not None
        step = advance(state, end, rules)
        return step.state, [*outputs, *step.outputs]

    once = run([])
    often = run([start + timedelta(hours=h) for h in checks])
    assert often[0] == once[0]
    key = sorted((o.output_id, o.occurred_at) for o in once[1])
    assert sorted((o.output_id, o.occurred_at) for o in often[1]) == key
    assert len({o.output_id for o in once[1]}) == len(once[1])  # ids unique to what they record
    assert once[0].timer_at is None or once[0].timer_at > end
    assert due_at(once[0], rules) == once[0].timer_at


def test_late_play_for_a_day_not_closed_yet_is_closed_at_the_level_held_at_its_end() -> None:
    # out of order across midnight: the next day's bet (which makes the player Gold) comes
    # first, then a bet dated just before midnight: its day closes at once, at Silver
    silver = sc(bet, "1000", occurred_at=datetime(2026, 11, 25, 17, tzinfo=UTC))
    closed = advance(fold([silver], SWEEPS)[0], datetime(2026, 11, 26, 12, tzinfo=UTC),
                     programme(SWEEPS)).state  # fmt: skip
    next_day = sc(bet, "5000", occurred_at=datetime(2026, 11, 28, 15, tzinfo=UTC))
    late = sc(bet, "500", occurred_at=datetime(2026, 11, 28, 4, 59, tzinfo=UTC))  # 23:59 NY
    gold = on_event(closed, next_day, programme(SWEEPS)).state
    assert gold.level_rank == 3
    after = on_event(gold, late, programme(SWEEPS)).state
    midnight = datetime(2026, 11, 28, tzinfo=NEW_YORK)
    assert after.timer_at == midnight  # due at once: the worker's next slice closes it
    step = advance(after, datetime(2026, 11, 28, 16, tzinfo=UTC), programme(SWEEPS))
    (row,) = step.cashback
    assert (row.day.isoformat(), row.level, row.amount) == ("2026-11-27", "Silver", Decimal("5.00"))
    assert row.closed_at == midnight
    # and a day already closed does not take late play
    again = on_event(step.state, sc(bet, "500", occurred_at=late.occurred_at), programme(SWEEPS))
    assert again.state.ledgers.keys() == step.state.ledgers.keys()


def test_each_timer_runs_under_the_version_in_effect_at_its_instant() -> None:
    v1 = programme(SWEEPS)
    levels = [lv.model_dump() for lv in v1.levels]
    levels[1] |= {"cashback_percent": "5", "cashback_daily_cap": "100"}  # Silver: 5 %, 100
    switch = datetime(2026, 11, 20, 12, tzinfo=UTC)
    v2 = v1.model_copy(update={"version": 2, "effective_from": switch, "levels": levels})

    def in_effect(moment: datetime) -> Programme:
        return v2 if moment >= switch else v1

    day = sc(
        bet, "1000", occurred_at=datetime(2026, 11, 19, 17, tzinfo=UTC)
    )  # closes 20 Nov 05:00Z
    later = sc(bet, "10", occurred_at=datetime(2026, 11, 21, 17, tzinfo=UTC))
    played = on_event(None, day, in_effect).state
    by_bet = on_event(played, later, in_effect)  # the close runs first, under v1
    by_time = advance(played, datetime(2026, 11, 21, 17, tzinfo=UTC), in_effect)
    for step in (by_bet, by_time):
        (award,) = of_type(step.outputs, CashbackAwarded)
        assert (award.amount, award.programme_version) == (Decimal("10.00"), 1)


def test_late_play_counts_for_its_day_even_after_a_later_day_closed_but_a_day_closes_once() -> None:
    # Silver since 1 Nov; a bet on 26 Nov, closed by time before the bet of 25 Nov 23:59
    # (New York) arrives: 25 Nov was never closed, so it opens and closes at Silver
    rules = programme(SWEEPS)
    silver = fold([sc(bet, "1500", occurred_at=datetime(2026, 11, 1, 17, tzinfo=UTC))], SWEEPS)[0]
    gold = on_event(silver, sc(bet, "5000", occurred_at=datetime(2026, 11, 26, 15, tzinfo=UTC)),
                    rules).state  # fmt: skip
    closed = advance(gold, datetime(2026, 11, 27, 12, tzinfo=UTC), rules).state
    late = sc(bet, "100", occurred_at=datetime(2026, 11, 26, 4, 59, tzinfo=UTC))  # 23:59 on 25th
    step = advance(on_event(closed, late, rules).state, datetime(2026, 11, 27, 13, tzinfo=UTC),
                   rules)  # fmt: skip
    (row,) = step.cashback
    assert (row.day.isoformat(), row.level, row.amount) == ("2026-11-25", "Silver", Decimal("1.00"))
    # the same day again, and a day older than the late-play window: points only
    for old in (late.occurred_at, datetime(2026, 11, 18, 17, tzinfo=UTC)):
        again = on_event(step.state, sc(bet, "100", occurred_at=old), rules).state
        assert again.ledgers == step.state.ledgers and again.vip_points > step.state.vip_points
