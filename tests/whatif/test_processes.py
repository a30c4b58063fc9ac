"""Folding in several processes gives the report of one: players are shared out by partition
and their figures added up, whatever the number of processes or how they are started."""

import dataclasses
from collections.abc import Iterator

import pytest

from loyalty_streams.whatif.replay import (
    MemorySource,
    Plan,
    Positioned,
    Source,
    fold_in_processes,
    positioned,
)
from loyalty_streams.whatif.report import Report
from loyalty_streams.whatif.run import what_if
from tests.whatif.support import AURORA
from tests.whatif.test_same_as_worker import (
    BASELINE_VERSIONS,
    PARTITIONS,
    PROPOSED,
    SINCE,
    UNTIL,
    stream,
)


def report(source: Source, processes: int, start_method: str = "fork") -> Report:
    found = what_if(
        source,
        AURORA,
        BASELINE_VERSIONS,
        PROPOSED,
        SINCE,
        UNTIL,
        "day",
        processes,
        partitions=PARTITIONS,
        start_method=start_method,
    )
    return dataclasses.replace(
        found, stats=dataclasses.replace(found.stats, processes=0, seconds=0.0)
    )


def test_every_number_of_processes_gives_the_report_of_one() -> None:
    source = MemorySource(positioned(stream(), PARTITIONS))
    one = report(source, 1)
    assert one.affected and one.moves and one.stats.events > 2_000
    for processes in (2, 3, 4):  # 4: more processes than partitions, one idle
        assert report(source, processes) == one


def test_spawned_processes_give_the_same_report() -> None:
    """Spawned processes get the plan and the source pickled (the CLI spawns: a history read
    from Kafka must not be forked)."""
    source = MemorySource(positioned(stream()[:500], PARTITIONS))
    assert report(source, 2, "spawn") == report(source, 1)


def test_a_failing_process_is_named_with_its_error() -> None:
    events = positioned(stream()[:200], PARTITIONS)

    def broken(share: int, shares: int) -> Iterator[Positioned]:
        if share == 1:
            raise OSError(f"archive file of share {share} unreadable")
        yield from MemorySource(events)(share, shares)

    plan = Plan(AURORA, BASELINE_VERSIONS, PROPOSED, SINCE, UNTIL)
    with pytest.raises(RuntimeError, match=r"process 1 failed:(.|\n)*share 1 unreadable"):
        fold_in_processes(plan, broken, 2)
