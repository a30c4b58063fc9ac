"""Commands on points and levels: redemptions, manual adjustments, forced status, birthday gifts,
daily login rewards and monthly bonuses (`domain.coin_rewards`), re-checks of a level.

`execute(state, command, programme)` is pure like `apply`: the record passed in is never
changed, a repeat of a command (same `command_id`, or a source offset at or below the record's
stamp) changes and emits nothing, and a command that cannot be carried out changes no balance
and emits one `CommandRejected` saying why. An operator's command (a manual adjustment, a forced
status, a re-check, or any command naming the `actor` who issued it) also emits an
`AuditEntry`, carried out or refused, with the figures before and after.

Conservation holds after every command: accrued - redeemed - expired - debited + credited =
available + held, each of them never negative.

Rounding: a redemption's free-play value is points / redemption_points x redemption_value,
rounded *down* to 0.01 of the redemption currency.
"""

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, localcontext
from typing import Any

from loyalty_streams.domain.coin_rewards import daily_reward, monthly_bonus
from loyalty_streams.domain.commands import (
    AdjustPoints,
    CancelRedemption,
    ClaimBirthdayGift,
    ClaimDailyReward,
    ClaimMonthlyBonus,
    Command,
    ConfirmRedemption,
    ForceLevel,
    RecheckLevel,
    RedeemPoints,
)
from loyalty_streams.domain.event_rules import (
    EventRejected,
    move_level,
    new_player,
    settle_at,
)
from loyalty_streams.domain.money import CENT, EXACT
from loyalty_streams.domain.outputs import (
    AdjustmentDirection,
    AuditAction,
    AuditEntry,
    AuditOutcome,
    BirthdayGiftGranted,
    CommandRejected,
    Output,
    PointsAdjusted,
    PointsRedeemed,
    RedemptionHeld,
    RedemptionReleased,
    ReleaseReason,
)
from loyalty_streams.domain.player import (
    RECENT_EVENT_IDS,
    ZERO,
    ForcedLevel,
    Hold,
    PlayerState,
    SourcePosition,
)
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.refusal import Refused


def execute(
    state: PlayerState | None,
    command: Command,
    programme: Programme,
    at: datetime,
    max_skew: timedelta,
    source: SourcePosition | None = None,
) -> tuple[PlayerState, tuple[Output, ...]]:
    """Carry out one command on the player's record; a repeat changes and emits nothing.

    `at` (UTC) is the command's time for every rule: when the stream received it, a time its
    sender cannot choose. The sender's own `issued_at` is kept for the audit trail; a command
    whose `issued_at` differs from `at` by more than `max_skew` is refused (`clock_skew`), so a
    command dated in another year, or replayed long after it was written, does nothing.
    """
    if command.brand_id != programme.brand_id:
        raise EventRejected(
            f"command for brand {command.brand_id!r} given programme of {programme.brand_id!r}"
        )
    command_id = command.command_id
    if state is None:
        new = new_player(command.brand_id, command.player_id, programme, at)
    elif state.replayed(source) or command_id in state.recent_command_ids:
        return state, ()
    else:
        new = state.clone()
    new.recent_command_ids = (*new.recent_command_ids[1 - RECENT_EVENT_IDS :], command_id)
    if source is not None:
        new.applied_offsets[source.topic_partition] = source.offset
    before = _snapshot(new, programme)
    with localcontext(EXACT):
        try:
            skewed = clock_skew(command.issued_at, at, max_skew)
            if skewed is not None:
                raise Refused("clock_skew", skewed)
            outputs = _carry_out(new, command, programme, at)
        except Refused as refusal:
            outputs = (_rejected(new, command, refusal.code, refusal.reason, at),)
    if command.actor is not None:
        outputs = (*outputs, _audit(command, command.actor, before, new, programme, outputs, at))
    return new, outputs


def clock_skew(issued_at: datetime, at: datetime, max_skew: timedelta) -> str | None:
    """Why a command written at `issued_at` (its sender's word) cannot run at `at` (UTC, when it
    was received): more than `max_skew` apart; None when it can. Every command, a player's or a
    brand's re-check, is held to it."""
    if abs(issued_at - at) <= max_skew:
        return None
    return (
        f"issued_at {issued_at.isoformat()} is more than {max_skew} from {at.isoformat()}, "
        "when the command was received"
    )


