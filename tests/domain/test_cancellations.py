"""domain.cancellations: a cancelled bet, whole or in part, takes back exactly what it did."""

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_streams.domain.cancellations import CANCELLABLE_DAYS, PlacedBet
from loyalty_streams.domain.event_rules import EventRejected
from loyalty_streams.domain.outputs import (
    CancellationRefused,
    CashbackAwarded,
    LevelChanged,
    Output,
    PointsAccrued,
    PointsRedeemed,
    PointsReversed,
    RedemptionReleased,
    TierRewardGranted,
)
from loyalty_streams.domain.player import DayLedger, PlayerState
from loyalty_streams.domain.programme import Promotion
from loyalty_streams.domain.time_rules import Advanced, advance, on_event
from tests.domain.builders import T0, bet, cancellation, command, programme, received

D = Decimal
HOUR = timedelta(hours=1)


class Ledger:
    """A player's record and the bets' records beside it, as the fold keeps them."""

    def __init__(self, brand: str = "aurora-casino") -> None:
        self.rules = programme(brand)
        self.state: PlayerState | None = None
        self.bets: dict[str, PlacedBet] = {}
        self.outputs: list[Output] = []

    def play(self, event: object) -> Advanced:
        bet_id = getattr(event, "bet_id", "")
        step = on_event(self.state, event, self.rules, None, self.bets.get(bet_id))  # type: ignore[arg-type]
        self.state = step.state
        if step.bet is not None:
            self.bets[step.bet.bet_id] = step.bet
        self.outputs.extend(step.outputs)
        return step

    @property
    def record(self) -> PlayerState:
        assert self.state is not None
        return self.state


def test_a_whole_cancellation_takes_back_the_points_turnover_and_the_days_play() -> None:
    ledger = Ledger()
    ledger.play(bet("40", bet_id="b0", game_category="table"))
    before = ledger.record.clone()
    ledger.play(bet("120.50", bet_id="b1", category="live_casino"))
    step = ledger.play(cancellation("b1", "120.50", occurred_at=T0 + HOUR))
    (reversed_,) = step.outputs
    assert isinstance(reversed_, PointsReversed)
    earned = next(o for o in ledger.outputs if isinstance(o, PointsAccrued) and o.bet_id == "b1")
    assert reversed_.points == reversed_.points_reversed == earned.points
    assert reversed_.points_unrecovered == 0 and reversed_.remaining == 0
    assert reversed_.factors == earned.factors and reversed_.placed_at == T0
    after = ledger.record
    assert after.points_available == before.points_available
    assert after.cumulative_turnover == before.cumulative_turnover
    assert after.vip_points == before.vip_points
    assert after.buckets == before.buckets
    day = ledger.rules.day_of(T0)  # the day's play net of the stake: as before the bet
    (was, now) = before.ledgers[day], after.ledgers[day]
    assert (now.bets, now.cancelled) == (was.bets + D("120.50"), D("120.50"))
    assert after.points_reversed == earned.points and after.points_accrued > earned.points
    assert ledger.bets["b1"].cancelled == D("120.50") and ledger.bets["b1"].remaining == 0


def test_parts_of_a_bet_cancelled_one_by_one_take_back_exactly_what_it_earned() -> None:
    """Each part re-scores the bet at what is left with its own factors: 33.33 + 33.33 + 33.34
    of a bet at x1.5 (live casino) and a promotion take back its points, never a cent more."""
    rules = programme().model_copy(
        update={
            "promotions": (
                Promotion(
                    name="Triple Tuesday",
                    multiplier=D("3"),
                    starts_at=T0 - HOUR,
                    ends_at=T0 + HOUR,
                ),
            )
        }
    )
    ledger = Ledger()
    ledger.rules = rules
    ledger.play(bet("100", bet_id="b1", category="live_casino"))
    (earned,) = [o for o in ledger.outputs if isinstance(o, PointsAccrued)]
    assert earned.points == D("450.00")  # promotions and weights from the bet's time
    later = T0 + 2 * HOUR  # the promotion has ended: the bet's own factors still apply
    parts = [ledger.play(cancellation("b1", a, occurred_at=later)) for a in ("33.33", "33.33")]
    taken = [o.points for step in parts for o in step.outputs if isinstance(o, PointsReversed)]
    assert taken == [D("149.99"), D("149.98")]  # 450 - 300.01 (66.67 x 4.5), then - 150.03
    last = ledger.play(cancellation("b1", "33.34", occurred_at=later))
    (final,) = last.outputs
    assert isinstance(final, PointsReversed) and final.remaining == 0
    assert sum(taken) + final.points == earned.points
    assert ledger.record.points_available == 0


