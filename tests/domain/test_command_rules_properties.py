"""Conservation of points over any mix of events, commands, cancelled bets and time passing
(hypothesis)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty_streams.domain.cancellations import PlacedBet
from loyalty_streams.domain.commands import Command, CommandEnvelope
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import (
    AdjustmentDirection,
    CancellationRefused,
    CommandRejected,
    Output,
    PointsAccrued,
    PointsAdjusted,
    PointsExpired,
    PointsRedeemed,
    PointsReversed,
    RedemptionReleased,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.time_rules import advance, on_event
from tests.domain.builders import T0, bet, cancellation, command, programme, received, win

minutes = st.integers(min_value=0, max_value=20).map(lambda m: timedelta(minutes=m))
gaps = st.one_of(
    minutes,
    minutes,
    minutes,
    st.integers(min_value=0, max_value=400).map(lambda d: timedelta(days=d)),
)
"""Time between two steps: mostly minutes (holds are confirmed or not), sometimes long lulls."""
points = st.integers(min_value=10, max_value=50).map(lambda n: str(n * 100))
fine_points = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(50000), places=2).map(str)
redemption_ids = st.sampled_from(["r1", "r2"])
bet_ids = st.sampled_from(["b1", "b2", "b3"])


@dataclass(frozen=True)
class Cancel:
    """A cancellation of a share of what is left of a bet (more than is left: refused)."""

    bet_id: str
    share: Decimal


Made = PlayerEvent | Command | Cancel | None
Step = Callable[[datetime], Made | list[Made]]
"""A step at a moment: an event, a command, None for time passing, or several of them."""


def steps() -> st.SearchStrategy[Step]:
    events = st.one_of(
        st.builds(lambda a, b: lambda t: bet(a, occurred_at=t, bet_id=b), fine_points, bet_ids),
        st.builds(lambda a: lambda t: win(a, occurred_at=t), fine_points),
        st.builds(
            lambda b, share: lambda t: Cancel(b, share),
            st.one_of(bet_ids, st.just("never-placed")),
            st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.33"), Decimal(2)]),
        ),
    )
    commands = st.one_of(
        st.builds(
            lambda rid, p: lambda t: command("RedeemPoints", command_id=rid, points=p, issued_at=t),
            redemption_ids,
            points,
        ),
        st.builds(
            lambda rid, kind: lambda t: command(kind, redemption_id=rid, issued_at=t),
            redemption_ids,
            st.sampled_from(["ConfirmRedemption", "ConfirmRedemption", "CancelRedemption"]),
        ),
        st.builds(
            lambda d, p: (
                lambda t: command(
                    "AdjustPoints", direction=d, points=p, reason="r", actor="ops", issued_at=t
                )
            ),
            st.sampled_from(["credit", "debit"]),
            fine_points,
        ),
        st.builds(
            lambda level: (
                lambda t: command(
                    "ForceLevel",
                    level=level,
                    reason="r",
                    actor="ops",
                    issued_at=t,
                    until=t + timedelta(days=3),
                )
            ),
            st.sampled_from(["Bronze", "Gold", "Platinum"]),
        ),
        st.just(lambda t: command("RecheckLevel", reason="r", actor="ops", issued_at=t)),
    )
    # a request answered within minutes, in time or not: random single commands rarely meet
    redemptions = st.builds(
        lambda p, kind, wait: (
            lambda t: [
                command("RedeemPoints", command_id=f"rr-{t:%y%j%H%M}", points=p, issued_at=t),
                command(kind, redemption_id=f"rr-{t:%y%j%H%M}", issued_at=t + wait),
            ]
        ),
        points,
        st.sampled_from(["ConfirmRedemption", "CancelRedemption"]),
        st.integers(min_value=0, max_value=40).map(lambda m: timedelta(minutes=m)),
    )
    # a bet cancelled soon after, sometimes once its points were redeemed: random single steps
    # rarely cancel a bet they placed
    cancelled = st.builds(
        lambda a, r, share: (
            lambda t: [
                bet(a, occurred_at=t, bet_id=f"bc-{t:%y%j%H%M}"),
                *(
                    [
                        command(
                            "RedeemPoints", command_id=f"bc-{t:%y%j%H%M}", points=r, issued_at=t
                        ),
                        command("ConfirmRedemption", redemption_id=f"bc-{t:%y%j%H%M}", issued_at=t),
                    ]
                    if r
                    else []
                ),
                Cancel(f"bc-{t:%y%j%H%M}", share),
            ]
        ),
        fine_points,
        st.one_of(st.none(), points),
        st.sampled_from([Decimal(1), Decimal("0.5"), Decimal("0.33")]),
    )
    return st.one_of(events, commands, redemptions, cancelled, st.just(lambda t: None))


def run(plan: list[tuple[Step, timedelta]]) -> tuple[PlayerState | None, list[Output]]:
    state: PlayerState | None = None
    outputs: list[Output] = []
    bets: dict[str, PlacedBet] = {}
    clock = T0
    for step, gap in plan:
        clock += gap
        made = step(clock)
        for item in made if isinstance(made, list) else [made]:
            state, emitted = _run_one(state, item, clock, bets)
            outputs.extend(emitted)
    return state, outputs


def _run_one(
    state: PlayerState | None, made: Made, clock: datetime, bets: dict[str, PlacedBet]
) -> tuple[PlayerState | None, tuple[Output, ...]]:
    """One step, as the stream takes it; the bets' records kept beside the player in `bets`."""
    if made is None:
        if state is None:
            return None, ()
        swept = advance(state, clock, programme())
        return swept.state, swept.outputs
    if isinstance(made, CommandEnvelope):
        return received(state, made, programme())  # type: ignore[arg-type]
    if isinstance(made, Cancel):
        placed = bets.get(made.bet_id)
        left = placed.remaining if placed is not None else Decimal(10)
        amount = max((left * made.share).quantize(Decimal("0.01")), Decimal("0.01"))
        made = cancellation(made.bet_id, amount, occurred_at=clock)
        if state is None:  # a dead letter: nothing placed, no record (test_cancellations)
            return None, ()
    step = on_event(state, made, programme(), None, bets.get(getattr(made, "bet_id", "")))  # type: ignore[arg-type]
    if step.bet is not None:
        bets[step.bet.bet_id] = step.bet
    return step.state, step.outputs


