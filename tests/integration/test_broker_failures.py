"""Apache Kafka failing under the engine: a broker of three killed under load, and a changelog
that compaction has really rewritten, restored on a fresh node.

Expected results come from the rules folded once over the inbound topic (`devtools.replay`), as
in `test_worker_cluster`: whatever the cluster went through, the outputs and records must be
those, every output exactly once.
"""

import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from loyalty_streams.devtools.apache_kafka import ApacheKafka
from loyalty_streams.kafka.clients import producer_config, reader_config
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import PLAYER_EVENTS, PLAYERS_CHANGELOG
from loyalty_streams.settings import Settings
from tests.integration.conftest import (
    CACHE,
    Cluster,
    cluster_on,
    get,
    owned,
    settled,
    wait_until,
)
from tests.integration.test_worker_cluster import (
    as_json,
    assert_lookup_matches,
    expected,
    read_outputs,
    synthetic,
)


@pytest.fixture
def three_brokers(tmp_path: Path) -> Iterator[Cluster]:
    """Apache Kafka of three nodes: replication 3, min ISR 2, as the topics declare."""
    yield from cluster_on(ApacheKafka(3, cache=CACHE), tmp_path)


@pytest.fixture
def one_broker(tmp_path: Path) -> Iterator[Cluster]:
    yield from cluster_on(ApacheKafka(1, cache=CACHE), tmp_path)


def test_a_broker_killed_under_load_loses_and_doubles_nothing(three_brokers: Cluster) -> None:
    cluster, broker = three_brokers, three_brokers.broker
    assert isinstance(broker, ApacheKafka)
    worker = cluster.worker("solo")
    wait_until(lambda: len(owned(worker)) == 12, 60, "the worker to own every partition")
    events = synthetic(players=60, count=3000, seed=21)
    chunks = [events[i : i + 100] for i in range(0, len(events), 100)]
    published = threading.Event()

    def publish() -> None:  # 100 events every 0.5 s, through the kill and the restart
        # one idempotent producer (acks=all) for the whole run, as a platform's would be: it
        # waits out the leader elections instead of giving up
        producer = Producer({**producer_config(cluster.settings), "enable.idempotence": "true"})
        for chunk in chunks:
            for event in chunk:
                value, key = event.model_dump_json().encode(), event.key.encode()
                stamp = int(event.occurred_at.timestamp() * 1000)
                produce(producer, PLAYER_EVENTS, value, key, timestamp=stamp)
            producer.poll(0)
            time.sleep(0.5)
        if producer.flush(60) == 0:
            published.set()

    publisher = threading.Thread(target=publish, name="publisher")
    publisher.start()
    time.sleep(4)
    broker.kill(2)  # SIGKILL: a machine gone, under load
    killed_at = time.monotonic()
    time.sleep(5)
    assert worker.running, worker.log_tail()
    broker.start_node(2)  # back on its own data; it catches up as a follower
    restarted_in = time.monotonic() - killed_at
    publisher.join(120)
    assert published.is_set(), "the publisher did not get every event through"

    replayed = expected(cluster)
    want = as_json(replayed)
    got = read_outputs(cluster, set(want), timeout=120)
    assert got == want  # every output exactly once (copies identical, none extra)
    assert worker.running, worker.log_tail()
    status, health = get(worker, "/health")
    assert status == 200 and health["status"] == "ok", health
    settled(worker)
    for state in replayed.states.values():
        assert_lookup_matches(worker, state)
    print(  # the figures for the notes
        f"\n3 brokers, node 2 killed and back after {restarted_in:.1f} s: {len(events)} events, "
        f"{len(want)} outputs checked, 0 lost, 0 doubled"
    )


def test_a_compacted_changelog_restores_a_fresh_node(one_broker: Cluster) -> None:
    cluster = one_broker
    admin = AdminClient({"bootstrap.servers": cluster.settings.bootstrap_servers})
    small_segments = ConfigResource(
        ResourceType.TOPIC,
        PLAYERS_CHANGELOG,
        incremental_configs=[
            ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)
            for name, value in (
                ("segment.ms", "500"),  # segments roll with the next record after 0.5 s
                ("min.cleanable.dirty.ratio", "0.01"),
                ("min.compaction.lag.ms", "0"),
            )
        ],
    )
    for future in admin.incremental_alter_configs([small_segments]).values():
        future.result(10)
    first = cluster.worker("first")
    events = iter(synthetic(players=8, count=4000, seed=22))
    deadline = time.monotonic() + 90
    while True:  # a wave a second until the cleaner has rewritten the changelog
        cluster.publish(list(islice(events, 40)))
        time.sleep(1)
        written, kept = changelog_counts(cluster.settings)
        if kept < written:
            break
        assert time.monotonic() < deadline, f"no compaction: {kept} records of {written} kept"
    replayed = expected(cluster)
    read_outputs(cluster, {output.output_id for output in replayed.outputs})
    settled(first)
    written, kept = changelog_counts(cluster.settings)

    first.stop()
    fresh = cluster.worker("fresh")  # an empty data dir: everything from the compacted topic
    wait_until(lambda: len(owned(fresh)) == 12, 60, "the fresh worker to own every partition")
    for state in replayed.states.values():
        assert_lookup_matches(fresh, state)
    print(f"\ncompacted changelog: {written} offsets written, {kept} records kept, restored alike")


def changelog_counts(settings: Settings) -> tuple[int, int]:
    """The changelog's offsets written (the sum of its partitions' ends) and the records it
    still holds: fewer once compaction removed superseded records (offsets never move)."""
    values = records_of(settings, PLAYERS_CHANGELOG)
    consumer = Consumer(reader_config(settings, "test-ends"))
    try:
        metadata = consumer.list_topics(PLAYERS_CHANGELOG, timeout=10).topics[PLAYERS_CHANGELOG]
        written = sum(
            consumer.get_watermark_offsets(TopicPartition(PLAYERS_CHANGELOG, n), timeout=10)[1]
            for n in metadata.partitions
        )
    finally:
        consumer.close()
    return written, len(values)


def records_of(settings: Settings, topic: str) -> list[bytes | None]:
    """Every record value of `topic` from its log start, read committed."""
    consumer = Consumer(reader_config(settings, "test-changelog"))
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, number, 0) for number in metadata.partitions]
        ends = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions
        }
        consumer.assign([tp for tp in partitions if ends[tp.partition] > 0])
        pending = {number for number, end in ends.items() if end > 0}
        values: list[bytes | None] = []
        deadline = time.monotonic() + 30
        while pending and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                pending.discard(message.partition())
                continue
            values.append(message.value())
            if message.offset() + 1 >= ends[message.partition()]:
                pending.discard(message.partition())
        return values
    finally:
        consumer.close()
