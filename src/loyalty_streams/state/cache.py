"""The fold thread's decoded player records, so a returning player skips RocksDB and JSON.

Reading a record from RocksDB and decoding it costs more than folding an event into it. The
cache holds only records a checkpoint wrote, so it always agrees with the store; it is used by
the fold thread alone (no locks), and emptied whenever partitions move, since a restore writes
the store behind its back. Eviction drops the record written longest ago: every fold of a player
ends in a write, so that is the player least recently folded.
"""

from collections import OrderedDict

from loyalty_streams.domain.player import PlayerState


class PlayerCache:
    """An `OrderedDict` in write order: a plain dict evicting `next(iter(...))` walks over every
    slot its evictions emptied, so each eviction grows dearer until the dict is rebuilt."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._records: OrderedDict[str, PlayerState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def get(self, key: str) -> PlayerState | None:
        return self._records.get(key)

    def put(self, key: str, state: PlayerState) -> None:
        """Remember a checkpointed record as the newest; forget the oldest beyond capacity."""
        if self.capacity <= 0:
            return
        records = self._records
        records[key] = state
        records.move_to_end(key)
        if len(records) > self.capacity:
            records.popitem(last=False)

    def clear(self) -> None:
        self._records.clear()
