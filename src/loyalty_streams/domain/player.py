"""The one record a player has: everything the engine knows about them, in one table value.

One record per `brand_id:player_id` means one table write, one changelog record, per event. It
carries its own idempotency stamp (highest source offset per topic-partition and a ring of recent
event ids), so replays after a crash or a rebalance are harmless.

Records are plain slotted dataclasses for speed. The engine never mutates a record it was given:
it works on a `clone()` and returns that.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from loyalty_streams.domain.events import player_key

RECENT_EVENT_IDS = 32
"""How many event ids a record remembers, to drop the same event published twice."""

CLOSED_DAYS_KEPT = 8
"""How many of its last closed brand days a record remembers: a day closes once, and play that
arrives late counts only within `LATE_PLAY_DAYS` (see `event_rules._book`), all of them
remembered."""

LEVEL_CHANGES_KEPT = 8
"""How many of its last level changes a record remembers, to tell the level held at an instant
(a day closed late, for play that arrived late, is paid at the level held at its end)."""

WINDOW_DAYS = 30

ZERO = Decimal(0)


@dataclass(slots=True)
class DayLedger:
    """One brand day's play in the turnover currency: the basis of GGR, NGR and cashback.

    `cancelled` is the stake of bets cancelled (`domain.cancellations`) that the day takes off:
    of its own bets while it is open, or of a day closed before; GGR = bets - cancelled - wins.
    """

    bets: Decimal = ZERO
    wins: Decimal = ZERO
    bonuses: Decimal = ZERO
    cancelled: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """Where an event was read: a topic-partition and the record's offset."""

    topic_partition: str
    offset: int


@dataclass(frozen=True, slots=True)
class Hold:
    """Points blocked by a redemption request until it is confirmed, cancelled or timed out."""

    points: Decimal
    value: Decimal
    """Free-play value the points buy, in the programme's redemption currency."""
    currency: str
    held_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ForcedLevel:
    """A level set by hand: it holds until `until` (or for good), whatever the turnover says."""

    rank: int
    reason: str
    actor: str
    since: datetime
    until: datetime | None


