"""Property-based rules of money, points and levels (hypothesis)."""

from datetime import timedelta
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from loyalty_streams.domain.event_rules import apply, target_index
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import LevelChanged, PointsAccrued
from loyalty_streams.domain.player import RECENT_EVENT_IDS, PlayerState, SourcePosition
from loyalty_streams.domain.time_rules import advance
from tests.domain.builders import T0, bet, bonus, deposit, programme, win

amounts = st.decimals(min_value=0, max_value=Decimal("250000"), places=2).map(str)
categories = st.sampled_from(["slots", "table", "live_casino", "exclusive"])
moments = st.integers(min_value=0, max_value=120 * 24).map(lambda h: T0 + timedelta(hours=h))


@st.composite
def events(draw: st.DrawFn) -> PlayerEvent:
    kind = draw(st.sampled_from(["bet", "bet", "bet", "win", "deposit", "bonus"]))
    amount, when = draw(amounts), draw(moments)
    if kind == "bet":
        return bet(amount, draw(categories), occurred_at=when)
    maker = {"win": win, "deposit": deposit, "bonus": bonus}[kind]
    return maker(amount, occurred_at=when)


streams = st.lists(events(), min_size=1, max_size=40)


def fold(
    stream: list[PlayerEvent], state: PlayerState | None = None, first_offset: int = 0
) -> tuple[PlayerState | None, list[object]]:
    outputs: list[object] = []
    for offset, event in enumerate(stream, start=first_offset):
        source = SourcePosition("casino.player-events:0", offset)
        state, emitted = apply(state, event, programme(), source)
        outputs.extend(emitted)
    return state, outputs


@settings(max_examples=200)
@given(streams)
def test_points_are_never_negative_and_balances_are_conserved(stream: list[PlayerEvent]) -> None:
    state, outputs = fold(stream)
    assert state is not None
    accrued = [o.points for o in outputs if isinstance(o, PointsAccrued)]
    assert all(points >= 0 for points in accrued)
    assert sum(accrued, Decimal(0)) == state.points_accrued
    assert state.points_available + state.points_held == state.points_accrued
    assert state.points_available >= 0 and state.points_held >= 0


@settings(max_examples=200)
@given(streams, st.integers(min_value=0, max_value=39))
def test_redelivering_any_event_from_its_offset_changes_nothing(
    stream: list[PlayerEvent], index: int
) -> None:
    once, _ = fold(stream)
    index %= len(stream)
    source = SourcePosition("casino.player-events:0", index)
    twice, emitted = apply(once, stream[index], programme(), source)
    assert emitted == () and twice == once


@settings(max_examples=200)
@given(streams, st.integers(min_value=1, max_value=RECENT_EVENT_IDS))
def test_republishing_a_recent_event_under_a_new_offset_changes_nothing(
    stream: list[PlayerEvent], back: int
) -> None:
    once, _ = fold(stream)
    event = stream[-min(back, len(stream))]
    source = SourcePosition("casino.player-events:0", len(stream))
    twice, emitted = apply(once, event, programme(), source)
    assert emitted == () and twice == once


@settings(max_examples=200)
@given(streams, st.integers(min_value=0, max_value=40))
def test_folding_in_two_halves_equals_folding_in_one_go(
    stream: list[PlayerEvent], cut: int
) -> None:
    cut = min(cut, len(stream))
    whole, whole_outputs = fold(stream)
    first, first_outputs = fold(stream[:cut])
    restored = None if first is None else PlayerState.from_json(first.to_json())
    second, second_outputs = fold(stream[cut:], restored, first_offset=cut)
    assert second == whole
    assert first_outputs + second_outputs == whole_outputs


@given(
    st.decimals(min_value=0, max_value=Decimal("1e7"), places=2),
    st.decimals(min_value=0, max_value=Decimal("1e7"), places=2),
    st.decimals(min_value=0, max_value=Decimal("1e6"), places=2),
)
def test_level_is_monotone_in_turnover_at_a_fixed_thirty_day_figure(
    low: Decimal, high: Decimal, rolling: Decimal
) -> None:
    low, high = sorted((low, high))
    prog = programme()
    assert target_index(prog, low, lambda: rolling) <= target_index(prog, high, lambda: rolling)


@settings(max_examples=100)
@given(streams, st.integers(min_value=0, max_value=200))
@example(  # a late bet after a win a month ahead: time at T0 must not count it again
    [
        bet("25000.00", "slots", occurred_at=T0),
        win("0.00", occurred_at=T0 + timedelta(days=29, hours=11)),
        bet("25000.00", "slots", occurred_at=T0),
    ],
    0,
)
@example(  # a late bet that reaches a threshold after its day left the window: a close due
    # before the record's last activity must not judge the level at that earlier time
    [
        bet("41882.43", "slots", occurred_at=T0),
        win("0.00", occurred_at=T0 + timedelta(days=29, hours=11)),
        bet("8117.57", "slots", occurred_at=T0),
    ],
    1,
)
def test_time_alone_never_raises_a_level_and_never_touches_points_before_expiry(
    stream: list[PlayerEvent], days_later: int
) -> None:
    state, _ = fold(stream)
    assert state is not None
    later = advance(state, T0 + timedelta(days=days_later), programme())
    assert later.state.level_rank <= state.level_rank
    assert later.state.points_available == state.points_available
    assert all(o.direction == "down" for o in later.outputs if isinstance(o, LevelChanged))
