"""The fold loop's checkpoints in flight, with the cluster's acknowledgements held back by hand.

The worker runs under `WorkerDriver` (no broker; the player table is a real RocksDB) with
`hold=True`: each test releases acknowledgements step by step and checks that a batch reaches
the store and the committed offsets only in the checkpoint's order, while later batches fold on
the records of the batches still in flight.
"""

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError

from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.kafka.topics import (
    DEAD_LETTER,
    PLAYER_EVENTS,
    PLAYERS_CHANGELOG,
    PLAYERS_HISTORY,
    POINTS_ACCRUED,
)
from loyalty_streams.runtime.checkpoint import DeliveryFailed
from loyalty_streams.runtime.test_driver import WorkerDriver
from loyalty_streams.state.keyspace import (
    BOOKKEEPING,
    CHECKPOINT_KEY,
    FORGET,
    HISTORY_PREFIX,
    INDEXED,
    TIMER_PREFIX,
    parse_timer_key,
)
from loyalty_streams.state.store import decode_player
from tests.domain.builders import T0, bet, command, programme

KEY = "aurora-casino:p1"


def driver_in(directory: Path) -> WorkerDriver:
    """A worker owning the one partition of every topic, at T0, its acknowledgements held."""
    rules = programme()
    return WorkerDriver(directory, lambda brand, at: rules, now=T0, hold=True)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WorkerDriver]:
    made = driver_in(tmp_path)
    yield made
    made.close()


def fold_and_seal(driver: WorkerDriver, *events: PlayerEvent) -> None:
    """The events in one fetch, one batch, queued for its checkpoint."""
    for event in events:
        driver.pipe_event(event)
    driver.fold()
    driver.seal()


def sent_values(driver: WorkerDriver) -> list[tuple[str, Any]]:
    """Each record produced and not acknowledged: its topic and its decoded value."""
    return [(record.topic, orjson.loads(record.value or b"null")) for record in driver.held()]


def values(driver: WorkerDriver, topic: str, key: str | None = None) -> list[bytes | None]:
    """Values held for a topic (and a key)."""
    return [record.value for record in driver.held(topic, key)]


def stored(driver: WorkerDriver) -> PlayerState | None:
    return driver.player(KEY)


def turnover(raw: bytes | None) -> Decimal:
    assert raw is not None
    return decode_player(raw).cumulative_turnover


def test_a_batch_reaches_the_store_and_the_offsets_only_after_its_changelog_and_in_order(
    driver: WorkerDriver,
) -> None:
    commits = driver.commits
    fold_and_seal(driver, bet("100"))
    fold_and_seal(driver, bet("50"))  # folds on the first batch, still in flight

    # nothing acknowledged: two outputs out, no changelog, nothing stored or committed
    assert len(values(driver, POINTS_ACCRUED)) == 2
    assert values(driver, PLAYERS_CHANGELOG) == []
    assert stored(driver) is None and commits == []

    driver.acknowledge(POINTS_ACCRUED)
    # the first batch's outputs are acknowledged: its record goes to the changelog, the second
    # batch waits its turn
    records = values(driver, PLAYERS_CHANGELOG, KEY)
    assert [turnover(v) for v in records] == [Decimal("100")]
    assert stored(driver) is None and commits == []

    # its history row goes to the history topic, never to the changelog
    assert [orjson.loads(v or b"")["type"] for v in values(driver, PLAYERS_HISTORY)] == [
        "PointsAccrued"
    ]
    assert not any(
        (record.key or b"").startswith(HISTORY_PREFIX) for record in driver.held(PLAYERS_CHANGELOG)
    )
    release_logs(driver)
    first = stored(driver)
    assert first is not None and first.cumulative_turnover == Decimal("100")
    assert commits == [{(PLAYER_EVENTS, 0): 1}]
    records = values(driver, PLAYERS_CHANGELOG, KEY)
    assert [turnover(v) for v in records] == [Decimal("150")]  # the second batch's turn

    release_logs(driver)
    second = stored(driver)
    assert second is not None and second.cumulative_turnover == Decimal("150")
    assert commits[-1] == {(PLAYER_EVENTS, 0): 2}
    store = driver.store(0)
    assert store.changelog_offset == driver.end_offset(PLAYERS_CHANGELOG, 0) - 1
    assert store.history_offset == driver.end_offset(PLAYERS_HISTORY, 0) - 1 == 1
    assert driver.in_flight_records == 0 and driver.open_batch is None


def release_logs(driver: WorkerDriver) -> None:
    """Acknowledge a checkpoint's changelog records and history rows."""
    driver.acknowledge(PLAYERS_CHANGELOG)
    driver.acknowledge(PLAYERS_HISTORY)


def test_a_record_the_cluster_refused_stops_the_loop_before_anything_is_stored(
    driver: WorkerDriver,
) -> None:
    fold_and_seal(driver, bet("100"))
    with pytest.raises(DeliveryFailed):
        driver.acknowledge(POINTS_ACCRUED, error=KafkaError(KafkaError._MSG_TIMED_OUT))
    assert values(driver, PLAYERS_CHANGELOG) == []
    assert stored(driver) is None
    assert driver.commits == []