def test_points_already_redeemed_are_recorded_as_unrecovered_never_a_negative_balance() -> None:
    ledger = Ledger()
    ledger.play(bet("1500", bet_id="b1"))
    redeem = command("RedeemPoints", points="1200", issued_at=T0 + HOUR)
    state, _ = received(ledger.record, redeem, ledger.rules)
    confirm = command("ConfirmRedemption", redemption_id=redeem.command_id, issued_at=T0 + HOUR)
    ledger.state, _ = received(state, confirm, ledger.rules)
    step = ledger.play(cancellation("b1", "1500", occurred_at=T0 + 2 * HOUR))
    reversed_ = step.outputs[0]
    assert isinstance(reversed_, PointsReversed)
    assert (reversed_.points, reversed_.points_reversed, reversed_.points_unrecovered) == (
        D("1500.00"),
        D("300.00"),
        D("1200.00"),
    )
    record = ledger.record
    assert record.points_available == 0 and record.points_unrecovered == D("1200.00")
    assert (
        record.points_accrued
        - record.points_reversed
        - record.points_redeemed
        - record.points_expired
        - record.points_debited
        + record.points_credited
        == record.points_available + record.points_held
    )


@pytest.mark.parametrize("answer", ["CancelRedemption", "ConfirmRedemption", None])
def test_points_held_for_a_redemption_are_owed_until_the_hold_is_answered(
    answer: str | None,
) -> None:
    """Held points stay held (a redemption is in flight): the cancellation is owed them. Given
    back (cancelled, or timed out), the hold pays what is owed first; confirmed, what is owed
    goes with the redemption, unrecovered."""
    ledger = Ledger()
    ledger.play(bet("1500", bet_id="b1"))
    hold = command("RedeemPoints", points="1000", issued_at=T0 + HOUR)
    ledger.state, _ = received(ledger.record, hold, ledger.rules)
    step = ledger.play(cancellation("b1", "1500", occurred_at=T0 + HOUR))
    reversed_ = step.outputs[0]
    assert isinstance(reversed_, PointsReversed)
    assert (reversed_.points_reversed, reversed_.points_owed, reversed_.points_unrecovered) == (
        D("500.00"),
        D("1000.00"),
        D(0),
    )
    assert (ledger.record.points_available, ledger.record.points_held) == (0, 1000)
    if answer is None:  # not confirmed in time: the hold's timer gives it back
        step = advance(ledger.record, T0 + 2 * HOUR, ledger.rules)
        state, outputs = step.state, step.outputs
    else:
        made = command(answer, redemption_id=hold.command_id, issued_at=T0 + HOUR)
        state, outputs = received(ledger.record, made, ledger.rules)
    if answer == "ConfirmRedemption":
        (redeemed,) = [o for o in outputs if isinstance(o, PointsRedeemed)]
        assert redeemed.points_unrecovered == D("1000.00")
        assert (state.points_unrecovered, state.points_reversed) == (D("1000.00"), D("500.00"))
    else:
        (released,) = [o for o in outputs if isinstance(o, RedemptionReleased)]
        assert (released.points, released.points_reversed) == (1000, D("1000.00"))
        assert (state.points_reversed, state.points_unrecovered) == (D("1500.00"), 0)
    # nothing of the cancelled bet is left to the player, and nothing more is owed
    assert (state.points_available, state.points_held, state.points_owed) == (0, 0, 0)


