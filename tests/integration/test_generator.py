"""The generator against the session broker: it publishes exactly what it reports."""

import random
import time
import uuid
from datetime import UTC, datetime
from itertools import islice

import orjson
from confluent_kafka import Consumer, TopicPartition

from loyalty_streams.devtools.generator import GeneratorReport, run, synthetic_events
from loyalty_streams.domain.events import PlayerEvent, decode_player_event
from loyalty_streams.kafka.clients import connection
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.settings import Settings

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _event_id(value: bytes | None) -> str | None:
    """The event_id of a record value; None for others' records that are not events at all."""
    try:
        decoded = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    event_id = decoded.get("event_id") if isinstance(decoded, dict) else None
    return event_id if isinstance(event_id, str) else None


def test_run_publishes_exactly_what_it_reports(kafka: str) -> None:
    settings = Settings(bootstrap_servers=kafka)
    seed = random.SystemRandom().getrandbits(32)  # fresh event ids, even on a reused broker
    report = run(settings, players=40, rate=300.0, duration=2.0, seed=seed)
    assert report.delivery_failures == 0, report.first_failure
    assert 400 <= report.sent <= 600
    # event ids do not depend on start; `run` publishes every kind of event
    replay = synthetic_events(40, seed, START, rate=300.0, cancellations=True, purchases=True)
    ours = {event.event_id for event in islice(replay, report.sent)}

    # The whole topic from the start, filtered by event id: other tests publish to it too, and
    # the embedded broker's high watermarks can lag, so they cannot bound this run's records.
    consumer = Consumer(
        {
            **connection(settings),
            "group.id": f"test-generator-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": "false",
        }
    )
    read: list[PlayerEvent] = []
    try:
        metadata = consumer.list_topics(PLAYER_EVENTS, timeout=10).topics[PLAYER_EVENTS]
        consumer.assign([TopicPartition(PLAYER_EVENTS, p) for p in metadata.partitions])
        deadline = time.monotonic() + 30
        while len(read) < len(ours) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            value, key = message.value(), message.key()
            if _event_id(value) in ours:
                assert value is not None and key is not None
                event = decode_player_event(value)
                assert key.decode() == f"{event.brand_id}:{event.player_id}"
                read.append(event)
    finally:
        consumer.close()

    assert len(read) == report.sent
    assert {event.event_id for event in read} == ours
    recount = GeneratorReport()
    for event in read:
        recount.record(event)
    assert recount.by_type == report.by_type
    assert recount.by_brand == report.by_brand
    assert recount.by_currency == report.by_currency
    assert recount.wagered == report.wagered
    assert recount.cancelled == report.cancelled
    assert recount.coin_packs == report.coin_packs
    assert report.achieved_rate > 0
