"""Every tuning constant of the runtime, in one place: batch sizes and ages, waits, poll, flush
and stop timeouts, slices of time-driven work, the garbage collector's thresholds.

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

DRAIN_FLUSH_S = 0.1
"""Longest one flush of a drain waits for acknowledgements before the drain moves the
checkpoints on and looks at its deadline again (a flush sends at once, without the linger)."""

STOP_WAIT_S = 30.0
"""How long stopping the fold loop waits for its thread, which drains for up to `DRAIN_S` and
then closes its clients (up to `CLOSE_FLUSH_S`)."""

CLOSE_FLUSH_S = 10.0
"""How long closing the fold loop waits for its producer to send what it still holds."""

LAG_INTERVAL_S = 10.0
"""How often the consumer lag gauge is refreshed."""

TIMER_SLICE_S = 0.02
"""Longest run of time-driven work (timers, re-checks, the census) between two fetches: what an
event may wait behind it."""

TIMER_IDLE_S = 0.05
"""How long the loop leaves the due-time index alone after finding nothing more due."""

SEED_WAIT_S = 30.0
"""How long a first start waits to read back the shipped programmes it published."""

SEED_POLL_S = 0.05
"""How often, during `SEED_WAIT_S`, a first start looks whether they are back."""

PUBLISH_FLUSH_S = 30.0
"""How long publishing programme versions waits for the cluster to acknowledge them all before
it raises."""

CLAIM_FLUSH_S = 5.0
"""How long a stopping worker waits for its claims (the last one: no partitions) to reach the
cluster."""

TABLES_STOP_S = 10.0
"""How long stopping the global tables waits for the thread that follows them."""

SLICE_OBSERVED_S = 0.001
"""Shortest slice of time-driven work the slice histogram observes: a quick pass that found
nothing to do is no slice (a timers pass that fired counts however short)."""

GC_THRESHOLDS = (100_000, 50, 100)
"""`gc.set_threshold` for processes that fold events (see `gc_tuning`; why:
docs/decisions/gc-thresholds.md)."""

TRANSACTIONS_INIT_S = 30.0
"""Exactly-once: how long a worker waits for the cluster's transaction coordinator to register
its transactional id (and to abort what its previous run left open) before it refuses to start."""

TRANSACTION_COMMIT_S = 10.0
"""Exactly-once: how long one step of a checkpoint's commit (sending its records, adding its
offsets, committing) may take before the transaction is aborted and its batch replayed."""

TRANSACTION_ABORT_S = 10.0
"""Exactly-once: how long aborting a transaction may take before the fold loop gives up (and
stops: the coordinator aborts it after `kafka.clients.TRANSACTION_TIMEOUT_MS`)."""

TRANSACTION_RETRIES = 3
"""Exactly-once: how often a commit step that failed with a retriable error is tried again
before the transaction is aborted."""

STABLE_OFFSETS_S = 30.0
"""Exactly-once: how long an assignment waits for its partitions' committed offsets, which the
group holds back while a transaction of the previous owner is undecided (at most the
transaction timeout, `kafka.clients.TRANSACTION_TIMEOUT_MS`)."""
