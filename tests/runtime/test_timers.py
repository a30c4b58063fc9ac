"""The fold loop's time-driven work without a broker: the due-time index fired in slices, in time
order, into the open batch; retention through the index; the census and brands' re-checks a
slice at a time."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import CashbackAwarded, LevelChanged
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import on_event
from loyalty_streams.runtime import loop as processor_module
from loyalty_streams.runtime.fold import Outcome
from loyalty_streams.runtime.loop import INDEXING, Batch, FoldLoop
from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import INDEXED, RECHECK_PREFIX, SEEN_PREFIX, TIMER_PREFIX
from loyalty_streams.state.retention import LOG_DAYS, SEEN_DAYS, forget_entry, history_kept_from
from loyalty_streams.state.statements import cashback_key, history_key
from loyalty_streams.state.store import PlayerTable
from loyalty_streams.state.timer_index import PLAYER, ROWS, parse, timer_key
from tests.domain.builders import T0, bet, programme, win

AURORA = "aurora-casino"
NOW = T0 + timedelta(days=40)


def no_grace() -> Programme:
    policies = programme().policies.model_copy(update={"downgrade_grace_days": 0})
    return programme().model_copy(update={"policies": policies})


RULES = no_grace()


def player(*events: PlayerEvent) -> PlayerState:
    state = None
    for event in events:
        state = on_event(state, event, RULES).state
    assert state is not None
    return state


@pytest.fixture
def stubbed(tmp_path: Path) -> Iterator[FoldLoop]:
    """A processor at NOW whose Kafka clients never reach a broker (nothing is checkpointed:
    what time-driven work did is in its open batch)."""
    settings = Settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path, timers_wait_s=0)
    table = PlayerTable(tmp_path / "players")
    made = FoldLoop(
        settings, lambda brand, at: RULES, table, lambda: NOW, lambda _: None, Metrics()
    )
    made.owned = frozenset({3})
    try:
        yield made
    finally:
        made._consumer.close()
        del made._producer  # its last reference: librdkafka stops trying to connect
        table.close()


def stored(made: FoldLoop, *players: PlayerState, **other: bytes) -> None:
    """Players in partition 3's store with their index entries, as a checkpoint leaves them."""
    records: dict[bytes, bytes | None] = {p.key.encode(): p.to_json() for p in players}
    for p in players:
        assert p.timer_at is not None
        records[timer_key(p.timer_at, PLAYER, p.key.encode())] = b""
    made.table.partition(3).write(records | {k.encode(): v for k, v in other.items()}, 0)


def fired(made: FoldLoop) -> Batch:
    batch = made._open
    assert batch is not None
    return batch


def test_what_is_due_fires_into_the_open_batch_at_the_rules_instants(stubbed: FoldLoop) -> None:
    gold = player(bet("60000", player_id="gold"), win("1000", player_id="gold"))
    small = player(bet("100", player_id="small"))
    later = player(bet("50", player_id="later", occurred_at=NOW + timedelta(hours=2)))
    stored(stubbed, gold, small, later)
    stubbed._run_timers()
    batch = fired(stubbed)
    awards = [o for o in batch.outputs if isinstance(o, CashbackAwarded)]
    (down,) = [o for o in batch.outputs if isinstance(o, LevelChanged)]
    assert [(a.player_id, a.level, a.amount) for a in awards] == [("gold", "Gold", 500)]
    assert (down.player_id, down.to_level) == ("gold", "Silver")
    assert down.occurred_at == RULES.day_start(RULES.day_of(T0) + 30)  # not when it was noticed
    assert len(batch.closed) == 2 and batch.fired == 2  # "later" is not due yet
    writes = batch.writes[3]
    for p in (gold, small):  # fired entries go, each player's next one comes
        assert p.timer_at is not None
        assert writes[timer_key(p.timer_at, PLAYER, p.key.encode())] is None
        after = batch.states[p.key][1]
        assert after.timer_at is not None and after.timer_at > NOW
        assert writes[timer_key(after.timer_at, PLAYER, p.key.encode())] == b""
    stubbed._count(batch)
    metrics = stubbed.metrics.registry
    assert (
        metrics.get_sample_value(
            "loyalty_closed_player_days_total", {"brand": AURORA, "level": "Gold"}
        )
        == 1
    )

    # entries whose deletion is not checkpointed yet do not fire twice
    stubbed._timers_idle_until = 0
    stubbed._run_timers()
    assert batch.fired == 2 and len(batch.outputs) == len(fired(stubbed).outputs)


