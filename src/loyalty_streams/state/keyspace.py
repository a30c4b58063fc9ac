"""Every key a partition's store (and its changelog) holds, in one place, with its retention.

A player's record is keyed `<brand_id>:<player_id>`; ids are printable, so a key that starts
with a NUL byte (`BOOKKEEPING`) is never a player's, and every other family starts with one:

- player record, `<brand>:<player>`: `PlayerState.to_json`, kept for good;
- `CHECKPOINT_KEY`: the log offsets the store reflects and when (local, never logged);
- applied ids, `SEEN_PREFIX<id>`: `<UTC day applied>|<topic>:<partition>:<offset>`, forgotten
  after `retention.SEEN_DAYS`;
- history, `HISTORY_PREFIX<brand>:<player>:<UTC µs>Z:<output id>`: the output as sent, kept
  `retention.LOG_DAYS`, logged to its own topic;
- cashback log, `CASHBACK_PREFIX<brand>:<player>:<YYYY-MM-DD>`: a `timers.CashbackDay`, kept
  `retention.LOG_DAYS`;
- due-time index, `TIMER_PREFIX<UTC µs>Z:<kind>:<subject>`: until fired
  (`state.timer_index`);
- brand re-checks, `RECHECK_PREFIX<command id>`: until done;
- `INDEXED`: kept for good.
"""

BOOKKEEPING = b"\x00"
"""The first byte of every key that is not a player record."""

FIRST_PLAYER_KEY = b"\x01"
"""Below every player record's key and above every bookkeeping key."""

CHECKPOINT_KEY = b"\x00checkpoint"

SEEN_PREFIX = b"\x00seen:"
"""Event and command ids applied in a partition (survive a fail-over): the value says on which
UTC day and from which record, so a replay is told apart from a re-publish."""

HISTORY_PREFIX = b"\x00history:"
"""A player's history rows, sorted by time within the player."""

CASHBACK_PREFIX = b"\x00cashback:"
"""A player's daily cashback log, one row per closed brand day."""

TIMER_PREFIX = b"\x00timer:"
"""The due-time index (see `state.timer_index`)."""

RECHECK_PREFIX = b"\x00recheck:"
"""A brand's re-check under way in a partition: its brand, its time and the player key it goes
on from."""

INDEXED = b"\x00timers-indexed"
"""Present once every player record of the partition has its timer indexed."""
