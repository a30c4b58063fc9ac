"""The programme of a brand: its VIP levels, points rules and policies, validated and versioned.

A programme is data (JSON files, later a compacted topic). Validation refuses inconsistent ones
with a message naming the field, so an operator's mistake never reaches a player's balance.
"""

from bisect import bisect_right
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from loyalty_streams.domain.events import GameCategory, Identifier
from loyalty_streams.domain.moments import Moment
from loyalty_streams.domain.money import Currency, check_cents
from loyalty_streams.domain.outputs import Channel, PointsFactors

NonNegative = Annotated[Decimal, Field(ge=0, max_digits=24, decimal_places=8)]
Multiplier = Annotated[Decimal, Field(gt=0, le=1000, max_digits=12, decimal_places=6)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=8, decimal_places=3)]

_FROZEN = ConfigDict(extra="forbid", frozen=True)
ONE = Decimal(1)
DAY_STARTS_KEPT = 4096
"""Brand-day starts a programme remembers (a few years of days; then it starts again)."""


class LevelBasis(StrEnum):
    """What level thresholds are measured in."""

    TURNOVER = "turnover"  # platform spec: wagered amount in the programme's turnover currency
    VIP_POINTS = "vip_points"  # VIP-table spec: base points (1 SC = 1 point, 100,000 GC = 1 point)


class Perks(BaseModel):
    model_config = _FROZEN

    personal_manager: bool = False
    email_support: bool = False
    priority_redemption: bool = False
    priority_support: bool = False
    vip_host: bool = False
    monthly_bonus: bool = False
    special_free_spins: bool = False
    exclusive_tournaments: bool = False
    accelerated_withdrawals: bool = False


class Level(BaseModel):
    model_config = _FROZEN

    name: Annotated[str, Field(min_length=1, max_length=50)]
    rank: Annotated[int, Field(ge=1)]
    threshold: NonNegative = Field(description="Entry threshold, in the programme's basis")
    retention: NonNegative | None = Field(
        None,
        description="Rolling 30-day figure needed to keep the level; "
        "default: the threshold of the level below",
    )
    points_multiplier: Multiplier = Decimal(1)
    cashback_percent: Percent = Decimal(0)
    cashback_daily_cap: NonNegative | None = None
    perks: Perks = Perks()
    daily_bonus_multiplier: Multiplier = Decimal(1)
    store_multiplier: Multiplier = Decimal(1)
    tier_up_reward_gc: NonNegative = Decimal(0)
    birthday_gift_gc: NonNegative = Decimal(10)
    birthday_gift_sc: NonNegative = Decimal(10)
    description: str = ""
    image_url: str | None = None
    icon_url: str | None = None

    @model_validator(mode="after")
    def _coins_in_cents(self) -> Self:
        """The coins a level pays are in cents, like every amount the wallet is told to pay."""
        check_cents("tier_up_reward_gc", self.tier_up_reward_gc)
        check_cents("birthday_gift_gc", self.birthday_gift_gc)
        check_cents("birthday_gift_sc", self.birthday_gift_sc)
        return self


class CurrencyRule(BaseModel):
    """How a wager in one currency counts."""

    model_config = _FROZEN

    points_per_unit: NonNegative = Field(description="Base points per unit wagered")
    turnover_per_unit: NonNegative = Field(
        description="Units of the turnover currency per unit wagered (0: not turnover)"
    )


class Promotion(BaseModel):
    """A temporary points multiplier set by the promo engine, e.g. DoublePointsWeek x2."""

    model_config = _FROZEN

    name: Annotated[str, Field(min_length=1, max_length=100)]
    multiplier: Multiplier
    starts_at: Moment
    ends_at: Moment
    categories: frozenset[GameCategory] | None = Field(
        None, description="Game categories it applies to; all when absent"
    )

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError(f"promotion {self.name!r}: ends_at must be after starts_at")
        return self

    def active(self, moment: datetime, category: GameCategory) -> bool:
        return self.starts_at <= moment < self.ends_at and (
            self.categories is None or category in self.categories
        )

    def overlaps(self, other: "Promotion") -> bool:
        in_time = self.starts_at < other.ends_at and other.starts_at < self.ends_at
        in_scope = (
            self.categories is None
            or other.categories is None
            or bool(self.categories & other.categories)
        )
        return in_time and in_scope


