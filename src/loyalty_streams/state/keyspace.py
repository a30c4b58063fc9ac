"""Every key a partition's store (and its changelog) holds, in one place, with its retention.

This module is the only one that knows the bytes of a key: every other module builds and parses
keys through the names below.

The rule that tells the families apart: a player's record is keyed `<brand_id>:<player_id>`
(ids are printable), and every other key starts with a NUL byte (`BOOKKEEPING`), so no
bookkeeping key is ever a player's and all of them sort below the first player
(`FIRST_PLAYER_KEY`).

| family | key | value | kept |
| --- | --- | --- | --- |
| player record | `<brand>:<player>` (`events.player_key`) | `store.encode_player` | for good |
| checkpoint | `CHECKPOINT_KEY` | offsets reflected, and when | for good, not logged |
| applied ids | `SEEN_PREFIX<id>` | UTC day applied, source record | `SEEN_DAYS` |
| bets | `BET_PREFIX<brand>:<player>:<bet id>` | `cancellations.PlacedBet` | `BET_DAYS` |
| history | `HISTORY_PREFIX<brand>:<player>:<UTC µs>Z:<output id>` | the output | `LOG_DAYS` |
| cashback log | `CASHBACK_PREFIX<brand>:<player>:<YYYY-MM-DD>` | the day's cashback | `LOG_DAYS` |
| due-time index | `TIMER_PREFIX<UTC µs>Z:<kind>:<subject>` | per kind, below | until fired |
| brand re-checks | `RECHECK_PREFIX<command id>` | where the re-check stands | until done |
| timers indexed | `INDEXED` | empty | for good |

Every family but the checkpoint is logged to the changelog under the same key, except history
rows, which have a topic of their own (`loyalty.players-history`, which forgets by time).
How the store forgets at the end of a retention period: `state.retention`.
"""

from datetime import UTC, date, datetime

from loyalty_streams.domain.cancellations import CANCELLABLE_DAYS
from loyalty_streams.domain.events import player_key

BOOKKEEPING = b"\x00"
"""The first byte of every key that is not a player record."""

FIRST_PLAYER_KEY = b"\x01"
"""Below every player record's key and above every bookkeeping key."""


def after(key: bytes) -> bytes:
    """The first key above `key` in bytes order: where a range read goes on past `key`."""
    return key + b"\x00"


# -- player records ------------------------------------------------------------------------------


def brand_players(brand_id: str) -> bytes:
    """The prefix of the keys of a brand's player records (a player key without its player id);
    for "" (every brand), b"": `PartitionStore.items` without a prefix reads every player."""
    return player_key(brand_id, "").encode() if brand_id else b""


# -- checkpoint ----------------------------------------------------------------------------------

CHECKPOINT_KEY = BOOKKEEPING + b"checkpoint"
"""The store's own: the offsets of the changelog and of the history topic it reflects, and
when it was written (`state.store`). Local, never logged."""

# -- applied ids ---------------------------------------------------------------------------------

SEEN_PREFIX = BOOKKEEPING + b"seen:"
"""Event and command ids applied in a partition (they survive a fail-over): the value says on
which UTC day and from which record, so a replay is told apart from a re-publish."""

SEEN_DAYS = 7
"""How long an applied event id is remembered: a re-publish later than that would count again,
so this is far beyond any producer's retry horizon."""

# -- bets ----------------------------------------------------------------------------------------

BET_PREFIX = BOOKKEEPING + b"bet:"
"""The bets players placed, by player and bet id: what each earned, so a cancellation reverses
exactly that (`domain.cancellations`)."""

BET_DAYS = CANCELLABLE_DAYS + 1
"""How long a bet's record is remembered, by the UTC day it was applied: as long as a bet can be
cancelled, and a day more (a bet's event time may be a little ahead of that day)."""


def bet_key(brand_id: str, player_id: str, bet_id: str) -> bytes:
    """A bet's record's key (ids hold no colon, so the key is the player's and the bet's)."""
    return BET_PREFIX + f"{player_key(brand_id, player_id)}:{bet_id}".encode()


# -- a player's rows: history and cashback log -----------------------------------------------------

HISTORY_PREFIX = BOOKKEEPING + b"history:"
"""A player's history rows, sorted by time within the player."""

HISTORY_MARK = HISTORY_PREFIX[1]
"""The byte after `BOOKKEEPING` in a history row's key, which no other bookkeeping family's key
has there: `key[1] == HISTORY_MARK` tells a bookkeeping key that is a history row at one compare
(the fold's hot path; a player record's key may have it there too)."""

