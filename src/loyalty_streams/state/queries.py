"""Read queries over a partition's store: a player's cashback log, pages of their history, and
the whole of it.

Pure functions of a store (`state.store.PartitionStore`): what the HTTP views show, read with
the keys of `state.keyspace`. A player's rows of each family are one range of keys in time
order, so each query is one range read: newest first, but the whole history oldest first.
"""

from datetime import datetime
from typing import Any

import orjson

from loyalty_streams.state.keyspace import cashback_key, history_key
from loyalty_streams.state.store import PartitionStore


def cashback_log(store: PartitionStore, brand_id: str, player_id: str) -> list[Any]:
    """The player's daily cashback-log rows the store holds, decoded, newest day first."""
    rows = [orjson.loads(raw) for _, raw in store.items(cashback_key(brand_id, player_id))]
    return rows[::-1]


def history_page(
    store: PartitionStore,
    brand_id: str,
    player_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    types: frozenset[str] = frozenset(),
    since: datetime | None = None,
    until: datetime | None = None,
    command_id: str | None = None,
) -> tuple[list[Any], str | None]:
    """A page of at most `limit` of the player's history rows the store holds, decoded, newest
    first, and the cursor of the next page (None on the last; a cursor is opaque text). `types`
    (output types), `since` (inclusive, UTC), `until` (exclusive, UTC) and `command_id` (the
    rows of one command: its own id or its cause) narrow it."""
    prefix = history_key(brand_id, player_id)
    starts = [prefix + cursor.encode()] if cursor else []
    if until is not None:
        starts.append(history_key(brand_id, player_id, until))
    floor = b"" if since is None else history_key(brand_id, player_id, since)
    rows: list[Any] = []
    last_key = b""
    for key, raw in store.newest_first(prefix, min(starts) if starts else None):
        if key < floor:
            return rows, None
        row = orjson.loads(raw)
        if types and row["type"] not in types:
            continue
        if command_id is not None and command_id not in (
            row.get("command_id"),
            row.get("cause_id"),
        ):
            continue
        if len(rows) == limit:
            return rows, last_key.removeprefix(prefix).decode()
        rows.append(row)
        last_key = key
    return rows, None


def history_rows(store: PartitionStore, brand_id: str, player_id: str) -> list[Any]:
    """Every history row of the player the store holds, decoded, oldest first (in key order:
    time, then output id)."""
    return [orjson.loads(raw) for _, raw in store.items(history_key(brand_id, player_id))]
