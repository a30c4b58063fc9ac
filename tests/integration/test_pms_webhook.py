"""The PMS webhook end to end: a real broker, a real HTTP receiver, the deliverer as a process.

The receiver fails, goes away and comes back; the deliverer is SIGKILLed and restarted in the
middle. Every level change must still arrive, signed, under its own idempotency key, and a PMS
that de-duplicates on that key acts on each exactly once.
"""

import base64
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from loyalty_streams.devtools.broker import free_port
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.domain.outputs import Direction, LevelChanged, encode
from loyalty_streams.kafka.clients import connection, producer_config
from loyalty_streams.kafka.reading import read_topics
from loyalty_streams.kafka.topics import LEVEL_CHANGED, PMS_WEBHOOK_DEAD_LETTER
from loyalty_streams.services.pms_webhook import group_id, run_pms_webhook
from loyalty_streams.services.webhook_policy import TOLERANCE_S, verify
from loyalty_streams.settings import Settings
from tests.integration.conftest import Cluster, on_both_brokers, wait_until

SECRET = "pms-test-secret-of-at-least-32-bytes"
URL_TOKEN = "url-query-token-never-logged"
"""A secret in the webhook URL's query, as some PMSs want: it must not reach a log line."""


# -- a PMS stand-in ------------------------------------------------------------------------


def signed(header: str | None, body: bytes) -> bool:
    """What a PMS checks: signed with the shared secret over these bytes, and recently."""
    return verify(header, body, [SECRET], TOLERANCE_S, time.time())


@dataclass(frozen=True)
class Request:
    key: str | None
    signature: str | None
    attempt: str | None
    event: str | None
    content_type: str | None
    body: bytes
    status: int


@dataclass
class Receiver:
    """An HTTP endpoint that can fail, go down and come back, and acts once per key."""

    port: int
    fail_first: int = 0
    always_fail: bool = False
    delay_s: float = 0.0
    requests: list[Request] = field(default_factory=list)
    acted: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/pms/level-changes?token={URL_TOKEN}"

    def respond(self, headers: Any, body: bytes) -> int:
        key = headers.get("Idempotency-Key")
        with self.lock:
            if self.always_fail or len(self.requests) < self.fail_first:
                status = 500
            elif not signed(headers.get("X-Loyalty-Signature"), body) or key is None:
                status = 401
            else:
                if key not in self.acted:  # what a PMS does: act once per idempotency key
                    self.acted.append(key)
                status = 200
            delay_s = self.delay_s
            self.requests.append(
                Request(
                    key=key,
                    signature=headers.get("X-Loyalty-Signature"),
                    attempt=headers.get("X-Loyalty-Delivery-Attempt"),
                    event=headers.get("X-Loyalty-Event"),
                    content_type=headers.get("Content-Type"),
                    body=body,
                    status=status,
                )
            )
        # a slow PMS: acted on, the answer not yet sent, so a crash now leaves it uncommitted
        time.sleep(delay_s)
        return status

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.respond(self.headers, body)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the deliverer was killed while waiting for us
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening: connections are refused until `up` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys_acted(self) -> set[str]:
        with self.lock:
            return set(self.acted)


# -- the deliverer as an operator runs it --------------------------------------------------

NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
"""The receiver is local: a proxy from the machine's environment must not stand in between."""


def start_deliverer(settings: Settings, log_path: Path) -> ServiceProcess:
    """`loyalty-streams pms-webhook`, configured only through LOYALTY_* variables."""
    return ServiceProcess(settings, log_path, "pms-webhook", NO_PROXY).start()


# -- level changes on the topic, as a worker would write them ------------------------------


@dataclass(frozen=True)
class Produced:
    output_id: str
    key: bytes
    value: bytes
    partition: int
    offset: int


def level_change(n: int, player_id: str) -> LevelChanged:
    at = datetime(2026, 11, 21, 12, 0, tzinfo=UTC) + timedelta(minutes=n)
    up = n % 3 != 2
    return LevelChanged(
        output_id=f"bet-{n}:level",
        cause_id=f"bet-{n}",
        brand_id="aurora-casino",
        player_id=player_id,
        occurred_at=at,
        direction=Direction.UP if up else Direction.DOWN,
        from_level="Bronze" if up else "Silver",
        from_rank=1 if up else 2,
        to_level="Silver" if up else "Bronze",
        to_rank=2 if up else 1,
        reason="threshold_reached" if up else "retention_missed",
        basis="turnover",
        cumulative=Decimal("1500.00"),
        rolling_30d=Decimal("1500.00") if up else Decimal("12.50"),
        programme_version=1,
    )


