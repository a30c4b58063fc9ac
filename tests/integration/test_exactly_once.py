"""Exactly-once on Apache Kafka: workers killed with SIGKILL under load, a read_committed
verifier; and the refusal on a broker without transactions (the embedded Tansu).

The kill test publishes a seeded synthetic stream at a steady rate to two workers with
`processing_guarantee=exactly_once`, kills one of them with SIGKILL every few seconds and
starts it again on its own data (the same URL, so the same transactional id), then reads every
output topic and the changelog as a read_committed consumer. It must see each PointsAccrued
exactly once, the same outputs as a run without kills, and every player's record as that run
leaves it: the run without kills is the in-memory test driver folding the same records into
the same partitions at the same offsets (`runtime.test_driver`, exactly-once too).
"""

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from loyalty_streams.devtools.generator import synthetic_events
from loyalty_streams.domain.events import BetPlaced, PlayerEvent
from loyalty_streams.kafka.clients import producer_config, reader_config
from loyalty_streams.kafka.topics import PLAYER_EVENTS, PLAYERS_CHANGELOG, POINTS_ACCRUED
from loyalty_streams.runtime.test_driver import WorkerDriver
from loyalty_streams.settings import Settings
from loyalty_streams.state.store import encode_player
from tests.integration.conftest import CATALOGUE, Cluster, settled, wait_until

pytestmark = pytest.mark.integration

on_apache = pytest.mark.parametrize("cluster", ["apache"], indirect=True)

EVENTS = 7_200
PLAYERS = 400
RATE = 600.0
"""Events published per second: the stream lasts EVENTS / RATE = 12 s, under the kills."""
KILLS = 3
KILL_EVERY_S = 3.5
PARTITIONS = 12
"""The inbound topics' partitions (topics/casino.player-events.json)."""


def test_exactly_once_is_refused_on_a_broker_without_transactions(cluster: Cluster) -> None:
    worker = cluster.worker("w1", processing_guarantee="exactly_once")
    wait_until(lambda: not worker.running, 60, "the worker to refuse to start")
    assert worker.returncode == 2, worker.log_tail()
    log = worker.log_text()
    assert "LOYALTY_PROCESSING_GUARANTEE=exactly_once needs a Kafka cluster with transactions" in (
        log
    )
    assert "aborted transaction" in log


def read_committed(settings: Settings, topics: list[str]) -> dict[str, list[tuple[bytes, bytes]]]:
    """Every record of `topics` a read_committed consumer reads, to each partition's end:
    (key, value) per topic, partition by partition."""
    consumer = Consumer(reader_config(settings, "verifier"))
    assignment = [
        TopicPartition(topic, number, 0)
        for topic in topics
        for number in consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ]
    consumer.assign(assignment)
    unfinished = {(tp.topic, tp.partition) for tp in assignment}
    found: dict[str, list[tuple[bytes, bytes]]] = {topic: [] for topic in topics}
    deadline = time.monotonic() + 60
    while unfinished and time.monotonic() < deadline:
        for message in consumer.consume(5000, 0.5):
            error = message.error()
            if error is not None:
                assert error.code() == KafkaError._PARTITION_EOF, error
                unfinished.discard((str(message.topic()), int(message.partition() or 0)))
                continue
            found[str(message.topic())].append((message.key() or b"", message.value() or b""))
    consumer.close()
    assert not unfinished, f"partitions not read to their end: {sorted(unfinished)}"
    return found


def publish_paced(settings: Settings, events: list[PlayerEvent], done: threading.Event) -> None:
    """The events at `RATE` a second, each record stamped with its event's time."""
    producer = Producer(producer_config(settings))
    started = time.monotonic()
    for number, event in enumerate(events):
        ahead = number / RATE - (time.monotonic() - started)
        if ahead > 0.01:
            time.sleep(ahead)
        stamp = int(event.occurred_at.timestamp() * 1000)
        producer.produce(
            PLAYER_EVENTS, event.model_dump_json().encode(), event.key.encode(), timestamp=stamp
        )
        producer.poll(0)
    assert producer.flush(30) == 0
    done.set()


def clean_run(
    events: list[PlayerEvent], now: datetime, directory: Path
) -> tuple[Counter[str], dict[str, bytes]]:
    """The run without kills: the same records folded by the in-memory driver, in the same
    partitions at the same offsets; its PointsAccrued event ids and its player records, encoded
    as the changelog carries them."""
    driver = WorkerDriver(
        directory,
        CATALOGUE.in_effect,
        now=now,
        partitions=PARTITIONS,
        processing_guarantee="exactly_once",
    )
    for event in events:
        driver.pipe_event(event, timestamp=int(event.occurred_at.timestamp() * 1000))
    driver.fold()
    driver.drain()
    accrued = Counter(output["event_id"] for output in driver.outputs_json(POINTS_ACCRUED))
    records = {}
    for key in {event.key for event in events}:
        state = driver.player(key)
        assert state is not None
        records[key] = encode_player(state)
    driver.close()
    return accrued, records


@on_apache
def test_workers_killed_under_load_deliver_every_output_once(cluster: Cluster) -> None:
    now = datetime.now(UTC)
    stream = synthetic_events(PLAYERS, 20, now - timedelta(minutes=10), rate=RATE)
    events = [next(stream) for _ in range(EVENTS)]
    assert all(event.occurred_at < now for event in events)
    bets = sum(isinstance(event, BetPlaced) for event in events)

    workers = [
        cluster.worker(name, processing_guarantee="exactly_once", timers_wait_s=3600)
        for name in ("w1", "w2")
    ]
    wait_until(lambda: all(w.settled(1) for w in workers), 90, "both workers to start")
    done = threading.Event()
    publisher = threading.Thread(target=publish_paced, args=(cluster.settings, events, done))
    publisher.start()
    kills = 0
    while kills < KILLS:
        time.sleep(KILL_EVERY_S)
        victim = workers[kills % 2]
        victim.kill()
        kills += 1
        victim.start()  # the same settings: its data dir, its URL, its transactional id
    publisher.join()
    assert done.is_set()

    def all_accrued() -> bool:
        return len(read_committed(cluster.settings, [POINTS_ACCRUED])[POINTS_ACCRUED]) >= bets

    wait_until(all_accrued, 120, "every bet's PointsAccrued")
    settled(*workers)
    read = read_committed(cluster.settings, [POINTS_ACCRUED, PLAYERS_CHANGELOG])
    accrued = Counter(orjson.loads(value)["event_id"] for _, value in read[POINTS_ACCRUED])
    latest = {key.decode(): value for key, value in read[PLAYERS_CHANGELOG] if value}

    expected_accrued, expected_records = clean_run(events, now, cluster.tmp / "clean")
    doubled = {event_id: n for event_id, n in accrued.items() if n > 1}
    assert not doubled, f"{len(doubled)} PointsAccrued read more than once"
    assert accrued == expected_accrued
    assert len(accrued) == bets
    wrong = [key for key, raw in expected_records.items() if latest.get(key) != raw]
    assert not wrong, f"{len(wrong)} of {len(expected_records)} records differ: {wrong[:3]}"
    print(
        f"\n{kills} kills; {len(events):,} events, {bets:,} bets: {sum(accrued.values()):,} "
        f"PointsAccrued read, 0 lost, 0 doubled; {len(expected_records)} player records equal"
    )
    for worker in workers:
        assert worker.running, worker.log_tail()
