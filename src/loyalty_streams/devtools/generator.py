"""A realistic synthetic stream of casino player events, for the demo, the tests and benchmarks.

Loyalty logic is only interesting on realistic traffic: a few heavy players who wager most of the
money (they are the ones who climb VIP levels), many small ones, wins that settle earlier bets at a
believable RTP, and amounts in each currency's own scale (a gold-coin bet is in the thousands). The
stream is a pure function of its seed, so a test or a benchmark can replay it exactly; `run`
publishes it to Kafka at a chosen rate and reports what it sent, so the demo can compare the
turnover it generated with the points the workers produced.

Two kinds of event are asked for by name (`run` asks for both, `synthetic_events` for neither,
so a stream drawn without them is the same as before they existed):

- `cancellations`: 1 bet in 100 is cancelled a few seconds after it (a voided round or a
  rollback, in the bet's currency): whole, or in part (3 in 10), the rest of a part sometimes
  (1 in 2) later too. A cancelled bet does not win.
- `purchases`: at a sweepstakes brand (GC/SC), the players' money comes in as coin packages
  bought in the store (`PACKAGES`, priced in USD), not as deposits; heavier players buy bigger
  packages.
"""

import heapq
import math
import time
from bisect import bisect
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate, count
from random import Random
from typing import Any, NamedTuple

from confluent_kafka import KafkaError, Message

from loyalty_streams.domain.events import (
    BetCancelled,
    BetPlaced,
    BonusRedeemed,
    CancellationReason,
    CoinPackPurchased,
    DepositMade,
    GameCategory,
    PlayerEvent,
    WinCredited,
)
from loyalty_streams.domain.money import DECIMAL_PLACES, Currency
from loyalty_streams.kafka.clients import KafkaClients, load_producer_config
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.settings import Settings

SWEEPSTAKES_COINS = frozenset({Currency.GC, Currency.SC})


@dataclass(frozen=True, slots=True)
class Brand:
    """A casino site: the first part of every player's key, and the currencies it takes."""

    brand_id: str
    share: float  # of the player population
    currencies: tuple[tuple[Currency, float], ...]  # each with its share of the brand's players
    switch_probability: float  # chance that one action uses another of the brand's currencies

    @property
    def sweepstakes(self) -> bool:
        """A sweepstakes brand: its players play coins bought in the store as packages."""
        return any(currency in SWEEPSTAKES_COINS for currency, _ in self.currencies)


BRANDS: tuple[Brand, ...] = (
    Brand("aurora-casino", 0.45, ((Currency.EUR, 1.0),), 0.0),
    Brand(
        "borealis-casino",
        0.30,
        ((Currency.EUR, 0.25), (Currency.SEK, 0.45), (Currency.NOK, 0.30)),
        0.02,
    ),
    # Sweepstakes players hold both coins and switch between them often.
    Brand("lucky-sweeps", 0.25, ((Currency.GC, 0.70), (Currency.SC, 0.30)), 0.25),
)
"""The brand catalogue players are drawn from."""


@dataclass(frozen=True, slots=True)
class CurrencyScale:
    """How one currency compares with EUR, and the stakes its games accept."""

    per_eur: float
    min_bet: Decimal
    max_bet: Decimal
    step: Decimal  # stakes, deposits and bonuses are multiples of this; wins are not


SCALES: dict[Currency, CurrencyScale] = {
    Currency.EUR: CurrencyScale(1.0, Decimal("0.10"), Decimal("500"), Decimal("0.10")),
    Currency.SEK: CurrencyScale(11.5, Decimal("1"), Decimal("5000"), Decimal("1")),
    Currency.NOK: CurrencyScale(11.7, Decimal("1"), Decimal("5000"), Decimal("1")),
    Currency.SC: CurrencyScale(1.0, Decimal("0.10"), Decimal("500"), Decimal("0.10")),
    Currency.GC: CurrencyScale(5000.0, Decimal("1000"), Decimal("2500000"), Decimal("100")),
}
"""Every currency the brands use; `per_eur` also lets callers compare turnover across them."""

