"""The fold loop's time-driven work without a broker: the due-time index fired in slices, in time
order, into the open batch; retention through the index; the census and brands' re-checks a
slice at a time."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import CashbackAwarded, LevelChanged
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import on_event
from loyalty_streams.runtime.batch import Batch
from loyalty_streams.runtime.test_driver import WorkerDriver
from loyalty_streams.state.keyspace import (
    INDEXED,
    INDEXING,
    LOG_DAYS,
    PLAYER,
    RECHECK_PREFIX,
    ROWS,
    SEEN_DAYS,
    SEEN_PREFIX,
    TIMER_PREFIX,
    after,
    cashback_key,
    history_key,
    parse_timer_key,
    timer_key,
)
from loyalty_streams.state.retention import forget_entry, history_kept_from
from tests.domain.builders import T0, bet, programme, win

AURORA = "aurora-casino"
BOREALIS = "borealis-casino"
NOW = T0 + timedelta(days=40)
PARTITION = 0


def no_grace() -> Programme:
    policies = programme().policies.model_copy(update={"downgrade_grace_days": 0})
    return programme().model_copy(update={"policies": policies})


RULES = no_grace()


def rules(brand: str, at: datetime) -> Programme | None:
    """RULES for aurora-casino, the shipped programme for any other brand."""
    return RULES if brand == AURORA else programme(brand)


def player(*events: PlayerEvent) -> PlayerState:
    state = None
    for event in events:
        state = on_event(state, event, RULES).state
    assert state is not None
    return state


def driver_at_now(directory: Path, **options: Any) -> WorkerDriver:
    """A worker at NOW owning the one partition, timers due at once: nothing is checkpointed
    unless a test says so (what time-driven work did is in its open batch)."""
    return WorkerDriver(directory, rules, now=NOW, timers_wait_s=0, **options)


@pytest.fixture
def stubbed(tmp_path: Path) -> Iterator[WorkerDriver]:
    made = driver_at_now(tmp_path)
    yield made
    made.close()


@pytest.fixture
def sliced(tmp_path: Path) -> Iterator[WorkerDriver]:
    """`stubbed` whose slices of time-driven work end after one entry, record or player."""
    made = driver_at_now(tmp_path, timer_slice_s=0.0)
    yield made
    made.close()


def stored(made: WorkerDriver, *players: PlayerState) -> None:
    """Players in the partition's store with their index entries, as a checkpoint leaves them."""
    for p in players:
        assert p.timer_at is not None and made.partition_of(p.key) == PARTITION
        made.put_player(p)


def fired(made: WorkerDriver) -> Batch:
    batch = made.open_batch
    assert batch is not None
    return batch


def slices(made: WorkerDriver, work: str) -> float | None:
    """Slices of a time-driven work observed so far."""
    labels = {"work": work}
    return made.metrics.registry.get_sample_value("loyalty_time_driven_slice_seconds_count", labels)


def test_what_is_due_fires_into_the_open_batch_at_the_rules_instants(
    stubbed: WorkerDriver,
) -> None:
    gold = player(bet("60000", player_id="gold"), win("1000", player_id="gold"))
    small = player(bet("100", player_id="small"))
    later = player(bet("50", player_id="later", occurred_at=NOW + timedelta(hours=2)))
    stored(stubbed, gold, small, later)
    stubbed.fire_timers()
    batch = fired(stubbed)
    awards = [o for o in batch.outputs if isinstance(o, CashbackAwarded)]
    (down,) = [o for o in batch.outputs if isinstance(o, LevelChanged)]
    assert [(a.player_id, a.level, a.amount) for a in awards] == [("gold", "Gold", 500)]
    assert (down.player_id, down.to_level) == ("gold", "Silver")
    assert down.occurred_at == RULES.day_start(RULES.day_of(T0) + 30)  # not when it was noticed
    assert len(batch.closed) == 2 and batch.fired == 2  # "later" is not due yet
    writes = batch.writes[PARTITION]
    for p in (gold, small):  # fired entries go, each player's next one comes
        assert p.timer_at is not None
        assert writes[timer_key(p.timer_at, PLAYER, p.key.encode())] is None
        after = batch.states[p.key][1]
        assert after.timer_at is not None and after.timer_at > NOW
        assert writes[timer_key(after.timer_at, PLAYER, p.key.encode())] == b""

    # entries whose deletion is not checkpointed yet do not fire twice
    outputs = len(batch.outputs)
    stubbed.fire_timers()
    assert fired(stubbed) is batch and batch.fired == 2 and len(batch.outputs) == outputs

    stubbed.drain()  # the batch's metrics count once its outputs are acknowledged
    metrics = stubbed.metrics.registry
    assert (
        metrics.get_sample_value(
            "loyalty_closed_player_days_total", {"brand": AURORA, "level": "Gold"}
        )
        == 1
    )


