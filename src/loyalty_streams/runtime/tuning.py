"""Every tuning constant of the runtime, in one place: batch sizes and ages, waits, poll
timeouts, slices of time-driven work, the garbage collector's thresholds.

Settings an operator changes per deployment (`timers_wait_s`, `census_interval_s`,
`player_cache_size`, ...) are in `settings.py`; what is here is fixed by the code's design and
its measurements (each constant says where its reasons are).
"""

BATCH = 5_000
"""Most records folded per checkpoint: large enough to amortise the round trips, small enough
to keep a checkpoint well under a second."""

BATCH_S = 0.1
"""Longest a batch stays open for more records: a checkpoint writes a record batch to every
changelog partition it touches, and a broker's cost is mostly per record batch, so a checkpoint
per fetch would write hundreds of tiny ones a second (why: docs/decisions/batch-age.md)."""

IN_FLIGHT = 2 * BATCH
"""Most records folded and timers fired not yet checkpointed: the fold waits beyond that, so
memory and the work a crash replays stay bounded."""

DRAIN_S = 10.0
"""How long a rebalance or a stop waits for batches in flight; what is left is replayed by the
partitions' next owner (a crash's case)."""

IDLE_POLL_S = 0.1
"""Consumer poll timeout while no batch is open or in flight."""

BUSY_POLL_S = 0.005
"""Consumer poll timeout while batches are in flight: the loop returns quickly to move them on."""

LAG_INTERVAL_S = 10.0
"""How often the consumer lag gauge is refreshed."""

TIMER_SLICE_S = 0.02
"""Longest run of time-driven work (timers, re-checks, the census) between two fetches: what an
event may wait behind it."""

TIMER_IDLE_S = 0.05
"""How long the loop leaves the due-time index alone after finding nothing more due."""

SEED_WAIT_S = 30.0
"""How long a first start waits to read back the shipped programmes it published."""

GC_THRESHOLDS = (100_000, 50, 100)
"""`gc.set_threshold` for processes that fold events (see `gc_tuning`; why:
docs/decisions/gc-thresholds.md)."""
