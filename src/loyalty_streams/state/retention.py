"""How long a partition's store remembers what is not a player record, and how it forgets.

Nothing here walks the store: each thing to forget is an entry of the timer index
(`state.timer_index`), due when it leaves its retention period, and firing it reads only what
it deletes. The periods are stated with their key families (`state.keyspace`):

- An applied event id is remembered `SEEN_DAYS` (by the UTC day it was applied): each checkpoint
  writes, per partition, one `forget` entry listing the ids it applied; and a bet's record
  `BET_DAYS` likewise, in a `forget` entry of its own.
- A player's history rows and daily cashback-log rows are kept `LOG_DAYS`: the first record of a
  player on a UTC day (by its last activity) writes a `rows` entry for that day, due
  `LOG_DAYS` + 1 days later; firing it deletes the player's rows older than `LOG_DAYS`, reading
  them in key order (a player's rows sort by time) and stopping at the first one kept.
"""

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.state.keyspace import (
    FORGET,
    LOG_DAYS,
    ROWS,
    SEEN_DAYS,
    cashback_key,
    history_key,
    history_player,
    row_day,
    timer_key,
)
from loyalty_streams.state.store import PartitionStore

_DAY_S = 86_400


def forget_entry(
    applied_on: date, keys: Iterable[bytes], days: int = SEEN_DAYS
) -> tuple[bytes, bytes]:
    """The index entry that forgets keys written on the UTC day `applied_on` once `days` have
    passed: applied ids (`SEEN_DAYS`), bets (`BET_DAYS`). Keys are separated by newlines, which
    ids never hold. It is named by a digest of what it lists, so a checkpoint replayed after a
    crash writes the same entry again, never a second one."""
    due = datetime.combine(applied_on + timedelta(days=days + 1), time(), UTC)
    listed = b"\n".join(keys)
    digest = hashlib.blake2b(listed, digest_size=12).hexdigest().encode()
    return timer_key(due, FORGET, digest), listed


def forgotten(listed: bytes) -> list[bytes]:
    """The applied-id keys a `forget` entry lists (its value, as `forget_entry` wrote it)."""
    return listed.split(b"\n")


def rows_timer(previous: PlayerState | None, state: PlayerState) -> list[tuple[bytes, bytes]]:
    """The `rows` entry of the first record of a player on a UTC day (by its last activity),
    rows or not (a deposit has none, a bet later that day has): one entry per player and day of
    play; rows that time alone writes later are covered when it fires (`expired_rows`)."""
    now = state.last_activity
    if now is None:
        return []
    before = None if previous is None else previous.last_activity
    day = int(now.timestamp()) // _DAY_S
    if before is not None and int(before.timestamp()) // _DAY_S == day:
        return []
    due = datetime.fromtimestamp((day + LOG_DAYS + 1) * _DAY_S, UTC)
    return [(timer_key(due, ROWS, state.key.encode()), b"")]


def history_kept_from(at: datetime) -> Callable[[bytes], bytes]:
    """For a history row's key, the first key of its player kept at `at` (UTC): a key below it
    is past retention."""
    kept = kept_from(at)

    def first_kept(key: bytes) -> bytes:
        return history_key(*history_player(key), kept)

    return first_kept


def kept_from(at: datetime) -> datetime:
    """The oldest time whose rows are still kept at `at`."""
    return at - timedelta(days=LOG_DAYS)


def expired_rows(store: PartitionStore, player: bytes, at: datetime) -> dict[bytes, bytes | None]:
    """The deletes of a player's rows (history and cashback log) older than `LOG_DAYS` at `at`
    (UTC), and the `rows` entry of the oldest row kept, if any: reads only the rows it deletes
    and the first one kept of each kind."""
    kept = kept_from(at)
    brand, player_id = player.decode().split(":", 1)
    writes: dict[bytes, bytes | None] = {}
    oldest: date | None = None
    history, first_kept = history_key(brand, player_id), history_key(brand, player_id, kept)
    for key, _ in store.items(history):
        if key >= first_kept:
            oldest = row_day(key, history)
            break
        writes[key] = None
    log, first_day = cashback_key(brand, player_id), cashback_key(brand, player_id, kept.date())
    for key, _ in store.items(log):
        if key >= first_day:
            oldest = min(oldest or date.max, row_day(key, log))
            break
        writes[key] = None
    if oldest is not None:
        due = datetime.combine(oldest + timedelta(days=LOG_DAYS + 1), time(), UTC)
        writes[timer_key(due, ROWS, player)] = b""
    return writes
