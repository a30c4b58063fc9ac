"""Every Kafka client the product makes, one configuration per role, built from the settings.

The roles:
- `connection`: bootstrap servers, security and SASL, shared by every client, so pointing the
  product at a secured cluster changes every client at once;
- `group_consumer_config`: a member of a consumer group that commits by hand from the start of
  the topic (the fold loop, the PMS webhook, the Redis mirror);
- `fold_consumer_config`: the fold loop's group member, whose fetches the broker holds briefly;
- `reader_config`: a consumer outside any group that is assigned partitions, commits nothing
  and learns where each partition ends (global tables, restore, topic reads and scans);
- `producer_config`: a producer that partitions keys as the Java client does;
- `output_producer_config`: the fold loop's producer, batching outputs for a checkpoint;
- `transactional_producer_config`: the same under exactly-once, each checkpoint a transaction;
- `load_producer_config`: the generator's and benchmarks' producer, for throughput.

Every consumer reads committed records only (`isolation.level=read_committed`, librdkafka's
default, stated): under exactly-once, records of an aborted or unfinished checkpoint are never
read by the restore, the global tables, the side services or the exports.

`KafkaClients` makes the clients from these; whatever needs a client takes one, so a test can
hand in another (see `runtime.test_driver`).
"""

import uuid
from collections.abc import Callable
from typing import Literal, Protocol

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from loyalty_streams.settings import Settings

Config = dict[str, str]

READ_COMMITTED: Config = {"isolation.level": "read_committed"}
"""What every consumer role reads: committed records only (see the module)."""

TRANSACTION_TIMEOUT_MS = 10_000
"""How long the transaction coordinator lets a checkpoint's transaction stay open before it
aborts it: what a crashed worker's open transaction holds up its partitions' readers (the
last stable offset) when no worker with its transactional id comes back; Kafka Streams'
exactly-once default. A checkpoint lasts `BATCH_S` plus its commit."""


def connection(settings: Settings) -> Config:
    """Connection properties (bootstrap servers, security, SASL) for a confluent-kafka client."""
    config = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol,
        # Nagle's algorithm against delayed ACKs stalls each small request by up to 40 ms
        "socket.nagle.disable": "true",
    }
    if settings.sasl_mechanism is not None:
        config["sasl.mechanism"] = settings.sasl_mechanism
    if settings.sasl_username is not None:
        config["sasl.username"] = settings.sasl_username
    if settings.sasl_password is not None:
        config["sasl.password"] = settings.sasl_password
    return config


