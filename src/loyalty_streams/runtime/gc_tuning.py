"""Garbage-collector settings for processes that fold events: the worker and the benchmarks.

Every event allocates a few hundred short-lived objects, and a worker keeps many player records
alive. With CPython's default threshold (700) the collector runs every few events and often walks
the whole long-lived heap; freezing what start-up built and collecting young objects less often
(`tuning.GC_THRESHOLDS`) keeps it off the hot path (why: docs/decisions/gc-thresholds.md).
Reference cycles are rare here (records are trees), so little memory waits for the collector.
"""

import gc

from loyalty_streams.runtime.tuning import GC_THRESHOLDS


def tune_collector() -> None:
    """Call once start-up has built its long-lived objects."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
