"""The Redis mirror on a real worker, broker and `redis-server`: the hashes match the lookups.

The mirror runs as operators run it, a child process configured by `LOYALTY_*` variables; once
through a plain Redis URL (with a restart that resumes from its committed offsets), once through
Sentinel.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.kafka.clients import connection, producer_config
from loyalty_streams.kafka.topics import PLAYERS_CHANGELOG
from loyalty_streams.services.redis_mirror import FIELDS
from loyalty_streams.state.keyspace import SEEN_PREFIX
from tests.domain.builders import bet
from tests.integration.conftest import Cluster, get, on_both_brokers, wait_until
from tests.integration.redis_server import redis_sentinel, redis_server

BRAND = "aurora-casino"
PREFIX = "loyalty:"
RETRYING = "batch not written to Redis, retrying"


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A real `redis-server` for this test, stopped after it."""
    with redis_server(tmp_path / "redis") as port:
        yield port


def mirror(cluster: Cluster, log: Path, **env: str) -> ServiceProcess:
    """`loyalty-streams redis-mirror` with LOYALTY_* variables; SIGTERM at the end of `with`."""
    return ServiceProcess(
        cluster.settings, log, "redis-mirror", {"LOYALTY_REDIS_KEY_PREFIX": PREFIX, **env}
    )


def lookup(worker: ServiceProcess, player: str) -> dict[str, Any]:
    status, body = get(worker, f"/loyalty/{BRAND}/{player}")
    assert status == 200, body
    return body


def turnover_reached(worker: ServiceProcess, players: dict[str, Decimal]) -> bool:
    """Every player's bets are folded in: the lookup's cumulative turnover is their sum."""
    for player, total in players.items():
        status, body = get(worker, f"/loyalty/{BRAND}/{player}")
        if status != 200 or Decimal(body["turnover"]["cumulative"]) != total:
            return False
    return True


def expected_hash(body: dict[str, Any]) -> dict[str, str]:
    """The figures of a lookup that the mirror's hash must carry, with the same text."""
    return {
        "level": body["level"]["name"],
        "level_rank": str(body["level"]["rank"]),
        "points_available": body["points"]["available"],
        "points_held": body["points"]["held"],
        "cumulative_turnover": body["turnover"]["cumulative"],
        "rolling_30d": body["progress"]["rolling_30d"],
        "vip_points": body["vip_points"],
        "turnover_currency": body["turnover"]["currency"],
    }


def mirrored(client: "redis.Redis", player: str) -> dict[str, str]:
    raw = client.hgetall(f"{PREFIX}{BRAND}:{player}")
    return {key.decode(): value.decode() for key, value in raw.items()}


def matches(client: "redis.Redis", worker: ServiceProcess, player: str) -> bool:
    """The player's hash carries exactly the lookup's figures (and a time of writing)."""
    found = mirrored(client, player)
    expected = expected_hash(lookup(worker, player))
    return set(found) == set(FIELDS) and all(found[k] == v for k, v in expected.items())


def exited(process: ServiceProcess, log: Path) -> bool:
    """False while the mirror runs; fails the test at once, with its log, if it stopped."""
    assert process.running, f"the mirror exited ({process.returncode}):\n{log.read_text()}"
    return False


