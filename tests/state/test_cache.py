from datetime import UTC, datetime

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.state.cache import PlayerCache

SINCE = datetime(2026, 11, 21, tzinfo=UTC)


def player(name: str) -> PlayerState:
    return PlayerState("aurora-casino", name, 1, SINCE)


def test_the_record_written_longest_ago_is_forgotten_first() -> None:
    cache = PlayerCache(2)
    a, b, c = player("a"), player("b"), player("c")
    cache.put("a", a)
    cache.put("b", b)
    cache.put("a", a)  # written again: now the newest
    cache.put("c", c)
    assert cache.get("a") is a and cache.get("c") is c
    assert cache.get("b") is None and len(cache) == 2


def test_a_newer_record_replaces_the_older_and_clear_forgets_all() -> None:
    cache = PlayerCache(10)
    old, new = player("a"), player("a")
    cache.put("a", old)
    cache.put("a", new)
    assert cache.get("a") is new and len(cache) == 1
    cache.clear()
    assert cache.get("a") is None


def test_capacity_zero_keeps_nothing() -> None:
    cache = PlayerCache(0)
    cache.put("a", player("a"))
    assert cache.get("a") is None and len(cache) == 0
