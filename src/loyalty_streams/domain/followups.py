"""Follow-ups for the rest of the platform, derived from what the engine decided.

A level change becomes a campaign trigger (OnLevelUp / OnLevelDown), a notification request with
the new level's perks, and, when it crosses the programme's `gms_high_rtp_level`, a flag for the
game-management system. An expiry warning becomes a notification. Ids derive from the output
they follow (`<output_id>:campaign`, `:notify`, `:gms`), so they are as idempotent as it is.
"""

from collections.abc import Iterable

from loyalty_streams.domain.outputs import (
    CampaignTriggered,
    Direction,
    FollowUp,
    GmsFlagChanged,
    LevelChanged,
    NotificationRequested,
    Output,
    PointsExpiring,
    Template,
    Trigger,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Level, Programme


def follow_ups(
    outputs: Iterable[Output], state: PlayerState, programme: Programme
) -> tuple[FollowUp, ...]:
    """What the campaign engine, the notification service and the GMS are told of `outputs`,
    which `state` (the player's record after them) produced."""
    found: list[FollowUp] = []
    for output in outputs:
        if isinstance(output, LevelChanged):
            found.extend(_level_follow_ups(output, programme))
        elif isinstance(output, PointsExpiring):
            level = programme.level_at(state.level_rank)
            found.append(_notification(output, Template.POINTS_EXPIRING, level, programme))
    return tuple(found)


def perk_names(level: Level) -> tuple[str, ...]:
    """The perks a level grants, by name."""
    return tuple(name for name, granted in level.perks if granted)


def high_rtp(programme: Programme, rank: int) -> bool:
    """Whether a player of this rank gets the higher RTP minimum in the GMS."""
    name = programme.gms_high_rtp_level
    if name is None:
        return False
    return rank >= next(level.rank for level in programme.levels if level.name == name)


def _level_follow_ups(change: LevelChanged, programme: Programme) -> list[FollowUp]:
    level = programme.level_at(change.to_rank)
    up = change.direction is Direction.UP
    found: list[FollowUp] = [
        CampaignTriggered(
            output_id=f"{change.output_id}:campaign",
            cause_id=change.output_id,
            brand_id=change.brand_id,
            player_id=change.player_id,
            occurred_at=change.occurred_at,
            trigger=Trigger.ON_LEVEL_UP if up else Trigger.ON_LEVEL_DOWN,
            from_level=change.from_level,
            to_level=change.to_level,
            to_rank=change.to_rank,
            reason=change.reason,
            perks=perk_names(level),
            programme_version=change.programme_version,
        ),
        _notification(change, Template.LEVEL_UP if up else Template.LEVEL_DOWN, level, programme),
    ]
    enabled = high_rtp(programme, change.to_rank)
    if enabled != high_rtp(programme, change.from_rank):
        found.append(
            GmsFlagChanged(
                output_id=f"{change.output_id}:gms",
                cause_id=change.output_id,
                brand_id=change.brand_id,
                player_id=change.player_id,
                occurred_at=change.occurred_at,
                flag="high_rtp_minimum",
                enabled=enabled,
                level=change.to_level,
                programme_version=change.programme_version,
            )
        )
    return found


def _notification(
    cause: LevelChanged | PointsExpiring,
    template: Template,
    level: Level,
    programme: Programme,
) -> NotificationRequested:
    expiring = cause if isinstance(cause, PointsExpiring) else None
    return NotificationRequested(
        output_id=f"{cause.output_id}:notify",
        cause_id=cause.output_id,
        brand_id=cause.brand_id,
        player_id=cause.player_id,
        occurred_at=cause.occurred_at,
        template=template,
        channels=programme.policies.notification_channels,
        level=level.name,
        level_description=level.description,
        level_image_url=level.image_url,
        perks=perk_names(level),
        points_multiplier=level.points_multiplier,
        cashback_percent=level.cashback_percent,
        points=None if expiring is None else expiring.points,
        expires_at=None if expiring is None else expiring.expires_at,
        programme_version=programme.version,
    )
