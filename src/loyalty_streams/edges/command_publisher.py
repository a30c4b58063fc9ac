"""Publish commands to `loyalty.commands`, validated first: for operators' scripts and the demo."""

from collections.abc import Iterable

from confluent_kafka import Producer

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
