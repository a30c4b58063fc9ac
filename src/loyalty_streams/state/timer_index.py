"""The due-time index of a partition's store: what time-driven work is due, in time order.

Each entry is one key, `<prefix><UTC time to the microsecond>Z:<kind>:<subject>`, so RocksDB keeps
them sorted by due time and the worker reads only what is due, from the start of the index. The
entries live in the partition's store and its changelog like the player records, so timers move
with the partition and survive a crash. Kinds (Kafka Streams would call these punctuations, Flink
keyed timers):

- `player`: the instant a player's record has something due (`PlayerState.timer_at`, set by the
  rules in `domain.time_rules`); moved whenever a record's `timer_at` changes;
- `forget`: applied event ids to forget (the value lists their keys), one entry per checkpoint
  and partition;
- `rows`: a player's history and cashback-log rows to prune, one entry per player and UTC day
  with rows, due when that day's rows leave the retention period.
"""

from datetime import UTC, datetime

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.state.keyspace import TIMER_PREFIX

PLAYER = b"player"
FORGET = b"forget"
ROWS = b"rows"

_STAMP = len("2026-11-21T09:30:00.000000Z")


def sortable(moment: datetime) -> str:
    """ISO UTC to the microsecond, e.g. `2026-11-21T09:30:00.000000Z`: fixed width, so keys
    sort by time (isoformat is several times cheaper than strftime)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def timer_key(due: datetime, kind: bytes, subject: bytes) -> bytes:
    return TIMER_PREFIX + sortable(due).encode() + b":" + kind + b":" + subject


def due_before(moment: datetime) -> bytes:
    """The first index key due after `moment`: every key below it is due by then."""
    return TIMER_PREFIX + sortable(moment).encode() + b"\xff"


def parse(key: bytes) -> tuple[bytes, bytes]:
    """An index key's kind and subject."""
    kind, _, subject = key[len(TIMER_PREFIX) + _STAMP + 1 :].partition(b":")
    return kind, subject


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