def test_a_slice_stops_at_its_time_limit_and_the_next_goes_on_in_time_order(
    sliced: WorkerDriver,
) -> None:
    players = [
        player(bet("100", player_id=f"p{n}", occurred_at=T0 + timedelta(days=n))) for n in range(5)
    ]
    stored(sliced, *reversed(players))
    for n in range(1, 6):  # one entry per slice
        assert not sliced.fire_timers()
        assert fired(sliced).fired == n
    assert sliced.fire_timers()  # nothing due left
    assert fired(sliced).outputs == []  # Bronze: 0 % cashback, a log row each
    days = fired(sliced).closed
    assert [d.split(b'"player_id":"')[1][:2] for d in days] == [b"p0", b"p1", b"p2", b"p3", b"p4"]


def test_retention_deletes_only_a_players_rows_past_the_log_days_and_re_indexes_the_rest(
    stubbed: WorkerDriver,
) -> None:
    old = {
        history_key(AURORA, "p1", NOW - timedelta(days=days), f"o{days}").decode(): b"{}"
        for days in (450, LOG_DAYS + 1, LOG_DAYS - 1, 3)
    }
    logs = {
        cashback_key(AURORA, "p1", (NOW - timedelta(days=days)).date()).decode(): b"{}"
        for days in (420, 10)
    }
    other = history_key(AURORA, "p2", NOW - timedelta(days=450), "x").decode()
    due = timer_key(NOW - timedelta(hours=1), ROWS, f"{AURORA}:p1".encode()).decode()
    rows = old | logs | {other: b"{}", due: b""}  # the rows themselves are what is tested
    stubbed.store(PARTITION).write({key.encode(): value for key, value in rows.items()}, 0)
    stubbed.fire_timers()
    writes = fired(stubbed).writes[PARTITION]
    deleted = sorted(k.decode() for k, v in writes.items() if v is None)
    assert deleted == sorted([*list(old)[:2], next(iter(logs)), due])
    (entry,) = [k for k, v in writes.items() if v is not None]
    assert parse_timer_key(entry) == (ROWS, f"{AURORA}:p1".encode())
    oldest_kept = (NOW - timedelta(days=LOG_DAYS - 1)).date()
    assert entry.startswith(TIMER_PREFIX + f"{oldest_kept + timedelta(days=LOG_DAYS + 1)}".encode())


def test_applied_ids_are_forgotten_through_their_checkpoints_entry(stubbed: WorkerDriver) -> None:
    applied_on = (NOW - timedelta(days=SEEN_DAYS + 1)).date()
    ids = [SEEN_PREFIX + f"evt-{n}".encode() for n in range(3)]
    key, value = forget_entry(applied_on, ids)
    stubbed.store(PARTITION).write({key: value, **dict.fromkeys(ids, b"1|x")}, 0)
    stubbed.fire_timers()
    assert fired(stubbed).writes[PARTITION] == dict.fromkeys([key, *ids])


def test_the_census_is_read_a_slice_at_a_time_and_set_when_whole(sliced: WorkerDriver) -> None:
    stored(sliced, *(player(bet("10000" if n else "10", player_id=f"p{n}")) for n in range(4)))
    registry = sliced.metrics.registry
    silver = {"brand": AURORA, "level": "Silver"}
    for _ in range(4):  # a record a slice
        sliced.take_census()
        assert registry.get_sample_value("players_per_level", silver) is None
    sliced.take_census()  # no record left
    assert registry.get_sample_value("players_per_level", silver) == 3
    assert registry.get_sample_value("loyalty_last_census_timestamp_seconds") == NOW.timestamp()
    taken = slices(sliced, "census")
    sliced.take_census()  # the next census waits for census_interval_s
    assert slices(sliced, "census") == taken == 5