CATEGORY_WEIGHTS: tuple[tuple[GameCategory, float], ...] = (
    (GameCategory.SLOTS, 0.70),
    (GameCategory.LIVE_CASINO, 0.17),
    (GameCategory.TABLE, 0.10),
    (GameCategory.EXCLUSIVE, 0.03),
)

GAMES: dict[GameCategory, tuple[str, ...]] = {
    GameCategory.SLOTS: (
        "book-of-dead",
        "starburst",
        "gates-of-olympus",
        "sweet-bonanza",
        "big-bass-bonanza",
        "gonzos-quest",
        "dead-or-alive-2",
        "reactoonz",
    ),
    GameCategory.LIVE_CASINO: (
        "lightning-roulette",
        "crazy-time",
        "live-blackjack",
        "monopoly-live",
    ),
    GameCategory.TABLE: ("european-roulette", "blackjack-classic", "baccarat", "casino-holdem"),
    GameCategory.EXCLUSIVE: ("aurora-fortune", "northern-lights-megaways"),
}


@dataclass(frozen=True, slots=True)
class GameOdds:
    """Payout model of a category: its RTP, how often a round pays, and when the win lands."""

    rtp: float
    win_probability: float
    even_money: bool  # pays exactly 2x (table style) rather than a random multiple (slot style)
    settle_seconds: tuple[float, float]  # event-time delay of the win after its bet


ODDS: dict[GameCategory, GameOdds] = {
    GameCategory.SLOTS: GameOdds(0.95, 0.30, False, (0.5, 4.0)),
    GameCategory.LIVE_CASINO: GameOdds(0.965, 0.965 / 2, True, (15.0, 45.0)),
    GameCategory.TABLE: GameOdds(0.97, 0.97 / 2, True, (5.0, 30.0)),
    GameCategory.EXCLUSIVE: GameOdds(0.92, 0.25, False, (0.5, 4.0)),
}

DEPOSIT_PROBABILITY = 0.04  # at a sweepstakes brand with `purchases`: a coin package bought
BONUS_PROBABILITY = 0.02
CANCEL_PROBABILITY = 0.01  # of bets, with `cancellations`
CANCEL_PART_PROBABILITY = 0.3  # of cancellations: a part of the stake, not the whole bet
CANCEL_REST_PROBABILITY = 0.5  # of partial cancellations: the rest is cancelled later too
CANCEL_SECONDS = (2.0, 20.0)  # event-time delay of a cancellation after its bet (or its part)
CANCEL_REASONS = (CancellationReason.ROUND_VOIDED, CancellationReason.ROLLBACK)  # casino games
PARETO_ALPHA = 1.2  # player activity: a few players place most of the bets
MAX_ACTIVITY = 120.0  # keeps a single whale from taking over a small population
_ZERO = Decimal(0)
_QUANTUM = {currency: Decimal(1).scaleb(-places) for currency, places in DECIMAL_PLACES.items()}


@dataclass(frozen=True, slots=True)
class CoinPackage:
    """A package in a sweepstakes store: its price in USD, the gold coins it holds and the sweeps
    coins that come free with them (one SC a dollar), and how often it is bought."""

    package_id: str
    price: Decimal
    gc: Decimal
    sc: Decimal
    share: float


PACKAGES: tuple[CoinPackage, ...] = (
    CoinPackage("gc-starter-2", Decimal("1.99"), Decimal("10000.00"), Decimal("2.00"), 0.28),
    CoinPackage("gc-5", Decimal("4.99"), Decimal("25000.00"), Decimal("5.00"), 0.24),
    CoinPackage("gc-10", Decimal("9.99"), Decimal("50000.00"), Decimal("10.00"), 0.20),
    CoinPackage("gc-20", Decimal("19.99"), Decimal("100000.00"), Decimal("20.00"), 0.13),
    CoinPackage("gc-50", Decimal("49.99"), Decimal("250000.00"), Decimal("50.00"), 0.09),
    CoinPackage("gc-100", Decimal("99.99"), Decimal("500000.00"), Decimal("100.00"), 0.05),
    CoinPackage("gc-500", Decimal("499.99"), Decimal("2500000.00"), Decimal("500.00"), 0.01),
)
"""The store of the sweepstakes brands, cheapest first (priced like the GC scale: 5,000 GC a
dollar)."""
STORE_CURRENCY = Currency.USD


