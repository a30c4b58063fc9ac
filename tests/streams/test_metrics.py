"""The worker's metrics without a broker: the sweep's census, closed days' play, lag series."""

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import Counter

from loyalty_streams.domain.engine import apply
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import CashbackAwarded, LevelChanged
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme, shipped_programmes
from loyalty_streams.settings import Settings
from loyalty_streams.streams import processor as processor_module
from loyalty_streams.streams.metrics import Census, Metrics
from loyalty_streams.streams.processor import Batch, Processor
from loyalty_streams.streams.records import CASHBACK_PREFIX, history_key, sweep
from loyalty_streams.streams.state_store import PlayerTable
from tests.domain.builders import T0, bet, bonus, programme, win

AURORA = "aurora-casino"


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def series(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of `name`, by its sorted labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == name
    }


def shipped(brand_id: str, at: datetime) -> Programme | None:
    """The shipped programme of a brand, None for any other (as the catalogue answers)."""
    return {p.brand_id: p for p in shipped_programmes()}.get(brand_id)


def no_grace() -> Programme:
    """Aurora without a downgrade grace period: a decayed level drops at the next sweep."""
    policies = programme().policies.model_copy(update={"downgrade_grace_days": 0})
    return programme().model_copy(update={"policies": policies})


def player(*events: PlayerEvent, brand_programme: Programme | None = None) -> PlayerState:
    state = None
    for event in events:
        state, _ = apply(state, event, brand_programme or programme())
    assert state is not None
    return state


# -- closed days: bets, wins, bonus releases by the level the day was paid at ------------------


def test_closed_days_count_bets_wins_and_bonuses_by_the_level_the_day_was_paid_at() -> None:
    rules = no_grace()
    # Gold from the first bet (2 %, at most 500 a day); idle 40 days, so the sweep that closes
    # the day also drops the player to Silver: the day still counts at Gold, as it was paid
    gold = player(bet("60000"), win("1000"), bonus("500"), brand_programme=rules)
    outcome = sweep(gold, lambda brand, at: rules, T0 + timedelta(days=40))
    (award,) = [o for o in outcome.outputs if isinstance(o, CashbackAwarded)]
    (change,) = [o for o in outcome.outputs if isinstance(o, LevelChanged)]
    assert (award.level, change.to_level) == ("Gold", "Silver")

    metrics = Metrics()
    metrics.count_closed_days(row for key, row in outcome.writes if key.startswith(CASHBACK_PREFIX))
    gold_eur = {"brand": AURORA, "level": "Gold", "currency": "EUR"}
    assert value(metrics, "loyalty_closed_day_bets_total", **gold_eur) == 60000
    assert value(metrics, "loyalty_closed_day_wins_total", **gold_eur) == 1000
    assert value(metrics, "loyalty_closed_day_bonus_releases_total", **gold_eur) == 500
    assert value(metrics, "loyalty_closed_player_days_total", brand=AURORA, level="Gold") == 1
    assert series(metrics, "loyalty_closed_day_bets_total") == {
        (("brand", AURORA), ("currency", "EUR"), ("level", "Gold")): 60000
    }


def test_a_losing_day_for_the_house_counts_and_all_three_series_appear_together() -> None:
    # wins above bets: NGR is negative, which a counter of NGR could not take
    lucky = player(bet("100"), win("400"))
    outcome = sweep(lucky, shipped, T0 + timedelta(days=1))
    metrics = Metrics()
    metrics.count_closed_days(row for key, row in outcome.writes if key.startswith(CASHBACK_PREFIX))
    bronze = {"brand": AURORA, "level": "Bronze", "currency": "EUR"}
    assert value(metrics, "loyalty_closed_day_bets_total", **bronze) == 100
    assert value(metrics, "loyalty_closed_day_wins_total", **bronze) == 400
    assert value(metrics, "loyalty_closed_day_bonus_releases_total", **bronze) == 0


def test_closed_days_are_summed_first_one_increment_per_series_and_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = []
    for n in range(3):
        state = player(bet("10", player_id=f"p{n}"), bet("5", player_id=f"p{n}"))
        outcome = sweep(state, shipped, T0 + timedelta(days=1))
        rows.extend(row for _, row in outcome.writes)
    increments: list[float] = []
    inc = Counter.inc

    def counted(counter: Counter, amount: float = 1) -> None:
        increments.append(amount)
        inc(counter, amount)

    monkeypatch.setattr(Counter, "inc", counted)
    metrics = Metrics()
    metrics.count_closed_days(rows)
    # bets, wins, bonus releases, player days: one series each
    assert sorted(increments) == [0, 0, 3, 45]
    assert value(metrics, "loyalty_closed_player_days_total", brand=AURORA, level="Bronze") == 3


# -- the census: players per level, active in the last 7 and 30 days ---------------------------


def test_the_census_counts_players_and_those_active_in_each_window_per_level() -> None:
    now = T0 + timedelta(days=60)
    census = Census(shipped, now)
    for player_id, idle_days, amount in [
        ("fresh", 1, "10"),  # Bronze, active in both windows
        ("week", 8, "20"),  # Bronze, active in 30 days only
        ("gone", 45, "30"),  # Bronze, neither
        ("silver", 3, "10000"),  # Silver, both
    ]:
        census.add(player(bet(amount, player_id=player_id, occurred_at=now - timedelta(idle_days))))
    census.add(replace(player(bet("10")), brand_id="nowhere"))  # no programme: not counted

    metrics = Metrics()
    metrics.set_population(census)
    assert series(metrics, "players_per_level") == {
        (("brand", AURORA), ("level", "Bronze")): 3,
        (("brand", AURORA), ("level", "Silver")): 1,
    }
    assert series(metrics, "loyalty_active_players") == {
        (("brand", AURORA), ("level", "Bronze"), ("window", "7d")): 1,
        (("brand", AURORA), ("level", "Bronze"), ("window", "30d")): 2,
        (("brand", AURORA), ("level", "Silver"), ("window", "7d")): 1,
        (("brand", AURORA), ("level", "Silver"), ("window", "30d")): 1,
    }
    assert value(metrics, "loyalty_last_sweep_timestamp_seconds") == now.timestamp()
    assert value(metrics, "avg_points_per_user", brand=AURORA) == pytest.approx(
        float(sum(Decimal(a) for a in ("10", "20", "30", "10000")) / 4)
    )