def test_the_level_is_re_evaluated_under_the_normal_rules_and_the_tier_reward_is_kept() -> None:
    """A cancellation that takes a player below Silver's threshold starts the grace; the
    downgrade happens when it ends. Silver's tier-up reward was paid and stays paid: reaching
    Silver again pays nothing."""
    ledger = Ledger("lucky-sweeps")
    ledger.play(bet("600", bet_id="b1", brand_id="lucky-sweeps", currency="SC"))
    ledger.play(bet("600", bet_id="b2", brand_id="lucky-sweeps", currency="SC"))
    assert ledger.record.level_rank == 2
    rewards = [o for o in ledger.outputs if isinstance(o, TierRewardGranted)]
    assert [r.level for r in rewards] == ["Silver"]
    voided = cancellation(
        "b2", "600", brand_id="lucky-sweeps", currency="SC", occurred_at=T0 + HOUR
    )
    step = ledger.play(voided)
    assert [type(o) for o in step.outputs] == [PointsReversed]  # the grace starts, no move yet
    assert ledger.record.level_rank == 2 and ledger.record.vip_points == 600
    assert ledger.record.downgrade_pending_since == T0 + HOUR
    grace_end = ledger.rules.grace_ends(T0 + HOUR)
    down = advance(ledger.record, grace_end, ledger.rules)
    changes = [o for o in down.outputs if isinstance(o, LevelChanged)]
    assert [(c.to_level, c.reason, c.occurred_at) for c in changes] == [
        ("Bronze", "retention_missed", grace_end)
    ]
    ledger.state = down.state
    again = ledger.play(
        bet("600", bet_id="b3", brand_id="lucky-sweeps", currency="SC", occurred_at=grace_end)
    )
    assert ledger.record.level_rank == 2
    assert not [o for o in again.outputs if isinstance(o, TierRewardGranted)]


def test_a_day_closed_already_is_corrected_on_the_next_close() -> None:
    ledger = Ledger()  # aurora: 1 % cashback at Silver on the day's NGR
    ledger.play(bet("20000", bet_id="b1"))
    ledger.play(bet("1000", bet_id="b2"))
    next_day = ledger.rules.day_start(ledger.rules.day_of(T0) + 1)
    closed = advance(ledger.record, next_day, ledger.rules)
    (paid,) = [o for o in closed.outputs if isinstance(o, CashbackAwarded)]
    assert paid.ngr == D("21000.00")  # the day closed with both bets
    ledger.state = closed.state
    ledger.play(bet("5000", bet_id="b3", occurred_at=next_day + HOUR))
    ledger.play(cancellation("b2", "1000", occurred_at=next_day + 2 * HOUR))
    day_after = ledger.rules.day_start(ledger.rules.day_of(next_day) + 1)
    closed = advance(ledger.record, day_after, ledger.rules)
    (corrected,) = [o for o in closed.outputs if isinstance(o, CashbackAwarded)]
    assert corrected.ngr == D("4000.00") and corrected.amount == D("40.00")  # 5000 - 1000


def test_a_day_not_closed_yet_loses_the_stake_on_its_own_ledger() -> None:
    ledger = Ledger()
    ledger.play(bet("20000", bet_id="b1"))
    ledger.play(bet("1000", bet_id="b2"))
    ledger.play(cancellation("b2", "400", occurred_at=T0 + HOUR))
    day = ledger.rules.day_of(T0)
    assert ledger.record.ledgers[day] == DayLedger(D(21000), D(0), D(0), D(400))


def test_a_late_cancellation_on_a_closed_day_corrects_the_next_open_one() -> None:
    """A cancellation dated on a day that closed already (it arrived late) cannot reopen it:
    its correction goes to the first day still open."""
    ledger = Ledger()
    ledger.play(bet("20000", bet_id="b1"))
    next_day = ledger.rules.day_start(ledger.rules.day_of(T0) + 1)
    ledger.state = advance(ledger.record, next_day, ledger.rules).state
    ledger.play(cancellation("b1", "500", occurred_at=T0 + HOUR))
    closed_day = ledger.rules.day_of(T0)
    assert closed_day in ledger.record.closed_days
    assert closed_day not in ledger.record.ledgers
    assert ledger.record.ledgers[closed_day + 1] == DayLedger(D(0), D(0), D(0), D(500))


@pytest.mark.parametrize(
    ("bet_id", "amount", "fields", "code"),
    [
        ("nope", "10", {}, "unknown_bet"),
        ("b1", "10", {"currency": "USD"}, "currency_mismatch"),
        ("b1", "10", {"occurred_at": T0 + timedelta(days=CANCELLABLE_DAYS, seconds=1)}, "too_late"),
        ("b1", "100.01", {}, "exceeds_remaining"),
        ("b1", "10", {"occurred_at": T0 - timedelta(seconds=1)}, "before_bet"),
    ],
)
def test_a_cancellation_that_cannot_be_carried_out_changes_nothing_and_says_why(
    bet_id: str, amount: str, fields: dict[str, object], code: str
) -> None:
    ledger = Ledger()
    ledger.rules = ledger.rules.model_copy(
        update={"currencies": {**ledger.rules.currencies, "USD": ledger.rules.currencies["EUR"]}}
    )
    ledger.play(bet("100", bet_id="b1"))
    voided = cancellation(bet_id, amount, **fields)
    before = advance(ledger.record, voided.occurred_at, ledger.rules).state  # time passes
    step = ledger.play(voided)
    (refused,) = step.outputs
    assert isinstance(refused, CancellationRefused) and refused.code == code and refused.reason
    assert step.bet is None
    after = ledger.record
    assert (after.points_available, after.cumulative_turnover, after.buckets, after.ledgers) == (
        before.points_available,
        before.cumulative_turnover,
        before.buckets,
        before.ledgers,
    )


