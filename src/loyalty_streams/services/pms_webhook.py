"""`loyalty-streams pms-webhook`: POST every level change to the player-management system.

Delivery is driven by the committed offsets of `loyalty.level-changed` in the group
`<app_id>-pms-webhook`: a record's offset is committed only after the PMS answered 2xx or the
record went to `loyalty.pms-webhook-dead-letter`, one record at a time, in order per partition.
A crash or restart therefore re-sends at most the record that was in flight, with the same
`Idempotency-Key` (its `output_id`), and never skips one. Retries follow `webhook_policy`:
exponential backoff with full jitter per record, and a circuit breaker shared by all records so
a dead endpoint is probed, not hammered. Synchronous on purpose: level changes are rare, and one
request in flight keeps the ordering and the offset bookkeeping trivial.

The consumer, its commits and the stop on a signal are `consumer_service`'s; this module is the
policy it runs (`Deliverer`), in batches of one record.
"""

import http.client
import logging
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from confluent_kafka import KafkaError, Message

from loyalty_streams.kafka.clients import (
    Config,
    KafkaClients,
    ProducerClient,
    group_consumer_config,
    producer_config,
)
from loyalty_streams.kafka.dead_letters import dead_letter, encode_dead_letter
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import LEVEL_CHANGED, PMS_WEBHOOK_DEAD_LETTER
from loyalty_streams.services.consumer_service import ConsumerService, serve
from loyalty_streams.services.redaction import redact, redact_url
from loyalty_streams.services.webhook_policy import Backoff, CircuitBreaker, sign
from loyalty_streams.settings import Settings

log = logging.getLogger("loyalty_streams.pms_webhook")

REQUEST_TIMEOUT_S = 10.0
"""How long one POST may take; a PMS slower than this counts as a failed attempt."""
POLL_TIMEOUT_S = 0.5
"""How often the idle service looks at the stop flag."""
CLOSE_FLUSH_S = 10.0
"""How long a stop waits for dead letters still in the producer's queue."""
DEAD_LETTER_FLUSH_S = 30.0
"""How long one dead letter may take to be acknowledged before it is produced again."""
DEAD_LETTER_RETRY_S = 1.0
"""The pause before producing a dead letter the cluster did not take, again."""
NEEDED_TOPICS = (LEVEL_CHANGED, PMS_WEBHOOK_DEAD_LETTER)
USER_AGENT = "loyalty-streams-pms-webhook/1"


def group_id(settings: Settings) -> str:
    return f"{settings.app_id}-pms-webhook"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST: delivered (2xx) or not, and what the endpoint said, for logs and dead letters."""

    delivered: bool
    status: int | None
    detail: str


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer that is not 2xx; following it would turn the POST into a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """POST `body` to `url`; any 2xx is delivered, anything else (a status, a refusal, a
    timeout, a URL or an answer that does not parse) is not. Never raises; the Attempt's
    detail holds no secret of `url` (user info, query), so it can be logged."""
    try:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with _opener.open(request, timeout=timeout) as reply:
            reply.read()
            status = int(reply.status)
            return Attempt(200 <= status < 300, status, f"HTTP {status}")
    except urllib.error.HTTPError as error:
        error.close()
        return Attempt(False, error.code, f"HTTP {error.code} {error.reason}")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        return Attempt(False, None, redact(f"{type(reason).__name__}: {reason}", url))


def request_headers(
    body: bytes, secrets: Sequence[str], output_id: str, event: str, timestamp: int, attempt: int
) -> dict[str, str]:
    """What the PMS receives besides the body: what it is, who signed it and when (unix
    seconds), how to de-duplicate, which attempt this is."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Loyalty-Event": event,
        "X-Loyalty-Signature": sign(body, secrets, timestamp),
        "Idempotency-Key": output_id,
        "X-Loyalty-Delivery-Attempt": str(attempt),
    }