@dataclass(frozen=True, slots=True)
class _Player:
    brand_id: str
    player_id: str
    currency: Currency
    other_currencies: tuple[Currency, ...]
    switch_probability: float
    log_stake_eur: float  # log of the median stake; heavy players also bet bigger
    sweepstakes: bool  # buys coin packages (with `purchases`) rather than depositing
    bigger_packs: int  # how many packages up from the drawn one this player buys


class _PendingWin(NamedTuple):
    """A win drawn with its bet, published once event time reaches `due`.

    Plain tuples rather than events: at high rates tens of thousands wait here, and many never
    come due in a short run (why: docs/decisions/generator-pending-wins-as-tuples.md).
    """

    due: float  # seconds of event time after start
    order: int
    player: _Player
    currency: Currency
    amount: Decimal
    bet_id: str


class _PendingCancel(NamedTuple):
    """A cancellation drawn with its bet, waiting in the same heap as the wins (as a tuple, for
    the same reason); `(due, order)` is unique, so the heap never compares the rest."""

    due: float
    order: int
    player: _Player
    currency: Currency
    amount: Decimal
    bet_id: str
    reason: CancellationReason


def _population(rng: Random, players: int) -> tuple[list[_Player], list[float]]:
    """Players and the cumulative weights of their activity (Pareto: a long tail of whales)."""
    population: list[_Player] = []
    activities: list[float] = []
    for index in range(players):
        brand = rng.choices(BRANDS, [brand.share for brand in BRANDS])[0]
        currencies = [currency for currency, _ in brand.currencies]
        currency = rng.choices(currencies, [share for _, share in brand.currencies])[0]
        activity = min(rng.paretovariate(PARETO_ALPHA), MAX_ACTIVITY)
        population.append(
            _Player(
                brand_id=brand.brand_id,
                player_id=f"p{index:07d}",
                currency=currency,
                other_currencies=tuple(c for c in currencies if c != currency),
                switch_probability=brand.switch_probability,
                log_stake_eur=math.log(0.5 * activity**0.6),
                sweepstakes=brand.sweepstakes,
                # up to two packages bigger for the heaviest (log stake above 1 and 2)
                bigger_packs=max(0, int(math.log(0.5 * activity**0.6))),
            )
        )
        activities.append(activity)
    return population, list(accumulate(activities))


