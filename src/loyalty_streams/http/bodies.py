"""The bodies the API accepts, and `parse_body`, which reads one and validates it before anything
is published.

Each write becomes one command on `loyalty.commands` (or one programme version), so a request is
carried out whole or not at all. `command_id` is optional: a client that retries with the same
id gets one effect.
"""

from decimal import Decimal
from http import HTTPStatus
from typing import Annotated, Any, TypeVar

from faust.web import Request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from loyalty_streams.domain.commands import Points, Text
from loyalty_streams.domain.events import Identifier
from loyalty_streams.domain.moments import Moment
from loyalty_streams.domain.money import Amount
from loyalty_streams.domain.programme import Promotion
from loyalty_streams.domain.validation import check_unique_keys, validation_summary
from loyalty_streams.http.errors import refuse

Body = TypeVar("Body", bound=BaseModel)

_STRICT = ConfigDict(extra="forbid", frozen=True)
_amount: TypeAdapter[Decimal] = TypeAdapter(Amount)


def _signed(value: Any) -> Decimal:
    """A decimal string with an optional minus sign; never a float."""
    negative = isinstance(value, str) and value.startswith("-")
    try:
        amount = _amount.validate_python(value[1:] if negative else value)
    except ValidationError as error:
        raise ValueError(error.errors()[0]["msg"]) from error
    return -amount if negative else amount


SignedPoints = Annotated[
    Decimal,
    BeforeValidator(_signed),
    Field(description='Signed decimal string, at most 2 places: "250" credits, "-80" debits'),
]


class PlayerRequest(BaseModel):
    model_config = _STRICT

    brand_id: Identifier
    player_id: Identifier
    command_id: Identifier | None = Field(
        None, description="Your id for this request; a retry with the same id has one effect"
    )


class AddPoints(PlayerRequest):
    """A manual adjustment (`POST /loyalty/points/add`): a credit (points > 0) or a debit."""

    points: SignedPoints
    reason: Text


class UpdateStatus(PlayerRequest):
    """A forced status (`POST /loyalty/status/update`): a level, until a moment or for good."""

    level: Annotated[str, Field(min_length=1, max_length=50)]
    until: Moment | None = None
    reason: Text


class RequestRedemption(PlayerRequest):
    points: Points


class PlayerOnly(PlayerRequest):
    """Confirm or cancel a redemption (its id in the path), or claim a reward: the birthday
    gift, the daily login reward, the monthly bonus."""


class SetPromotions(BaseModel):
    """A new programme version with these promotional multipliers, effective from a moment."""

    model_config = _STRICT

    promotions: tuple[Promotion, ...]
    effective_from: Moment | None = Field(None, description="Default: now")
    reason: Text


class LevelRecheck(BaseModel):
    """Re-check one player's level now (brand and player in the path), e.g. after a programme
    change: the level rules run at the command's time, without an event."""

    model_config = _STRICT

    command_id: Identifier | None = Field(
        None, description="Your id for this request; a retry with the same id has one effect"
    )
    reason: Text


class BrandRecheck(BaseModel):
    """Re-check the level of every player of the brand in the path, e.g. after a programme
    change."""

    model_config = _STRICT

    reason: Text


async def parse_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as `model`; raises a 400 WebError for text that is not JSON or
    names a field twice (parsers keep the last, so `"points"` twice would credit the second),
    and a 422 for a body that does not validate."""
    raw = await request.read()
    try:
        check_unique_keys(raw or b"{}")
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise refuse(HTTPStatus.BAD_REQUEST, f"invalid JSON: {error}") from error
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as error:
        invalid_json = any(item["type"] == "json_invalid" for item in error.errors())
        status = HTTPStatus.BAD_REQUEST if invalid_json else HTTPStatus.UNPROCESSABLE_ENTITY
        raise refuse(status, validation_summary(error)) from error