class Deliverer:
    """The webhook's policy for `ConsumerService`: deliver each record, or dead-letter it, before
    it is committed; `stop` ends it between (or inside) waits. `close` it after the service."""

    def __init__(
        self,
        settings: Settings,
        stop: threading.Event,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        wall_clock: Callable[[], float] = time.time,
        clients: KafkaClients | None = None,
    ) -> None:
        """Raises ValueError if `settings` name no webhook URL. `clock` times the breaker,
        `wall_clock` (unix seconds) dates each request's signature, `clients` makes the dead
        letters' producer (by default librdkafka's)."""
        if settings.pms_webhook_url is None:
            raise ValueError("pms_webhook_url is not set")
        self.settings = settings
        self.url = settings.pms_webhook_url
        self.secrets = [settings.pms_webhook_secret]
        """Each request is signed with all: the current secret, and during a rotation the old."""
        if settings.pms_webhook_secret_previous is not None:
            self.secrets.append(settings.pms_webhook_secret_previous)
        self.stop = stop
        self.jitter = jitter
        self.wall_clock = wall_clock
        self.backoff = Backoff(settings.pms_webhook_backoff_s, settings.pms_webhook_backoff_max_s)
        self.breaker = CircuitBreaker(
            settings.pms_webhook_breaker_failures, settings.pms_webhook_breaker_reset_s, clock
        )
        self.producer: ProducerClient = (clients or KafkaClients()).producer(
            producer_config(settings)
        )

    def handle(self, records: Sequence[Message]) -> int:
        """Deliver the records in order; how many are done (delivered or dead-lettered)."""
        for done, message in enumerate(records):
            if not self.handle_one(message):
                return done
        return len(records)

    def close(self) -> None:
        """Wait for dead letters still in the producer's queue (at most `CLOSE_FLUSH_S`)."""
        self.producer.flush(CLOSE_FLUSH_S)

    def handle_one(self, message: Message) -> bool:
        """Deliver or dead-letter one record; False if a stop came first (no commit then)."""
        value = message.value()
        body = value if isinstance(value, bytes) else b""
        try:
            document = orjson.loads(body)
            output_id = str(document["output_id"])
            event = str(document.get("type", "LevelChanged"))
        except (orjson.JSONDecodeError, KeyError, TypeError) as problem:
            return self.dead_letter(message, f"not a level change with an output_id: {problem!r}")

        attempt = self.deliver(body, output_id, event)
        if attempt is None:
            return False
        if attempt.delivered:
            return True
        reason = (
            f"PMS webhook gave up on {output_id} after "
            f"{self.settings.pms_webhook_max_attempts} attempt(s); last: {attempt.detail}"
        )
        return self.dead_letter(message, reason)

    def deliver(self, body: bytes, output_id: str, event: str) -> Attempt | None:
        """POST `body` until the PMS takes it or the attempts run out, each attempt signed
        afresh at the time it is sent; the last attempt, or None if a stop came first."""
        attempt: Attempt | None = None
        for number in range(1, self.settings.pms_webhook_max_attempts + 1):
            if number > 1 and not self.sleep(self.backoff.delay(number - 2, self.jitter)):
                return None
            if not self.wait_for_breaker():
                return None
            timestamp = int(self.wall_clock())
            headers = request_headers(body, self.secrets, output_id, event, timestamp, number)
            attempt = post(self.url, body, headers, REQUEST_TIMEOUT_S)
            if attempt.delivered:
                self.breaker.record_success()
                log.info("delivered %s (attempt %d, %s)", output_id, number, attempt.detail)
                return attempt
            self.breaker.record_failure()
            log.warning(
                "attempt %d/%d of %s failed: %s (breaker %s)",
                number,
                self.settings.pms_webhook_max_attempts,
                output_id,
                attempt.detail,
                self.breaker.state,
            )
        assert attempt is not None  # max_attempts >= 1
        return attempt

    def wait_for_breaker(self) -> bool:
        """Hold the record while the breaker is open; False if a stop came first."""
        announced = False
        while not self.breaker.allow():
            if not announced:
                log.warning(
                    "circuit breaker open after %d consecutive failure(s); next trial in %.1f s",
                    self.breaker.consecutive_failures,
                    self.breaker.retry_in(),
                )
                announced = True
            if not self.sleep(self.breaker.retry_in()):
                return False
        return True

    def sleep(self, seconds: float) -> bool:
        """Wait, waking for a stop; True if the wait ran out without one."""
        return not self.stop.wait(max(0.0, seconds))

    def dead_letter(self, message: Message, reason: str) -> bool:
        """Produce the record to the dead letters and wait for the ack; True once it is there."""
        value = message.value()
        letter = dead_letter(
            reason,
            topic=str(message.topic()),
            partition=int(message.partition() or 0),
            offset=int(message.offset() or 0),
            key=message.key(),
            value=value if isinstance(value, bytes) else b"",
            failed_at=datetime.now(UTC),
        )
        while not self.stop.is_set():
            failures: list[str] = []

            def acked(error: KafkaError | None, _: Message, failures: list[str] = failures) -> None:
                if error is not None:
                    failures.append(str(error))

            produce(
                self.producer,
                PMS_WEBHOOK_DEAD_LETTER,
                encode_dead_letter(letter),
                message.key(),
                on_delivery=acked,
            )
            if self.producer.flush(DEAD_LETTER_FLUSH_S) == 0 and not failures:
                log.error("dead-lettered %s: %s", _where(message), reason)
                return True
            log.error("could not dead-letter %s (%s); retrying", _where(message), failures)
            self.sleep(DEAD_LETTER_RETRY_S)
        return False


def _where(message: Message) -> str:
    return f"{message.topic()}[{message.partition()}]@{message.offset()}"


def consumer_config(settings: Settings) -> Config:
    """Manual commits from the start of the topic; a poll interval long enough for retries.

    One record can be held for all its attempts, each up to the request timeout plus the
    longer of the backoff cap and the breaker's reset; librdkafka drops a consumer from the
    group if it does not poll within max.poll.interval.ms, so that bound must cover it.
    """
    worst_s = settings.pms_webhook_max_attempts * (
        REQUEST_TIMEOUT_S
        + max(settings.pms_webhook_backoff_max_s, settings.pms_webhook_breaker_reset_s)
    )
    return group_consumer_config(
        settings, group_id(settings), max_poll_interval_ms=max(300_000, int((worst_s + 60) * 1000))
    )


def run_pms_webhook(settings: Settings, clients: KafkaClients | None = None) -> int:
    """Deliver level changes until SIGTERM/SIGINT (0); 2 if it cannot start (no URL, a weak
    secret, missing topics), with the reason on stderr. `clients` makes the consumer and the
    dead letters' producer (by default librdkafka's)."""
    if not settings.pms_webhook_url:
        print(
            "LOYALTY_PMS_WEBHOOK_URL is not set: nowhere to deliver level changes to",
            file=sys.stderr,
        )
        return 2
    weak = settings.secret_problems("pms_webhook_secret", "pms_webhook_secret_previous")
    if weak:
        print("\n".join(weak), file=sys.stderr)
        return 2

    made = clients or KafkaClients()

    def deliver(stop: threading.Event) -> None:
        deliverer = Deliverer(settings, stop, clients=made)
        log.info("delivering %s to %s", LEVEL_CHANGED, redact_url(deliverer.url))
        service = ConsumerService(
            consumer_config(settings), LEVEL_CHANGED, 1, POLL_TIMEOUT_S, stop, made
        )
        try:
            service.run(deliverer)
        finally:
            deliverer.close()

    return serve(settings, NEEDED_TOPICS, deliver, made)