def test_draining_checkpoints_the_open_batch_and_every_batch_in_flight(
    driver: WorkerDriver,
) -> None:
    fold_and_seal(driver, bet("100"))
    driver.pipe_event(bet("20"))
    driver.fold()
    assert driver.in_flight_records == 2  # one sealed, one open: what /health reports
    driver.drain()
    assert driver.in_flight_records == 0
    state = stored(driver)
    assert state is not None and state.cumulative_turnover == Decimal("120")
    assert driver.open_batch is None


def test_a_fetch_decoded_first_still_folds_and_sends_in_the_order_of_its_records(
    driver: WorkerDriver,
) -> None:
    driver.pipe_event(bet("100", event_id="e1"))
    driver.pipe(PLAYER_EVENTS, KEY.encode(), b"{not json")
    driver.pipe_event(bet("50", event_id="e2"))
    assert driver.fold() == 3  # one fetch
    driver.seal()
    sent = sent_values(driver)
    assert [(name, body.get("event_id", body.get("offset"))) for name, body in sent] == [
        (POINTS_ACCRUED, "e1"),
        (DEAD_LETTER, 1),
        (POINTS_ACCRUED, "e2"),  # folded on the record e1 left, as if decoded one by one
    ]
    assert sent[2][1]["points_available"] == str(
        Decimal(sent[0][1]["points"]) + Decimal(sent[2][1]["points"])
    )
    driver.drain()
    assert driver.commits == [{(PLAYER_EVENTS, 0): 3}]
    state = stored(driver)
    assert state is not None and state.cumulative_turnover == Decimal("150")


def contents(driver: WorkerDriver) -> dict[bytes, bytes]:
    """Everything partition 0's store holds but its changelog offset and the mark its first
    assignment left (`INDEXED`, checkpointed before any record)."""
    store = driver.store(0)
    everything = [*store.items(BOOKKEEPING), *store.items()]  # bookkeeping, then players
    return {key: value for key, value in everything if key not in (CHECKPOINT_KEY, INDEXED)}


def fold_the_batch(driver: WorkerDriver) -> None:
    """Events of three players and a command, in one fetch, one batch, sealed."""
    driver.pipe_event(bet("100", event_id="e1"))
    driver.pipe_event(bet("12000", event_id="e2", player_id="p2"))  # a level up: history rows
    driver.pipe_event(bet("50", event_id="e3"))
    driver.pipe_command(command("RedeemPoints", command_id="r1", points="100"))
    driver.pipe_event(bet("7", event_id="e4", player_id="p3"))
    assert driver.fold() == 5
    driver.seal()


def test_a_checkpoint_cut_at_any_record_of_its_changelog_restores_and_replays_to_the_uncut_state(
    driver: WorkerDriver, tmp_path: Path
) -> None:
    """A large checkpoint goes to the changelog in several produce requests; the worker may die
    between any two. Whatever prefix of its changelog records arrived, the next owner restores
    it, replays the batch, and holds exactly what an uncut checkpoint holds."""
    fold_the_batch(driver)
    driver.acknowledge()  # the outputs
    changelog = driver.held()
    assert all(record.topic in (PLAYERS_CHANGELOG, PLAYERS_HISTORY) for record in changelog)
    driver.acknowledge()
    uncut = contents(driver)
    assert len(changelog) == len(uncut) > 10  # ids, history rows and three player records
    forgotten = forget_lists(uncut)
    for cut in range(len(changelog) + 1):
        # a worker that dies once the first `cut` records of the checkpoint arrived; a new
        # owner restores an empty store from the changelog and reads the batch again from
        # the committed offset (none)
        dying = driver_in(tmp_path / f"cut-{cut}")
        fold_the_batch(dying)
        dying.acknowledge()  # the outputs
        assert [(r.key, r.value) for r in dying.held()] == [(r.key, r.value) for r in changelog]
        dying.acknowledge(count=cut)
        dying.crash()
        dying.restart(lose_store=True)
        dying.fold()
        dying.drain()
        # the same records, and every applied id listed to be forgotten (a replay that applied
        # only some ids again lists those once more: forgetting twice is harmless)
        held = contents(dying)
        assert without_forget_lists(held) == without_forget_lists(uncut), f"cut after {cut}"
        assert forget_lists(held) >= forgotten, f"cut after {cut} of {len(changelog)} records"
        dying.close()


def forget_lists(held: dict[bytes, bytes]) -> set[bytes]:
    """The applied ids a store's `forget` entries list."""
    return {
        seen
        for key, value in held.items()
        if key.startswith(TIMER_PREFIX) and parse_timer_key(key)[0] == FORGET
        for seen in value.split(b"\n")
    }


def without_forget_lists(held: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {
        key: value
        for key, value in held.items()
        if not (key.startswith(TIMER_PREFIX) and parse_timer_key(key)[0] == FORGET)
    }


def test_a_record_timestamp_the_calendar_cannot_hold_is_a_dead_letter_not_a_stop(
    driver: WorkerDriver,
) -> None:
    """A producer wrote -10^14 ms (year -1199): building the time stopped the fold loop."""
    driver.pipe_event(bet("10", event_id="ancient"), timestamp=-(10**14))  # read as 1970
    driver.pipe_event(bet("20", event_id="after"))
    driver.fold()
    driver.seal()
    sent = sent_values(driver)
    assert [name for name, _ in sent] == [DEAD_LETTER, POINTS_ACCRUED]
    assert "implausible time" in sent[0][1]["reason"]
    driver.drain()
    state = stored(driver)
    assert state is not None and state.cumulative_turnover == Decimal("20")
