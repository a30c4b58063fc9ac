"""Producing with librdkafka without dropping a record when its local queue is full.

`Producer.produce` raises BufferError when the queue is full; every producer of the project
(the fold loop, the PMS webhook, the generator, the benchmarks) then lets librdkafka send what it
holds and retries.
"""

from collections.abc import Iterable
from typing import Any

from loyalty_streams.kafka.clients import KafkaClients, ProducerClient, producer_config
from loyalty_streams.settings import Settings

PUBLISH_WAIT_S = 30.0
"""How long `publish` waits for the cluster to acknowledge what it sent."""

QUEUE_FULL_POLL_S = 0.05
"""How long a producer whose local queue is full serves delivery reports (librdkafka sends
meanwhile, making room) before `produce` tries again."""


def produce(
    producer: ProducerClient, topic: str, value: bytes | None, key: bytes | None, **options: Any
) -> None:
    """`producer.produce(...)`, waiting for room in the local queue instead of failing."""
    while True:
        try:
            producer.produce(topic, value, key, **options)
            return
        except BufferError:
            producer.poll(QUEUE_FULL_POLL_S)


def publish(
    settings: Settings,
    topic: str,
    records: Iterable[tuple[bytes, bytes]],
    *,
    clients: KafkaClients | None = None,
) -> int:
    """Each (key, value) to `topic`, in the partition of its key (Kafka's murmur2, as every
    producer of the platform must); gives how many were sent. Raises RuntimeError when the
    cluster does not acknowledge them all within `PUBLISH_WAIT_S`. `clients` makes the producer
    (by default librdkafka's)."""
    producer = (clients or KafkaClients()).producer(producer_config(settings))
    sent = 0
    for key, value in records:
        produce(producer, topic, value, key)
        sent += 1
    left = producer.flush(PUBLISH_WAIT_S)
    if left:
        raise RuntimeError(f"{left} record(s) not acknowledged by {settings.bootstrap_servers}")
    return sent
