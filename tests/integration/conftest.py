"""The integration tests' brokers and workers; every test in this folder is marked `integration`.

- `kafka`: one embedded Tansu per test session, on a free port, every declared topic created (a
  free port per session lets parallel runs, and a developer's own broker on 9092, coexist);
  `settings` aims at it with a fresh data dir. `apache_kafka`: the same on Apache Kafka, started
  once, by the first test marked `on_both_session_brokers`.
- `cluster`: a fresh broker per test with topics and programmes, workers started on demand, so
  consumer groups, claims and outputs of one test never meet another's (Tansu starts in
  milliseconds; Apache Kafka, for tests marked `on_both_brokers`, in about 3 s).
"""

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from loyalty_streams.devtools.apache_kafka import ApacheKafka
from loyalty_streams.devtools.broker import EmbeddedBroker, free_port
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.commands import Command, CommandEnvelope
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.programme import Programme, shipped_programmes
from loyalty_streams.http.auth import ALL_BRANDS, Role, TokenRules, issue_token
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.clients import producer_config
from loyalty_streams.kafka.topics import COMMANDS, PLAYER_EVENTS, load_specs
from loyalty_streams.runtime.global_tables import publish_programmes
from loyalty_streams.settings import Settings

TOPICS_DIR = Path(__file__).resolve().parents[2] / "topics"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "kafka"
"""The Apache Kafka jars, fetched once per checkout (git-ignored)."""
SECRET = "pipeline-tests-token-secret-of-32-bytes-or-more"


def _session_broker(broker: EmbeddedBroker | ApacheKafka) -> Iterator[str]:
    with broker:
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers, security_protocol="PLAINTEXT"
        )
        report = apply_topics(settings, load_specs(TOPICS_DIR))
        assert report.ok, report.render()
        yield broker.bootstrap_servers


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap servers of the session broker (Tansu), with every declared topic created."""
    yield from _session_broker(EmbeddedBroker())


@pytest.fixture(scope="session")
def apache_kafka() -> Iterator[str]:
    """Bootstrap servers of the session's Apache Kafka (one node), every declared topic created;
    started by the first test that asks for it (`on_both_session_brokers`)."""
    yield from _session_broker(ApacheKafka(cache=CACHE))


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    """Settings aimed at the session broker (Tansu, or the kind the test is parametrized with),
    with the repo's topics and a fresh data dir; a development run, so the workers it starts
    accept the default secrets."""
    kind = getattr(request, "param", "tansu")
    servers: str = request.getfixturevalue("apache_kafka" if kind == "apache" else "kafka")
    return Settings(
        bootstrap_servers=servers,
        security_protocol="PLAINTEXT",
        topics_dir=TOPICS_DIR,
        data_dir=tmp_path / "data",
        development=True,
    )


def token(*roles: Role, brands: Sequence[str] = (ALL_BRANDS,), subject: str = "tests") -> str:
    """A bearer token the test workers accept."""
    rules = TokenRules(SECRET, max_ttl=timedelta(hours=1))
    return issue_token(rules, subject, roles, brands, datetime.now(UTC), timedelta(hours=1))


READER = token(Role.SERVICE)


def quick_downgrades() -> Programme:
    """Aurora's table under another brand, with no grace: a retention missed downgrades at once."""
    aurora = next(p for p in shipped_programmes() if p.brand_id == "aurora-casino")
    policies = aurora.policies.model_copy(update={"downgrade_grace_days": 0})
    return aurora.model_copy(update={"brand_id": "test-casino", "policies": policies})


PROGRAMMES = [*shipped_programmes(), quick_downgrades()]
CATALOGUE = Catalogue(PROGRAMMES)