def total(outputs: list[Output], kind: type, **match: object) -> Decimal:
    return sum(
        (
            o.points  # type: ignore[attr-defined]
            for o in outputs
            if isinstance(o, kind) and all(getattr(o, k) == v for k, v in match.items())
        ),
        Decimal(0),
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(steps(), gaps), min_size=1, max_size=40))
def test_points_are_conserved_and_never_negative(plan: list[tuple[Step, timedelta]]) -> None:
    state, outputs = run(plan)
    if state is None:
        return
    accrued = total(outputs, PointsAccrued)
    # taken when a bet was cancelled, or from a hold given back
    reversed_ = sum(
        (o.points_reversed for o in outputs if isinstance(o, PointsReversed | RedemptionReleased)),
        Decimal(0),
    )
    # no longer there when a bet was cancelled, or gone with a redemption it was owed from
    unrecovered = sum(
        (o.points_unrecovered for o in outputs if isinstance(o, PointsReversed | PointsRedeemed)),
        Decimal(0),
    )
    redeemed = total(outputs, PointsRedeemed)
    expired = total(outputs, PointsExpired)
    credited = total(outputs, PointsAdjusted, direction=AdjustmentDirection.CREDIT)
    debited = total(outputs, PointsAdjusted, direction=AdjustmentDirection.DEBIT)
    # the outputs explain the balance exactly ...
    assert accrued - reversed_ - redeemed - expired - debited + credited == (
        state.points_available + state.points_held
    )
    # ... and so do the record's own counters
    assert (state.points_accrued, state.points_redeemed, state.points_expired) == (
        accrued,
        redeemed,
        expired,
    )
    assert (state.points_credited, state.points_debited) == (credited, debited)
    assert (state.points_reversed, state.points_unrecovered) == (reversed_, unrecovered)
    # what is owed from holds is never more than is held, and every cancellation adds up
    assert 0 <= state.points_owed <= state.points_held
    assert all(
        o.points_reversed + o.points_owed + o.points_unrecovered == o.points
        for o in outputs
        if isinstance(o, PointsReversed)
    )
    assert state.points_available >= 0 and state.points_held >= 0
    assert state.cumulative_turnover >= 0 and state.vip_points >= 0
    assert state.points_held == sum((h.points for h in state.holds.values()), Decimal(0))
    # every rejection says why
    assert all(o.reason for o in outputs if isinstance(o, CommandRejected | CancellationRefused))