def test_a_bet_cancelled_whole_cannot_be_cancelled_again_and_a_repeat_is_a_repeat() -> None:
    ledger = Ledger()
    ledger.play(bet("100", bet_id="b1"))
    voided = cancellation("b1", "100")
    ledger.play(voided)
    state = ledger.record
    assert on_event(state, voided, ledger.rules, None, ledger.bets["b1"]).state is state
    step = ledger.play(cancellation("b1", "1"))
    (refused,) = step.outputs
    assert isinstance(refused, CancellationRefused) and refused.code == "already_cancelled"


def test_a_cancellation_folded_again_over_its_own_bet_record_does_exactly_the_same() -> None:
    """A crash whose checkpoint kept the bet's record but not the player's: the replay folds the
    cancellations again, each judged against the bet as it was before it."""
    ledger = Ledger()
    ledger.play(bet("90", bet_id="b1", category="live_casino"))
    before = ledger.record
    first, second = cancellation("b1", "30"), cancellation("b1", "60")
    steps = [ledger.play(first), ledger.play(second)]
    cut = ledger.bets["b1"]  # the bet's record has both; the player's record has neither
    again = on_event(before, first, ledger.rules, None, cut)
    assert (again.state, again.outputs, again.bet) == (
        steps[0].state,
        steps[0].outputs,
        steps[0].bet,
    )
    last = on_event(again.state, second, ledger.rules, None, cut)
    assert (last.state, last.outputs, last.bet) == (steps[1].state, steps[1].outputs, cut)


def test_a_cancellation_for_a_player_never_seen_is_rejected_without_making_a_record() -> None:
    with pytest.raises(EventRejected, match=r"unknown_bet: .* has no record"):
        Ledger().play(cancellation("b1", "10"))


amounts = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
fractions = st.lists(st.integers(min_value=1, max_value=100), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    amount=amounts,
    category=st.sampled_from(["slots", "table", "live_casino", "exclusive"]),
    weights=fractions,
    level_bets=st.lists(amounts, max_size=3),
)
def test_any_split_of_a_cancellation_takes_back_exactly_what_the_bet_did(
    amount: Decimal, category: str, weights: list[int], level_bets: list[Decimal]
) -> None:
    """Whatever the bet, its level multiplier and however its cancellation is split, the parts
    take back its points exactly (each at most what is left), and its turnover, VIP points and
    30-day figure return to what they were without it."""
    ledger = Ledger()
    for n, stake in enumerate(level_bets):  # earlier play sets the level multiplier
        ledger.play(bet(stake, bet_id=f"early-{n}"))
    before = ledger.record.clone() if ledger.state is not None else None
    ledger.play(bet(amount, bet_id="b1", category=category))
    earned = next(o for o in ledger.outputs if isinstance(o, PointsAccrued) and o.bet_id == "b1")
    total = sum(weights)
    parts = [(amount * w / total).quantize(D("0.01")) for w in weights[:-1]]
    parts = [p for p in parts if p > 0]
    parts.append(amount - sum(parts, D(0)))
    if parts[-1] <= 0:
        return  # rounding left nothing for the last part
    taken = D(0)
    for n, part in enumerate(parts):
        step = ledger.play(cancellation("b1", part, occurred_at=T0 + timedelta(minutes=n)))
        reversed_ = step.outputs[0]
        assert isinstance(reversed_, PointsReversed)
        assert reversed_.points_reversed + reversed_.points_unrecovered == reversed_.points >= 0
        taken += reversed_.points
        assert taken <= earned.points
    assert taken == earned.points
    after = ledger.record
    if before is not None:
        assert after.cumulative_turnover == before.cumulative_turnover
        assert after.vip_points == before.vip_points
        assert after.points_available == before.points_available
    else:
        assert after.cumulative_turnover == after.vip_points == after.points_available == 0
    assert PlacedBet.from_json(ledger.bets["b1"].to_json()) == ledger.bets["b1"]
