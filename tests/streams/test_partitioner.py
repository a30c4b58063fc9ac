"""Our murmur2 picks the partition Kafka's producers pick, so lookups find a player's owner."""

import uuid

from confluent_kafka import Message, Producer

from loyalty_streams.kafka_config import producer_config
from loyalty_streams.settings import Settings
from loyalty_streams.streams.partitioner import murmur2, partition_of
from loyalty_streams.streams.topics import POINTS_ACCRUED


def test_known_values_of_kafkas_murmur2() -> None:
    # from Kafka's UtilsTest.testMurmur2 (signed ints there, unsigned here)
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == (-985981536) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-longer-string") == (-1486304829) & 0xFFFFFFFF
    assert murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == (-58897971) & 0xFFFFFFFF
    assert murmur2(b"abc") == 479470107


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
