"""Publish commands to `loyalty.commands`, validated first: for operators' scripts and the demo."""

import asyncio
from collections.abc import Iterable

from confluent_kafka import KafkaError, Message, Producer

from loyalty_streams.domain.commands import Command
from loyalty_streams.kafka_config import producer_config
from loyalty_streams.settings import Settings
from loyalty_streams.streams.topics import COMMANDS


def publish_commands(settings: Settings, commands: Iterable[Command]) -> int:
    """Each command keyed by its player (so it meets their events); returns how many were sent."""
    producer = Producer(producer_config(settings))
    sent = 0
    for command in commands:
        producer.produce(COMMANDS, command.model_dump_json().encode(), command.key.encode())
        sent += 1
    left = producer.flush(30)
    if left:
        raise RuntimeError(f"{left} command(s) not acknowledged by {settings.bootstrap_servers}")
    return sent


class CommandSender:
    """The API's way to the command topic: one producer per worker, every command acknowledged
    by the cluster before its request is answered."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = Producer(producer_config(settings))

    async def send(self, command: Command) -> None:
        await asyncio.to_thread(self._send, command)

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
