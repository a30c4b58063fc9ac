"""Side services that follow the engine's topics, each its own process.

- `pms_webhook`: POST every level change to the player-management system;
  `webhook_policy`: its rules (signing, backoff, circuit breaker), free of I/O;
- `redis_mirror`: each player's level, points and turnover copied to Redis;
- `redaction`: URLs in logs and dead letters without their secrets.
"""