def _carry_out(
    state: PlayerState, command: Command, programme: Programme, at: datetime
) -> tuple[Output, ...]:
    """Check first, then change: a refusal leaves every balance as it was."""
    if isinstance(command, RedeemPoints):
        return (_hold(state, command, programme, at),)
    if isinstance(command, ConfirmRedemption):
        return _confirm(state, command, programme, at)
    if isinstance(command, CancelRedemption):
        hold = _open_hold(state, command.redemption_id)
        reason = ReleaseReason.CANCELLED
        return (release(state, command.redemption_id, hold, reason, command, programme, at),)
    if isinstance(command, AdjustPoints):
        return (_adjust(state, command, programme, at),)
    if isinstance(command, ForceLevel):
        return _force(state, command, programme, at)
    if isinstance(command, RecheckLevel):
        # the level rules at the command's time: a retention no longer met starts the grace
        return settle_at(state, at, programme, command.command_id)
    if isinstance(command, ClaimDailyReward):
        return (daily_reward(state, command, programme, at),)
    if isinstance(command, ClaimMonthlyBonus):
        return (monthly_bonus(state, command, programme, at),)
    return (_birthday(state, command, programme, at),)


def _hold(
    state: PlayerState, command: RedeemPoints, programme: Programme, at: datetime
) -> RedemptionHeld:
    policies = programme.policies
    points = command.points
    if points < policies.redemption_min_points:
        raise Refused(
            "below_minimum",
            f"{points} points is below the minimum redemption of {policies.redemption_min_points}",
        )
    if points % policies.redemption_step_points:
        raise Refused(
            "not_a_step",
            f"{points} points is not a multiple of {policies.redemption_step_points}",
        )
    if points > state.points_available:
        raise Refused(
            "insufficient_points",
            f"{points} points requested, {state.points_available} available",
        )
    value = (points / policies.redemption_points * policies.redemption_value).quantize(
        CENT, rounding=ROUND_DOWN
    )
    hold = Hold(
        points,
        value,
        policies.redemption_currency.value,
        at,
        at + timedelta(minutes=policies.redemption_hold_minutes),
    )
    state.holds[command.command_id] = hold
    state.points_available -= points
    state.points_held += points
    state.touch(at)
    return RedemptionHeld(
        output_id=f"{command.command_id}:held",
        command_id=command.command_id,
        redemption_id=command.command_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        points=points,
        value=value,
        currency=policies.redemption_currency,
        expires_at=hold.expires_at,
        points_available=state.points_available,
        points_held=state.points_held,
        programme_version=programme.version,
    )


def _confirm(
    state: PlayerState, command: ConfirmRedemption, programme: Programme, at: datetime
) -> tuple[Output, ...]:
    redemption_id = command.redemption_id
    hold = _open_hold(state, redemption_id)
    if at >= hold.expires_at:
        released = timed_out(state, redemption_id, hold, programme)
        reason = f"redemption {redemption_id!r} timed out at {hold.expires_at.isoformat()}"
        return released, _rejected(state, command, "hold_expired", reason, at)
    del state.holds[redemption_id]
    state.points_held -= hold.points
    state.points_redeemed += hold.points
    # what cancelled bets were owed from the holds can no longer exceed what is held
    unrecovered = max(state.points_owed - state.points_held, ZERO)
    state.points_owed -= unrecovered
    state.points_unrecovered += unrecovered
    state.touch(at)
    return (
        PointsRedeemed(
            output_id=f"{redemption_id}:redeemed",
            command_id=command.command_id,
            redemption_id=redemption_id,
            brand_id=state.brand_id,
            player_id=state.player_id,
            occurred_at=at,
            points=hold.points,
            value=hold.value,
            currency=programme.policies.redemption_currency,
            points_available=state.points_available,
            points_held=state.points_held,
            programme_version=programme.version,
            points_unrecovered=unrecovered,
        ),
    )


def release(
    state: PlayerState,
    redemption_id: str,
    hold: Hold,
    reason: ReleaseReason,
    cause: Command | None,
    programme: Programme,
    at: datetime,
) -> RedemptionReleased:
    """Give a hold back at `at` (UTC): by a cancel command, or (no cause) when it timed out.
    What cancelled bets are owed (`points_owed`) comes off the points given back."""
    del state.holds[redemption_id]
    state.points_held -= hold.points
    collected = min(state.points_owed, hold.points)
    state.points_owed -= collected
    state.points_reversed += collected
    state.points_available += hold.points - collected
    return RedemptionReleased(
        output_id=f"{redemption_id}:released",
        cause_id=redemption_id if cause is None else cause.command_id,
        redemption_id=redemption_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        points=hold.points,
        reason=reason,
        points_available=state.points_available,
        points_held=state.points_held,
        programme_version=programme.version,
        points_reversed=collected,
    )


def timed_out(
    state: PlayerState, redemption_id: str, hold: Hold, programme: Programme
) -> RedemptionReleased:
    """Give a hold back when its timeout passed, dated at the timeout."""
    return release(
        state, redemption_id, hold, ReleaseReason.TIMED_OUT, None, programme, hold.expires_at
    )


def _open_hold(state: PlayerState, redemption_id: str) -> Hold:
    hold = state.holds.get(redemption_id)
    if hold is None:
        raise Refused(
            "unknown_redemption",
            f"no open redemption {redemption_id!r}: never requested, or already confirmed, "
            "cancelled or timed out",
        )
    return hold


