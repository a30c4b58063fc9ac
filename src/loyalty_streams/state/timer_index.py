"""The due-time index of a partition's store: what time-driven work is due, in time order.

Each entry is one key (`keyspace.timer_key`: its due time to the microsecond, its kind, its
subject), so RocksDB keeps them sorted by due time and the worker reads only what is due, from
the start of the index. The entries live in the partition's store and its changelog like the
player records, so timers move with the partition and survive a crash. Kinds (Kafka Streams
would call these punctuations, Flink keyed timers):

- `player`: the instant a player's record has something due (`PlayerState.timer_at`, set by the
  rules in `domain.time_rules`); moved whenever a record's `timer_at` changes (`player_moves`);
- `forget`: applied event ids to forget (the value lists their keys), one entry per checkpoint
  and partition (`retention.forget_entry`);
- `rows`: a player's history and cashback-log rows to prune, one entry per player and UTC day
  with rows, due when that day's rows leave the retention period (`retention.rows_timer`).
"""

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.state.keyspace import PLAYER, timer_key


def player_moves(
    previous: PlayerState | None, state: PlayerState
) -> list[tuple[bytes, bytes | None]]:
    """The index writes of a record that changed: its timer moved, if it did."""
    before = None if previous is None else previous.timer_at
    after = state.timer_at
    if before == after:
        return []
    subject = state.key.encode()
    moves: list[tuple[bytes, bytes | None]] = []
    if before is not None:
        moves.append((timer_key(before, PLAYER, subject), None))
    if after is not None:
        moves.append((timer_key(after, PLAYER, subject), b""))
    return moves
