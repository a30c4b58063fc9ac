"""The worker's Prometheus metrics: what it folded and paid out, how fast, how far behind.

One registry per worker process, served at `GET /metrics`. Counters move only after a batch's
checkpoint, so a batch replayed after a crash is counted again (like its outputs, at least
once). Population figures (players per level, average points) are taken by the sweep, which
walks every owned player anyway. Counter names get Prometheus's `_total` suffix
(`level_up_events` is exposed as `level_up_events_total`). Values are floats, as Prometheus has
no other type: they are for watching, the exact figures are in the outputs.
"""

from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

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

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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
        self.lag = Gauge(
            "loyalty_consumer_lag",
            "Records not yet folded, per owned inbound partition",
            ["topic", "partition"],
            registry=r,
        )
        self.players = Gauge(
            "players_per_level", "Owned players per level, at the last sweep", ["brand", "level"],
            registry=r,
        )  # fmt: skip
        self.average_points = Gauge(
            "avg_points_per_user", "Average available points per player, at the last sweep",
            ["brand"], registry=r,
        )  # fmt: skip

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
        for (counter, labels), amount in sums.items():
            counter.labels(*labels).inc(float(amount))

    def set_population(
        self, levels: Tally[tuple[str, str]], points: dict[str, tuple[Decimal, int]]
    ) -> None:
        """Players per (brand, level) and (points, players) per brand, as the sweep found them."""
        self.players.clear()
        for (brand, level), count in levels.items():
            self.players.labels(brand, level).set(count)
        self.average_points.clear()
        for brand, (total, count) in points.items():
            self.average_points.labels(brand).set(float(total / count) if count else 0.0)
