"""Commands published through the `KafkaClients` seam, on an in-memory producer: keyed where the
worker owning them reads them, and refused aloud when the cluster does not acknowledge them."""

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, Producer

from loyalty_streams.domain.commands import ClaimBirthdayGift
from loyalty_streams.http.command_sender import CommandSender, publish_brand_recheck
from loyalty_streams.kafka.clients import Config, KafkaClients
from loyalty_streams.kafka.topics import AUDIT, COMMANDS
from loyalty_streams.settings import Settings

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


class MemoryProducer:
    """Records what is produced; `flush` acknowledges each record, or fails it with `error`."""

    def __init__(self, partitions: int = 3, error: KafkaError | None = None) -> None:
        self.records: list[dict[str, Any]] = []
        self._partitions = partitions
        self._error = error
        self._unacknowledged: list[Any] = []

    def list_topics(self, timeout: float) -> Any:
        topic = SimpleNamespace(error=None, partitions=dict.fromkeys(range(self._partitions)))
        return SimpleNamespace(topics={COMMANDS: topic})

    def produce(
        self, topic: str, value: bytes, key: bytes, partition: int = -1, on_delivery: Any = None
    ) -> None:
        self.records.append({"topic": topic, "value": value, "key": key, "partition": partition})
        if on_delivery is not None:
            self._unacknowledged.append(on_delivery)

    def flush(self, timeout: float) -> int:
        for delivered in self._unacknowledged:
            delivered(self._error, None)
        self._unacknowledged.clear()
        return 0


class MemoryClients(KafkaClients):
    def __init__(self, producer: MemoryProducer) -> None:
        self.made = producer

    def producer(self, config: Config) -> Producer:
        return self.made  # type: ignore[return-value]


def claim() -> ClaimBirthdayGift:
    return ClaimBirthdayGift(
        command_id="c-1", brand_id="aurora", player_id="p-1", issued_at=NOW, actor="ops"
    )


def test_a_command_is_keyed_by_its_player() -> None:
    producer = MemoryProducer()
    asyncio.run(CommandSender(Settings(), MemoryClients(producer)).send(claim()))
    [record] = producer.records
    assert (record["topic"], record["key"]) == (COMMANDS, b"aurora:p-1")
    assert orjson.loads(record["value"])["type"] == "ClaimBirthdayGift"


def test_a_command_the_cluster_does_not_acknowledge_is_an_error() -> None:
    producer = MemoryProducer(error=KafkaError(KafkaError._MSG_TIMED_OUT))
    sender = CommandSender(Settings(), MemoryClients(producer))
    with pytest.raises(RuntimeError, match="c-1 not acknowledged"):
        asyncio.run(sender.send(claim()))


def test_a_brand_recheck_goes_to_every_partition_with_one_audit_entry() -> None:
    producer = MemoryProducer(partitions=3)
    sent = publish_brand_recheck(
        producer,  # type: ignore[arg-type]
        "aurora",
        command_id="r-1",
        issued_at=NOW,
        actor="ops",
        reason="new thresholds",
    )
    assert sent == 3
    commands = [r for r in producer.records if r["topic"] == COMMANDS]
    assert [r["partition"] for r in commands] == [0, 1, 2]
    assert {r["key"] for r in producer.records} == {b"aurora"}
    [audit] = [r for r in producer.records if r["topic"] == AUDIT]
    assert orjson.loads(audit["value"])["output_id"] == "r-1:audit"