def _pick(rng: Random, cumulative: list[float]) -> int:
    """An index drawn by cumulative weights: `random.choices` without its per-call setup."""
    return min(bisect(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def _amount(
    units: float, currency: Currency, step: Decimal, low: Decimal, high: Decimal
) -> Decimal:
    """A float draw made an exact amount: a multiple of `step` within [low, high]."""
    amount = step * max(1, round(units / float(step)))
    return min(max(amount, low), high).quantize(_QUANTUM[currency])


def _win_amount(bet: Decimal, multiple: float, currency: Currency) -> Decimal:
    """Any amount of the currency's smallest unit (a 0.30 bet can win 0.87), never zero."""
    quantum = _QUANTUM[currency]
    return max((bet * Decimal(repr(multiple))).quantize(quantum), quantum)


def synthetic_events(
    players: int,
    seed: int | None,
    start: datetime,
    *,
    rate: float = 100.0,
    cancellations: bool = False,
    purchases: bool = False,
) -> Iterator[PlayerEvent]:
    """An endless, seeded stream of player events, in event-time order from `start`.

    `rate` is the mean number of events per second of event time (`run` passes its publish rate,
    so event time keeps pace with the clock). Wins and cancellations come after fixed event-time
    delays, so the rate also decides where they fall in the stream: replaying a run takes its
    seed, its rate and the kinds it asked for. `cancellations` adds `BetCancelled` of earlier
    bets, `purchases` the sweepstakes brands' `CoinPackPurchased` (see the module's docstring);
    without them the stream is the same as before they existed.

    Values are valid by construction (hex ids, amounts quantized to their currency and clamped),
    so events skip pydantic validation: that halves the cost of an event, which matters for
    benchmarks, and the tests decode every kind of event to prove them valid.
    """
    if players < 1:
        raise ValueError("players must be at least 1")
    if rate <= 0:
        raise ValueError("rate must be positive")
    if start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    start = start.astimezone(UTC)
    rng = Random(seed)
    population, cumulative = _population(rng, players)
    categories = [category for category, _ in CATEGORY_WEIGHTS]
    category_cumulative = list(accumulate(weight for _, weight in CATEGORY_WEIGHTS))
    package_cumulative = list(accumulate(package.share for package in PACKAGES))
    getrandbits = rng.getrandbits
    order = count()  # breaks ties between wins and cancellations due at the same instant
    pending: list[_PendingWin | _PendingCancel] = []  # a heap: the next one due first
    clock = 0.0
    while True:
        clock += rng.expovariate(1.0) / rate
        while pending and pending[0].due <= clock:
            due = heapq.heappop(pending)
            settles: dict[str, Any] = {
                "event_id": f"{getrandbits(128):032x}",
                "brand_id": due.player.brand_id,
                "player_id": due.player.player_id,
                "occurred_at": start + timedelta(seconds=due.due),
                "amount": due.amount,
                "currency": due.currency,
                "bet_id": due.bet_id,
            }
            if isinstance(due, _PendingCancel):
                yield BetCancelled.model_construct(**settles, reason=due.reason)
            else:
                yield WinCredited.model_construct(**settles)
        player = population[_pick(rng, cumulative)]
        currency = player.currency
        if player.other_currencies and rng.random() < player.switch_probability:
            currency = rng.choice(player.other_currencies)
        scale = SCALES[currency]
        occurred_at = start + timedelta(seconds=clock)
        event_id = f"{getrandbits(128):032x}"
        draw = rng.random()
        if draw < DEPOSIT_PROBABILITY and purchases and player.sweepstakes:
            index = min(_pick(rng, package_cumulative) + player.bigger_packs, len(PACKAGES) - 1)
            package = PACKAGES[index]
            yield CoinPackPurchased.model_construct(
                event_id=event_id,
                brand_id=player.brand_id,
                player_id=player.player_id,
                occurred_at=occurred_at,
                amount=package.price,
                currency=STORE_CURRENCY,
                purchase_id=f"{getrandbits(128):032x}",
                package_id=package.package_id,
                gc=package.gc,
                sc=package.sc,
            )
        elif draw < DEPOSIT_PROBABILITY:
            step = scale.step * 50
            units = rng.lognormvariate(3.0 + player.log_stake_eur / 2, 0.7) * scale.per_eur
            yield DepositMade.model_construct(
                event_id=event_id,
                brand_id=player.brand_id,
                player_id=player.player_id,
                occurred_at=occurred_at,
                amount=_amount(units, currency, step, step, scale.max_bet * 20),
                currency=currency,
            )
        elif draw < DEPOSIT_PROBABILITY + BONUS_PROBABILITY:
            step = scale.step * 10
            units = rng.lognormvariate(2.3 + player.log_stake_eur / 3, 0.5) * scale.per_eur
            yield BonusRedeemed.model_construct(
                event_id=event_id,
                brand_id=player.brand_id,
                player_id=player.player_id,
                occurred_at=occurred_at,
                amount=_amount(units, currency, step, step, scale.max_bet),
                currency=currency,
                bonus_id=f"{getrandbits(128):032x}",
            )
        else:
            category = categories[_pick(rng, category_cumulative)]
            units = rng.lognormvariate(player.log_stake_eur, 0.5) * scale.per_eur
            bet = BetPlaced.model_construct(
                event_id=event_id,
                brand_id=player.brand_id,
                player_id=player.player_id,
                occurred_at=occurred_at,
                amount=_amount(units, currency, scale.step, scale.min_bet, scale.max_bet),
                currency=currency,
                bet_id=f"{getrandbits(128):032x}",
                game_id=rng.choice(GAMES[category]),
                game_category=category,
            )
            yield bet
            if cancellations and rng.random() < CANCEL_PROBABILITY:
                for cancel in _cancellations(rng, bet, player, scale.step, clock, order):
                    heapq.heappush(pending, cancel)
                continue  # a cancelled bet does not win
            odds = ODDS[category]
            if rng.random() < odds.win_probability:
                mean_multiple = odds.rtp / odds.win_probability
                multiple = 2.0 if odds.even_money else rng.expovariate(1.0 / mean_multiple)
                pending_win = _PendingWin(
                    due=clock + rng.uniform(*odds.settle_seconds),
                    order=next(order),
                    player=player,
                    currency=currency,
                    amount=_win_amount(bet.amount, multiple, currency),
                    bet_id=bet.bet_id,
                )
                heapq.heappush(pending, pending_win)


def _cancellations(
    rng: Random, bet: BetPlaced, player: _Player, step: Decimal, clock: float, order: Iterator[int]
) -> list[_PendingCancel]:
    """The cancellations of a bet placed at `clock`: the whole bet, or a part of it (a multiple
    of the currency's `step` below the stake), then sometimes the rest."""
    reason = rng.choice(CANCEL_REASONS)
    due = clock + rng.uniform(*CANCEL_SECONDS)
    steps = int(bet.amount / step)
    if steps < 2 or rng.random() >= CANCEL_PART_PROBABILITY:
        parts = [bet.amount]
    else:
        part = (step * rng.randint(1, steps - 1)).quantize(_QUANTUM[bet.currency])
        parts = [part]
        if rng.random() < CANCEL_REST_PROBABILITY:
            parts.append(bet.amount - part)
    cancels = []
    for amount in parts:
        cancels.append(
            _PendingCancel(due, next(order), player, bet.currency, amount, bet.bet_id, reason)
        )
        due += rng.uniform(*CANCEL_SECONDS)
    return cancels


@dataclass
class GeneratorReport:
    """What a run published; `wagered` is what the demo checks the workers' points against."""

    by_type: Counter[str] = field(default_factory=Counter)
    by_brand: Counter[str] = field(default_factory=Counter)
    by_currency: Counter[Currency] = field(default_factory=Counter)
    bets: Counter[tuple[str, Currency]] = field(default_factory=Counter)
    """Number of bets per (brand_id, currency)."""
    wagered: dict[tuple[str, Currency], Decimal] = field(default_factory=dict)
    """Total bet amount per (brand_id, currency), exact."""
    wagered_by_category: dict[tuple[GameCategory, Currency], Decimal] = field(default_factory=dict)
    """Total bet amount per (game category, currency): amounts only add up within a currency."""
    cancellations: Counter[tuple[str, Currency]] = field(default_factory=Counter)
    """Number of bet cancellations per (brand_id, currency)."""
    cancelled: dict[tuple[str, Currency], Decimal] = field(default_factory=dict)
    """Total amount cancelled per (brand_id, currency), exact."""
    coin_packs: Counter[str] = field(default_factory=Counter)
    """Number of coin packages bought, per package id."""
    delivery_failures: int = 0
    first_failure: str | None = None
    elapsed_s: float = 0.0

    def record(self, event: PlayerEvent) -> None:
        """Count one event handed to the producer."""
        self.by_type[event.type] += 1
        self.by_brand[event.brand_id] += 1
        self.by_currency[event.currency] += 1
        if isinstance(event, BetPlaced):
            brand_key = (event.brand_id, event.currency)
            category_key = (event.game_category, event.currency)
            self.bets[brand_key] += 1
            self.wagered[brand_key] = self.wagered.get(brand_key, _ZERO) + event.amount
            self.wagered_by_category[category_key] = (
                self.wagered_by_category.get(category_key, _ZERO) + event.amount
            )
        elif isinstance(event, BetCancelled):
            brand_key = (event.brand_id, event.currency)
            self.cancellations[brand_key] += 1
            self.cancelled[brand_key] = self.cancelled.get(brand_key, _ZERO) + event.amount
        elif isinstance(event, CoinPackPurchased):
            self.coin_packs[event.package_id] += 1

    def fail(self, error: KafkaError) -> None:
        """Count one record the broker did not acknowledge, keeping the first reason."""
        self.delivery_failures += 1
        if self.first_failure is None:
            self.first_failure = str(error)

    @property
    def sent(self) -> int:
        return sum(self.by_type.values())

    @property
    def delivered(self) -> int:
        return self.sent - self.delivery_failures

    @property
    def achieved_rate(self) -> float:
        """Acknowledged events per second, over the whole run including the final flush."""
        return self.delivered / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def render(self) -> str:
        """A short table for whoever ran `generate` or `make demo`."""
        lines = [
            f"Published {self.sent:,} events to {PLAYER_EVENTS} in {self.elapsed_s:.1f} s "
            f"({self.achieved_rate:,.0f} events/s), {self.delivery_failures:,} delivery failures"
        ]
        if self.first_failure is not None:
            lines.append(f"  first failure: {self.first_failure}")
        for title, counts in (
            ("by type", self.by_type),
            ("by brand", self.by_brand),
            ("by currency", self.by_currency),
        ):
            cells = ", ".join(f"{name} {count:,}" for name, count in counts.most_common())
            lines.append(f"  {title + ':':<13}{cells}")
        if self.coin_packs:
            cells = ", ".join(f"{name} {count:,}" for name, count in self.coin_packs.most_common())
            lines.append(f"  {'coin packs:':<13}{cells}")
        lines += [
            "",
            f"  {'wagered by brand':<18}{'currency':<9}{'bets':>10}{'amount':>18}"
            f"{'cancelled':>11}{'amount':>16}",
        ]
        for key, amount in sorted(self.wagered.items()):
            brand_id, currency = key
            bets, cancellations = self.bets[key], self.cancellations[key]
            cancelled = self.cancelled.get(key, _ZERO)
            lines.append(
                f"  {brand_id:<18}{currency:<9}{bets:>10,}{amount:>18,}"
                f"{cancellations:>11,}{cancelled:>16,}"
            )
        currencies = [c for c in Currency if any(c == key[1] for key in self.wagered_by_category)]
        lines += ["", f"  {'by game category':<18}" + "".join(f"{c:>16}" for c in currencies)]
        for category in GameCategory:
            amounts = [self.wagered_by_category.get((category, c)) for c in currencies]
            if any(a is not None for a in amounts):
                cells = "".join(f"{'-' if a is None else f'{a:,}':>16}" for a in amounts)
                lines.append(f"  {category:<18}{cells}")
        return "\n".join(line.rstrip() for line in lines)


_TICK_S = 0.01  # pacing granularity: one batch of `rate * _TICK_S` events per tick


def run(
    settings: Settings,
    *,
    players: int,
    rate: float,
    duration: float,
    seed: int | None,
    clients: KafkaClients | None = None,
    cancellations: bool = True,
    purchases: bool = True,
) -> GeneratorReport:
    """Publish the synthetic stream at `rate` events/s for `duration` seconds, then report.

    Events are produced in small batches, each at its scheduled time, so the pace holds without a
    sleep per event; when the machine cannot keep up, the run still ends after `duration` and the
    report's achieved rate says so. Record timestamps are the events' occurred_at. `clients`
    makes the producer (by default librdkafka's). The stream has every kind of event unless
    `cancellations` or `purchases` is turned off (`synthetic_events`).
    """
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    report = GeneratorReport()

    def on_delivery(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            report.fail(error)

    producer = (clients or KafkaClients()).producer(load_producer_config(settings))
    events = synthetic_events(
        players,
        seed,
        datetime.now(UTC),
        rate=rate,
        cancellations=cancellations,
        purchases=purchases,
    )
    total = max(1, round(rate * duration))
    batch = max(1, math.ceil(rate * _TICK_S))
    started = time.monotonic()
    sent = 0
    while sent < total and time.monotonic() - started < duration:
        for _ in range(min(batch, total - sent)):
            event = next(events)
            record = event.model_dump_json().encode()
            timestamp = int(event.occurred_at.timestamp() * 1000)
            produce(
                producer,
                PLAYER_EVENTS,
                record,
                event.key.encode(),
                on_delivery=on_delivery,
                timestamp=timestamp,
            )
            report.record(event)
            sent += 1
        producer.poll(0)
        ahead = sent / rate - (time.monotonic() - started)
        if ahead > 0:
            time.sleep(ahead)
    unflushed = producer.flush(30.0)
    report.elapsed_s = time.monotonic() - started
    if unflushed:
        report.delivery_failures += unflushed
        report.first_failure = report.first_failure or f"{unflushed} records unsent after flush"
    return report
