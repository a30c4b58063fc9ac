"""Outbound event contracts: what the engine tells the campaign engine, notifications and PMS.

Plain slotted dataclasses, cheap to build on the hot path; `encode` turns one into JSON bytes and
pydantic generates their JSON Schemas for `topics/`. Every output's `output_id` derives from what
caused it (`<event_id>:points`, `<event_id>:level`), so consumers can drop duplicates.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

import orjson

from loyalty_streams.domain.events import GameCategory
from loyalty_streams.domain.money import Currency


@dataclass(frozen=True, slots=True)
class PointsFactors:
    """Everything the points of one bet were computed from, so any balance can be explained."""

    points_per_unit: Decimal
    category_weight: Decimal
    promotion_multiplier: Decimal
    promotions: tuple[str, ...]
    level_multiplier: Decimal
    level: str


@dataclass(slots=True)
class PointsAccrued:
    output_id: str
    event_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    amount: Decimal
    currency: Currency
    game_category: GameCategory
    points: Decimal
    factors: PointsFactors
    programme_version: int
    points_available: Decimal
    type: Literal["PointsAccrued"] = "PointsAccrued"


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"


@dataclass(slots=True)
class LevelChanged:
    """LevelUp or LevelDown: the trigger for campaigns (OnLevelUp), notifications and PMS."""

    output_id: str
    cause_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    direction: Direction
    from_level: str
    from_rank: int
    to_level: str
    to_rank: int
    reason: str
    basis: str
    cumulative: Decimal
    rolling_30d: Decimal
    programme_version: int
    type: Literal["LevelChanged"] = "LevelChanged"


Output = PointsAccrued | LevelChanged


def _default(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(output: Output) -> bytes:
    """JSON bytes of an output; decimals as strings, times as RFC 3339."""
    return orjson.dumps(output, default=_default)
