"""The explanation of a player's balance and level: a reconciliation of the history that ends on
the record's balance and meets its counters (hypothesis, over any mix of play, cancellations,
redemptions, adjustments, expiries and time), its pages, the opening balance of a history whose
head was forgotten, and the level's statement."""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_streams.domain.cancellations import PlacedBet
from loyalty_streams.domain.commands import Command, CommandEnvelope
from loyalty_streams.domain.events import BetCancelled, PlayerEvent
from loyalty_streams.domain.explanation import COUNTERS, explain, statement_lines
from loyalty_streams.domain.outputs import LevelChanged, Output, encode
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.time_rules import advance, on_event
from loyalty_streams.runtime.fold import History
from loyalty_streams.state.keyspace import history_key
from tests.domain.builders import T0, bet, cancellation, command, programme, received
from tests.domain.test_command_rules_properties import Step, gaps, run, steps

Plan = list[tuple[Step, timedelta]]
plans = st.lists(st.tuples(steps(), gaps), min_size=1, max_size=40)


def stored(outputs: Iterable[Output]) -> list[dict[str, Any]]:
    """The history rows a worker's store keeps of `outputs`, as `state.queries` reads them:
    the history's types, one row per key, in key order (time, then output id)."""
    rows = {
        history_key(o.brand_id, o.player_id, o.occurred_at, o.output_id): orjson.loads(encode(o))
        for o in outputs
        if isinstance(o, History)
    }
    return [rows[key] for key in sorted(rows)]


def when(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["occurred_at"])


def finished(plan: Plan) -> datetime:
    return T0 + sum((gap for _, gap in plan), timedelta())


def decimals(balance: dict[str, str]) -> tuple[Decimal, Decimal, Decimal]:
    return Decimal(balance["available"]), Decimal(balance["held"]), Decimal(balance["total"])


def record_balance(state: PlayerState) -> tuple[Decimal, Decimal, Decimal]:
    available, held = state.points_available, state.points_held
    return available, held, available + held


def moved(rows: list[dict[str, Any]], state: PlayerState, now: datetime) -> Decimal:
    """What `rows` moved in all, read from their own explanation."""
    days = explain(state, programme(), rows, now, days=10_000)["balance"]["days"]
    return sum(
        (
            Decimal(line["available"]) + Decimal(line["held"])
            for day in days
            for line in day["lines"]
            if line["balance"] is not None
        ),
        Decimal(0),
    )


