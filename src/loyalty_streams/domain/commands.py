"""Inbound command contracts: what the platform, the player's cashier and operators ask of points.

Commands travel on `loyalty.commands`, keyed by `brand_id:player_id` like player events, so a
player's commands and events meet in one place in order. Each carries a unique `command_id`: the
same command twice has one effect.

One record on the topic is not a player's command: `RecheckBrand`, an operator's re-check of
every player of a brand, keyed by the brand and written once to every partition, so each worker
re-checks the players it holds. `decode_inbound_command` reads both kinds.
"""

from typing import Annotated, Literal, Self, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from loyalty_streams.domain.events import INVISIBLE, Identifier, player_key
from loyalty_streams.domain.moments import Moment
from loyalty_streams.domain.money import Amount
from loyalty_streams.domain.outputs import AdjustmentDirection

Points = Annotated[
    Amount, Field(description='Points as a decimal string with at most 2 places, e.g. "1500"')
]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Actor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=rf"^[^{INVISIBLE}]+$",
        description="Who asked: an operator (no control or invisible character)",
    ),
]


class CommandEnvelope(BaseModel):
    """Fields every command carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: Identifier = Field(description="Unique id of this command, used for de-duplication")
    brand_id: Identifier
    player_id: Identifier
    issued_at: Moment = Field(description="When the command was issued, with a UTC offset")
    actor: Actor | None = Field(
        None,
        description="The person who issued it (an operator acting for the player); such commands "
        "are recorded in the audit trail. Required for adjustments, forced levels and re-checks",
    )

    @property
    def key(self) -> str:
        return player_key(self.brand_id, self.player_id)


class PointsCommand(CommandEnvelope):
    """A command moving an amount of points: above zero, at most 2 decimal places."""

    points: Points

    @model_validator(mode="after")
    def _positive(self) -> Self:
        if self.points <= 0:
            raise ValueError("points must be above zero")
        exponent = self.points.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -2:
            raise ValueError(f"points {self.points} have more than 2 decimal places")
        return self


class RedeemPoints(PointsCommand):
    """Hold points for a redemption into free play; confirm or cancel it by its `command_id`."""

    type: Literal["RedeemPoints"] = "RedeemPoints"


class ConfirmRedemption(CommandEnvelope):
    """Write off a held redemption: the free play was granted."""

    type: Literal["ConfirmRedemption"] = "ConfirmRedemption"
    redemption_id: Identifier = Field(description="`command_id` of the RedeemPoints request")


class CancelRedemption(CommandEnvelope):
    """Give a held redemption's points back."""

    type: Literal["CancelRedemption"] = "CancelRedemption"
    redemption_id: Identifier = Field(description="`command_id` of the RedeemPoints request")


class AdjustPoints(PointsCommand):
    """A manual credit or debit by an operator; a debit never takes the balance below zero."""

    type: Literal["AdjustPoints"] = "AdjustPoints"
    direction: AdjustmentDirection
    reason: Text
    actor: Actor


class ForceLevel(CommandEnvelope):
    """Set a player's level by hand; normal evaluation resumes after `until` (never if absent)."""

    type: Literal["ForceLevel"] = "ForceLevel"
    level: Annotated[str, Field(min_length=1, max_length=50, description="Level name")]
    until: Moment | None = None
    reason: Text
    actor: Actor

    @model_validator(mode="after")
    def _ends_later(self) -> Self:
        if self.until is not None and self.until <= self.issued_at:
            raise ValueError("until must be after issued_at")
        return self


class ClaimBirthdayGift(CommandEnvelope):
    """Pay the current level's birthday gift: once per calendar year."""

    type: Literal["ClaimBirthdayGift"] = "ClaimBirthdayGift"


class ClaimDailyReward(CommandEnvelope):
    """Pay the brand's daily login reward x the level's `daily_bonus_multiplier`: once per brand
    day, the streak counting consecutive days claimed."""

    type: Literal["ClaimDailyReward"] = "ClaimDailyReward"


class ClaimMonthlyBonus(CommandEnvelope):
    """Pay the brand's monthly bonus to a level with the `monthly_bonus` perk: once per calendar
    month of the brand's zone."""

    type: Literal["ClaimMonthlyBonus"] = "ClaimMonthlyBonus"


class RecheckLevel(CommandEnvelope):
    """Run the level rules now, without an event (after a programme change): a level the
    figures no longer hold starts the grace, one they now reach is granted, a grace ended
    downgrades."""

    type: Literal["RecheckLevel"] = "RecheckLevel"
    reason: Text
    actor: Actor


PlayerCommand: TypeAlias = (
    RedeemPoints
    | ConfirmRedemption
    | CancelRedemption
    | AdjustPoints
    | ForceLevel
    | ClaimBirthdayGift
    | ClaimDailyReward
    | ClaimMonthlyBonus
    | RecheckLevel
)
"""Every command on one player, each told apart by its `type`."""

Command = Annotated[PlayerCommand, Field(discriminator="type")]
COMMAND: TypeAdapter[Command] = TypeAdapter(Command)


class RecheckBrand(BaseModel):
    """Re-check the level of every player of a brand: one record to every partition of
    `loyalty.commands`, keyed by the brand; not a player's command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["RecheckBrand"] = "RecheckBrand"
    command_id: Identifier = Field(
        description="Unique id of the re-check, the same on every partition's record"
    )
    brand_id: Identifier
    partition: Annotated[
        int,
        Field(
            ge=0,
            strict=True,
            description="The partition of loyalty.commands this record is written to: every "
            "partition gets one, so each worker re-checks the players it holds",
        ),
    ]
    issued_at: Moment = Field(description="When the re-check was issued, with a UTC offset")
    actor: Actor
    reason: Text

    @property
    def key(self) -> str:
        return self.brand_id


InboundCommand = Annotated[PlayerCommand | RecheckBrand, Field(discriminator="type")]
"""Every record `loyalty.commands` carries: a player's `Command`, or a brand's `RecheckBrand`."""
INBOUND_COMMAND: TypeAdapter[InboundCommand] = TypeAdapter(InboundCommand)


def decode_command(raw: bytes | str) -> Command:
    """Parse and validate one record value; raises `pydantic.ValidationError` when it is bad."""
    return COMMAND.validate_json(raw)


def decode_inbound_command(raw: bytes | str) -> Command | RecheckBrand:
    """Parse and validate one record value of `loyalty.commands`, a player's command or a
    brand's re-check; raises `pydantic.ValidationError` when it is bad."""
    return INBOUND_COMMAND.validate_json(raw)
