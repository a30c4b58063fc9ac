"""The synthetic stream: deterministic, valid, realistically skewed, and published as reported."""

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice
from typing import Any

import pytest

from loyalty_streams.devtools.generator import (
    BRANDS,
    CANCEL_REASONS,
    CANCEL_SECONDS,
    PACKAGES,
    SCALES,
    STORE_CURRENCY,
    GeneratorReport,
    synthetic_events,
)
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.events import (
    BetCancelled,
    BetPlaced,
    CoinPackPurchased,
    DepositMade,
    GameCategory,
    PlayerEvent,
    WinCredited,
    decode_player_event,
)
from loyalty_streams.domain.outputs import CancellationRefused, PointsReversed
from loyalty_streams.domain.programme import shipped_programmes
from loyalty_streams.domain.time_rules import on_event

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _events(
    count: int, *, players: int = 500, seed: int = 7, every_kind: bool = False
) -> list[PlayerEvent]:
    kinds = {"cancellations": every_kind, "purchases": every_kind}
    return list(islice(synthetic_events(players, seed, START, **kinds), count))


@pytest.fixture(scope="module")
def stream() -> list[PlayerEvent]:
    return _events(5000)


@pytest.fixture(scope="module")
def full() -> list[PlayerEvent]:
    """A stream with cancellations and coin purchases, long enough for a few hundred of each."""
    return _events(40_000, every_kind=True)


@pytest.mark.parametrize("every_kind", [False, True])
def test_same_seed_same_stream_other_seed_other_stream(every_kind: bool) -> None:
    first = [event.model_dump_json() for event in _events(2000, every_kind=every_kind)]
    assert first == [event.model_dump_json() for event in _events(2000, every_kind=every_kind)]
    other = _events(2000, seed=8, every_kind=every_kind)
    assert first != [event.model_dump_json() for event in other]


def test_the_new_kinds_only_when_asked_for(stream: list[PlayerEvent]) -> None:
    assert not any(isinstance(event, BetCancelled | CoinPackPurchased) for event in stream)
    cancels = _events(5000, every_kind=True)
    assert any(isinstance(event, BetCancelled) for event in cancels)
    assert any(isinstance(event, CoinPackPurchased) for event in cancels)
    only = list(islice(synthetic_events(500, 7, START, cancellations=True), 5000))
    assert not any(isinstance(event, CoinPackPurchased) for event in only)
    assert any(isinstance(event, BetCancelled) for event in only)


def test_every_event_round_trips_through_the_contract(
    stream: list[PlayerEvent], full: list[PlayerEvent]
) -> None:
    for event in stream + full:
        raw = event.model_dump_json()
        decoded = decode_player_event(raw)
        assert decoded.model_dump_json() == raw
        assert decoded.key == f"{event.brand_id}:{event.player_id}"


def test_event_ids_are_unique(stream: list[PlayerEvent], full: list[PlayerEvent]) -> None:
    assert len({event.event_id for event in stream}) == len(stream)
    assert len({event.event_id for event in full}) == len(full)


@pytest.mark.parametrize("kinds", ["classic", "every kind"])
def test_event_time_advances_from_start_in_utc(
    kinds: str, stream: list[PlayerEvent], full: list[PlayerEvent]
) -> None:
    times = [event.occurred_at for event in (stream if kinds == "classic" else full)]
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


def test_cancellations_cancel_an_earlier_bet_of_the_same_player(full: list[PlayerEvent]) -> None:
    bets: dict[str, BetPlaced] = {}
    cancelled: dict[str, Decimal] = {}
    parts: Counter[str] = Counter()
    for event in full:
        if isinstance(event, BetPlaced):
            bets[event.bet_id] = event
        elif isinstance(event, BetCancelled):
            bet = bets[event.bet_id]  # placed earlier in the stream
            assert (bet.key, bet.currency) == (event.key, event.currency)
            delay = (event.occurred_at - bet.occurred_at).total_seconds()
            assert CANCEL_SECONDS[0] <= delay <= 2 * CANCEL_SECONDS[1]
            assert event.reason in CANCEL_REASONS
            assert event.amount > 0 and event.amount % SCALES[event.currency].step == 0
            assert event.amount.as_tuple().exponent == -2
            cancelled[event.bet_id] = cancelled.get(event.bet_id, Decimal(0)) + event.amount
            parts[event.bet_id] += 1
    assert all(amount <= bets[bet_id].amount for bet_id, amount in cancelled.items())
    whole = [b for b, amount in cancelled.items() if amount == bets[b].amount and parts[b] == 1]
    partial = [b for b, amount in cancelled.items() if amount < bets[b].amount]
    rest = [b for b, amount in cancelled.items() if amount == bets[b].amount and parts[b] == 2]
    assert whole and partial and rest
    assert len(whole) > len(partial) + len(rest)  # most cancellations are of the whole bet
    # a small share: one bet in a hundred
    assert 0.005 < len(cancelled) / len(bets) < 0.02