@on_both_brokers
def test_the_mirror_writes_what_the_lookup_shows_and_resumes_after_a_restart_and_an_outage(
    cluster: Cluster, tmp_path: Path
) -> None:
    worker = cluster.worker("w")
    now = datetime.now(UTC)
    bets = {"alice": ["12000.50", "300"], "bob": ["75"], "carol": ["60000", "2500.25"]}
    cluster.publish(
        [
            bet(amount, player_id=p, occurred_at=now)
            for p, amounts in bets.items()
            for amount in amounts
        ]
    )
    totals = {p: sum(map(Decimal, amounts), Decimal(0)) for p, amounts in bets.items()}
    wait_until(lambda: turnover_reached(worker, totals), 60, "the worker to fold every bet")

    log = tmp_path / "mirror.log"
    with redis_server(tmp_path / "redis") as redis_port:
        url = {"LOYALTY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        client = redis.Redis(port=redis_port)
        with mirror(cluster, log, **url) as process:
            wait_until(
                lambda: all(matches(client, worker, p) for p in bets) or exited(process, log),
                60,
                "the mirror to write every player",
            )
            alice = mirrored(client, "alice")
            assert (alice["level"], alice["cumulative_turnover"]) == ("Silver", "12300.50")
            assert alice["points_available"] == lookup(worker, "alice")["points"]["available"]
            assert datetime.fromisoformat(alice["as_of"]) >= now
            assert mirrored(client, "carol")["level"] == lookup(worker, "carol")["level"]["name"]

            # a tombstone deletes the key; the workers' bookkeeping (NUL keys) is not mirrored
            producer = Producer(producer_config(cluster.settings))
            producer.produce(PLAYERS_CHANGELOG, b"{}", SEEN_PREFIX + b"evt-x")
            producer.produce(PLAYERS_CHANGELOG, None, f"{BRAND}:bob".encode())
            assert producer.flush(10) == 0
            wait_until(
                lambda: client.exists(f"{PREFIX}{BRAND}:bob") == 0 or exited(process, log),
                30,
                "the tombstone to delete bob",
            )
            assert set(client.keys("*")) == {
                f"{PREFIX}{BRAND}:{p}".encode() for p in ("alice", "carol")
            }
            exited(process, log)
        assert process.returncode == 0, log.read_text()  # SIGTERM: a clean stop
        client.close()

    # stopped: its offsets are committed, so a restart reads only what came after
    assert sum(committed_offsets(cluster)) > 0
    cluster.publish([bet("1000", player_id="alice", occurred_at=now)])
    wait_until(lambda: turnover_reached(worker, {"alice": totals["alice"] + 1000}), 60, "a bet")
    # Redis is down as the mirror restarts: it must hold the batch and retry, not skip it
    with mirror(cluster, log, **url) as process:
        wait_until(
            lambda: log.read_text().count(RETRYING) > 0 or exited(process, log),
            30,
            "the mirror to find Redis down and retry",
        )
        # back on the same address, empty (no persistence): only what came after the commit
        # is written; a replay from the start would bring carol back
        with redis_server(tmp_path / "redis", port=redis_port):
            client = redis.Redis(port=redis_port)
            wait_until(
                lambda: matches(client, worker, "alice") or exited(process, log),
                60,
                "the restarted mirror to write alice's new bet once Redis is back",
            )
            assert mirrored(client, "alice")["cumulative_turnover"] == "13300.50"
            time.sleep(1.0)  # a replay from the start would reach carol's partition by now
            assert client.keys("*") == [f"{PREFIX}{BRAND}:alice".encode()]
            client.close()
    assert process.returncode == 0, log.read_text()


def committed_offsets(cluster: Cluster) -> list[int]:
    """The mirror group's committed position on every changelog partition (0 where none)."""
    consumer = Consumer(
        {
            **connection(cluster.settings),
            "group.id": f"{cluster.settings.app_id}-redis-mirror",
        }
    )
    try:
        partitions = consumer.list_topics(PLAYERS_CHANGELOG, timeout=10).topics[PLAYERS_CHANGELOG]
        found = consumer.committed(
            [TopicPartition(PLAYERS_CHANGELOG, n) for n in partitions.partitions], timeout=10
        )
        return [max(int(tp.offset), 0) for tp in found]
    finally:
        consumer.close()


def test_the_mirror_finds_the_master_through_sentinel(
    cluster: Cluster, redis_port: int, tmp_path: Path
) -> None:
    worker = cluster.worker("w")
    now = datetime.now(UTC)
    cluster.publish([bet("5000", player_id="dave", occurred_at=now)])
    wait_until(lambda: turnover_reached(worker, {"dave": Decimal(5000)}), 60, "the bet to land")

    client = redis.Redis(port=redis_port)
    log = tmp_path / "mirror.log"
    with (
        redis_sentinel(tmp_path / "sentinel", redis_port) as sentinel_port,
        mirror(
            cluster,
            log,
            LOYALTY_REDIS_SENTINELS=f"127.0.0.1:{sentinel_port}",
            LOYALTY_REDIS_SENTINEL_SERVICE="mymaster",
        ) as process,
    ):
        wait_until(
            lambda: matches(client, worker, "dave") or exited(process, log),
            60,
            "the mirror to write dave through Sentinel",
        )
        assert (
            mirrored(client, "dave")["points_available"]
            == lookup(worker, "dave")["points"]["available"]
        )
    assert process.returncode == 0, log.read_text()
    client.close()
