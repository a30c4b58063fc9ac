"""Exactly-once checkpoints on the in-memory cluster, which keeps transactions as Kafka does.

Each batch is one transaction: its outputs, changelog records and inbound offsets are read (by
read_committed consumers, as every consumer here is) only once it commits, and RocksDB is
written after the commit. A commit that fails, a worker fenced out of its group or a crash
before the commit leaves nothing readable, nothing stored and nothing committed; the batch is
folded again, and what is read is what a run without the failure gives.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, TopicPartition

from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.kafka.clients import transactional_producer_config
from loyalty_streams.kafka.topics import PLAYER_EVENTS, PLAYERS_CHANGELOG, POINTS_ACCRUED
from loyalty_streams.runtime.checkpoint import TransactionFailed
from loyalty_streams.runtime.test_driver import MemoryCluster, MemoryProducer, WorkerDriver
from loyalty_streams.runtime.transactions import TransactionsUnavailable, start_transactions
from loyalty_streams.settings import Settings
from tests.domain.builders import T0, bet, programme

KEY = "aurora-casino:p1"
ABORTABLE = KafkaError(KafkaError._TIMED_OUT, "coordinator gone", txn_requires_abort=True)


def exactly_once(directory: Path, *, hold: bool = False) -> WorkerDriver:
    rules = programme()
    return WorkerDriver(
        directory, lambda brand, at: rules, now=T0, hold=hold, processing_guarantee="exactly_once"
    )


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WorkerDriver]:
    made = exactly_once(tmp_path / "eos")
    yield made
    made.close()


BETS = [bet("10"), bet("25"), bet("7.50")]


def fold(driver: WorkerDriver, *events: PlayerEvent) -> None:
    for event in events:
        driver.pipe_event(event)
    driver.fold()


def read_ids(driver: WorkerDriver) -> list[str]:
    """The event ids of the PointsAccrued a read_committed consumer reads."""
    return [output["event_id"] for output in driver.outputs_json(POINTS_ACCRUED)]


def clean_run(directory: Path) -> PlayerState | None:
    """The player's record after the bets, checkpointed with no failure."""
    clean = exactly_once(directory)
    fold(clean, *BETS)
    clean.drain()
    state = clean.player(KEY)
    clean.close()
    return state


def test_a_checkpoint_commits_outputs_changelog_and_offsets_then_writes_the_store(
    driver: WorkerDriver,
) -> None:
    fold(driver, *BETS)
    checkpoints = driver.loop.checkpoints
    assert checkpoints.transaction_open  # the outputs went out in the batch's transaction
    assert driver.output(POINTS_ACCRUED) == []  # not read before the commit
    assert len(driver.output(POINTS_ACCRUED, uncommitted=True)) == 3
    assert driver.player(KEY) is None
    commits_before = list(driver.commits)
    driver.seal()
    assert not checkpoints.transaction_open
    assert read_ids(driver) == [b.event_id for b in BETS]
    # the inbound offsets were committed with the transaction, not by the consumer
    assert driver.commits[len(commits_before) :] == [{(PLAYER_EVENTS, 0): 3}]
    state = driver.player(KEY)
    assert state is not None and state.cumulative_turnover == 42.5
    changelog = driver.output(PLAYERS_CHANGELOG, KEY)
    assert changelog[-1].offset is not None
    assert driver.store(0).changelog_offset >= changelog[-1].offset


def test_a_refused_commit_stores_nothing_and_the_batch_folds_again(
    driver: WorkerDriver, tmp_path: Path
) -> None:
    fold(driver, *BETS)
    changelog_before = driver.store(0).changelog_offset
    driver.refuse_commit(ABORTABLE)
    driver.seal()
    assert driver.player(KEY) is None  # RocksDB is written after a commit only
    assert driver.store(0).changelog_offset == changelog_before
    assert driver.output(POINTS_ACCRUED) == []
    assert driver.output(PLAYERS_CHANGELOG, KEY) == []
    assert driver.open_batch is None and driver.in_flight_records == 0
    assert not driver.loop.checkpoints.transaction_open
    # the consumer went back to the committed offsets: the same bets fold again
    assert driver.fold() == 3
    driver.drain()
    assert read_ids(driver) == [b.event_id for b in BETS]
    assert len(driver.output(POINTS_ACCRUED, uncommitted=True)) == 6  # the aborted ones stay
    assert driver.player(KEY) == clean_run(tmp_path / "clean")


