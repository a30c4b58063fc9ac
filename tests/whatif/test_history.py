"""The what-if of a brand's real history, on an in-memory cluster: the versions read from
`loyalty.programmes`, the events from the archive's files and the topic's unarchived tail, each
process reading only its partitions (`archive.history`'s `partitions`)."""

from datetime import UTC, datetime
from pathlib import Path

from loyalty_streams.archive.files import archived, write_roll
from loyalty_streams.archive.history import history
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import PLAYER_EVENTS, PROGRAMMES, WORKERS
from loyalty_streams.runtime.ownership import Claim
from loyalty_streams.runtime.test_driver import MemoryCluster
from loyalty_streams.settings import Settings
from loyalty_streams.whatif.job import run_what_if
from loyalty_streams.whatif.replay import MemorySource, positioned
from loyalty_streams.whatif.run import what_if
from tests.whatif.support import AURORA, aurora, by_hand, changed_levels
from tests.whatif.test_silver_threshold import MALTA_5_NOV

PARTITIONS = 4


def cluster_with(events: list[PlayerEvent], root: Path) -> MemoryCluster:
    """The events on `casino.player-events` (4 partitions); each partition's first half
    archived under `root` and committed by the archive group, the rest only on the topic;
    aurora-casino's version 1 on `loyalty.programmes`."""
    cluster = MemoryCluster(PARTITIONS, range(PARTITIONS))
    records: dict[int, list[object]] = {number: [] for number in range(PARTITIONS)}
    for event in events:
        key, value = event.key.encode(), event.model_dump_json().encode()
        number = partition_of(key, PARTITIONS)
        stamp = int(event.occurred_at.timestamp() * 1000)
        message = cluster.append(PLAYER_EVENTS, number, key, value, stamp)
        records[number].append(archived(number, int(message.offset() or 0), stamp, key, value))
    for number, rows in records.items():
        half = rows[: len(rows) // 2]
        if half:
            write_roll(root, {number: half})  # type: ignore[dict-item]
            cluster.committed[PLAYER_EVENTS, number] = len(half)
    programme = aurora()
    cluster.append(PROGRAMMES, 0, b"aurora-casino:1", programme.model_dump_json().encode(), None)
    claim = Claim(
        app_id="loyalty", worker="w1", url="http://w1:6066", partitions=(), at=datetime.now(UTC)
    )
    cluster.append(WORKERS, 0, b"w1", claim.model_dump_json().encode(), None)
    return cluster


def test_a_share_of_the_partitions_reads_only_those(tmp_path: Path) -> None:
    events = by_hand()
    cluster = cluster_with(events, tmp_path)
    settings = Settings(archive_dir=tmp_path, bootstrap_servers="memory:0")
    every = list(history(settings, AURORA, None, None, cluster))
    mine = list(history(settings, AURORA, None, None, cluster, partitions={1, 3}))
    assert len(every) == len(events)
    assert mine and len(mine) < len(every)
    assert mine == [item for item in every if item[0].topic_partition[-1] in "13"]
    assert {position.topic_partition for position, _ in mine} <= {
        f"{PLAYER_EVENTS}:1",
        f"{PLAYER_EVENTS}:3",
    }


def test_the_history_gives_the_report_of_the_same_events_in_memory(tmp_path: Path) -> None:
    events = by_hand()
    cluster = cluster_with(events, tmp_path)
    settings = Settings(archive_dir=tmp_path, bootstrap_servers="memory:0")
    proposal = changed_levels(aurora(), 2, Silver="5000")
    expected = what_if(
        MemorySource(positioned(events, PARTITIONS)),
        AURORA,
        [aurora()],
        proposal,
        None,
        MALTA_5_NOV,
    )
    for processes in (1, 3):
        found = run_what_if(
            settings,
            AURORA,
            proposal,
            None,
            MALTA_5_NOV,
            processes=processes,
            clients=cluster,
            start_method="fork",  # the in-memory cluster is copied, not pickled
        )
        assert found.baseline_versions == (1,)
        assert (found.periods, found.total, found.moves) == (
            expected.periods,
            expected.total,
            expected.moves,
        )
        assert found.affected == expected.affected
        assert found.stats.events == len(events)
