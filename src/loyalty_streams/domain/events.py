"""Inbound event contracts (the platform spec's event bus): what the casino platform publishes.

All six events travel on one topic keyed by `brand_id:player_id`, so a player's events stay in
order on one partition. Every event shares the envelope below; `type` tells them apart.
"""

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

from loyalty_streams.domain.moments import Moment
from loyalty_streams.domain.money import Amount, Currency, check_cents, check_places

INVISIBLE = (
    r"\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u08e2\u115f\u1160"
    r"\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f"
    r"\ufeff\uffa0\ufff0-\ufffb"
    # beyond the first plane no escape reads alike everywhere: the characters themselves
    "\U000110bd\U000110cd\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
)
"""Control characters (C0, C1), the format characters (Unicode category Cf: zero-width spaces
and joiners, bidirectional marks and overrides, the byte-order mark, tags) and the other
default-ignorable code points (fillers, variation selectors), as a character class that JSON
Schema, Python and pydantic's Rust engine read alike: an id holding one looks like another id
on every screen and in every log."""

Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=rf"^[^\s:{INVISIBLE}]+$")]
"""An id that can sit on either side of the `brand_id:player_id` key: no colon, no white space,
no control or invisible character."""


class GameCategory(StrEnum):
    """Game families with their own points weight (the platform spec's "odds by game")."""

    SLOTS = "slots"
    TABLE = "table"  # table and board games
    LIVE_CASINO = "live_casino"
    EXCLUSIVE = "exclusive"


class EventEnvelope(BaseModel):
    """Fields every inbound event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier = Field(description="Unique id of this event, used for de-duplication")
    brand_id: Identifier = Field(description="The brand (casino site) the player belongs to")
    player_id: Identifier = Field(description="The player, unique within the brand")
    occurred_at: Moment = Field(description="Event time, with a UTC offset")
    amount: Amount
    currency: Currency

    @model_validator(mode="after")
    def _amount_fits_currency(self) -> Self:
        check_places(self.amount, self.currency)
        return self

    @property
    def key(self) -> str:
        """The Kafka key of every record about this player."""
        return player_key(self.brand_id, self.player_id)

    @property
    def dedupe_id(self) -> str:
        """The id that makes the event count once: its `event_id` (a purchase: the player's
        purchase id, `purchase:<brand_id>:<player_id>:<purchase_id>`, so the same purchase
        published twice pays once)."""
        return self.event_id


class BetPlaced(EventEnvelope):
    """A wager: the only event that earns points and turnover."""

    type: Literal["BetPlaced"] = "BetPlaced"
    bet_id: Identifier = Field(description="The wager's id in the game platform")
    game_id: Identifier
    game_category: GameCategory


class WinCredited(EventEnvelope):
    """A win paid on an earlier bet; lowers the day's GGR."""

    type: Literal["WinCredited"] = "WinCredited"
    bet_id: Identifier = Field(description="The bet this win settles")


class DepositMade(EventEnvelope):
    """Money paid in; counts as activity (it keeps points from expiring)."""

    type: Literal["DepositMade"] = "DepositMade"


class BonusRedeemed(EventEnvelope):
    """A bonus released to the player's balance; lowers the day's NGR."""

    type: Literal["BonusRedeemed"] = "BonusRedeemed"
    bonus_id: Identifier


class CancellationReason(StrEnum):
    """Why a platform cancelled a wager."""

    ROUND_VOIDED = "round_voided"  # a casino game round voided
    ROLLBACK = "rollback"  # a technical rollback of the wager's transaction
    BET_VOIDED = "bet_voided"  # a sports bet voided (event cancelled, market void)


class BetCancelled(EventEnvelope):
    """A wager cancelled, whole or in part: `amount` (in the bet's currency) no longer counts.

    Reverses what that part of the bet earned (see `domain.cancellations`)."""

    type: Literal["BetCancelled"] = "BetCancelled"
    bet_id: Identifier = Field(description="The cancelled wager's id, as its BetPlaced named it")
    reason: CancellationReason = CancellationReason.ROLLBACK

    @model_validator(mode="after")
    def _cancels_something(self) -> Self:
        if self.amount <= 0:
            raise ValueError("amount: a cancellation cancels an amount above zero")
        return self


class CoinPackPurchased(EventEnvelope):
    """A coin package bought in the store (sweepstakes brands): `amount` and `currency` are the
    price paid; `gc` and `sc` the coins the package holds, before any VIP bonus."""

    type: Literal["CoinPackPurchased"] = "CoinPackPurchased"
    purchase_id: Identifier = Field(description="The store's id of the purchase: one bonus each")
    package_id: Identifier
    gc: Amount = Field(description="Gold coins in the package")
    sc: Amount = Field(description="Sweeps coins in the package")

    @property
    def dedupe_id(self) -> str:
        return f"purchase:{self.key}:{self.purchase_id}"  # the player's: ids may repeat across

    @model_validator(mode="after")
    def _coins_in_cents(self) -> Self:
        check_cents("gc", self.gc)
        check_cents("sc", self.sc)
        if self.currency in (Currency.GC, Currency.SC):
            raise ValueError(f"currency: a package is paid for in money, not in {self.currency}")
        if not self.gc and not self.sc:
            raise ValueError("gc, sc: a package holds coins")
        return self


PlayerEvent = Annotated[
    BetPlaced | WinCredited | DepositMade | BonusRedeemed | BetCancelled | CoinPackPurchased,
    Field(discriminator="type"),
]
PLAYER_EVENT: TypeAdapter[PlayerEvent] = TypeAdapter(PlayerEvent)


def decode_player_event(raw: bytes | str) -> PlayerEvent:
    """Parse and validate one record value; raises `pydantic.ValidationError` when it is bad."""
    return PLAYER_EVENT.validate_json(raw)


def player_key(brand_id: str, player_id: str) -> str:
    """A player's key everywhere (Kafka records, the player table, lookups):
    `<brand_id>:<player_id>`; ids are printable and hold no `:` of their own (`Identifier`)."""
    return f"{brand_id}:{player_id}"