def test_a_crash_before_the_commit_leaves_nothing_read_and_the_next_run_folds_again(
    tmp_path: Path,
) -> None:
    driver = exactly_once(tmp_path / "eos", hold=True)
    fold(driver, *BETS)
    driver.acknowledge(POINTS_ACCRUED)  # the outputs reached the cluster, uncommitted
    assert len(driver.output(POINTS_ACCRUED, uncommitted=True)) == 3
    driver.crash()
    driver.restart()  # the same transactional id: the open transaction is aborted
    assert driver.player(KEY) is None
    assert driver.output(POINTS_ACCRUED) == []
    assert driver.fold() == 3
    driver.drain()
    assert read_ids(driver) == [b.event_id for b in BETS]
    assert driver.player(KEY) == clean_run(tmp_path / "clean")
    driver.close()


def test_a_new_node_restores_the_committed_changelog_only(tmp_path: Path) -> None:
    driver = exactly_once(tmp_path / "eos")
    fold(driver, *BETS[:2])
    driver.drain()
    fold(driver, BETS[2])
    driver.refuse_commit(ABORTABLE)
    driver.seal()  # aborted: its changelog record is on the log, never read
    committed = driver.player(KEY)
    assert committed is not None and committed.cumulative_turnover == 35
    driver.crash()
    driver.restart(lose_store=True)
    assert driver.player(KEY) == committed
    driver.fold()
    driver.drain()
    assert driver.player(KEY) == clean_run(tmp_path / "clean")
    driver.close()


def test_a_worker_fenced_out_of_its_group_commits_nothing(driver: WorkerDriver) -> None:
    fold(driver, *BETS)
    commits_before = list(driver.commits)
    driver.cluster.generation += 1  # the group went on without this member
    driver.seal()
    assert driver.commits == commits_before
    assert driver.player(KEY) is None
    assert driver.output(POINTS_ACCRUED) == []
    assert driver.output(PLAYERS_CHANGELOG, KEY) == []


def test_a_fenced_producer_stops_the_loop_with_nothing_stored(driver: WorkerDriver) -> None:
    fold(driver, *BETS)
    driver.refuse_commit(KafkaError(KafkaError._FENCED, "another run took the id", fatal=True))
    with pytest.raises(TransactionFailed, match="cannot commit"):
        driver.seal()
    assert driver.player(KEY) is None
    assert driver.output(POINTS_ACCRUED) == []


def test_partitions_lost_abort_the_open_transaction(driver: WorkerDriver) -> None:
    fold(driver, *BETS)
    commits_before = list(driver.commits)
    driver.loop.assignment.lost(None, [TopicPartition(PLAYER_EVENTS, 0)])  # type: ignore[arg-type]
    assert not driver.loop.checkpoints.transaction_open
    assert driver.open_batch is None
    assert driver.loop.owned == frozenset()
    assert driver.commits == commits_before
    assert driver.output(POINTS_ACCRUED) == []
    assert driver.player(KEY) is None


def test_at_least_once_sends_no_transaction(tmp_path: Path) -> None:
    rules = programme()
    driver = WorkerDriver(tmp_path, lambda brand, at: rules, now=T0)
    fold(driver, *BETS)
    assert not driver.loop.checkpoints.transaction_open
    assert all(
        producer.transactional_id is None
        for producer in driver.cluster._producers
        if isinstance(producer, MemoryProducer)
    )
    driver.drain()
    assert len(driver.output(POINTS_ACCRUED)) == 3
    driver.close()


def settings_of(cluster: MemoryCluster) -> Settings:
    return Settings(bootstrap_servers="memory:0", processing_guarantee="exactly_once")


def test_a_cluster_that_reads_aborted_records_is_refused() -> None:
    cluster = MemoryCluster(1, [0], transactions=False)
    settings = settings_of(cluster)
    producer = cluster.producer(transactional_producer_config(settings))
    with pytest.raises(TransactionsUnavailable) as refused:
        start_transactions(producer, settings, cluster)
    message = str(refused.value)
    assert "LOYALTY_PROCESSING_GUARANTEE=exactly_once" in message
    assert "aborted transaction" in message


def test_a_cluster_with_transactions_passes_the_probe() -> None:
    cluster = MemoryCluster(1, [0])
    settings = settings_of(cluster)
    producer = cluster.producer(transactional_producer_config(settings))
    start_transactions(producer, settings, cluster)  # no refusal
    assert cluster.undecided == {}  # the probe's transaction is aborted


def test_a_producer_without_transactions_is_refused() -> None:
    cluster = MemoryCluster(1, [0])
    settings = settings_of(cluster)
    producer = cluster.producer({})  # no transactional id: init_transactions fails
    with pytest.raises(TransactionsUnavailable, match="initialising transactions failed"):
        start_transactions(producer, settings, cluster)
