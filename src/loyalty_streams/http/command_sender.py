"""Publishing commands to `loyalty.commands`, validated first: for the API's writes
(`CommandSender`, one producer a worker), operators' scripts and the demo (`publish_commands`).

A player's command goes to the partition of its key, where the player's record lives. A brand's
re-check (`RecheckBrand`) goes to every partition, one record each, so every worker re-checks the
players it holds; its one audit entry is written here, with the records.
"""

import asyncio
from collections.abc import Iterable
from datetime import datetime

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from loyalty_streams.domain.catalogue import brand_recheck_audit
from loyalty_streams.domain.commands import Command, RecheckBrand
from loyalty_streams.domain.outputs import encode
from loyalty_streams.kafka.clients import KafkaClients, producer_config
from loyalty_streams.kafka.produce import publish
from loyalty_streams.kafka.topics import AUDIT, COMMANDS
from loyalty_streams.settings import Settings

METADATA_TIMEOUT_S = 10.0


def publish_commands(
    settings: Settings, commands: Iterable[Command], *, clients: KafkaClients | None = None
) -> int:
    """Each command keyed by its player (so it meets their events); returns how many were sent.
    Raises RuntimeError when the cluster does not acknowledge them all within 30 s. `clients`
    makes the producer."""
    keyed = ((command.key.encode(), command.model_dump_json().encode()) for command in commands)
    return publish(settings, COMMANDS, keyed, clients=clients)


def command_partitions(producer: Producer) -> list[int]:
    """The partitions of `loyalty.commands`, from the cluster's metadata; RuntimeError when the
    topic cannot be described."""
    try:  # every topic's metadata: asking for one by name may create it on some clusters
        topic = producer.list_topics(timeout=METADATA_TIMEOUT_S).topics.get(COMMANDS)
    except KafkaException as error:  # the cluster did not answer in time
        raise RuntimeError(f"{COMMANDS} cannot be described: {error}") from error
    if topic is None or topic.error is not None or not topic.partitions:
        reason = "no partitions" if topic is None or topic.error is None else topic.error
        raise RuntimeError(f"{COMMANDS} cannot be described: {reason}")
    return sorted(topic.partitions)


def publish_brand_recheck(
    producer: Producer,
    brand_id: str,
    *,
    command_id: str,
    issued_at: datetime,
    actor: str,
    reason: str,
    timeout: float = 30.0,
) -> int:
    """One `RecheckBrand` to every partition of `loyalty.commands` (explicitly, keyed by the
    brand) and its audit entry on `loyalty.audit`, all acknowledged before it returns the
    number of partitions. Raises pydantic's ValidationError for a bad field (nothing is sent)
    and RuntimeError when the cluster cannot be described or does not take every record."""
    records = [
        RecheckBrand(
            command_id=command_id,
            brand_id=brand_id,
            partition=partition,
            issued_at=issued_at,
            actor=actor,
            reason=reason,
        )
        for partition in command_partitions(producer)
    ]
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _: Message) -> None:
        if error is not None:
            failures.append(error)

    key = brand_id.encode()
    for record in records:
        producer.produce(
            COMMANDS,
            record.model_dump_json().encode(),
            key,
            partition=record.partition,
            on_delivery=delivered,
        )
    entry = brand_recheck_audit(records[0], issued_at)
    producer.produce(AUDIT, encode(entry), key, on_delivery=delivered)
    if producer.flush(timeout) or failures:
        raise RuntimeError(
            f"re-check {command_id} of brand {brand_id!r} not acknowledged on every partition: "
            f"{failures or 'timed out'}"
        )
    return len(records)


class CommandSender:
    """The API's way to the command topic: one producer per worker, every command acknowledged
    by the cluster before its request is answered."""

    def __init__(self, settings: Settings, clients: KafkaClients | None = None) -> None:
        self._settings = settings
        self._producer = (clients or KafkaClients()).producer(producer_config(settings))

    async def send(self, command: Command) -> None:
        """Publish `command` keyed by its player; RuntimeError when the cluster has not
        acknowledged it within 10 s."""
        await asyncio.to_thread(self._send, command)

    async def recheck_brand(
        self, brand_id: str, *, command_id: str, issued_at: datetime, actor: str, reason: str
    ) -> int:
        """`publish_brand_recheck` with this sender's producer; returns the partitions."""
        return await asyncio.to_thread(
            publish_brand_recheck,
            self._producer,
            brand_id,
            command_id=command_id,
            issued_at=issued_at,
            actor=actor,
            reason=reason,
            timeout=10.0,
        )

    def _send(self, command: Command) -> None:
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                failures.append(error)

        self._producer.produce(
            COMMANDS,
            command.model_dump_json().encode(),
            command.key.encode(),
            on_delivery=delivered,
        )
        if self._producer.flush(10) or failures:
            raise RuntimeError(
                f"command {command.command_id} not acknowledged by "
                f"{self._settings.bootstrap_servers}: {failures or 'timed out'}"
            )