def _adjust(
    state: PlayerState, command: AdjustPoints, programme: Programme, at: datetime
) -> PointsAdjusted:
    points = command.points
    if command.direction is AdjustmentDirection.DEBIT:
        if points > state.points_available:
            raise Refused(
                "insufficient_points",
                f"a debit of {points} points would take the balance of "
                f"{state.points_available} below zero",
            )
        state.points_available -= points
        state.points_debited += points
    else:
        state.points_available += points
        state.points_credited += points
        state.touch(at)  # a goodwill credit must not expire overnight
    return PointsAdjusted(
        output_id=f"{command.command_id}:adjusted",
        command_id=command.command_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        direction=command.direction,
        points=points,
        reason=command.reason,
        actor=command.actor,
        points_available=state.points_available,
        programme_version=programme.version,
    )


def _force(
    state: PlayerState, command: ForceLevel, programme: Programme, at: datetime
) -> tuple[Output, ...]:
    names = [level.name for level in programme.levels]
    if command.level not in names:
        raise Refused(
            "unknown_level",
            f"brand {programme.brand_id!r} has no level {command.level!r}; "
            f"its levels are {', '.join(names)}",
        )
    target = names.index(command.level)
    state.forced = ForcedLevel(
        programme.levels[target].rank, command.reason, command.actor, at, command.until
    )
    if target == programme.level_index(state.level_rank):
        state.downgrade_pending_since = None
        return ()
    cause = command.command_id
    return (move_level(state, programme, target, at, programme.day_of(at), cause, None, "forced"),)


def _birthday(
    state: PlayerState, command: ClaimBirthdayGift, programme: Programme, at: datetime
) -> BirthdayGiftGranted:
    year = at.astimezone(programme.zone).year
    if state.birthday_year == year:
        raise Refused("already_claimed", f"the birthday gift of {year} was already claimed")
    level = programme.level_at(state.level_rank)
    if not level.birthday_gift_gc and not level.birthday_gift_sc:
        raise Refused("no_gift", f"level {level.name} has no birthday gift")
    state.birthday_year = year
    state.touch(at)
    return BirthdayGiftGranted(
        output_id=f"{command.command_id}:birthday",
        command_id=command.command_id,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        year=year,
        level=level.name,
        gc=level.birthday_gift_gc,
        sc=level.birthday_gift_sc,
        programme_version=programme.version,
    )


def _rejected(
    state: PlayerState, command: Command, code: str, reason: str, at: datetime
) -> CommandRejected:
    return CommandRejected(
        output_id=f"{command.command_id}:rejected",
        command_id=command.command_id,
        command_type=command.type,
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        code=code,
        reason=reason,
    )


AUDIT_ACTIONS: dict[str, AuditAction] = {
    "AdjustPoints": AuditAction.POINTS_ADJUST,
    "ForceLevel": AuditAction.STATUS_FORCE,
    "RedeemPoints": AuditAction.REDEMPTION_REQUEST,
    "ConfirmRedemption": AuditAction.REDEMPTION_CONFIRM,
    "CancelRedemption": AuditAction.REDEMPTION_CANCEL,
    "ClaimBirthdayGift": AuditAction.BIRTHDAY_CLAIM,
    "ClaimDailyReward": AuditAction.DAILY_REWARD_CLAIM,
    "ClaimMonthlyBonus": AuditAction.MONTHLY_BONUS_CLAIM,
    "RecheckLevel": AuditAction.LEVEL_RECHECK,
}


def _audit(
    command: Command,
    actor: str,
    before: dict[str, Any],
    state: PlayerState,
    programme: Programme,
    outputs: tuple[Output, ...],
    at: datetime,
) -> AuditEntry:
    """The audit trail's entry for an operator's command, carried out or refused."""
    refusal = next((o for o in outputs if isinstance(o, CommandRejected)), None)
    stated = (
        command.reason
        if isinstance(command, AdjustPoints | ForceLevel | RecheckLevel)
        else command.type
    )
    return AuditEntry(
        output_id=f"{command.command_id}:audit",
        brand_id=state.brand_id,
        player_id=state.player_id,
        occurred_at=at,
        issued_at=command.issued_at,
        actor=actor,
        action=AUDIT_ACTIONS[command.type],
        outcome=AuditOutcome.APPLIED if refusal is None else AuditOutcome.REJECTED,
        reason=stated if refusal is None else f"{stated} ({refusal.reason})",
        command_id=command.command_id,
        before=before,
        after=_snapshot(state, programme),
    )


def _snapshot(state: PlayerState, programme: Programme) -> dict[str, Any]:
    """The figures an operator's command may change, for the audit trail."""
    forced = state.forced
    return {
        "level": programme.level_at(state.level_rank).name,
        "points_available": str(state.points_available),
        "points_held": str(state.points_held),
        "forced_level": None if forced is None else programme.level_at(forced.rank).name,
        "forced_until": None
        if forced is None or forced.until is None
        else forced.until.isoformat(),
    }