def check_days(days: list[dict[str, Any]], opening: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
    """Each day opens where the one before closed, and each line moves the running balance by
    what it says; gives the last closing."""
    running = opening
    for day in days:
        assert decimals(day["opening"]) == running, day["day"]
        for line in day["lines"]:
            if line["balance"] is None:
                assert (line["available"], line["held"]) == (None, None)
                continue
            available = running[0] + Decimal(line["available"])
            held = running[1] + Decimal(line["held"])
            running = (available, held, available + held)
            assert decimals(line["balance"]) == running, line
        assert decimals(day["closing"]) == running, day["day"]
    return running


@settings(max_examples=200, deadline=None)
@given(plans)
def test_the_whole_history_reconciles_from_zero_to_the_record(plan: Plan) -> None:
    state, outputs = run(plan)
    if state is None:
        return
    rows = stored(outputs)
    answer = explain(state, programme(), rows, finished(plan), days=10_000)
    balance = answer["balance"]
    assert balance["problems"] == []
    assert balance["opening"]["history_complete"] is True
    zero = (Decimal(0),) * 3
    assert decimals(balance["opening"]) == zero
    assert check_days(balance["days"], zero) == record_balance(state)
    assert decimals(balance) == record_balance(state)
    for kind in COUNTERS:
        totals = balance["totals"][kind]
        assert Decimal(totals["history"]) == getattr(state, f"points_{kind}"), kind
        assert Decimal(totals["before_history"]) == 0
    assert balance["next_cursor"] is None
    assert [day["day"] for day in balance["days"]] == sorted(
        {day["day"] for day in balance["days"]}
    )


@settings(max_examples=150, deadline=None)
@given(plans, st.integers(min_value=1, max_value=4), st.floats(min_value=0, max_value=1))
def test_pages_and_a_forgotten_head_still_end_on_the_record(
    plan: Plan, page_days: int, forgotten: float
) -> None:
    state, outputs = run(plan)
    if state is None:
        return
    rows = stored(outputs)
    now = finished(plan)
    # the store forgets the rows older than an instant: all of an instant's rows, or none
    instants = sorted({when(row) for row in rows})
    kept_from = instants[int((len(instants) - 1) * forgotten)] if rows else now
    gone = [row for row in rows if when(row) < kept_from]
    kept = rows[len(gone) :]
    whole = explain(state, programme(), kept, now, days=10_000)["balance"]
    # the opening balance is what the forgotten rows had moved, and nothing is amiss
    assert whole["problems"] == []
    assert decimals(whole["opening"])[2] == moved(gone, state, now)
    assert whole["opening"]["history_complete"] is all(
        Decimal(whole["totals"][kind]["before_history"]) == 0 for kind in COUNTERS
    )
    # page after page, the cursor moving forward, the days are the whole's
    paged: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        start = None if cursor is None else date.fromisoformat(cursor)
        page = explain(state, programme(), kept, now, days=page_days, start=start)
        assert len(page["balance"]["days"]) <= page_days
        paged += page["balance"]["days"]
        cursor = page["balance"]["next_cursor"]
        if cursor is None:
            break
        assert cursor > paged[-1]["day"]
    assert paged == whole["days"]
    assert check_days(paged, decimals(whole["opening"])) == record_balance(state)


# -- examples ------------------------------------------------------------------------------------


def played(*made: PlayerEvent | Command) -> tuple[PlayerState, list[Output]]:
    """Fold events (a cancellation with the record of the bet it names) and commands (received
    at their own `issued_at`) for aurora-casino:p1, in order."""
    state: PlayerState | None = None
    outputs: list[Output] = []
    bets: dict[str, PlacedBet] = {}
    for item in made:
        if isinstance(item, CommandEnvelope):
            state, emitted = received(state, item, programme())  # type: ignore[arg-type]
        else:
            placed = bets.get(item.bet_id) if isinstance(item, BetCancelled) else None
            step = on_event(state, item, programme(), None, placed)
            if step.bet is not None:
                bets[step.bet.bet_id] = step.bet
            state, emitted = step.state, step.outputs
        outputs += emitted
    assert state is not None
    return state, outputs


DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


def test_a_page_holds_the_days_asked_for_and_the_next_one_opens_where_it_closed() -> None:
    """A hold at 23:50 in Malta on 3 November, confirmed at 00:05 on the 4th: held overnight."""
    held_at = datetime(2026, 11, 3, 22, 50, tzinfo=UTC)
    state, outputs = played(
        bet("1000", occurred_at=T0),
        bet("200", occurred_at=T0 + DAY),
        command("RedeemPoints", command_id="r1", points="1000", issued_at=held_at),
        command("ConfirmRedemption", redemption_id="r1", issued_at=held_at + 15 * MINUTE),
        bet("300", occurred_at=T0 + 2 * DAY),
    )
    rows, now = stored(outputs), T0 + 3 * DAY
    first = explain(state, programme(), rows, now, days=2)["balance"]
    assert [day["day"] for day in first["days"]] == ["2026-11-02", "2026-11-03"]
    assert first["next_cursor"] == "2026-11-04"
    overnight = {"available": "200.00", "held": "1000", "total": "1200.00"}
    assert first["days"][1]["closing"] == overnight
    second = explain(state, programme(), rows, now, days=2, start=date(2026, 11, 4))["balance"]
    (last,) = second["days"]
    assert last["opening"] == overnight
    assert last["closing"] == {"available": "500.00", "held": "0", "total": "500.00"}
    assert second["next_cursor"] is None
    # a cursor between days starts at the next day with movements; one past them, nothing
    between = explain(state, programme(), rows, now, start=date(2026, 11, 1))["balance"]
    assert between["days"][0]["day"] == "2026-11-02"
    assert explain(state, programme(), rows, now, start=date(2027, 1, 1))["balance"]["days"] == []


def test_a_forgotten_head_opens_with_the_balance_it_left_and_says_so() -> None:
    state, outputs = played(
        bet("300", occurred_at=T0),
        command("AdjustPoints", direction="credit", points="50", reason="goodwill",
                actor="anna", issued_at=T0 + DAY),
        bet("100", occurred_at=T0 + 200 * DAY),
    )  # fmt: skip
    rows = stored(outputs)
    kept = T0 + 100 * DAY
    answer = explain(state, programme(), rows[-1:], T0 + 201 * DAY, kept_from=kept)
    balance = answer["balance"]
    opening = balance["opening"]
    assert (opening["before"], opening["total"], opening["history_complete"]) == (
        "2027-05-21", "350.00", False,
    )  # fmt: skip
    assert "before 2027-05-21: the history is no longer kept" in opening["note"]
    assert kept.isoformat() in opening["note"]
    assert balance["totals"]["accrued"] == {
        "history": "100.00",
        "record": "400.00",
        "before_history": "300.00",
    }
    assert balance["totals"]["credited"]["before_history"] == "50"
    assert balance["problems"] == []
    assert balance["days"][-1]["closing"]["total"] == str(state.points_available) == "450.00"


def test_a_cancelled_bet_and_a_redemption_read_as_movements_with_their_reasons() -> None:
    minute = timedelta(minutes=1)
    state, outputs = played(
        bet("1000", occurred_at=T0, bet_id="b1"),
        command("RedeemPoints", command_id="r1", points="1000", issued_at=T0),
        command("ConfirmRedemption", redemption_id="r1", issued_at=T0 + minute),
        bet("500", occurred_at=T0 + 2 * minute, bet_id="b2"),
        cancellation("nowhere", "10", occurred_at=T0 + 3 * minute),  # refused: left out
        cancellation("b2", "500", occurred_at=T0 + 3 * minute),
    )
    answer = explain(state, programme(), stored(outputs), T0 + DAY)
    (day,) = answer["balance"]["days"]
    kinds = [(line["kind"], line["available"], line["held"]) for line in day["lines"]]
    assert kinds == [
        ("accrued", "1000.00", "0"),
        ("held", "-1000", "1000"),
        ("redeemed", "0", "-1000"),
        ("accrued", "500.00", "0"),
        ("reversed", "-500.00", "0"),
    ]
    accrual = day["lines"][0]
    assert "1 points per unit x weight 1 x promotions 1 x Bronze 1" in accrual["text"]
    assert "(programme v1)" in accrual["text"] and accrual["details"]["bet_id"] == "b1"
    assert day["closing"]["total"] == "0.00" == str(state.points_available)
    assert answer["balance"]["problems"] == []
    text = "\n".join(statement_lines(answer))
    assert "-1000 +1000 held = 1000.00" in text and "-1000 held = 0.00" in text


def test_a_pending_downgrade_says_when_it_takes_effect_across_a_clock_change() -> None:
    september = datetime(2026, 9, 20, 10, tzinfo=UTC)
    state, _ = played(bet("50000", occurred_at=september))
    assert programme().level_at(state.level_rank).name == "Gold"
    # the bet's day leaves the 30-day window at midnight, Malta, on 20 October (summer time)
    waited = advance(state, datetime(2026, 10, 22, tzinfo=UTC), programme()).state
    level = explain(waited, programme(), [], datetime(2026, 10, 22, tzinfo=UTC))["level"]
    assert level["downgrade"] == {
        "pending_since": "2026-10-19T22:00:00+00:00",
        "takes_effect_at": "2026-10-26T23:00:00+00:00",  # midnight again, in winter time
        "to_level": "Silver",  # Silver asks no 30-day figure
    }
    assert level["current"] | {"since": ""} == {
        "name": "Gold", "rank": 3, "threshold": "50000", "retention_30d": "10000",
        "retention_met": False, "since": "",
    }  # fmt: skip
    assert level["next_level"] == {
        "name": "Platinum", "rank": 4, "threshold": "200000", "still_needed": "150000",
    }  # fmt: skip
    assert any("takes effect at 2026-10-26T23:00:00+00:00" in s for s in level["statement"])
    # and it does, at that instant
    later = advance(waited, datetime(2026, 10, 28, tzinfo=UTC), programme())
    (change,) = [o for o in later.outputs if isinstance(o, LevelChanged)]
    assert change.occurred_at.isoformat() == level["downgrade"]["takes_effect_at"]
    shown = explain(
        later.state, programme(), stored(later.outputs), datetime(2026, 10, 28, tzinfo=UTC)
    )
    assert shown["level"]["last_changes"][0]["to_level"] == "Silver"
    assert shown["level"]["downgrade"] is None


def test_a_downgrade_pending_after_a_cancellation_names_the_threshold_it_misses() -> None:
    """A cancelled bet took the lifetime figure below Silver's threshold while the 30-day
    figure still meets its retention: the statement says which of the two is missed."""
    state, _ = played(
        bet("10000", bet_id="b1"),
        cancellation("b1", "5000", occurred_at=T0 + timedelta(minutes=1)),
        bet("1", bet_id="b2", occurred_at=T0 + timedelta(minutes=2)),
    )
    level = explain(state, programme(), [], T0 + timedelta(minutes=3))["level"]
    assert level["current"]["retention_met"] and level["downgrade"] is not None
    (pending,) = [line for line in level["statement"] if "downgrade is pending" in line]
    assert "unless the figure reaches 10000 again, it takes effect" in pending
    assert "30-day" not in pending


def test_a_forced_level_says_who_why_and_until_when() -> None:
    until = T0 + 3 * DAY
    state, outputs = played(
        bet("10", occurred_at=T0),
        command("ForceLevel", level="Platinum", reason="VIP deal", actor="anna", until=until,
                issued_at=T0 + MINUTE),
    )  # fmt: skip
    answer = explain(state, programme(), stored(outputs), T0 + DAY)
    assert answer["level"]["forced"] == {
        "level": "Platinum", "reason": "VIP deal", "actor": "anna",
        "since": (T0 + MINUTE).isoformat(), "until": until.isoformat(),
    }  # fmt: skip
    (change,) = answer["level"]["last_changes"]
    assert (change["from_level"], change["to_level"], change["reason"]) == (
        "Bronze", "Platinum", "forced",
    )  # fmt: skip
    (day,) = answer["balance"]["days"]
    assert [line["kind"] for line in day["lines"]] == ["accrued", "level"]
    assert day["lines"][1]["balance"] is None
    text = "\n".join(statement_lines(answer))
    assert "forced to Platinum by anna (VIP deal)" in text and "reconciles" in text


def test_days_follow_the_brands_zone() -> None:
    """23:30 UTC on 2 November is 3 November in Malta."""
    state, outputs = played(bet("10", occurred_at=datetime(2026, 11, 2, 23, 30, tzinfo=UTC)))
    days = explain(state, programme(), stored(outputs), T0 + DAY)["balance"]["days"]
    assert [day["day"] for day in days] == ["2026-11-03"]
