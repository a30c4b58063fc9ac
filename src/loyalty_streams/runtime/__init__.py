"""The stream runtime: records in, player records and outputs out, checkpointed exactly once.

- `worker`: one worker process's service tree (the fold loop, the tables, the views) on Faust;
- `loop`: the fold loop: poll, decode and fold, fire timers, checkpoint in batches;
- `fold`: one inbound record in, a player's new record and the records to emit out;
- `global_tables`: programme versions and partition owners, read whole by every worker;
- `ownership`: which worker owns which partition;
- `metrics`: the worker's Prometheus metrics;
- `test_driver`: the fold loop run step by step over in-memory Kafka, for tests;
- `gc_tuning`: garbage-collector settings for processes that fold events.
"""