CASHBACK_PREFIX = BOOKKEEPING + b"cashback:"
"""A player's daily cashback log, one row per closed brand day."""

LOG_DAYS = 400
"""How long rows of the daily cashback log and of players' histories are kept: a year of
statements, and some. The history topic forgets its rows after as long (its `retention.ms` in
`topics/loyalty.players-history.json`; `tests/kafka/test_topics.py` fails when they differ)."""


def history_key(
    brand_id: str, player_id: str, occurred_at: datetime | None = None, output_id: str = ""
) -> bytes:
    """A history row's key; without a time, the prefix of all of a player's rows. A player's
    rows are one range of keys in time order: a statement is a range read, and retention
    deletes a range's head."""
    key = HISTORY_PREFIX + player_key(brand_id, player_id).encode() + b":"
    if occurred_at is None:
        return key
    return key + f"{sortable(occurred_at)}:{output_id}".encode()


def cashback_key(brand_id: str, player_id: str, day: date | None = None) -> bytes:
    """A cashback-log row's key, for a brand day; without a day, the prefix of all of a
    player's rows (in day order)."""
    key = CASHBACK_PREFIX + player_key(brand_id, player_id).encode() + b":"
    return key if day is None else key + day.isoformat().encode()


def history_player(key: bytes) -> tuple[str, str]:
    """The brand and player ids of a history row's key."""
    return _row_player(key, HISTORY_PREFIX)


def cashback_player(key: bytes) -> tuple[str, str]:
    """The brand and player ids of a cashback-log row's key."""
    return _row_player(key, CASHBACK_PREFIX)


def _row_player(key: bytes, family: bytes) -> tuple[str, str]:
    brand_id, player_id, _ = key[len(family) :].decode().split(":", 2)
    return brand_id, player_id


def row_day(key: bytes, rows: bytes) -> date:
    """The day a player's row is dated (a history row's UTC day, a cashback row's brand day),
    given its key and the prefix of the player's rows of that family (`history_key` or
    `cashback_key` without a time)."""
    return date.fromisoformat(key[len(rows) : len(rows) + 10].decode())


# -- due-time index ------------------------------------------------------------------------------

TIMER_PREFIX = BOOKKEEPING + b"timer:"
"""The due-time index: one key per entry, sorted by due time (`state.timer_index`)."""

PLAYER = b"player"
"""An index entry's kind: the instant a player's record has something due; subject the
player's key, no value."""

FORGET = b"forget"
"""An index entry's kind: applied ids to forget; subject a digest of the value, which lists
their keys (`retention.forget_entry`)."""

ROWS = b"rows"
"""An index entry's kind: a player's history and cashback-log rows to prune; subject the
player's key, no value."""

_STAMP = len("2026-11-21T09:30:00.000000Z")


def sortable(moment: datetime) -> str:
    """ISO UTC to the microsecond, e.g. `2026-11-21T09:30:00.000000Z`: fixed width, so keys
    sort by time (built by isoformat, not strftime: why, docs/decisions/fold-hot-path.md)."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def timer_key(due: datetime, kind: bytes, subject: bytes) -> bytes:
    """An index entry's key: due at `due`, of a kind above, about `subject`."""
    return TIMER_PREFIX + sortable(due).encode() + b":" + kind + b":" + subject


def due_before(moment: datetime) -> bytes:
    """The first index key due after `moment`: every key below it is due by then."""
    return TIMER_PREFIX + sortable(moment).encode() + b"\xff"


def parse_timer_key(key: bytes) -> tuple[bytes, bytes]:
    """An index key's kind and subject."""
    kind, _, subject = key[len(TIMER_PREFIX) + _STAMP + 1 :].partition(b":")
    return kind, subject


# -- brand re-checks and the timer index's own ----------------------------------------------------

RECHECK_PREFIX = BOOKKEEPING + b"recheck:"
"""A brand's re-check under way in a partition, by its command id: its brand, its time and the
player key it goes on from."""

INDEXING = RECHECK_PREFIX + b"timer-index"
"""A re-check of every player of a partition whose store predates the timer index: it runs what
is due for each, registers their next timer and the retention of their rows, a slice at a time;
its end writes `INDEXED`. (The applied ids it finds stay: nothing lists them to forget.)"""

INDEXED = BOOKKEEPING + b"timers-indexed"
"""Present once every player record of the partition has its timer indexed."""