def test_a_slice_stops_at_its_time_limit_and_the_next_goes_on_in_time_order(
    stubbed: FoldLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    players = [
        player(bet("100", player_id=f"p{n}", occurred_at=T0 + timedelta(days=n))) for n in range(5)
    ]
    stored(stubbed, *reversed(players))
    monkeypatch.setattr(processor_module, "TIMER_SLICE_S", 0.0)  # one entry per slice
    for n in range(1, 6):
        stubbed._run_timers()
        assert fired(stubbed).fired == n
    assert fired(stubbed).outputs == []  # Bronze: 0 % cashback, a log row each
    days = fired(stubbed).closed
    assert [d.split(b'"player_id":"')[1][:2] for d in days] == [b"p0", b"p1", b"p2", b"p3", b"p4"]


def test_retention_deletes_only_a_players_rows_past_the_log_days_and_re_indexes_the_rest(
    stubbed: FoldLoop,
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
    stored(stubbed, **old, **logs, **{other: b"{}", due: b""})
    stubbed._run_timers()
    writes = fired(stubbed).writes[3]
    deleted = sorted(k.decode() for k, v in writes.items() if v is None)
    assert deleted == sorted([*list(old)[:2], next(iter(logs)), due])
    (entry,) = [k for k, v in writes.items() if v is not None]
    assert parse(entry) == (ROWS, f"{AURORA}:p1".encode())
    oldest_kept = (NOW - timedelta(days=LOG_DAYS - 1)).date()
    assert entry.startswith(TIMER_PREFIX + f"{oldest_kept + timedelta(days=LOG_DAYS + 1)}".encode())


def test_applied_ids_are_forgotten_through_their_checkpoints_entry(stubbed: FoldLoop) -> None:
    applied_on = (NOW - timedelta(days=SEEN_DAYS + 1)).date()
    ids = [SEEN_PREFIX + f"evt-{n}".encode() for n in range(3)]
    key, value = forget_entry(applied_on, ids)
    stubbed.table.partition(3).write({key: value, **dict.fromkeys(ids, b"1|x")}, 0)
    stubbed._run_timers()
    assert fired(stubbed).writes[3] == dict.fromkeys([key, *ids])


def test_the_census_is_read_a_slice_at_a_time_and_set_when_whole(
    stubbed: FoldLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored(stubbed, *(player(bet("10000" if n else "10", player_id=f"p{n}")) for n in range(4)))
    monkeypatch.setattr(processor_module, "TIMER_SLICE_S", 0.0)
    registry = stubbed.metrics.registry
    silver = {"brand": AURORA, "level": "Silver"}
    for _ in range(4):  # a record a slice
        stubbed._take_census()
        assert registry.get_sample_value("players_per_level", silver) is None
    stubbed._take_census()  # no record left
    assert registry.get_sample_value("players_per_level", silver) == 3
    assert registry.get_sample_value("loyalty_last_census_timestamp_seconds") == NOW.timestamp()
    stubbed._take_census()  # the next census waits for census_interval_s
    assert stubbed._census is None


def test_a_brands_recheck_goes_through_its_players_a_slice_at_a_time_and_resumes(
    stubbed: FoldLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    players = [player(bet("100", player_id=f"p{n}")) for n in range(3)]
    elsewhere = on_event(None, bet("100", brand_id="borealis-casino", player_id="x",
                                   currency="SEK"), programme("borealis-casino")).state  # fmt: skip
    stored(stubbed, *players, elsewhere)
    job = orjson.dumps({"brand_id": AURORA, "at": NOW.isoformat(), "next": ""})
    stubbed.table.partition(3).write({RECHECK_PREFIX + b"rc-1": job}, 0)
    looked_at: list[str] = []
    monkeypatch.setattr(
        processor_module, "recheck", lambda state, *_: looked_at.append(state.key) or Outcome()
    )
    monkeypatch.setattr(processor_module, "TIMER_SLICE_S", 0.0)  # one player a slice
    stubbed._run_rechecks()
    place = orjson.loads(fired(stubbed).writes[3][RECHECK_PREFIX + b"rc-1"] or b"")
    assert place["next"] == f"{AURORA}:p0\x00"  # where the next slice goes on
    stubbed._run_rechecks()
    stubbed._run_rechecks()
    stubbed._run_rechecks()  # no player left
    assert fired(stubbed).writes[3][RECHECK_PREFIX + b"rc-1"] is None  # done: forgotten
    assert looked_at == [f"{AURORA}:p0", f"{AURORA}:p1", f"{AURORA}:p2"]  # only the brand's
    stubbed._run_rechecks()  # finished in a batch in flight: not started again
    assert len(looked_at) == 3


def test_a_store_from_before_the_timer_index_gets_every_players_timer_indexed_once(
    stubbed: FoldLoop,
) -> None:
    old = player(bet("100", player_id="old", occurred_at=NOW - timedelta(days=2)))
    raw = orjson.loads(old.to_json())
    del raw["timer_at"]  # as records were written before timers
    job = orjson.dumps({"brand_id": "", "at": NOW.isoformat(), "next": ""})
    stubbed.table.partition(3).write({old.key.encode(): orjson.dumps(raw), INDEXING: job}, 0)
    stubbed._run_rechecks()
    batch = fired(stubbed)
    indexed = batch.states[old.key][1]
    assert indexed.timer_at is not None and indexed.timer_at > NOW  # the close ran, next indexed
    assert batch.writes[3][timer_key(indexed.timer_at, PLAYER, old.key.encode())] == b""
    assert len(batch.closed) == 1  # the day left open, closed at its midnight
    assert batch.writes[3][INDEXING] is None and batch.writes[3][INDEXED] == b""


def test_a_timer_whose_rules_fail_is_logged_and_the_others_still_fire(
    stubbed: FoldLoop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken, fine = player(bet("100", player_id="broken")), player(bet("100", player_id="fine"))
    stored(stubbed, broken, fine)
    real = processor_module.fire

    def fire(state: PlayerState, *rest: object) -> Outcome:
        if state.player_id == "broken":
            raise ArithmeticError("a bug in a rule")
        return real(state, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(processor_module, "fire", fire)
    stubbed._run_timers()
    assert list(fired(stubbed).states) == [fine.key]
    assert "the timers of aurora-casino:broken" in caplog.text
    failed = {"kind": "failed"}
    assert stubbed.metrics.registry.get_sample_value("loyalty_timers_fired_total", failed) == 1


def test_passes_go_on_from_where_the_last_fired_and_back_for_an_earlier_entry_stored(
    stubbed: FoldLoop,
) -> None:
    first = player(bet("100", player_id="first", occurred_at=NOW - timedelta(days=3)))
    stored(stubbed, first)
    stubbed._run_timers()
    assert fired(stubbed).fired == 1
    assert first.timer_at is not None
    fired_key = timer_key(first.timer_at, PLAYER, first.key.encode())
    assert stubbed._cursors[3] == fired_key + b"\x00"  # the next pass starts after it
    # a later checkpoint stores an entry due before the cursor (a backfilled player)
    late = player(bet("100", player_id="late", occurred_at=NOW - timedelta(days=5)))
    assert late.timer_at is not None and late.timer_at < first.timer_at
    entry = timer_key(late.timer_at, PLAYER, late.key.encode())
    batch = Batch(b"0")
    batch.add(Outcome(state=late, state_json=late.to_json(), writes=[(entry, b"")]), 3)
    batch.changelog_offsets = {3: 0}
    stubbed._store(batch)
    assert stubbed._cursors[3] == entry
    stubbed._timers_idle_until = 0
    stubbed._run_timers()
    assert fired(stubbed).fired == 2 and late.key in fired(stubbed).states


def test_a_restore_leaves_out_history_rows_past_retention_by_the_time_they_record() -> None:
    first_kept = history_kept_from(NOW)
    old = history_key(AURORA, "p1", NOW - timedelta(days=LOG_DAYS + 1), "o")
    kept = history_key(AURORA, "p1", NOW - timedelta(days=LOG_DAYS - 1), "k")
    assert old < first_kept(old) <= kept and kept >= first_kept(kept)
    other = history_key("b", "a-player", NOW - timedelta(days=3), "x")
    assert other >= first_kept(other)  # the bound is the row's own player's
