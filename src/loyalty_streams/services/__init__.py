"""Side services that follow the workers' topics, each its own process.

- `consumer_service`: the skeleton they share (topic checks, a consumer group member, batches
  handed to a policy, commits of what it finished, the stop on a signal);
- `pms_webhook`: POST every level change to the player-management system (its policy, one
  record at a time); `webhook_policy`: its rules (signing, backoff, circuit breaker), free of I/O;
- `redis_mirror`: each player's level, points and turnover copied to Redis (its policy, in
  batches);
- `archive`: every record of `casino.player-events` kept as Parquet files, for what-if replays
  (the files' layout and the reader are `loyalty_streams.archive`'s);
- `redaction`: URLs in logs and dead letters without their secrets.
"""
