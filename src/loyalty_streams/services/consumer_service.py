"""The skeleton every side service shares: check the topics, follow one topic as a consumer group
member, hand batches to a policy, commit what the policy finished, stop on SIGTERM or SIGINT.

A service fills it with a `BatchPolicy`: what to do with a batch of records, and how many of them
(from the first) are finished and may be committed. The skeleton owns the consumer: it is built
from `kafka.clients.group_consumer_config` by the service, subscribed to the service's topic,
polled in batches of the service's size, and closed (leaving the group at once) on the way out.
Offsets are committed synchronously after the policy returns, past the last finished record of
each partition, so a crash or a stop re-hands at most the records not finished; a failed commit
only means those records are handled once more.
"""

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from loyalty_streams.kafka.admin import missing_topics_problem, partition_counts
from loyalty_streams.kafka.clients import Config, KafkaClients
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)


class BatchPolicy(Protocol):
    """What a side service does with the records it follows."""

    def handle(self, records: Sequence[Message]) -> int:
        """Handle `records` (a batch, in offset order per partition, none an error); return
        how many of them, from the first, are finished and may be committed (fewer than all
        when a stop came first)."""
        ...


@dataclass(frozen=True, slots=True)
class ConsumerService:
    """One topic followed by a consumer group member, in batches of `batch` records.

    `config` is the member's configuration (`group_consumer_config`); `poll_timeout_s` is how
    long one poll waits for records, and so how often an idle service looks at `stop`.
    """

    config: Config
    topic: str
    batch: int
    poll_timeout_s: float
    stop: threading.Event
    clients: KafkaClients = field(default_factory=KafkaClients)

    def run(self, policy: BatchPolicy) -> None:
        """Hand batches to `policy` and commit what it finished, until `stop` is set.

        Partition ends are skipped, other consumer errors logged; a fatal one raises
        `KafkaException`.
        """
        consumer = self.clients.consumer(self.config)
        try:
            consumer.subscribe([self.topic])
            log.info("following %s as group %s", self.topic, self.config["group.id"])
            while not self.stop.is_set():
                records = _records(self.topic, consumer.consume(self.batch, self.poll_timeout_s))
                if records:
                    finished = policy.handle(records)
                    _commit(consumer, records[:finished])
        finally:
            # close() leaves the group at once, so a successor gets the partitions without
            # waiting for the session timeout; nothing uncommitted is lost either way
            consumer.close()


def _records(topic: str, messages: list[Message]) -> list[Message]:
    """The records of `messages`: errors are logged (a fatal one raised) and left out."""
    records = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(message)
        elif error.fatal():
            raise KafkaException(error)
        elif error.code() != KafkaError._PARTITION_EOF:
            log.warning("%s: %s", topic, error)
    return records


def _commit(consumer: Consumer, records: Sequence[Message]) -> None:
    """Commit past the last of `records` on each partition; a failure is logged, not raised."""
    positions: dict[tuple[str, int], int] = {}
    for record in records:
        at = (str(record.topic()), int(record.partition() or 0))
        positions[at] = max(positions.get(at, 0), int(record.offset() or 0) + 1)
    if not positions:
        return
    offsets = [
        TopicPartition(topic, partition, end) for (topic, partition), end in positions.items()
    ]
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as error:
        # e.g. the group moved on during a long outage: whoever reads these records next
        # handles them again
        log.warning("commit of %s failed, they will be handled again: %s", offsets, error)


def serve(
    settings: Settings,
    needed: Sequence[str],
    run: Callable[[threading.Event], None],
    clients: KafkaClients | None = None,
) -> int:
    """Run a side service until SIGTERM or SIGINT: 0 once `run(stop)` returns after a stop.

    First checks that the cluster has every topic in `needed` (subscribing to a missing one
    could auto-create it with the wrong partition count): 2, with the reason on stderr, if not.
    The signal handlers set `stop`; the previous handlers are back once `run` returns.
    `clients` makes the admin client of the check (by default librdkafka's).
    """
    missing = missing_topics_problem(settings, needed, partition_counts(settings, clients))
    if missing:
        print(missing, file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