def test_a_level_without_active_players_reads_zero_and_a_new_census_replaces_the_last() -> None:
    now = T0 + timedelta(days=60)
    old = Census(shipped, now)
    old.add(player(bet("10000", player_id="silver")))
    idle = Census(shipped, now)
    idle.add(player(bet("10", player_id="idle")))
    metrics = Metrics()
    metrics.set_population(old)
    metrics.set_population(idle)
    assert series(metrics, "loyalty_active_players") == {
        (("brand", AURORA), ("level", "Bronze"), ("window", "7d")): 0,
        (("brand", AURORA), ("level", "Bronze"), ("window", "30d")): 0,
    }  # and no Silver series left from the earlier sweep
    assert series(metrics, "players_per_level") == {(("brand", AURORA), ("level", "Bronze")): 1}


# -- consumer lag ---------------------------------------------------------------------------------


def test_a_partition_given_away_loses_its_lag_series() -> None:
    metrics = Metrics()
    metrics.set_lag({("casino.player-events", 0): 5, ("casino.player-events", 1): 0})
    metrics.set_lag({("casino.player-events", 1): 2})
    assert series(metrics, "loyalty_consumer_lag") == {
        (("partition", "1"), ("topic", "casino.player-events")): 2
    }


# -- the processor's sweep, its checkpoint stubbed out (no broker) -------------------------------


@pytest.fixture
def stubbed(tmp_path: Path) -> Iterator[Processor]:
    """A processor whose checkpoints write nowhere; its Kafka clients never reach a broker."""
    settings = Settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    table = PlayerTable(tmp_path / "players")
    rules = no_grace()
    made = Processor(
        settings, lambda brand, at: rules, table, lambda: T0, lambda _: None, Metrics()
    )
    try:
        yield made
    finally:
        made._consumer.close()
        del made._producer  # its last reference: librdkafka stops trying to connect
        table.close()


def test_the_sweep_counts_closed_days_after_each_checkpoint_and_sets_the_census(
    stubbed: Processor, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules, now = no_grace(), T0 + timedelta(days=40)
    players = [
        player(bet("60000", player_id="gold"), brand_programme=rules),  # closed at Gold
        player(bet("100", player_id="small"), brand_programme=rules),
        player(
            bet("50", player_id="recent", occurred_at=now - timedelta(days=2)),
            brand_programme=rules,
        ),
    ]
    store = stubbed.table.partition(3)
    store.write({p.key.encode(): p.to_json() for p in players}, 0)
    stubbed.owned = frozenset({3})
    metrics = stubbed.metrics
    counted_at_checkpoints: list[float] = []

    def checkpoint(batch: Batch) -> None:
        total = sum(series(metrics, "loyalty_closed_player_days_total").values())
        counted_at_checkpoints.append(total)

    monkeypatch.setattr(stubbed, "_checkpoint", checkpoint)
    monkeypatch.setattr(processor_module, "BATCH", 1)  # a checkpoint per changed player
    stubbed._sweep(now)

    # each batch's days were counted only after its checkpoint
    assert counted_at_checkpoints == [0, 1, 2, 3]
    assert series(metrics, "loyalty_closed_day_bets_total") == {
        (("brand", AURORA), ("currency", "EUR"), ("level", "Gold")): 60000,
        (("brand", AURORA), ("currency", "EUR"), ("level", "Bronze")): 150,
    }
    assert series(metrics, "players_per_level") == {
        (("brand", AURORA), ("level", "Silver")): 1,  # gold, after the downgrade
        (("brand", AURORA), ("level", "Bronze")): 2,
    }
    assert value(metrics, "loyalty_active_players", brand=AURORA, level="Bronze", window="7d") == 1
    assert value(metrics, "loyalty_active_players", brand=AURORA, level="Silver", window="30d") == 0
    assert value(metrics, "loyalty_last_sweep_timestamp_seconds") == now.timestamp()
    assert value(metrics, "level_down_events_total", brand=AURORA, to_level="Silver") == 1
    assert value(metrics, "cashback_awarded_total", brand=AURORA, currency="EUR") == 500


def test_the_sweep_forgets_history_rows_older_than_the_log_days(
    stubbed: Processor, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = T0 + timedelta(days=500)
    someone = player(bet("100", player_id="old-timer"))
    rows = {
        history_key(AURORA, "old-timer", now - timedelta(days=days), f"o{days}"): b"{}"
        for days in (450, processor_module.LOG_DAYS + 1, processor_module.LOG_DAYS - 1, 3)
    }
    other = history_key(AURORA, "someone-else", now - timedelta(days=450), "x")
    store = stubbed.table.partition(3)
    store.write({someone.key.encode(): someone.to_json(), **rows, other: b"{}"}, 0)
    stubbed.owned = frozenset({3})
    deleted: list[bytes] = []
    monkeypatch.setattr(
        stubbed,
        "_checkpoint",
        lambda batch: deleted.extend(k for k, v in batch.writes.get(3, {}).items() if v is None),
    )
    stubbed._sweep(now)
    assert sorted(deleted) == sorted(list(rows)[:2])  # only the stored player's own old rows
