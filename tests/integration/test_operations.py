"""Operating the pipeline: new programme versions at run time, and lookups through an outage."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from loyalty_streams.cli import main as cli
from loyalty_streams.domain.money import Currency
from loyalty_streams.kafka.reading import read_topics
from loyalty_streams.kafka.topics import POINTS_ACCRUED
from loyalty_streams.settings import get_settings
from tests.domain.builders import bet, programme
from tests.integration.conftest import Cluster, get, wait_until


def test_a_programme_loaded_at_run_time_governs_events_after_its_effective_time(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = cluster.worker("solo")
    now = datetime.now(UTC)
    doubled = programme().model_copy(
        update={
            "version": 2,
            "effective_from": now - timedelta(hours=1),
            "currencies": {
                Currency.EUR: programme()
                .currencies[Currency.EUR]
                .model_copy(update={"points_per_unit": Decimal(2)})
            },
        }
    )
    path = tmp_path / "aurora-v2.json"
    path.write_text(doubled.model_dump_json())
    monkeypatch.setenv("LOYALTY_BOOTSTRAP_SERVERS", cluster.settings.bootstrap_servers)
    get_settings.cache_clear()
    try:
        # it takes effect an hour ago: only an explicit backfill may publish it
        assert cli.main(["programmes", "load", str(path)]) == 1
        assert cli.main(["programmes", "load", "--backfill", str(path)]) == 0
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps(json.loads(path.read_text()) | {"levels": []}))
        assert cli.main(["programmes", "load", str(broken)]) == 1  # refused, nothing published
    finally:
        get_settings.cache_clear()

    before = bet("10", player_id="reader", occurred_at=now - timedelta(hours=2))
    after = bet("10", player_id="reader", occurred_at=now)
    wait_until(
        lambda: get(worker, "/health")[1]["programmes"] != [], 30, "the worker to read programmes"
    )
    cluster.publish([before, after])
    records = read_topics(
        cluster.settings, [POINTS_ACCRUED], until=lambda r: len(r[POINTS_ACCRUED]) >= 2, timeout=60
    )
    accrued = {v["event_id"]: v for v in (orjson.loads(r.value) for r in records[POINTS_ACCRUED])}
    assert (accrued[before.event_id]["programme_version"], accrued[before.event_id]["points"]) == (
        1,
        "10.00",
    )
    assert (accrued[after.event_id]["programme_version"], accrued[after.event_id]["points"]) == (
        2,
        "20.00",
    )


def test_lookups_answer_from_the_local_table_while_kafka_is_down(cluster: Cluster) -> None:
    worker = cluster.worker("solo")
    cluster.publish([bet("75", player_id="steady")])
    path = "/loyalty/aurora-casino/steady"
    wait_until(lambda: get(worker, path)[0] == 200, 60, "the player to be processed")

    cluster.broker.stop()
    status, body = get(worker, path)
    assert status == 200, body
    assert Decimal(body["points"]["available"]) == Decimal("75")
    assert body["served_by"]["as_of"] is not None and body["served_by"]["age_s"] >= 0
    assert worker.running and get(worker, "/health")[0] == 200
    worker.kill()  # a stop with Kafka down waits out its clients' timeouts; not what this tests
