"""The stream runtime: records in, player records and outputs out, checkpointed exactly once.

- `worker`: one worker process: the fold loop, the global tables and the lookups the HTTP views
  ask, started and stopped as a service of the Faust app that serves the views;
- `loop`: the fold loop: poll, decode then fold, run the time-driven work, its thread;
- `batch`: what one checkpoint writes, its stage, and the batches not checkpointed yet;
- `checkpoint`: the four-step checkpoint, pipelined over batches in flight;
- `timers`: time-driven work a slice at a time: the due-time index, re-checks, the census;
- `rebalance`: assignment (with the restore) and revocation of partitions;
- `fold`: one inbound record in, a player's new record and the records to emit out;
- `tuning`: every tuning constant of the runtime;
- `global_tables`: programme versions and partition owners, read whole by every worker;
- `ownership`: which worker owns which partition;
- `metrics`: the worker's Prometheus metrics;
- `test_driver`: the fold loop run step by step over in-memory Kafka, for tests;
- `gc_tuning`: garbage-collector settings for processes that fold events.
"""