def test_a_cancelled_bet_does_not_win(full: list[PlayerEvent]) -> None:
    cancelled = {event.bet_id for event in full if isinstance(event, BetCancelled)}
    won = {event.bet_id for event in full if isinstance(event, WinCredited)}
    assert cancelled and won and not cancelled & won


def test_every_cancellation_is_carried_out_by_the_rules(full: list[PlayerEvent]) -> None:
    """Folded as a worker folds them (the bet's record kept beside the player's), each
    cancellation reverses its part of a bet, none is refused, and the points are conserved."""
    catalogue = Catalogue(shipped_programmes())
    states: dict[str, Any] = {}
    placed: dict[tuple[str, str], Any] = {}
    reversed_: list[PointsReversed] = []
    for event in full:
        stored = placed.get((event.key, event.bet_id)) if isinstance(event, BetCancelled) else None
        step = on_event(
            states.get(event.key),
            event,
            lambda at, brand=event.brand_id: catalogue.in_effect(brand, at),
            None,
            stored,
        )
        states[event.key] = step.state
        if step.bet is not None:
            placed[(event.key, step.bet.bet_id)] = step.bet
        assert not any(isinstance(output, CancellationRefused) for output in step.outputs)
        reversed_ += [output for output in step.outputs if isinstance(output, PointsReversed)]
    assert len(reversed_) == sum(isinstance(event, BetCancelled) for event in full)
    assert sum(output.points for output in reversed_) > 0
    for state in states.values():
        assert state.points_available >= 0
        assert (
            state.points_accrued - state.points_reversed - state.points_redeemed
            - state.points_expired - state.points_debited + state.points_credited
            == state.points_available + state.points_held
        )  # fmt: skip


def test_sweepstakes_players_buy_coin_packages_in_usd(full: list[PlayerEvent]) -> None:
    sweepstakes = {brand.brand_id for brand in BRANDS if brand.sweepstakes}
    assert sweepstakes == {"lucky-sweeps"}
    packages = {package.package_id: package for package in PACKAGES}
    purchases = [event for event in full if isinstance(event, CoinPackPurchased)]
    for event in purchases:
        assert event.brand_id in sweepstakes
        package = packages[event.package_id]
        assert (event.amount, event.currency) == (package.price, STORE_CURRENCY)
        assert (event.gc, event.sc) == (package.gc, package.sc)
        assert event.dedupe_id == f"purchase:{event.key}:{event.purchase_id}"
    assert len({event.purchase_id for event in purchases}) == len(purchases)
    sweeps_events = [event for event in full if event.brand_id in sweepstakes]
    # the sweepstakes brand's money comes in as purchases, not deposits: about 4 % of its actions
    assert not any(isinstance(event, DepositMade) for event in sweeps_events)
    assert 0.02 < len(purchases) / len(sweeps_events) < 0.06
    assert any(isinstance(event, DepositMade) for event in full)  # the other brands still do
    bought = Counter(event.package_id for event in purchases)
    assert len(bought) >= 5  # most of the store, the small packages most often
    assert bought[PACKAGES[0].package_id] > bought[PACKAGES[-1].package_id]


def test_heavier_players_buy_bigger_packages(full: list[PlayerEvent]) -> None:
    bets: Counter[str] = Counter()
    spent: dict[str, list[Decimal]] = {}
    for event in full:
        if isinstance(event, BetPlaced):
            bets[event.key] += 1
        elif isinstance(event, CoinPackPurchased):
            spent.setdefault(event.key, []).append(event.amount)
    ranked = sorted(spent, key=bets.__getitem__, reverse=True)
    heavy, light = ranked[: len(ranked) // 10], ranked[len(ranked) // 2 :]

    def mean_price(keys: list[str]) -> Decimal:
        prices = [price for key in keys for price in spent[key]]
        return sum(prices, Decimal(0)) / len(prices)

    assert mean_price(heavy) > Decimal("1.5") * mean_price(light)


def test_report_counts_cancellations_and_coin_packs(full: list[PlayerEvent]) -> None:
    report = GeneratorReport()
    for event in full:
        report.record(event)
    cancels = [event for event in full if isinstance(event, BetCancelled)]
    assert report.by_type["BetCancelled"] == len(cancels) == sum(report.cancellations.values())
    for key, total in report.cancelled.items():
        assert total == sum(
            (c.amount for c in cancels if (c.brand_id, c.currency) == key), Decimal(0)
        )
        assert total < report.wagered[key]
    purchases = [event for event in full if isinstance(event, CoinPackPurchased)]
    assert sum(report.coin_packs.values()) == len(purchases) == report.by_type["CoinPackPurchased"]
    assert report.by_currency[STORE_CURRENCY] == len(purchases)
    rendered = report.render()
    assert "BetCancelled" in rendered and "CoinPackPurchased" in rendered
    assert "coin packs:" in rendered and "cancelled" in rendered
