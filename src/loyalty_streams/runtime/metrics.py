"""The worker's Prometheus metrics: what it folded and paid out, how fast, how far behind.

One registry per worker process, served at `GET /metrics`. Counters move only after a batch's
checkpoint, so a batch replayed after a crash is counted again (like its outputs, at least
once). Population figures (players per level, players active lately, average points) are taken
by a `Census` the fold loop reads a slice at a time, every `census_interval_s`. The play of
closed days (bets, wins, bonus releases: GGR and NGR are differences of them in PromQL) is
counted from the rows of the daily cashback log the timers write, by the level each day was
paid at. Counter names get
Prometheus's `_total` suffix (`level_up_events` is exposed as `level_up_events_total`). Values
are floats, as Prometheus has no other type: they are for watching, the exact figures are in the
outputs and the log.
"""

from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from loyalty_streams.domain.outputs import (
    CashbackAwarded,
    Direction,
    LevelChanged,
    Output,
    PointsAccrued,
    PointsExpired,
    PointsRedeemed,
)
from loyalty_streams.domain.programme import Programme
from loyalty_streams.state.store import player_fields

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds from an inbound record's timestamp to its outputs acknowledged: the `le` labels of
`loyalty_processing_latency_seconds`. Like the other bucket bounds and windows here, part of the
series exposed, not a tuning of the worker (those are in `runtime.tuning`)."""

SLICE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 1.0)
"""Seconds a slice of time-driven work holds the fold loop (bounded by `TIMER_SLICE_S` plus the
entry under way when it ran out)."""

ACTIVITY_WINDOWS = {"7d": timedelta(days=7), "30d": timedelta(days=30)}
"""The `window` label of `loyalty_active_players`: a player is active in a window whose length
is more than the time since their last play event (bet, win, deposit, bonus)."""


class Metrics:
    """The metrics of one worker, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "loyalty_records_processed", "Inbound records folded", ["topic"], registry=r
        )
        self.dead_letters = Counter(
            "loyalty_dead_letters",
            "Inbound records sent to the dead letters",
            ["topic"],
            registry=r,
        )
        self.points_accrued = Counter(
            "points_accrued", "Points credited for bets", ["brand"], registry=r
        )
        self.points_redeemed = Counter(
            "points_redeemed", "Points written off by confirmed redemptions", ["brand"], registry=r
        )
        self.points_expired = Counter(
            "points_expired", "Points expired after inactivity", ["brand"], registry=r
        )
        self.level_up = Counter(
            "level_up_events", "Level upgrades", ["brand", "to_level"], registry=r
        )
        self.level_down = Counter(
            "level_down_events", "Level downgrades", ["brand", "to_level"], registry=r
        )
        self.cashback = Counter(
            "cashback_awarded", "Cashback paid, in its currency", ["brand", "currency"], registry=r
        )
        self.outputs = Counter("loyalty_outputs", "Outputs emitted", ["type"], registry=r)
        self.latency = Histogram(
            "loyalty_processing_latency_seconds",
            "From an inbound record's timestamp to its outputs acknowledged by the cluster",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.timers_fired = Counter(
            "loyalty_timers_fired",
            "Entries of the due-time index fired, when fired: player timers (player), applied "
            "ids forgotten (forget), old history and cashback-log rows pruned (rows), entries "
            "already deleted by a batch in flight (done), players whose rules raised (failed)",
            ["kind"],
            registry=r,
        )
        self.time_driven_slices = Histogram(
            "loyalty_time_driven_slice_seconds",
            "How long each slice of time-driven work (timers, the census) held the fold loop",
            ["work"],
            buckets=SLICE_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "loyalty_consumer_lag",
            "Records not yet folded, per owned inbound partition",
            ["topic", "partition"],
            registry=r,
        )
        self._lagging: set[tuple[str, int]] = set()
        self.players = Gauge(
            "players_per_level", "Owned players per level, at the last census", ["brand", "level"],
            registry=r,
        )  # fmt: skip
        self.active_players = Gauge(
            "loyalty_active_players",
            "Owned players per level with a play event in the window before the last census",
            ["brand", "level", "window"],
            registry=r,
        )
        self.average_points = Gauge(
            "avg_points_per_user", "Average available points per player, at the last census",
            ["brand"], registry=r,
        )  # fmt: skip
        self.last_census = Gauge(
            "loyalty_last_census_timestamp_seconds",
            "When the last census began: the age of the population figures",
            registry=r,
        )
        closed = ["brand", "level", "currency"]
        self.closed_bets = Counter(
            "loyalty_closed_day_bets",
            "Bets of closed brand days, in the turnover currency, by the level the day was paid at",
            closed,
            registry=r,
        )
        self.closed_cancelled = Counter(
            "loyalty_closed_day_cancelled",
            "Stakes of cancelled bets taken off closed brand days, in the turnover currency, by "
            "the level the day was paid at",
            closed,
            registry=r,
        )
        self.closed_wins = Counter(
            "loyalty_closed_day_wins",
            "Wins of closed brand days, in the turnover currency, by the level the day was paid at",
            closed,
            registry=r,
        )
        self.closed_bonuses = Counter(
            "loyalty_closed_day_bonus_releases",
            "Bonus releases of closed brand days, in the turnover currency, by the level the day "
            "was paid at",
            closed,
            registry=r,
        )
        self.closed_days = Counter(
            "loyalty_closed_player_days",
            "Player days closed (days with play), by the level the day was paid at",
            ["brand", "level"],
            registry=r,
        )

    def count_outputs(self, outputs: Iterable[Output]) -> None:
        """Add a batch's outputs: summed first, so each series is touched once per batch."""
        sums: defaultdict[tuple[Counter, tuple[str, ...]], Decimal] = defaultdict(Decimal)
        for output in outputs:
            sums[self.outputs, (output.type,)] += 1
            brand = output.brand_id
            if isinstance(output, PointsAccrued):
                sums[self.points_accrued, (brand,)] += output.points
            elif isinstance(output, PointsRedeemed):
                sums[self.points_redeemed, (brand,)] += output.points
            elif isinstance(output, PointsExpired):
                sums[self.points_expired, (brand,)] += output.points
            elif isinstance(output, LevelChanged):
                moves = self.level_up if output.direction is Direction.UP else self.level_down
                sums[moves, (brand, output.to_level)] += 1
            elif isinstance(output, CashbackAwarded):
                sums[self.cashback, (brand, output.currency.value)] += output.amount
        _add(sums)

    def count_closed_days(self, rows: Iterable[bytes]) -> None:
        """Add the play of closed days: rows of the daily cashback log as they are stored (JSON
        of `domain.time_rules.CashbackDay`), summed first like `count_outputs`.

        Bets, cancelled stakes, wins and bonus releases each have their own counter, as a day's
        GGR or NGR may be negative and a counter only goes up; all four series of a (brand,
        level, currency) are touched together, so their differences never miss a side.
        """
        sums: defaultdict[tuple[Counter, tuple[str, ...]], Decimal] = defaultdict(Decimal)
        for raw in rows:
            row = orjson.loads(raw)
            labels = (row["brand_id"], row["level"], row["currency"])
            sums[self.closed_bets, labels] += Decimal(row["bets"])
            sums[self.closed_cancelled, labels] += Decimal(row.get("cancelled", 0))
            sums[self.closed_wins, labels] += Decimal(row["wins"])
            sums[self.closed_bonuses, labels] += Decimal(row["bonuses"])
            sums[self.closed_days, labels[:2]] += 1
        _add(sums)

    def set_lag(self, lags: dict[tuple[str, int], int]) -> None:
        """The lag of each owned inbound partition; a partition no longer owned loses its series
        (another worker reports it now)."""
        for topic, partition in self._lagging - lags.keys():
            self.lag.remove(topic, str(partition))
        for (topic, partition), behind in lags.items():
            self.lag.labels(topic, str(partition)).set(behind)
        self._lagging = set(lags)

    def set_population(self, census: "Census") -> None:
        """The population gauges as a census found them (replacing the last census's)."""
        self.players.clear()
        self.active_players.clear()
        for (brand, level), count in census.levels.items():
            self.players.labels(brand, level).set(count)
            for window in ACTIVITY_WINDOWS:
                self.active_players.labels(brand, level, window).set(
                    census.active[brand, level, window]
                )
        self.average_points.clear()
        for brand, (total, count) in census.points.items():
            self.average_points.labels(brand).set(float(total / count) if count else 0.0)
        self.last_census.set(census.now.timestamp())


def _add(sums: dict[tuple[Counter, tuple[str, ...]], Decimal]) -> None:
    for (counter, labels), amount in sums.items():
        counter.labels(*labels).inc(float(amount))


@dataclass(slots=True)
class Census:
    """Players per level, active players per level and window, and points per brand at `now`,
    counted from the stored player records."""

    programme_for: Callable[[str, datetime], Programme | None]
    now: datetime
    levels: Tally[tuple[str, str]] = field(default_factory=Tally)
    active: Tally[tuple[str, str, str]] = field(default_factory=Tally)
    points: dict[str, tuple[Decimal, int]] = field(default_factory=dict)

    def add(self, raw: bytes) -> None:
        """Count a player record as stored (`state.store.encode_player`), reading only the
        fields counted (`player_fields`: a record of a format above this code's raises
        `UnknownFormat`, as the fold's read of it would)."""
        data = player_fields(raw)
        brand, stamp = data["brand_id"], data["last_activity"]
        last = None if stamp is None else datetime.fromisoformat(stamp)
        points_available = Decimal(data.get("points_available", 0))
        now = self.now
        programme = self.programme_for(brand, now)
        if programme is None:
            return
        level = programme.level_at(data["level_rank"]).name
        self.levels[brand, level] += 1
        if last is not None:
            for window, length in ACTIVITY_WINDOWS.items():
                if now - last < length:
                    self.active[brand, level, window] += 1
        total, count = self.points.get(brand, (Decimal(0), 0))
        self.points[brand] = (total + points_available, count + 1)