@dataclass(slots=True)
class PlayerState:
    brand_id: str
    player_id: str
    level_rank: int
    level_since: datetime
    downgrade_pending_since: datetime | None = None
    cumulative_turnover: Decimal = ZERO
    vip_points: Decimal = ZERO
    buckets: dict[int, Decimal] = field(default_factory=dict)
    """Brand day -> qualifying amount in the level basis, for the last 30 days only."""
    points_available: Decimal = ZERO
    points_held: Decimal = ZERO
    points_accrued: Decimal = ZERO
    last_activity: datetime | None = None
    ledgers: dict[int, DayLedger] = field(default_factory=dict)
    """Brand day -> that day's play, for the last days not yet closed."""
    applied_offsets: dict[str, int] = field(default_factory=dict)
    recent_event_ids: tuple[str, ...] = ()
    recent_command_ids: tuple[str, ...] = ()
    points_redeemed: Decimal = ZERO
    points_expired: Decimal = ZERO
    points_credited: Decimal = ZERO
    points_debited: Decimal = ZERO
    holds: dict[str, Hold] = field(default_factory=dict)
    """Open redemption holds by the redemption's command id."""
    points_active_at: datetime | None = None
    """Last play, redemption, credit or gift: inactivity expiry counts from here."""
    expiry_warned_for: datetime | None = None
    """The `points_active_at` a PointsExpiring warning was sent for (one warning per lull)."""
    forced: ForcedLevel | None = None
    rewarded_ranks: tuple[int, ...] = ()
    """Levels whose one-time tier-up reward was granted."""
    birthday_year: int | None = None
    """Calendar year (brand time zone) of the last birthday gift claimed."""
    cashback_closed_day: int | None = None
    """Records written before `closed_days`: the last brand day closed then; play on it or
    before no longer counts. New records leave it None."""
    timer_at: datetime | None = None
    """The earliest instant (UTC) something is due with time alone (see `domain.time_rules`)."""
    level_changes: tuple[tuple[datetime, int], ...] = ()
    """The last level changes, oldest first: when, and the rank held until then."""
    closed_days: tuple[int, ...] = ()
    """The last brand days whose cashback was closed, oldest first: play on them no longer
    counts."""
    points_reversed: Decimal = ZERO
    """Points taken back from the balance by cancelled bets (`domain.cancellations`)."""
    points_unrecovered: Decimal = ZERO
    """Points cancelled bets had earned that the balance no longer held: recorded, never
    taken."""
    daily_reward_day: int | None = None
    """Brand day (proleptic ordinal) of the last daily login reward claimed."""
    daily_streak: int = 0
    """Consecutive brand days, up to `daily_reward_day`, a daily login reward was claimed."""
    monthly_bonus_month: str | None = None
    """Calendar month (`YYYY-MM`, brand zone) of the last monthly bonus claimed."""
    points_owed: Decimal = ZERO
    """Points cancelled bets had earned that were held for a redemption when the bet was
    cancelled: taken when a hold is given back, unrecovered when one is confirmed; never above
    `points_held`."""

    @property
    def key(self) -> str:
        """The record's key, `events.player_key` of its brand and player."""
        return player_key(self.brand_id, self.player_id)

    def clone(self) -> "PlayerState":
        """A copy the engine may change; the containers are copied, their values are immutable."""
        return PlayerState(
            self.brand_id,
            self.player_id,
            self.level_rank,
            self.level_since,
            self.downgrade_pending_since,
            self.cumulative_turnover,
            self.vip_points,
            self.buckets.copy(),
            self.points_available,
            self.points_held,
            self.points_accrued,
            self.last_activity,
            self.ledgers.copy(),
            self.applied_offsets.copy(),
            self.recent_event_ids,
            self.recent_command_ids,
            self.points_redeemed,
            self.points_expired,
            self.points_credited,
            self.points_debited,
            self.holds.copy(),
            self.points_active_at,
            self.expiry_warned_for,
            self.forced,
            self.rewarded_ranks,
            self.birthday_year,
            self.cashback_closed_day,
            self.timer_at,
            self.level_changes,
            self.closed_days,
            self.points_reversed,
            self.points_unrecovered,
            self.daily_reward_day,
            self.daily_streak,
            self.monthly_bonus_month,
            self.points_owed,
        )

    def touch(self, moment: datetime) -> None:
        """The player used their points or was given something: inactivity expiry starts
        again from `moment` (UTC), if that is later."""
        if self.points_active_at is None or self.points_active_at < moment:
            self.points_active_at = moment

    def time_at(self, moment: datetime) -> datetime:
        """When the rules judge something dated `moment` (UTC): the record's own time if that
        is later (its last activity, its last level change), for a record's time never runs
        backwards; `moment` itself otherwise."""
        last = self.last_activity
        if last is not None and last > moment:
            moment = last
        since = self.level_since
        return since if since > moment else moment

    def level_held_at(self, moment: datetime) -> int:
        """The rank the record held up to `moment` (a change at `moment` itself comes after
        it); before the oldest change remembered, the rank held until that one."""
        for since, before in self.level_changes:
            if since >= moment:
                return before
        return self.level_rank

    def rolling_sum(self, today: int) -> Decimal:
        """Qualifying amount of the 30 brand days ending with `today`."""
        buckets = self.buckets
        start = today - WINDOW_DAYS
        if buckets and start < min(buckets) and max(buckets) <= today:
            return sum(buckets.values(), ZERO)
        return sum((amount for day, amount in buckets.items() if start < day <= today), ZERO)

    def seen(self, event_id: str, source: SourcePosition | None) -> bool:
        return self.replayed(source) or event_id in self.recent_event_ids

    def replayed(self, source: SourcePosition | None) -> bool:
        """The record already holds this source offset (a redelivery after a crash)."""
        return source is not None and self.applied_offsets.get(source.topic_partition, -1) >= (
            source.offset
        )

    def to_json(self) -> bytes:
        return orjson.dumps(self, default=Decimal.__str__, option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def from_json(cls, raw: bytes) -> "PlayerState":
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            brand_id=data["brand_id"],
            player_id=data["player_id"],
            level_rank=data["level_rank"],
            level_since=datetime.fromisoformat(data["level_since"]),
            downgrade_pending_since=_time(data["downgrade_pending_since"]),
            cumulative_turnover=Decimal(data["cumulative_turnover"]),
            vip_points=Decimal(data["vip_points"]),
            buckets={int(day): Decimal(amount) for day, amount in data["buckets"].items()},
            points_available=Decimal(data["points_available"]),
            points_held=Decimal(data["points_held"]),
            points_accrued=Decimal(data["points_accrued"]),
            last_activity=_time(data["last_activity"]),
            ledgers={
                int(day): DayLedger(
                    bets=Decimal(ledger["bets"]),
                    wins=Decimal(ledger["wins"]),
                    bonuses=Decimal(ledger["bonuses"]),
                    cancelled=Decimal(ledger.get("cancelled", 0)),
                )
                for day, ledger in data["ledgers"].items()
            },
            applied_offsets=data["applied_offsets"],
            recent_event_ids=tuple(data["recent_event_ids"]),
            # fields below came with the points lifecycle: older records lack them
            recent_command_ids=tuple(data.get("recent_command_ids", ())),
            points_redeemed=Decimal(data.get("points_redeemed", 0)),
            points_expired=Decimal(data.get("points_expired", 0)),
            points_credited=Decimal(data.get("points_credited", 0)),
            points_debited=Decimal(data.get("points_debited", 0)),
            holds={
                command_id: Hold(
                    points=Decimal(hold["points"]),
                    value=Decimal(hold["value"]),
                    currency=hold["currency"],
                    held_at=datetime.fromisoformat(hold["held_at"]),
                    expires_at=datetime.fromisoformat(hold["expires_at"]),
                )
                for command_id, hold in data.get("holds", {}).items()
            },
            points_active_at=_time(data.get("points_active_at", data["last_activity"])),
            expiry_warned_for=_time(data.get("expiry_warned_for")),
            forced=_forced(data.get("forced")),
            rewarded_ranks=tuple(data.get("rewarded_ranks", ())),
            birthday_year=data.get("birthday_year"),
            cashback_closed_day=data.get("cashback_closed_day"),
            timer_at=_time(data.get("timer_at")),
            level_changes=tuple(
                (datetime.fromisoformat(since), rank)
                for since, rank in data.get("level_changes", ())
            ),
            closed_days=tuple(data.get("closed_days", ())),
            points_reversed=Decimal(data.get("points_reversed", 0)),
            points_unrecovered=Decimal(data.get("points_unrecovered", 0)),
            daily_reward_day=data.get("daily_reward_day"),
            daily_streak=data.get("daily_streak", 0),
            monthly_bonus_month=data.get("monthly_bonus_month"),
            points_owed=Decimal(data.get("points_owed", 0)),
        )


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _forced(data: dict[str, Any] | None) -> ForcedLevel | None:
    if data is None:
        return None
    return ForcedLevel(
        rank=data["rank"],
        reason=data["reason"],
        actor=data["actor"],
        since=datetime.fromisoformat(data["since"]),
        until=_time(data["until"]),
    )
