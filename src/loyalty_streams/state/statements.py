"""A player's rows in the partition's store besides the record: history and the cashback log.

Both are keyed by player first, then by time, so one player's rows are one range of keys in time
order: a statement is a range read, and retention deletes a range's head (`state.retention`).
"""

from datetime import date, datetime

from loyalty_streams.state.keyspace import CASHBACK_PREFIX, HISTORY_PREFIX
from loyalty_streams.state.timer_index import sortable


def cashback_key(brand_id: str, player_id: str, day: date | None = None) -> bytes:
    """A log row's key; without a day, the prefix of all of a player's rows."""
    key = CASHBACK_PREFIX + f"{brand_id}:{player_id}:".encode()
    return key if day is None else key + day.isoformat().encode()


def history_key(
    brand_id: str, player_id: str, occurred_at: datetime | None = None, output_id: str = ""
) -> bytes:
    """A history row's key; without a time, the prefix of all of a player's rows."""
    key = HISTORY_PREFIX + f"{brand_id}:{player_id}:".encode()
    if occurred_at is None:
        return key
    return key + f"{sortable(occurred_at)}:{output_id}".encode()
