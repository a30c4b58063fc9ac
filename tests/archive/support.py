"""What the archive's tests share: events, their records, and records as Kafka hands them."""

from datetime import UTC, datetime, timedelta

from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from loyalty_streams.domain.events import BetPlaced, DepositMade, GameCategory, PlayerEvent
from loyalty_streams.domain.money import Currency
from loyalty_streams.kafka.topics import PLAYER_EVENTS

START = datetime(2026, 11, 20, 22, 0, tzinfo=UTC)
"""Two hours before a UTC midnight: events an hour apart fall on two days."""


def event(
    n: int, brand_id: str = "aurora-casino", player_id: str = "p1", **at: float
) -> PlayerEvent:
    """Event `n` of a player: a bet (a deposit every fifth), `n` hours after `START` unless
    `minutes=` says otherwise."""
    occurred_at = START + timedelta(minutes=at.get("minutes", 60 * n))
    common = {
        "event_id": f"{brand_id}-e{n}",
        "brand_id": brand_id,
        "player_id": player_id,
        "occurred_at": occurred_at,
        "amount": "1.50",
        "currency": Currency.EUR if brand_id != "lucky-sweeps" else Currency.SC,
    }
    if n % 5 == 4:
        return DepositMade.model_validate(common)
    return BetPlaced.model_validate(
        {**common, "bet_id": f"b{n}", "game_id": "g1", "game_category": GameCategory.SLOTS}
    )


def value_of(item: PlayerEvent) -> bytes:
    return item.model_dump_json().encode()


def key_of(item: PlayerEvent) -> bytes:
    return item.key.encode()


def stamp_of(item: PlayerEvent) -> int:
    """The record timestamp a producer sending as things happen writes: the event's time."""
    return int(item.occurred_at.timestamp() * 1000)


def message(
    partition: int,
    offset: int,
    value: bytes | None,
    key: bytes | None = b"k",
    stamp: int | None = 1_795_000_000_000,
) -> Message:
    """A consumed record, as librdkafka gives it."""
    timestamp = (TIMESTAMP_CREATE_TIME, stamp) if stamp is not None else (0, 0)
    return Message(
        topic=PLAYER_EVENTS,
        partition=partition,
        offset=offset,
        key=key,
        value=value,
        timestamp=timestamp,
    )


def event_message(partition: int, offset: int, item: PlayerEvent) -> Message:
    return message(partition, offset, value_of(item), key_of(item), stamp_of(item))
