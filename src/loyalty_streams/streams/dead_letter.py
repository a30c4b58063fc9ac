"""The dead-letter contract: a record the worker could not use, with why and where it came from.

Nothing is lost: the original key and value travel base64-encoded, byte for byte, so a fixed
record can be replayed onto its source topic.
"""

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import orjson


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str
    topic: str
    partition: int
    offset: int
    key_b64: str | None
    value_b64: str
    failed_at: datetime
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
    return DeadLetter(
        reason=reason,
        topic=topic,
        partition=partition,
        offset=offset,
        key_b64=None if key is None else base64.b64encode(key).decode(),
        value_b64=base64.b64encode(value).decode(),
        failed_at=failed_at,
    )


def encode_dead_letter(letter: DeadLetter) -> bytes:
    return orjson.dumps(letter)
