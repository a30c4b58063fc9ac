"""Outbound event contracts: what the engine tells the campaign engine, notifications and PMS.

Plain slotted dataclasses, cheap to build on the hot path; `encode` turns one into JSON bytes and
pydantic generates their JSON Schemas for `topics/`. Every output's `output_id` derives from what
caused it (`<event_id>:points`, `<event_id>:level`), so consumers can drop duplicates.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

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
    bet_id: str
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


@dataclass(slots=True)
class TierRewardGranted:
    """A level's one-time GC reward, paid the first time a player reaches the level by play."""

    output_id: str
    cause_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    level: str
    rank: int
    gc: Decimal
    programme_version: int
    type: Literal["TierRewardGranted"] = "TierRewardGranted"


# -- the points lifecycle: redemptions, adjustments, expiry, rewards, rejected commands ---------


@dataclass(slots=True)
class RedemptionHeld:
    """A redemption request accepted: its points are blocked until confirmed or released."""

    output_id: str
    command_id: str
    redemption_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    points: Decimal
    value: Decimal
    currency: Currency
    expires_at: datetime
    points_available: Decimal
    points_held: Decimal
    programme_version: int
    type: Literal["RedemptionHeld"] = "RedemptionHeld"


@dataclass(slots=True)
class PointsRedeemed:
    """A confirmed redemption: the held points are written off; credit `value` as free play."""

    output_id: str
    command_id: str
    redemption_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    points: Decimal
    value: Decimal
    currency: Currency
    points_available: Decimal
    points_held: Decimal
    programme_version: int
    points_unrecovered: Decimal = Decimal(0)
    """Points owed by cancelled bets that this redemption took with it: unrecovered."""
    type: Literal["PointsRedeemed"] = "PointsRedeemed"


class ReleaseReason(StrEnum):
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


@dataclass(slots=True)
class RedemptionReleased:
    """A hold given back to the available balance: cancelled, or not confirmed in time."""

    output_id: str
    cause_id: str
    redemption_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    points: Decimal
    reason: ReleaseReason
    points_available: Decimal
    points_held: Decimal
    programme_version: int
    points_reversed: Decimal = Decimal(0)
    """Of `points`, what cancelled bets took back as the hold came back (`points_owed`)."""
    type: Literal["RedemptionReleased"] = "RedemptionReleased"


