"""The keyspace's rules that other modules lean on: each family's key bytes (the one place a test
spells them out), the byte that tells history rows apart, the key after a key, the prefix of a
brand's players."""

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from loyalty_streams.state import keyspace
from loyalty_streams.state.keyspace import (
    BOOKKEEPING,
    CASHBACK_PREFIX,
    CHECKPOINT_KEY,
    FORGET,
    HISTORY_MARK,
    HISTORY_PREFIX,
    INDEXED,
    INDEXING,
    PLAYER,
    RECHECK_PREFIX,
    ROWS,
    SEEN_PREFIX,
    TIMER_PREFIX,
    after,
    brand_players,
    cashback_key,
    cashback_player,
    history_key,
    history_player,
    parse_timer_key,
    timer_key,
)
from loyalty_streams.state.store import RocksDBStore


def test_only_history_rows_have_the_history_mark_among_bookkeeping_keys() -> None:
    bookkeeping = [
        value
        for name, value in vars(keyspace).items()
        if isinstance(value, bytes) and name.isupper() and value.startswith(BOOKKEEPING)
    ]
    assert len(bookkeeping) >= 7  # checkpoint, applied ids, history, cashback, index, re-checks
    marked = [key for key in bookkeeping if len(key) > 1 and key[1] == HISTORY_MARK]
    assert marked == [HISTORY_PREFIX]


def test_a_read_from_the_key_after_a_key_goes_on_past_it_and_misses_nothing(
    tmp_path: Path,
) -> None:
    store = RocksDBStore(tmp_path)
    keys = [b"a:p", b"a:p\x00", b"a:p\x00x", b"a:p0", b"a:q"]
    store.write(dict.fromkeys(keys, b""), 0)
    assert [key for key, _ in store.items(start=after(b"a:p"))] == keys[1:]
    store.close()


def test_a_brands_prefix_holds_its_players_only_and_none_holds_everyone() -> None:
    assert brand_players("aurora-casino") == b"aurora-casino:"
    assert not b"aurora-casino-2:p1".startswith(brand_players("aurora-casino"))
    assert brand_players("") == b""


def test_a_players_rows_name_the_player() -> None:
    assert cashback_player(cashback_key("aurora-casino", "p1")) == ("aurora-casino", "p1")
    assert history_player(HISTORY_PREFIX + b"b:p:2026-11-21T09:30:00.000000Z:o:1") == ("b", "p")


def test_each_familys_key_bytes_stay_as_stores_and_changelogs_already_hold_them() -> None:
    assert CHECKPOINT_KEY == b"\x00checkpoint"
    assert SEEN_PREFIX == b"\x00seen:"
    assert (HISTORY_PREFIX, CASHBACK_PREFIX) == (b"\x00history:", b"\x00cashback:")
    assert TIMER_PREFIX == b"\x00timer:"
    assert (RECHECK_PREFIX, INDEXING) == (b"\x00recheck:", b"\x00recheck:timer-index")
    assert INDEXED == b"\x00timers-indexed"
    assert (PLAYER, FORGET, ROWS) == (b"player", b"forget", b"rows")
    at = datetime(2026, 11, 21, 9, 30, 0, 250000, tzinfo=UTC)
    assert history_key("b", "p", at, "o:1") == b"\x00history:b:p:2026-11-21T09:30:00.250000Z:o:1"
    assert cashback_key("b", "p", date(2026, 11, 21)) == b"\x00cashback:b:p:2026-11-21"
    due = timer_key(at, PLAYER, b"b:p")
    assert due == b"\x00timer:2026-11-21T09:30:00.250000Z:player:b:p"
    assert parse_timer_key(due) == (PLAYER, b"b:p")


def test_history_keys_are_utc_to_the_microsecond_and_sort_by_time() -> None:
    new_york = timezone(timedelta(hours=-5))
    on_the_second = history_key("b", "p", datetime(2026, 11, 21, 9, 30, tzinfo=new_york), "x")
    assert on_the_second == b"\x00history:b:p:2026-11-21T14:30:00.000000Z:x"
    times = [datetime(2026, 11, 21, 14, 30, 0, micro, tzinfo=UTC) for micro in (0, 1, 999_999)]
    keys = [history_key("b", "p", moment, "x") for moment in times]
    assert keys == sorted(keys) and len({len(key) for key in keys}) == 1