class Policies(BaseModel):
    model_config = _FROZEN

    redemption_points: Annotated[int, Field(gt=0)] = 1000
    redemption_value: NonNegative = Field(Decimal(10), description="Free-play value of that many")
    redemption_currency: Currency = Currency.EUR
    redemption_min_points: Annotated[int, Field(gt=0)] = 1000
    redemption_step_points: Annotated[int, Field(gt=0)] = Field(
        100, description="A redemption must be a whole multiple of this many points"
    )
    redemption_hold_minutes: Annotated[int, Field(gt=0)] = Field(
        30, description="An unconfirmed redemption hold is released after this long"
    )
    inactivity_expiry_days: Annotated[int, Field(gt=0)] = 365
    expiry_warning_days: Annotated[int, Field(ge=0)] = 30
    downgrade_grace_days: Annotated[int, Field(ge=0)] = 7
    timezone: str = Field("UTC", description="IANA zone of the brand's day boundary")
    notification_channels: tuple[Channel, ...] = Field(
        (Channel.EMAIL, Channel.PUSH),
        description="Channels of the notification requests (level changes, expiry warnings)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value


class Coins(BaseModel):
    """An amount of sweepstakes coins: gold coins (play only) and sweeps coins (redeemable)."""

    model_config = _FROZEN

    gc: NonNegative = Decimal(0)
    sc: NonNegative = Decimal(0)

    @model_validator(mode="after")
    def _in_cents(self) -> Self:
        check_cents("gc", self.gc)
        check_cents("sc", self.sc)
        return self


class AfterSchedule(StrEnum):
    """What a daily-login streak longer than its schedule pays."""

    REPEAT_LAST = "repeat_last"  # the schedule's last entry, every day
    RESTART = "restart"  # the schedule again from its first entry


class DailyLogin(BaseModel):
    """The brand's base daily login rewards (VIP-table spec, `daily_login_rewards`): what a
    claim on the n-th consecutive brand day pays before the level's `daily_bonus_multiplier`."""

    model_config = _FROZEN

    schedule: tuple[Coins, ...] = Field(
        min_length=1,
        max_length=366,
        description="Base reward by day of the streak: the first entry on the first day, the "
        "second on the second consecutive day...; one entry is a flat daily reward",
    )
    after_schedule: AfterSchedule = AfterSchedule.REPEAT_LAST

    def base(self, streak: int) -> Coins:
        """The base reward of day `streak` (1 = the first day) of a streak."""
        length = len(self.schedule)
        if streak <= length:
            return self.schedule[streak - 1]
        if self.after_schedule is AfterSchedule.RESTART:
            return self.schedule[(streak - 1) % length]
        return self.schedule[-1]


class Rewards(BaseModel):
    """The brand's coin rewards beyond the level table's own (VIP-table spec)."""

    model_config = _FROZEN

    daily_login: DailyLogin | None = Field(
        None, description="Base daily login rewards; null: the brand pays none"
    )
    monthly_bonus: Coins | None = Field(
        None,
        description="Paid once per calendar month (brand zone) to levels whose "
        "perks.monthly_bonus is on; null: none",
    )


class Programme(BaseModel):
    """One version of one brand's loyalty programme."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    brand_id: Identifier
    company_id: Identifier
    name: Annotated[str, Field(min_length=1)]
    version: Annotated[int, Field(ge=1, le=2**31 - 1, strict=True)]
    effective_from: Moment
    level_basis: LevelBasis
    turnover_currency: Currency
    currencies: dict[Currency, CurrencyRule] = Field(min_length=1)
    category_weights: dict[GameCategory, NonNegative]
    promotions: tuple[Promotion, ...] = ()
    promotions_may_overlap: bool = False
    levels: tuple[Level, ...] = Field(min_length=1)
    policies: Policies = Policies()
    rewards: Rewards = Rewards()
    gms_high_rtp_level: str | None = Field(
        "Platinum",
        description="Players at this level or above get the higher RTP minimum in the GMS; "
        "null: nobody",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        missing = [c.value for c in GameCategory if c not in self.category_weights]
        if missing:
            raise ValueError(f"category_weights: no weight for {', '.join(missing)}")
        ranks = [level.rank for level in self.levels]
        if ranks != sorted(set(ranks)):
            raise ValueError("levels: ranks must be unique and listed in increasing order")
        if self.levels[0].threshold != 0:
            raise ValueError("levels[0].threshold: the lowest level must start at 0")
        for i in range(1, len(self.levels)):
            low, high = self.levels[i - 1], self.levels[i]
            if high.threshold <= low.threshold:
                raise ValueError(
                    f"levels[{i}].threshold: {high.name} ({high.threshold}) must be above "
                    f"{low.name} ({low.threshold}); thresholds increase with rank"
                )
        names = [level.name for level in self.levels]
        if len(set(names)) != len(names):
            raise ValueError("levels: names must be unique")
        if self.gms_high_rtp_level is not None and self.gms_high_rtp_level not in names:
            raise ValueError(
                f"gms_high_rtp_level: no level {self.gms_high_rtp_level!r} "
                f"(levels: {', '.join(names)})"
            )
        if not self.promotions_may_overlap:
            for i, first in enumerate(self.promotions):
                for second in self.promotions[i + 1 :]:
                    if first.overlaps(second):
                        raise ValueError(
                            f"promotions: {first.name!r} and {second.name!r} overlap, "
                            "and promotions_may_overlap is false"
                        )
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy validated afresh.

        Pydantic's copy keeps the instance's cached derived values (grace, thresholds, points
        factors), which would describe the original; and it would not validate `update`.
        """
        return type(self).model_validate(self.model_dump() | dict(update or {}))

    @cached_property
    def points_factors(self) -> dict[tuple[object, ...], PointsFactors]:
        """The engine's shared, immutable PointsFactors for this programme, by what they hold.

        Bounded by currencies x categories x levels x promotion combinations, and gone with the
        programme version.
        """
        return {}

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.policies.timezone)

    @cached_property
    def retentions(self) -> tuple[Decimal, ...]:
        """Each level's retention requirement, with the default filled in."""
        result = []
        for i, level in enumerate(self.levels):
            default = self.levels[i - 1].threshold if i else Decimal(0)
            result.append(default if level.retention is None else level.retention)
        return tuple(result)

    @cached_property
    def grace(self) -> timedelta:
        return timedelta(days=self.policies.downgrade_grace_days)

    def grace_ends(self, since: datetime) -> datetime:
        """When a downgrade grace that began at `since` ends (UTC): `downgrade_grace_days`
        brand days later, at the same wall time in the brand's zone (so across a daylight-saving
        change a grace begun at midnight still ends at midnight)."""
        return (since.astimezone(self.zone) + self.grace).astimezone(UTC)

    @cached_property
    def _last_day(self) -> list[tuple[float, float, int]]:
        """One slot: (start, end, ordinal) of the brand day `day_of` computed last. The slot is
        replaced whole: the fold thread and the API's threads share a programme, and a reader
        must never pair one day's bounds with another day's ordinal."""
        return [(0.0, 0.0, 0)]

    @cached_property
    def _rank_index(self) -> dict[int, int]:
        return {level.rank: i for i, level in enumerate(self.levels)}

    def day_of(self, moment: datetime) -> int:
        """The brand's calendar day (proleptic ordinal) that an event time falls on.

        Remembers the bounds of the last day it computed: events come nearly in time order, so
        most calls are one comparison instead of a time-zone conversion.
        """
        stamp = moment.timestamp()
        slot = self._last_day
        start, end, ordinal = slot[0]
        if start <= stamp < end:
            return ordinal
        local_date = moment.astimezone(self.zone).date()
        ordinal = local_date.toordinal()
        slot[0] = (
            datetime.combine(local_date, time(), self.zone).timestamp(),
            datetime.combine(local_date + timedelta(days=1), time(), self.zone).timestamp(),
            ordinal,
        )
        return ordinal

    @cached_property
    def _day_starts(self) -> dict[int, datetime]:
        return {}

    def day_start(self, day: int) -> datetime:
        """The instant (UTC) brand day `day` (a proleptic ordinal) begins: midnight in the
        brand's zone. The day ends when `day + 1` begins."""
        starts = self._day_starts
        start = starts.get(day)
        if start is None:
            if len(starts) >= DAY_STARTS_KEPT:
                starts.clear()
            local = datetime.combine(date.fromordinal(day), time(), self.zone)
            start = starts[day] = local.astimezone(UTC)
        return start

    def level_index(self, rank: int) -> int:
        """Position of a rank in `levels`; an unknown rank (after a change) maps to the lowest."""
        return self._rank_index.get(rank, 0)

    def level_at(self, rank: int) -> Level:
        """The level of a rank; an unknown rank (after a change) is the lowest."""
        return self.levels[self.level_index(rank)]

    @cached_property
    def thresholds(self) -> tuple[Decimal, ...]:
        return tuple(level.threshold for level in self.levels)

    @cached_property
    def _promotion_bounds(self) -> list[datetime]:
        """Every start and end of a promotion, sorted: the active set is constant between two."""
        return sorted({p.starts_at for p in self.promotions} | {p.ends_at for p in self.promotions})

    @cached_property
    def _last_promotions(
        self,
    ) -> list[
        tuple[
            datetime | None,
            datetime | None,
            dict[GameCategory, tuple[Decimal, tuple[str, ...]]] | None,
        ]
    ]:
        """One slot: (low, high, {category: (factor, names)}) of the interval `promotion_factor`
        saw last, replaced whole (see `_last_day`)."""
        return [(None, None, None)]

    def promotion_factor(
        self, moment: datetime, category: GameCategory
    ) -> tuple[Decimal, tuple[str, ...]]:
        """Product of the multipliers of the promotions active at `moment` for `category`.

        Remembers the interval between two promotion bounds that it computed last, per
        category: events come nearly in time order, so most calls are two comparisons.
        """
        if not self.promotions:
            return ONE, ()
        slot = self._last_promotions
        low, high, known = slot[0]
        if known is not None and (low is None or low <= moment) and (high is None or moment < high):
            hit = known.get(category)
            if hit is not None:
                return hit
        else:
            bounds = self._promotion_bounds
            i = bisect_right(bounds, moment)
            known = {}
            slot[0] = (bounds[i - 1] if i else None, bounds[i] if i < len(bounds) else None, known)
        result = known[category] = self._promotion_factor(moment, category)
        return result

    def _promotion_factor(
        self, moment: datetime, category: GameCategory
    ) -> tuple[Decimal, tuple[str, ...]]:
        factor = ONE
        if not self.promotions:
            return factor, ()
        names: list[str] = []
        for promotion in self.promotions:
            if promotion.active(moment, category):
                factor *= promotion.multiplier
                names.append(promotion.name)
        return factor, tuple(names)


def load_programme(path: Path) -> Programme:
    return Programme.model_validate_json(path.read_bytes())


SHIPPED_DIR = Path(__file__).resolve().parent.parent / "programmes"


def shipped_programmes() -> list[Programme]:
    """The programmes that ship with the product: the platform's casino programme and the
    sweepstakes brand's VIP table."""
    return [load_programme(path) for path in sorted(SHIPPED_DIR.glob("*.json"))]