class AdjustmentDirection(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"


@dataclass(slots=True)
class PointsAdjusted:
    """A manual credit or debit by an operator, with their reason."""

    output_id: str
    command_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    direction: AdjustmentDirection
    points: Decimal
    reason: str
    actor: str
    points_available: Decimal
    programme_version: int
    type: Literal["PointsAdjusted"] = "PointsAdjusted"


@dataclass(slots=True)
class PointsExpiring:
    """Warning: the whole available balance expires at `expires_at` unless the player plays."""

    output_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    points: Decimal
    inactive_since: datetime
    expires_at: datetime
    programme_version: int
    type: Literal["PointsExpiring"] = "PointsExpiring"


@dataclass(slots=True)
class PointsExpired:
    """The whole available balance written off after the programme's inactivity period."""

    output_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    points: Decimal
    inactive_since: datetime
    programme_version: int
    type: Literal["PointsExpired"] = "PointsExpired"


@dataclass(slots=True)
class CashbackAwarded:
    """A closed brand day's cashback: percent x NGR (bets - wins - bonuses), capped per day."""

    output_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    day: date
    level: str
    ngr: Decimal
    percent: Decimal
    amount: Decimal
    currency: Currency
    capped: bool
    programme_version: int
    type: Literal["CashbackAwarded"] = "CashbackAwarded"


@dataclass(slots=True)
class BirthdayGiftGranted:
    """The level's birthday gift, once per calendar year of the brand's time zone."""

    output_id: str
    command_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    year: int
    level: str
    gc: Decimal
    sc: Decimal
    programme_version: int
    type: Literal["BirthdayGiftGranted"] = "BirthdayGiftGranted"


@dataclass(slots=True)
class DailyRewardGranted:
    """A daily login reward: the base of day `streak` of the player's streak x the level's
    `daily_bonus_multiplier`, once per brand day (the VIP-table spec's `daily_reward_logs`)."""

    output_id: str
    command_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    day: date
    streak: int
    level: str
    multiplier: Decimal
    base_gc: Decimal
    base_sc: Decimal
    gc: Decimal
    sc: Decimal
    programme_version: int
    type: Literal["DailyRewardGranted"] = "DailyRewardGranted"


@dataclass(slots=True)
class MonthlyBonusGranted:
    """The brand's monthly bonus to a level with the perk, once per calendar `month` (YYYY-MM,
    brand zone)."""

    output_id: str
    command_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    month: str
    level: str
    gc: Decimal
    sc: Decimal
    programme_version: int
    type: Literal["MonthlyBonusGranted"] = "MonthlyBonusGranted"


@dataclass(slots=True)
class StoreBonusGranted:
    """Bonus coins on a coin package: its coins x (the level's `store_multiplier` - 1), at the
    level held at the purchase, once per purchase; `output_id` is
    `store-bonus:<brand_id>:<player_id>:<purchase_id>`."""

    output_id: str
    event_id: str
    purchase_id: str
    package_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    level: str
    multiplier: Decimal
    gc: Decimal
    sc: Decimal
    bonus_gc: Decimal
    bonus_sc: Decimal
    price: Decimal
    currency: Currency
    programme_version: int
    type: Literal["StoreBonusGranted"] = "StoreBonusGranted"


@dataclass(slots=True)
class PointsReversed:
    """What a cancelled (part of a) bet had earned, taken back: its points at the factors it
    earned them with, its turnover and VIP points. Of `points`, `points_reversed` came off the
    available balance now; `points_owed` was held for a redemption, and comes off when the hold
    is given back (`RedemptionReleased.points_reversed`), or is unrecovered if the redemption is
    confirmed (`PointsRedeemed.points_unrecovered`); `points_unrecovered` was no longer in the
    balance (redeemed or expired): recorded, never taken below zero."""

    output_id: str
    event_id: str
    bet_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    placed_at: datetime
    reason: str
    amount: Decimal
    currency: Currency
    remaining: Decimal
    points: Decimal
    points_reversed: Decimal
    points_owed: Decimal
    points_unrecovered: Decimal
    turnover: Decimal
    vip_points: Decimal
    factors: PointsFactors
    programme_version: int
    points_available: Decimal
    type: Literal["PointsReversed"] = "PointsReversed"


@dataclass(slots=True)
class CancellationRefused:
    """A bet cancellation that changed nothing, and why (`code`: unknown_bet, already_cancelled,
    exceeds_remaining, currency_mismatch, before_bet, too_late)."""

    output_id: str
    event_id: str
    bet_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    code: str
    reason: str
    type: Literal["CancellationRefused"] = "CancellationRefused"


@dataclass(slots=True)
class CommandRejected:
    """A command that was valid but could not be carried out; `reason` says why."""

    output_id: str
    command_id: str
    command_type: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    code: str
    reason: str
    type: Literal["CommandRejected"] = "CommandRejected"


# -- follow-ups for the platform: campaign engine, notification service, game management ---------


class Trigger(StrEnum):
    ON_LEVEL_UP = "OnLevelUp"
    ON_LEVEL_DOWN = "OnLevelDown"


@dataclass(slots=True)
class CampaignTriggered:
    """A VIP trigger for the campaign engine: OnLevelUp runs campaigns; OnLevelDown, win-backs."""

    output_id: str
    cause_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    trigger: Trigger
    from_level: str
    to_level: str
    to_rank: int
    reason: str
    perks: tuple[str, ...]
    programme_version: int
    type: Literal["CampaignTriggered"] = "CampaignTriggered"


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class Template(StrEnum):
    LEVEL_UP = "level_up"
    LEVEL_DOWN = "level_down"
    POINTS_EXPIRING = "points_expiring"


@dataclass(slots=True)
class NotificationRequested:
    """A message for the notification service to send the player on the brand's channels."""

    output_id: str
    cause_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    template: Template
    channels: tuple[Channel, ...]
    level: str
    level_description: str
    level_image_url: str | None
    perks: tuple[str, ...]
    points_multiplier: Decimal
    cashback_percent: Decimal
    points: Decimal | None
    expires_at: datetime | None
    programme_version: int
    type: Literal["NotificationRequested"] = "NotificationRequested"


@dataclass(slots=True)
class GmsFlagChanged:
    """The game-management system's feature flag: this player gets the higher RTP minimum."""

    output_id: str
    cause_id: str
    brand_id: str
    player_id: str
    occurred_at: datetime
    flag: Literal["high_rtp_minimum"]
    enabled: bool
    level: str
    programme_version: int
    type: Literal["GmsFlagChanged"] = "GmsFlagChanged"


class AuditAction(StrEnum):
    POINTS_ADJUST = "points.adjust"
    STATUS_FORCE = "status.force"
    REDEMPTION_REQUEST = "redemption.request"
    REDEMPTION_CONFIRM = "redemption.confirm"
    REDEMPTION_CANCEL = "redemption.cancel"
    BIRTHDAY_CLAIM = "birthday.claim"
    DAILY_REWARD_CLAIM = "daily_reward.claim"
    MONTHLY_BONUS_CLAIM = "monthly_bonus.claim"
    LEVEL_RECHECK = "level.recheck"
    """A re-check of the level rules: of one player (by the worker holding them), or of every
    player of a brand (one entry, by whoever published it, without a player)."""
    PROGRAMME_PUBLISH = "programme.publish"
    PROGRAMME_BACKFILL = "programme.backfill"
    """A version published to take effect before its publication: an admin's explicit choice."""


class AuditOutcome(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"


@dataclass(slots=True)
class AuditEntry:
    """Who changed what, when, with the figures before and after: the operator's audit trail."""

    output_id: str
    brand_id: str
    player_id: str | None
    occurred_at: datetime
    actor: str
    action: AuditAction
    outcome: AuditOutcome
    reason: str
    command_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    issued_at: datetime | None = None
    """A command's own `issued_at`, as its sender wrote it (`occurred_at` is when the stream
    received it, the time its rules ran at); absent for entries of no command."""
    type: Literal["AuditEntry"] = "AuditEntry"


Redemption = RedemptionHeld | PointsRedeemed | RedemptionReleased
Expiry = PointsExpiring | PointsExpired
Reward = (
    CashbackAwarded
    | TierRewardGranted
    | BirthdayGiftGranted
    | DailyRewardGranted
    | MonthlyBonusGranted
    | StoreBonusGranted
)
PlayPoints = PointsAccrued | PointsReversed | CancellationRefused
"""The points of play, in one order per player: what bets earned, and what their cancellations
took back (or why one took nothing)."""

FollowUp = CampaignTriggered | NotificationRequested | GmsFlagChanged

Output = (
    PlayPoints
    | LevelChanged
    | Redemption
    | PointsAdjusted
    | Expiry
    | Reward
    | CommandRejected
    | FollowUp
    | AuditEntry
)


def encode(output: Output) -> bytes:
    """JSON bytes of an output; decimals as strings, times as RFC 3339.

    `Decimal.__str__` is orjson's fallback for the one type it cannot write: a C call, where a
    Python function costs a frame per amount, and any other type still fails (TypeError).
    """
    return orjson.dumps(output, default=Decimal.__str__)