def group_consumer_config(
    settings: Settings,
    group_id: str,
    *,
    fetch_wait_ms: int = 100,
    max_poll_interval_ms: int | None = None,
) -> Config:
    """A consumer group member: manual commits, from the earliest offset when the group has none,
    range assignment (co-partitioned topics stay together), the session timeout of the settings
    and a heartbeat a fifth of it (librdkafka's 3 s default loses a short session).

    `fetch_wait_ms` bounds how long the broker holds a fetch; `max_poll_interval_ms`, when given,
    how long the member may go without polling before the group drops it.
    """
    session_ms = int(settings.session_timeout_s * 1000)
    config = {
        **connection(settings),
        "group.id": group_id,
        "enable.auto.commit": "false",
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "session.timeout.ms": str(session_ms),
        "heartbeat.interval.ms": str(max(100, session_ms // 5)),
        "fetch.wait.max.ms": str(fetch_wait_ms),
        **READ_COMMITTED,
    }
    if max_poll_interval_ms is not None:
        config["max.poll.interval.ms"] = str(max_poll_interval_ms)
    return config


def fold_consumer_config(settings: Settings) -> Config:
    """The fold loop's consumer: a member of the group named by the settings' `app_id`
    (`group_consumer_config`) whose fetch the broker holds at most 50 ms for more records
    (`fetch.wait.max.ms`; 100 for the side services' members)."""
    return group_consumer_config(settings, settings.app_id, fetch_wait_ms=50)


def reader_config(settings: Settings, purpose: str, **extra: str) -> Config:
    """A consumer that is assigned partitions, outside any group: a group id unique to this
    client (`<app id>-<purpose>-<uuid>`, never committed to), partition ends reported as events
    (`enable.partition.eof`), from the earliest offset. `extra` adds role-specific properties."""
    return {
        **connection(settings),
        "group.id": f"{settings.app_id}-{purpose}-{uuid.uuid4()}",
        "enable.auto.commit": "false",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": "true",
        "fetch.wait.max.ms": "100",
        **READ_COMMITTED,
        **extra,
    }


def producer_config(settings: Settings) -> Config:
    """Producer properties: the connection, plus the partitioner the workers' clients use.

    librdkafka hashes keys with CRC32 by default, Java and aiokafka with murmur2; a player's
    records must land on the partition that holds their table state, whoever produced them.
    """
    return {**connection(settings), "partitioner": "murmur2_random"}


def output_producer_config(settings: Settings) -> Config:
    """The fold loop's producer: outputs leave in batches every 50 ms (Kafka Streams waits 100),
    compressed; the local queue holds what two batches in flight can produce (why 50 ms:
    docs/decisions/batch-age.md)."""
    return {
        **producer_config(settings),
        "linger.ms": "50",
        "compression.type": "lz4",
        "batch.num.messages": "10000",
        "queue.buffering.max.messages": "1000000",
        "queue.buffering.max.kbytes": str(1024 * 1024),
    }


def transactional_id(settings: Settings) -> str:
    """The fold loop's transactional id: the app id and the worker's URL, unique per worker (the
    URL is how other workers reach it) and the same when it restarts, so a restarted worker
    aborts the transaction its previous run left open instead of waiting for its timeout."""
    return f"{settings.app_id}:{settings.worker_url}"


def transactional_producer_config(settings: Settings) -> Config:
    """The fold loop's producer under exactly-once: `output_producer_config` with a
    transactional id (`transactional_id`; idempotence and acks=all come with it) and
    `TRANSACTION_TIMEOUT_MS`."""
    return {
        **output_producer_config(settings),
        "transactional.id": transactional_id(settings),
        "transaction.timeout.ms": str(TRANSACTION_TIMEOUT_MS),
    }


def load_producer_config(settings: Settings) -> Config:
    """The generator's and benchmarks' producer: large compressed batches, acknowledged by every
    in-sync replica, without duplicates (idempotence)."""
    return {
        **producer_config(settings),
        "linger.ms": "10",
        "batch.size": str(1024 * 1024),
        "batch.num.messages": "10000",
        "compression.type": "lz4",
        "queue.buffering.max.messages": "500000",
        "queue.buffering.max.kbytes": str(512 * 1024),
        "acks": "all",
        "enable.idempotence": "true",
    }


class ConsumerClient(Protocol):
    """The part of librdkafka's `Consumer` the runtime uses (the fold loop, the restore): what an
    in-memory stand-in implements (see `runtime.test_driver`)."""

    def subscribe(
        self,
        topics: list[str],
        on_assign: Callable[[Consumer, list[TopicPartition]], None] | None = None,
        on_revoke: Callable[[Consumer, list[TopicPartition]], None] | None = None,
        on_lost: Callable[[Consumer, list[TopicPartition]], None] | None = None,
    ) -> None: ...

    def assign(self, partitions: list[TopicPartition]) -> None: ...

    def poll(self, timeout: float = -1) -> Message | None: ...

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None: ...

    def assignment(self) -> list[TopicPartition]: ...

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]: ...

    def committed(
        self, partitions: list[TopicPartition], timeout: float = -1
    ) -> list[TopicPartition]: ...

    def seek(self, partition: TopicPartition) -> None: ...

    def consumer_group_metadata(self) -> object: ...

    def close(self) -> None: ...


class ProducerClient(Protocol):
    """The part of librdkafka's `Producer` the runtime uses: what an in-memory stand-in
    implements (see `runtime.test_driver`)."""

    def produce(
        self,
        topic: str,
        value: str | bytes | None = None,
        key: str | bytes | None = None,
        *,
        partition: int = -1,
        on_delivery: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None: ...

    def poll(self, timeout: float = -1) -> int: ...

    def flush(self, timeout: float = -1) -> int: ...

    def init_transactions(self, timeout: float = -1) -> None: ...

    def begin_transaction(self) -> None: ...

    def send_offsets_to_transaction(
        self, positions: list[TopicPartition], group_metadata: object, timeout: float = -1
    ) -> None: ...

    def commit_transaction(self, timeout: float = -1) -> None: ...

    def abort_transaction(self, timeout: float = -1) -> None: ...


class KafkaClients:
    """Makes Kafka clients from configurations: the one seam between the product and librdkafka.

    Code that needs a client takes a `KafkaClients` and asks it; a test passes an instance whose
    methods return in-memory stand-ins, with no monkey-patching.
    """

    def consumer(self, config: Config) -> Consumer:
        """A consumer with `config` (one of this module's roles)."""
        return Consumer(config)

    def producer(self, config: Config) -> Producer:
        """A producer with `config` (one of this module's roles)."""
        return Producer(config)

    def admin(self, settings: Settings) -> AdminClient:
        """An admin client on the settings' connection."""
        return AdminClient({**connection(settings)})
