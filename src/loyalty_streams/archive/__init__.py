"""The archive of inbound events: `casino.player-events` kept as Parquet files beyond the topic's
7 days, for what-if replays of a brand's whole history.

- `files`: the archive's layout (Hive-style directories by brand and day), its files' names and
  columns, and how a roll's files are written (temporary name, fsync, rename);
- `history`: a brand's events over a time range, from the files and the topic's unarchived tail,
  each once, in offset order per partition.

The process that writes the files is `services.archive` (`loyalty-streams archive`).
"""
