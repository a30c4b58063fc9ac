"""A real worker process on the embedded broker: exact points out, bad records dead-lettered."""

import base64
import uuid
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from loyalty_streams.cli.worker import run_worker
from loyalty_streams.devtools.broker import EmbeddedBroker
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.clients import producer_config
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.reading import Records, read_topics
from loyalty_streams.kafka.topics import (
    COMMANDS,
    DEAD_LETTER,
    LEVEL_CHANGED,
    PLAYER_EVENTS,
    POINTS_ACCRUED,
    load_specs,
)
from loyalty_streams.settings import Settings
from tests.domain.builders import bet, deposit, win
from tests.integration.conftest import on_both_session_brokers


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    own = settings.model_copy(update={"app_id": f"loyalty-test-{uuid.uuid4().hex[:8]}"})
    with ServiceProcess(own, tmp_path / "worker.log") as process:
        yield process


def publish(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = Producer(producer_config(settings))
    for key, value in records:
        producer.produce(PLAYER_EVENTS, key=key, value=value)
    assert producer.flush(10) == 0


@on_both_session_brokers
def test_worker_emits_exact_points_and_dead_letters_bad_records(
    settings: Settings, worker: ServiceProcess
) -> None:
    run = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{run}", f"bob-{run}"
    events = [
        bet("12.50", "slots", player_id=alice),
        bet("100.00", "live_casino", player_id=bob),
        win("40.00", player_id=bob),
        deposit("50.00", player_id=alice),
        bet("10000.00", "slots", player_id=alice),  # Bronze -> Silver
    ]
    garbage = f"garbage-{run}".encode()
    invalid = orjson.loads(bet("5", player_id=alice).model_dump_json()) | {"amount": "-5"}
    after_bad = bet("2.00", "table", player_id=bob)
    publish(settings, [(e.key.encode(), e.model_dump_json().encode()) for e in events])
    publish(
        settings,
        [
            (f"aurora-casino:{alice}".encode(), garbage),
            (f"aurora-casino:{alice}".encode(), orjson.dumps(invalid)),
            (after_bad.key.encode(), after_bad.model_dump_json().encode()),
        ],
    )

    def mine(topic: str, records: Records) -> list[dict[str, Any]]:
        """This test's records: the topics are shared with the rest of the suite."""
        return [
            value
            for value in (orjson.loads(r.value) for r in records[topic])
            if run in value.get("player_id", "")
            or run in base64.b64decode(value.get("key_b64") or "").decode(errors="replace")
        ]

    records = read_topics(
        settings,
        (POINTS_ACCRUED, LEVEL_CHANGED, DEAD_LETTER),
        until=lambda r: len(mine(POINTS_ACCRUED, r)) >= 4 and len(mine(DEAD_LETTER, r)) >= 2,
        timeout=90,
    )
    assert worker.running, worker.log_tail()

    points: dict[str, Decimal] = {}
    for value in mine(POINTS_ACCRUED, records):
        points[value["player_id"]] = points.get(value["player_id"], Decimal(0)) + Decimal(
            value["points"]
        )
    assert points == {alice: Decimal("10012.50"), bob: Decimal("151.00")}

    (change,) = mine(LEVEL_CHANGED, records)
    assert (change["player_id"], change["from_level"], change["to_level"]) == (
        alice,
        "Bronze",
        "Silver",
    )

    dead = {base64.b64decode(v["value_b64"]): v for v in mine(DEAD_LETTER, records)}
    assert dead[garbage]["reason"].startswith("invalid event: Invalid JSON")
    assert "amount" in dead[orjson.dumps(invalid)]["reason"]
    assert all(v["topic"] == PLAYER_EVENTS and v["offset"] >= 0 for v in dead.values())


def test_worker_refuses_to_start_when_topics_are_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmbeddedBroker() as bare:
        settings = Settings(
            bootstrap_servers=bare.bootstrap_servers, data_dir=tmp_path, development=True
        )
        assert run_worker(settings) == 2
    assert "loyalty-streams topics apply" in capsys.readouterr().err


def test_worker_refuses_to_start_when_commands_and_events_are_not_co_partitioned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = load_specs(Path(__file__).resolve().parents[2] / "topics")
    skewed = [replace(s, partitions=6) if s.name == COMMANDS else s for s in specs]
    with EmbeddedBroker() as bare:
        settings = Settings(
            bootstrap_servers=bare.bootstrap_servers, data_dir=tmp_path, development=True
        )
        assert apply_topics(settings, skewed).ok
        assert run_worker(settings) == 2
    error = capsys.readouterr().err
    assert "same number of partitions" in error and "loyalty.commands has 6" in error


@on_both_session_brokers
def test_no_record_stops_the_worker_and_each_becomes_a_dead_letter_with_its_reason(
    settings: Settings, worker: ServiceProcess
) -> None:
    """Records that once stopped every worker of the group, or split a player in two."""
    run = uuid.uuid4().hex[:8]
    player = f"poisoned-{run}"
    good = bet("10.00", player_id=player)
    key = good.key.encode()
    home = partition_of(key, 12)
    body = orjson.loads(good.model_dump_json())

    def variant(**change: Any) -> bytes:
        return orjson.dumps(body | {"event_id": uuid.uuid4().hex} | change)

    poison = {
        "outside the years 1-9999": variant(occurred_at="0001-01-01T00:00:00+14:00"),
        "implausible time": variant(occurred_at="9999-12-31T23:59:59Z"),
        "at most 128 characters": variant(game_id="g" * 900_000),  # base64 would pass 1 MB
        "a key appears twice": variant()[:-1] + b',"amount":"99999"}',
    }
    producer = Producer(producer_config(settings))
    for value in poison.values():
        producer.produce(PLAYER_EVENTS, value, key, partition=home)
    producer.produce(PLAYER_EVENTS, variant(), None, partition=home)  # no key
    producer.produce(PLAYER_EVENTS, variant(), key, partition=(home + 1) % 12)  # misrouted
    producer.produce(PLAYER_EVENTS, good.model_dump_json().encode(), key, partition=home)
    assert producer.flush(10) == 0

    def mine(topic: str, records: Records) -> list[dict[str, Any]]:
        values = (orjson.loads(r.value) for r in records[topic])
        return [v for v in values if player in v.get("player_id", "") or run in v.get("reason", "")
                or player.encode() in base64.b64decode(v.get("value_b64", ""))]  # fmt: skip

    records = read_topics(
        settings,
        (POINTS_ACCRUED, DEAD_LETTER),
        until=lambda r: len(mine(POINTS_ACCRUED, r)) >= 1 and len(mine(DEAD_LETTER, r)) >= 6,
        timeout=90,
    )
    assert worker.running, worker.log_tail()
    (accrued,) = mine(POINTS_ACCRUED, records)
    assert accrued["event_id"] == good.event_id  # the partition went on past every bad record
    reasons = [letter["reason"] for letter in mine(DEAD_LETTER, records)]
    for expected in poison:
        assert any(expected in reason for reason in reasons), (expected, reasons)
    assert f"misrouted: no key; {good.key!r} belongs on partition {home}" in reasons
    assert f"misrouted: {good.key!r} belongs on partition {home}" in reasons
    huge = next(v for v in mine(DEAD_LETTER, records) if v["value_size"] > 900_000)
    assert huge["truncated"] and len(base64.b64decode(huge["value_b64"])) == 64 * 1024
