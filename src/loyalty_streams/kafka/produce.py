"""Producing with librdkafka without dropping a record when its local queue is full.

`Producer.produce` raises BufferError when the queue is full; every producer of the project
(the fold loop, the PMS webhook, the generator, the benchmarks) then lets librdkafka send what it
holds and retries.
"""

from typing import Any

from loyalty_streams.kafka.clients import ProducerClient

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
