"""The player table's storage: what a partition's RocksDB store holds, and how it is restored.

- `keyspace`: every key family of a partition's store, its key bytes and its retention;
- `store`: what the runtime needs of a partition's store (a protocol), its RocksDB
  implementation, the log offsets it holds and the player record's stored format;
- `cache`: decoded player records the fold thread keeps, so a returning player skips RocksDB;
- `timer_index`: the due-time index of time-driven work;
- `retention`: how the store forgets what is not a player record;
- `restore`: bring owned partitions up to date from their changelog topics (read to their end
  with `kafka.reading`);
- `queries`: what the HTTP views read of a store: a player's cashback log, pages of history.
"""