def publish(settings: Settings, changes: list[LevelChanged]) -> list[Produced]:
    producer = Producer(producer_config(settings))
    produced: list[Produced] = []

    def acked(error: KafkaError | None, message: Message) -> None:
        assert error is None, error
        value = message.value()
        assert isinstance(value, bytes)
        produced.append(
            Produced(
                output_id=orjson.loads(value)["output_id"],
                key=message.key() or b"",
                value=value,
                partition=int(message.partition() or 0),
                offset=int(message.offset() or 0),
            )
        )

    for change in changes:
        key = f"{change.brand_id}:{change.player_id}".encode()
        producer.produce(LEVEL_CHANGED, encode(change), key, on_delivery=acked)
    assert producer.flush(10) == 0
    assert len(produced) == len(changes)
    return produced


def committed_offsets(settings: Settings) -> dict[int, int]:
    """The deliverer group's committed offset per partition (only those with a commit)."""
    consumer = Consumer({**connection(settings), "group.id": group_id(settings)})
    try:
        partitions = consumer.list_topics(LEVEL_CHANGED, timeout=10).topics[LEVEL_CHANGED]
        asked = [TopicPartition(LEVEL_CHANGED, p) for p in partitions.partitions]
        found = consumer.committed(asked, timeout=10)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
    finally:
        consumer.close()


def ends(produced: list[Produced]) -> dict[int, int]:
    """Where a group that handled every produced record has committed to, per partition."""
    found: dict[int, int] = {}
    for record in produced:
        found[record.partition] = max(found.get(record.partition, 0), record.offset + 1)
    return found


def webhook_settings(cluster: Cluster, receiver: Receiver, **overrides: Any) -> Settings:
    return cluster.settings.model_copy(
        update={
            "pms_webhook_url": receiver.url,
            "pms_webhook_secret": SECRET,
            "pms_webhook_backoff_s": 0.05,
            "pms_webhook_backoff_max_s": 0.2,
            # a SIGKILLed member holds its partitions until its session ends: keep that short
            "session_timeout_s": 3.0,
            **overrides,
        }
    )


# -- the tests -----------------------------------------------------------------------------


@on_both_brokers
def test_every_level_change_arrives_once_per_key_through_failures_outage_and_a_crash(
    cluster: Cluster, tmp_path: Path
) -> None:
    receiver = Receiver(free_port(), fail_first=3, delay_s=0.3)
    receiver.up()
    settings = webhook_settings(
        cluster,
        receiver,
        pms_webhook_max_attempts=50,  # the outage must not exhaust anyone's budget
        pms_webhook_breaker_failures=3,
        pms_webhook_breaker_reset_s=0.5,
    )
    players = [f"p{i}" for i in range(8)]
    first = publish(settings, [level_change(n, players[n % 8]) for n in range(12)])

    deliverer = start_deliverer(settings, tmp_path / "deliverer-1.log")
    restarted: ServiceProcess | None = None
    try:
        wait_until(lambda: len(receiver.keys_acted()) >= 6, 30, "half the first batch acted on")
        deliverer.kill()  # a crash: whatever was in flight is neither committed nor flushed
        assert len(receiver.keys_acted()) < len(first), "the crash came too late to matter"
        receiver.delay_s = 0.0
        second = publish(settings, [level_change(n, players[n % 8]) for n in range(12, 24)])
        receiver.down()  # and the PMS goes away
        went_down = time.monotonic()

        restarted = start_deliverer(settings, tmp_path / "deliverer-2.log")
        log = restarted.log_text
        wait_until(lambda: "circuit breaker open" in log(), 30, "the breaker to open")
        threading.Event().wait(1.5)  # a few reset periods of outage, with half-open trials
        receiver.up()
        outage_s = time.monotonic() - went_down

        everything = first + second
        ids = {record.output_id for record in everything}
        wait_until(lambda: receiver.keys_acted() == ids, 30, "every level change acted on")
        assert restarted.stop() == 0, restarted.log_text()[-3000:]
    finally:
        deliverer.stop()
        if restarted is not None:
            restarted.stop()
        receiver.down()

    requests = list(receiver.requests)
    # every level change arrived, under its own key, acted on exactly once after de-duplication
    assert sorted(receiver.acted) == sorted(ids) and len(receiver.acted) == len(ids)
    assert {r.key for r in requests} == ids
    # every request was signed over its exact bytes and carried the record as produced
    by_id = {record.output_id: record for record in everything}
    for request in requests:
        assert request.key is not None
        assert signed(request.signature, request.body)
        assert request.body == by_id[request.key].value
        assert request.content_type == "application/json"
        assert request.event == "LevelChanged"
    # repeats are retries of the same key only: 3 x 500, at most one in flight at the crash
    repeats = {key: n for key, n in Counter(r.key for r in requests).items() if n > 1}
    assert sum(n - 1 for n in repeats.values()) <= 3 + 1, repeats
    assert [r.status for r in requests[:3]] == [500, 500, 500]
    # per player, the PMS saw the changes in the order they were produced
    order: dict[str, list[str]] = defaultdict(list)
    for key in receiver.acted:
        order[orjson.loads(by_id[key].value)["player_id"]].append(key)
    for player, keys in order.items():
        produced = [r.output_id for r in everything if orjson.loads(r.value)["player_id"] == player]
        assert keys == produced, player
    # the breaker held the outage: 3 refusals opened it, then one trial per reset period
    refusals = [line for line in restarted.log_text().splitlines() if "ConnectionRefused" in line]
    assert 4 <= len(refusals) <= 3 + outage_s / 0.5 + 2, refusals
    # the restart took over where the crash left the committed offsets: first-batch records too
    resumed = {
        line.split()[5] for line in restarted.log_text().splitlines() if " delivered " in line
    }
    assert resumed & {record.output_id for record in first}, resumed
    # nothing was dead-lettered, and the group's offsets are past every record
    letters = read_topics(settings, [PMS_WEBHOOK_DEAD_LETTER], until=lambda r: False, timeout=1)
    assert letters[PMS_WEBHOOK_DEAD_LETTER] == []
    assert committed_offsets(settings) == ends(everything)