def test_a_brands_recheck_goes_through_its_players_a_slice_at_a_time_and_resumes(
    sliced: WorkerDriver,
) -> None:
    players = [player(bet("100", player_id=f"p{n}")) for n in range(3)]
    elsewhere = on_event(None, bet("100", brand_id=BOREALIS, player_id="x", currency="SEK"),
                         programme(BOREALIS)).state  # fmt: skip
    stored(sliced, *players, elsewhere)
    job = orjson.dumps({"brand_id": AURORA, "at": NOW.isoformat(), "next": ""})
    sliced.store(PARTITION).write({RECHECK_PREFIX + b"rc-1": job}, 0)
    assert not sliced.run_rechecks()  # one player a slice
    place = orjson.loads(fired(sliced).writes[PARTITION][RECHECK_PREFIX + b"rc-1"] or b"")
    assert place["next"] == f"{AURORA}:p0\x00"  # where the next slice goes on
    assert not sliced.run_rechecks()
    assert not sliced.run_rechecks()
    assert sliced.run_rechecks()  # no player left
    batch = fired(sliced)
    assert batch.writes[PARTITION][RECHECK_PREFIX + b"rc-1"] is None  # done: forgotten
    # each player re-checked (the day they played closed), only the brand's, in key order
    assert list(batch.states) == [f"{AURORA}:p0", f"{AURORA}:p1", f"{AURORA}:p2"]
    assert batch.fired == 3
    assert sliced.run_rechecks()  # finished in a batch in flight: not started again
    assert batch.fired == 3


def test_a_store_from_before_the_timer_index_gets_every_players_timer_indexed_once(
    stubbed: WorkerDriver,
) -> None:
    old = player(bet("100", player_id="old", occurred_at=NOW - timedelta(days=2)))
    raw = orjson.loads(old.to_json())
    del raw["timer_at"]  # as records were written before timers
    job = orjson.dumps({"brand_id": "", "at": NOW.isoformat(), "next": ""})
    stubbed.store(PARTITION).write({old.key.encode(): orjson.dumps(raw), INDEXING: job}, 0)
    stubbed.run_rechecks()
    batch = fired(stubbed)
    indexed = batch.states[old.key][1]
    assert indexed.timer_at is not None and indexed.timer_at > NOW  # the close ran, next indexed
    assert batch.writes[PARTITION][timer_key(indexed.timer_at, PLAYER, old.key.encode())] == b""
    assert len(batch.closed) == 1  # the day left open, closed at its midnight
    assert batch.writes[PARTITION][INDEXING] is None and batch.writes[PARTITION][INDEXED] == b""


def test_a_timer_whose_rules_fail_is_logged_and_the_others_still_fire(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(brand: str, at: datetime) -> Programme | None:
        if brand == BOREALIS:
            raise ArithmeticError("a bug in a rule")
        return RULES

    made = WorkerDriver(tmp_path, failing, now=NOW, timers_wait_s=0)
    broken = on_event(None, bet("100", brand_id=BOREALIS, player_id="broken", currency="SEK"),
                      programme(BOREALIS)).state  # fmt: skip
    fine = player(bet("100", player_id="fine"))
    stored(made, broken, fine)
    made.fire_timers()
    assert list(fired(made).states) == [fine.key]
    assert f"the timers of {BOREALIS}:broken" in caplog.text
    failed = {"kind": "failed"}
    assert made.metrics.registry.get_sample_value("loyalty_timers_fired_total", failed) == 1
    made.close()


def test_passes_go_on_from_where_the_last_fired_and_back_for_an_earlier_entry_stored(
    stubbed: WorkerDriver,
) -> None:
    first = player(bet("100", player_id="first", occurred_at=NOW - timedelta(days=3)))
    stored(stubbed, first)
    stubbed.fire_timers()
    assert fired(stubbed).fired == 1
    assert first.timer_at is not None
    fired_key = timer_key(first.timer_at, PLAYER, first.key.encode())
    assert stubbed.timer_cursor(PARTITION) == after(fired_key)  # the next pass starts after it
    # a later checkpoint stores an entry due before the cursor (a backfilled player)
    late = bet("100", player_id="late", occurred_at=NOW - timedelta(days=5))
    stubbed.pipe_event(late)
    stubbed.fold()
    state = fired(stubbed).states[f"{AURORA}:late"][1]
    assert state.timer_at is not None and state.timer_at < first.timer_at
    stubbed.drain()
    entry = timer_key(state.timer_at, PLAYER, state.key.encode())
    assert stubbed.timer_cursor(PARTITION) == entry
    stubbed.fire_timers()
    assert fired(stubbed).fired == 1 and state.key in fired(stubbed).states  # only the earlier


def test_a_restore_leaves_out_history_rows_past_retention_by_the_time_they_record() -> None:
    first_kept = history_kept_from(NOW)
    old = history_key(AURORA, "p1", NOW - timedelta(days=LOG_DAYS + 1), "o")
    kept = history_key(AURORA, "p1", NOW - timedelta(days=LOG_DAYS - 1), "k")
    assert old < first_kept(old) <= kept and kept >= first_kept(kept)
    other = history_key("b", "a-player", NOW - timedelta(days=3), "x")
    assert other >= first_kept(other)  # the bound is the row's own player's
