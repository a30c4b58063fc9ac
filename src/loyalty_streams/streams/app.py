"""The Faust app: the inbound agent folding player events into the RocksDB player table.

Raw bytes in and out (orjson and the domain's own codecs, not Faust's generic ones), one table
write per event, outputs handed to the producer buffer without awaiting each one.
"""

import logging
import ssl
from collections.abc import AsyncIterator, Mapping

import faust
from faust.types import EventT

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.settings import Settings
from loyalty_streams.streams.records import Record, handle
from loyalty_streams.streams.topics import DEAD_LETTER, LEVEL_CHANGED, PLAYER_EVENTS, POINTS_ACCRUED

PARTITIONS = 12
"""Partitions of the inbound topic, and so of the player table's changelog (co-partitioned)."""

QUIET_LOGGERS = ("aiokafka",)
"""Client libraries whose INFO lines say nothing an operator needs (Faust's own INFO stays)."""


def create_app(settings: Settings, programmes: Mapping[str, Programme]) -> faust.App:
    """A Faust app for these settings, with its agent and player table declared."""
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        store="rocksdb://",
        datadir=str(settings.data_dir),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        topic_partitions=PARTITIONS,
        topic_allow_declare=True,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(settings.session_timeout_s / 5, 1.0),
        consumer_auto_offset_reset="earliest",
    )
    inbound = app.topic(PLAYER_EVENTS, key_serializer="raw", value_serializer="raw")
    outbound = {
        name: app.topic(name, key_serializer="raw", value_serializer="raw")
        for name in (POINTS_ACCRUED, LEVEL_CHANGED, DEAD_LETTER)
    }
    players = app.Table("players", key_type=bytes, value_type=bytes, partitions=PARTITIONS)

    def load(key: str) -> PlayerState | None:
        raw = players.get(key.encode())
        return None if raw is None else PlayerState.from_json(raw)

    @app.agent(inbound, name="fold-player-events")
    async def fold(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        event: EventT[bytes]
        async for event in stream.events():
            message = event.message
            outcome = handle(
                Record(
                    message.topic,
                    message.partition,
                    message.offset,
                    message.key,
                    message.value or b"",  # a tombstone is no event: dead letter
                ),
                programmes,
                load,
            )
            if outcome.state is not None:
                players[outcome.state.key.encode()] = outcome.state.to_json()
            for topic, key, value in outcome.sends:
                await outbound[topic].send(key=key, value=value)
            yield None

    return app


def quiet_library_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The worker's side of the same security settings the confluent-kafka clients use."""
    tls = ssl.create_default_context() if settings.security_protocol.endswith("SSL") else None
    if settings.sasl_mechanism is not None:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password,
            mechanism=settings.sasl_mechanism,
            ssl_context=tls,
        )
    if tls is not None:
        return faust.SSLCredentials(tls)
    return None
