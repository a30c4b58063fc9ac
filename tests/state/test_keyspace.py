"""The keyspace's rules that other modules lean on: the byte that tells history rows apart, the key
after a key, the prefix of a brand's players."""

from pathlib import Path

from loyalty_streams.state import keyspace
from loyalty_streams.state.keyspace import (
    BOOKKEEPING,
    HISTORY_MARK,
    HISTORY_PREFIX,
    after,
    brand_players,
    cashback_key,
    cashback_player,
    history_player,
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
