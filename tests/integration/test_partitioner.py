"""Our murmur2 picks the partition a librdkafka producer with our configuration picks."""

import uuid

from confluent_kafka import Message, Producer

from loyalty_streams.kafka.clients import producer_config
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import POINTS_ACCRUED
from loyalty_streams.settings import Settings


def test_the_partition_matches_where_the_producer_put_each_key(settings: Settings) -> None:
    producer = Producer(producer_config(settings))
    delivered: dict[bytes, int] = {}

    def on_delivery(error: object, message: Message) -> None:
        assert error is None
        delivered[message.key() or b""] = int(message.partition() or 0)

    keys = [f"brand-{i % 3}:player-{uuid.uuid4().hex[: i % 9 + 1]}".encode() for i in range(200)]
    for key in keys:  # an outbound topic with 12 partitions: no worker reads it
        producer.produce(POINTS_ACCRUED, b"{}", key, on_delivery=on_delivery)
    assert producer.flush(10) == 0
    assert {key: partition_of(key, 12) for key in keys} == delivered