@dataclass
class Cluster:
    settings: Settings
    tmp: Path
    broker: EmbeddedBroker | ApacheKafka
    workers: list[ServiceProcess] = field(default_factory=list)

    def worker(self, name: str, **overrides: Any) -> ServiceProcess:
        settings = self.settings.model_copy(
            update={"data_dir": self.tmp / name, "web_port": free_port(), **overrides}
        )
        process = ServiceProcess(settings, self.tmp / f"{name}.log")
        process.start()
        self.workers.append(process)
        return process

    def publish(self, items: Sequence[PlayerEvent | Command]) -> None:
        """Events to the player-events topic, commands to the commands topic, in order; each
        record's timestamp is its item's own time, as a producer sending as things happen
        writes them. Apache Kafka stamps commands itself (`loyalty.commands` is LogAppendTime)
        and a command runs at that stamp, so a test on both brokers sends commands issued now;
        Tansu keeps the producer's timestamp, and only a Tansu test may date one in the past."""
        producer = Producer(producer_config(self.settings))
        for item in items:
            if isinstance(item, CommandEnvelope):
                topic, moment = COMMANDS, item.issued_at
            else:
                topic, moment = PLAYER_EVENTS, item.occurred_at
            value, key = item.model_dump_json().encode(), item.key.encode()
            producer.produce(topic, value, key, timestamp=int(moment.timestamp() * 1000))
        assert producer.flush(10) == 0


BROKERS = ("tansu", "apache")
"""The brokers a test marked `on_both_brokers` runs on: the embedded Tansu and Apache Kafka."""

on_both_brokers = pytest.mark.parametrize("cluster", BROKERS, indirect=True)
"""Run a `cluster` test once per broker (`cluster` alone is Tansu)."""

on_both_session_brokers = pytest.mark.parametrize("settings", BROKERS, indirect=True)
"""Run a `settings` test once on each session broker (`settings` alone is the session's Tansu)."""


def embedded(kind: str) -> EmbeddedBroker | ApacheKafka:
    """A one-node broker of `kind`, not started: `tansu` or `apache`."""
    return ApacheKafka(cache=CACHE) if kind == "apache" else EmbeddedBroker()


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A fresh broker (Tansu, or the kind the test is parametrized with) with every topic and
    the test programmes, and workers on demand, all stopped afterwards."""
    yield from cluster_on(embedded(getattr(request, "param", "tansu")), tmp_path)


def cluster_on(broker: EmbeddedBroker | ApacheKafka, tmp_path: Path) -> Iterator[Cluster]:
    """Start `broker`, create every declared topic (replication capped at its nodes) and
    publish the test programmes; yield the cluster, then stop its workers and the broker."""
    with broker:
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers,
            security_protocol="PLAINTEXT",
            topics_dir=TOPICS_DIR,
            app_id="loyalty-test",
            session_timeout_s=6.0,
            api_token_secret=SECRET,
        )
        assert apply_topics(settings, load_specs(TOPICS_DIR)).ok
        publish_programmes(settings, PROGRAMMES, actor="tests", reason="test programmes")
        found = Cluster(settings, tmp_path, broker)
        try:
            yield found
        finally:
            for process in found.workers:
                process.stop()


def get(
    worker: ServiceProcess, path: str, bearer: str | None = READER, **headers: str
) -> tuple[int, dict[str, Any]]:
    """GET a worker's view (as a read-only service by default); the status and the JSON body."""
    return call(worker, "GET", path, None, bearer, **headers)


def call(
    worker: ServiceProcess,
    method: str,
    path: str,
    body: Any = None,
    bearer: str | None = READER,
    **headers: str,
) -> tuple[int, dict[str, Any]]:
    """One request to a worker's API; the status and the JSON body, errors included."""
    url = f"http://127.0.0.1:{worker.settings.web_port}{path}"
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=40) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError):  # not listening yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def settled(*workers: ServiceProcess) -> None:
    """Until every record the workers folded is checkpointed (see `ServiceProcess.settled`)."""
    for worker in workers:
        assert worker.settled(), f"the worker's checkpoints\n{worker.log_tail()}"


def owned(worker: ServiceProcess) -> list[int]:
    status, body = get(worker, "/health")
    partitions: list[int] = body["partitions"] if status == 200 else []
    return partitions


def scrape(worker: ServiceProcess) -> dict[str, float]:
    """The worker's /metrics, sample by sample: `name{labels}` -> value."""
    url = f"http://127.0.0.1:{worker.settings.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples
