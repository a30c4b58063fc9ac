"""The dead-letter contract: a record the worker could not use, with why and where it came from.

Nothing is lost: the original key and value travel base64-encoded, byte for byte, so a fixed
record can be replayed onto its source topic. A value or key too large to travel whole (a dead
letter must never fail for size: Kafka refuses records over `max.message.bytes`, 1 MB by
default) travels as its first bytes, with its size and SHA-256, so it can still be found and
matched in the source topic by its coordinates.
"""

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson

VALUE_LIMIT = 64 * 1024
"""Most bytes of the original value a dead letter carries (whole below this, a prefix above)."""

KEY_LIMIT = 1024
"""Most bytes of the original key a dead letter carries, in its body and as its Kafka key."""

REASON_LIMIT = 2000
"""Most characters of the reason: an exception's message may quote the whole input."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    failed_at: datetime
    value_size: int
    """The original value's size in bytes."""
    value_sha256: str
    """Hex SHA-256 of the whole original value."""
    truncated: bool
    """True when `value_b64` or `key_b64` holds only the first bytes of the original."""
    type: Literal["DeadLetter"] = "DeadLetter"


def dead_letter(
    reason: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes,
    failed_at: datetime,
) -> DeadLetter:
    """The dead letter of one record; never larger than about 90 KB once encoded, whatever the
    record held (`VALUE_LIMIT`, `KEY_LIMIT`, `REASON_LIMIT`)."""
    kept_key = dead_letter_key(key)
    return DeadLetter(
        reason=reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…",
        topic=topic,
        partition=partition,
        offset=offset,
        key_b64=None if kept_key is None else base64.b64encode(kept_key).decode(),
        value_b64=base64.b64encode(value[:VALUE_LIMIT]).decode(),
        failed_at=failed_at,
        value_size=len(value),
        value_sha256=hashlib.sha256(value).hexdigest(),
        truncated=len(value) > VALUE_LIMIT or kept_key != key,
    )


def dead_letter_key(key: bytes | None) -> bytes | None:
    """The Kafka key of a record's dead letter: its own key, or that key's first `KEY_LIMIT`
    bytes."""
    return key if key is None or len(key) <= KEY_LIMIT else key[:KEY_LIMIT]


def encode_dead_letter(letter: DeadLetter) -> bytes:
    return orjson.dumps(letter)
