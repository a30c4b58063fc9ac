"""Bets' records beside the players' in a partition's store: read by a cancellation in the same
batch or after a restore from the changelog, and forgotten `BET_DAYS` after they were written."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.kafka.topics import POINTS_ACCRUED
from loyalty_streams.runtime.test_driver import WorkerDriver
from loyalty_streams.state.keyspace import BET_DAYS, bet_key
from tests.domain.builders import T0, bet, cancellation, programme

PLAYER = "aurora-casino:p1"


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WorkerDriver]:
    made = WorkerDriver(tmp_path, Catalogue([programme()]).in_effect, now=T0, timers_wait_s=0)
    yield made
    made.close()


def reversals(driver: WorkerDriver) -> list[tuple[str, Decimal]]:
    return [
        (o["bet_id"], Decimal(o["points"]))
        for o in driver.outputs_json(POINTS_ACCRUED, PLAYER)
        if o["type"] == "PointsReversed"
    ]


def refusals(driver: WorkerDriver) -> list[str]:
    return [
        o["code"]
        for o in driver.outputs_json(POINTS_ACCRUED, PLAYER)
        if o["type"] == "CancellationRefused"
    ]


def test_a_cancellation_in_the_same_batch_as_its_bet_finds_it(driver: WorkerDriver) -> None:
    driver.pipe_event(bet("80", bet_id="b1"))
    driver.pipe_event(cancellation("b1", "80", occurred_at=T0 + timedelta(seconds=1)))
    assert driver.fold() == 2
    driver.drain()
    assert reversals(driver) == [("b1", Decimal("80.00"))]


def test_a_bets_record_is_restored_from_the_changelog_by_the_next_owner(
    driver: WorkerDriver,
) -> None:
    driver.pipe_event(bet("80", bet_id="b1"))
    driver.fold()
    driver.drain()
    driver.crash()
    driver.restart(lose_store=True)  # another machine: an empty store, restored
    assert driver.store(0).get(bet_key("aurora-casino", "p1", "b1")) is not None
    driver.pipe_event(cancellation("b1", "30", occurred_at=T0 + timedelta(minutes=1)))
    driver.fold()
    driver.drain()
    assert reversals(driver) == [("b1", Decimal("30.00"))]


def test_a_bets_record_is_forgotten_after_bet_days_and_then_cannot_be_cancelled(
    driver: WorkerDriver,
) -> None:
    driver.pipe_event(bet("80", bet_id="b1"))
    driver.fold()
    driver.drain()
    key = bet_key("aurora-casino", "p1", "b1")
    driver.advance_clock(timedelta(days=BET_DAYS))
    while not driver.fire_timers():
        pass
    driver.drain()
    assert driver.store(0).get(key) is not None  # kept BET_DAYS whole days
    driver.advance_clock(timedelta(days=1, hours=1))
    while not driver.fire_timers():
        pass
    driver.drain()
    assert driver.store(0).get(key) is None
    late = T0 + timedelta(days=BET_DAYS + 1)
    driver.pipe_event(cancellation("b1", "80", occurred_at=late), timestamp=_ms(late))
    driver.fold()
    driver.drain()
    assert refusals(driver) == ["unknown_bet"] and reversals(driver) == []


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