@on_both_brokers
def test_a_record_the_pms_always_refuses_goes_to_the_dead_letters_after_max_attempts(
    cluster: Cluster, tmp_path: Path
) -> None:
    receiver = Receiver(free_port(), always_fail=True)
    receiver.up()
    settings = webhook_settings(
        cluster,
        receiver,
        pms_webhook_max_attempts=3,
        pms_webhook_breaker_failures=5,
        pms_webhook_breaker_reset_s=0.3,
    )
    produced = publish(settings, [level_change(0, "doomed"), level_change(1, "doomed")])

    deliverer = start_deliverer(settings, tmp_path / "deliverer.log")
    try:
        records = read_topics(
            settings,
            [PMS_WEBHOOK_DEAD_LETTER],
            until=lambda r: len(r[PMS_WEBHOOK_DEAD_LETTER]) >= 2,
            timeout=30,
        )
        assert deliverer.stop() == 0, deliverer.log_text()[-3000:]
    finally:
        deliverer.stop()
        receiver.down()

    letters = [orjson.loads(record.value) for record in records[PMS_WEBHOOK_DEAD_LETTER]]
    assert len(letters) == 2, deliverer.log_text()[-3000:]
    for letter, source, record in zip(
        letters, produced, records[PMS_WEBHOOK_DEAD_LETTER], strict=True
    ):
        assert letter["type"] == "DeadLetter"
        assert "after 3 attempt(s)" in letter["reason"] and "HTTP 500" in letter["reason"]
        assert source.output_id in letter["reason"]
        assert (letter["topic"], letter["partition"], letter["offset"]) == (
            LEVEL_CHANGED, source.partition, source.offset,
        )  # fmt: skip
        assert base64.b64decode(letter["value_b64"]) == source.value
        assert base64.b64decode(letter["key_b64"]) == source.key == record.key
    # exactly the budget per record, numbered, one key each, never acted on
    attempts = defaultdict(list)
    for request in receiver.requests:
        attempts[request.key].append(request.attempt)
    assert attempts == {p.output_id: ["1", "2", "3"] for p in produced}
    assert receiver.acted == []
    # the URL's secret was sent, never shown
    assert URL_TOKEN not in deliverer.log_text() + str(letters)
    assert "/pms/level-changes?***" in deliverer.log_text()
    # moved on: both offsets committed, so a restart does not send them again
    assert committed_offsets(settings) == ends(produced)


def test_without_a_url_it_refuses_to_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_pms_webhook(Settings(pms_webhook_url=None)) == 2
    assert "LOYALTY_PMS_WEBHOOK_URL is not set" in capsys.readouterr().err
