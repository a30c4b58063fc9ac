"""The synthetic stream: deterministic, valid, realistically skewed, and published as reported."""

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice

import pytest

from loyalty_streams.devtools.generator import (
    BRANDS,
    SCALES,
    GeneratorReport,
    synthetic_events,
)
from loyalty_streams.domain.events import (
    BetPlaced,
    GameCategory,
    PlayerEvent,
    WinCredited,
    decode_player_event,
)

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _events(count: int, *, players: int = 500, seed: int = 7) -> list[PlayerEvent]:
    return list(islice(synthetic_events(players, seed, START), count))


@pytest.fixture(scope="module")
def stream() -> list[PlayerEvent]:
    return _events(5000)


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    first = [event.model_dump_json() for event in _events(2000)]
    assert first == [event.model_dump_json() for event in _events(2000)]
    assert first != [event.model_dump_json() for event in _events(2000, seed=8)]


def test_every_event_round_trips_through_the_contract(stream: list[PlayerEvent]) -> None:
    for event in stream:
        raw = event.model_dump_json()
        decoded = decode_player_event(raw)
        assert decoded.model_dump_json() == raw
        assert decoded.key == f"{event.brand_id}:{event.player_id}"


def test_event_ids_are_unique(stream: list[PlayerEvent]) -> None:
    assert len({event.event_id for event in stream}) == len(stream)


def test_event_time_advances_from_start_in_utc(stream: list[PlayerEvent]) -> None:
    times = [event.occurred_at for event in stream]
    assert times == sorted(times)
    assert times[0] >= START
    assert all(moment.utcoffset() == timedelta(0) for moment in times)


def test_start_may_be_in_any_offset_but_not_naive() -> None:
    oslo = datetime(2026, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert next(synthetic_events(10, 1, oslo)).occurred_at >= START
    with pytest.raises(ValueError, match="timezone-aware"):
        next(synthetic_events(10, 1, datetime(2026, 3, 1)))


def test_wins_settle_earlier_bets_of_the_same_player(stream: list[PlayerEvent]) -> None:
    bets: dict[str, BetPlaced] = {}
    settled: set[str] = set()
    wins = 0
    for event in stream:
        if isinstance(event, BetPlaced):
            bets[event.bet_id] = event
        elif isinstance(event, WinCredited):
            wins += 1
            bet = bets[event.bet_id]
            assert (bet.key, bet.currency) == (event.key, event.currency)
            assert bet.occurred_at <= event.occurred_at
            assert event.bet_id not in settled
            settled.add(event.bet_id)
    assert wins > 500


def test_mix_has_every_event_type_and_game_category(stream: list[PlayerEvent]) -> None:
    types = Counter(event.type for event in stream)
    assert set(types) == {"BetPlaced", "WinCredited", "DepositMade", "BonusRedeemed"}
    assert types["BetPlaced"] > types["WinCredited"] > types["DepositMade"]
    assert types["DepositMade"] > types["BonusRedeemed"]
    categories = Counter(event.game_category for event in stream if isinstance(event, BetPlaced))
    assert set(categories) == set(GameCategory)
    ranked = [category for category, _ in categories.most_common()]
    assert ranked == [
        GameCategory.SLOTS,
        GameCategory.LIVE_CASINO,
        GameCategory.TABLE,
        GameCategory.EXCLUSIVE,
    ]


def test_players_stay_in_one_brand_and_its_currencies(stream: list[PlayerEvent]) -> None:
    currencies_of = {brand.brand_id: {c for c, _ in brand.currencies} for brand in BRANDS}
    brands_of: dict[str, set[str]] = {}
    for event in stream:
        assert event.currency in currencies_of[event.brand_id]
        brands_of.setdefault(event.player_id, set()).add(event.brand_id)
    assert all(len(brands) == 1 for brands in brands_of.values())
    assert set(currencies_of) == {event.brand_id for event in stream}


def test_bets_are_within_their_currency_stakes(stream: list[PlayerEvent]) -> None:
    for event in stream:
        if isinstance(event, BetPlaced):
            scale = SCALES[event.currency]
            assert scale.min_bet <= event.amount <= scale.max_bet
            assert event.amount % scale.step == 0
            assert event.amount.as_tuple().exponent == -2


def test_a_few_heavy_players_hold_most_of_the_turnover(stream: list[PlayerEvent]) -> None:
    turnover: dict[str, float] = {}
    for event in stream:
        if isinstance(event, BetPlaced):
            turnover[event.key] = (
                turnover.get(event.key, 0.0) + float(event.amount) / SCALES[event.currency].per_eur
            )
    ranked = sorted(turnover.values(), reverse=True)
    assert sum(ranked[: len(ranked) // 10]) > 0.5 * sum(ranked)


def test_return_to_player_is_realistic() -> None:
    events = _events(60_000, players=2000, seed=3)
    settled_before = events[-1].occurred_at - timedelta(minutes=1)  # later bets may still win
    bets = {
        event.bet_id: event
        for event in events
        if isinstance(event, BetPlaced) and event.occurred_at < settled_before
    }
    wagered = sum(float(bet.amount) / SCALES[bet.currency].per_eur for bet in bets.values())
    won = sum(
        float(event.amount) / SCALES[event.currency].per_eur
        for event in events
        if isinstance(event, WinCredited) and event.bet_id in bets
    )
    assert 0.85 < won / wagered < 1.0


def test_report_totals_are_exact_per_brand_currency_and_category() -> None:
    report = GeneratorReport()
    events = _events(3000)
    for event in events:
        report.record(event)
    bets = [event for event in events if isinstance(event, BetPlaced)]
    assert report.sent == len(events) == sum(report.by_brand.values())
    assert report.by_type["BetPlaced"] == len(bets) == sum(report.bets.values())
    for (brand_id, currency), total in report.wagered.items():
        assert total == sum(
            (b.amount for b in bets if (b.brand_id, b.currency) == (brand_id, currency)),
            Decimal(0),
        )
    assert sum(report.wagered.values()) == sum(report.wagered_by_category.values())
    rendered = report.render()
    assert "lucky-sweeps" in rendered
    assert "GC" in rendered
    assert "delivery failures" in rendered
