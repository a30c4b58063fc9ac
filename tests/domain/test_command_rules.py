"""Commands on points and levels: redemption, adjustments, forced status, birthday gifts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from pydantic import ValidationError

from loyalty_streams.domain.commands import (
    RecheckBrand,
    RecheckLevel,
    decode_command,
    decode_inbound_command,
)
from loyalty_streams.domain.event_rules import EventRejected, apply
from loyalty_streams.domain.multipliers import Boost, boosted
from loyalty_streams.domain.outputs import (
    AuditAction,
    AuditEntry,
    AuditOutcome,
    BirthdayGiftGranted,
    CommandRejected,
    Direction,
    LevelChanged,
    Output,
    PointsAdjusted,
    PointsRedeemed,
    RedemptionHeld,
    RedemptionReleased,
    ReleaseReason,
)
from loyalty_streams.domain.player import PlayerState, SourcePosition
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import advance
from tests.domain.builders import T0, bet, command, programme, received

Run = tuple[PlayerState, tuple[Output, ...]]


def player_with(points: str, brand_id: str = "aurora-casino") -> PlayerState:
    """A player who earned `points` on slots (1 point per EUR/SC at the lowest level)."""
    currency = "EUR" if brand_id == "aurora-casino" else "SC"
    state, _ = apply(None, bet(points, brand_id=brand_id, currency=currency), programme(brand_id))
    return state


def run(state: PlayerState | None, kind: str, brand_id: str = "aurora-casino", **fields) -> Run:  # type: ignore[no-untyped-def]
    """Execute a command; operators' audit entries are left out (the audit tests check them)."""
    return unaudited(
        received(state, command(kind, brand_id=brand_id, **fields), programme(brand_id))
    )


def unaudited(result: Run) -> Run:
    state, outputs = result
    return state, tuple(o for o in outputs if not isinstance(o, AuditEntry))


def audit_of(state: PlayerState | None, kind: str, **fields) -> AuditEntry | None:  # type: ignore[no-untyped-def]
    _, outputs = received(state, command(kind, **fields), programme())
    entries = [o for o in outputs if isinstance(o, AuditEntry)]
    assert len(entries) <= 1
    return entries[0] if entries else None


def rejected(outputs: tuple[Output, ...]) -> CommandRejected:
    (only,) = outputs
    assert isinstance(only, CommandRejected)
    return only


def balances(state: PlayerState) -> tuple[Decimal, Decimal]:
    return state.points_available, state.points_held


# -- redemption -------------------------------------------------------------------------------


def test_a_redemption_holds_then_confirmation_writes_off_at_ten_eur_per_thousand() -> None:
    state = player_with("5000")
    held_state, (held,) = run(state, "RedeemPoints", points="2500", command_id="r1")
    assert isinstance(held, RedemptionHeld)
    assert balances(held_state) == (Decimal(2500), Decimal(2500))
    assert held.value == Decimal("25.00") and held.currency == "EUR"
    assert held.expires_at == T0 + timedelta(minutes=30)

    done, (redeemed,) = run(held_state, "ConfirmRedemption", redemption_id="r1")
    assert isinstance(redeemed, PointsRedeemed)
    assert redeemed.output_id == "r1:redeemed" and redeemed.value == Decimal("25.00")
    assert balances(done) == (Decimal(2500), Decimal(0))
    assert done.points_redeemed == Decimal(2500) and not done.holds


def test_cancelling_a_hold_gives_the_points_back() -> None:
    held_state, _ = run(player_with("5000"), "RedeemPoints", points="1000", command_id="r1")
    back, (released,) = run(held_state, "CancelRedemption", redemption_id="r1")
    assert isinstance(released, RedemptionReleased)
    assert released.reason is ReleaseReason.CANCELLED
    assert balances(back) == (Decimal(5000), Decimal(0))
    assert back.points_redeemed == 0


def test_confirming_a_hold_past_its_timeout_releases_it_and_says_why() -> None:
    held_state, _ = run(player_with("5000"), "RedeemPoints", points="1000", command_id="r1")
    late = T0 + timedelta(minutes=30)  # exactly at the timeout: too late
    back, (released, refusal) = run(
        held_state, "ConfirmRedemption", redemption_id="r1", issued_at=late
    )
    assert isinstance(released, RedemptionReleased)
    assert released.reason is ReleaseReason.TIMED_OUT
    assert isinstance(refusal, CommandRejected) and refusal.code == "hold_expired"
    assert balances(back) == (Decimal(5000), Decimal(0))
    _, again = run(back, "ConfirmRedemption", redemption_id="r1", issued_at=late)
    assert rejected(again).code == "unknown_redemption"


def test_a_confirmation_one_second_before_the_timeout_is_in_time() -> None:
    held_state, _ = run(player_with("5000"), "RedeemPoints", points="1000", command_id="r1")
    just = T0 + timedelta(minutes=30, seconds=-1)
    _, (redeemed,) = run(held_state, "ConfirmRedemption", redemption_id="r1", issued_at=just)
    assert isinstance(redeemed, PointsRedeemed)


@pytest.mark.parametrize(
    ("points", "code"),
    [
        ("5001", "not_a_step"),
        ("900", "below_minimum"),
        ("5100", "insufficient_points"),
    ],
)
def test_a_redemption_that_cannot_be_held_is_rejected_and_changes_no_balance(
    points: str, code: str
) -> None:
    state = player_with("5050")
    after, outputs = run(state, "RedeemPoints", points=points)
    refusal = rejected(outputs)
    assert refusal.code == code and points in refusal.reason
    assert balances(after) == balances(state) and not after.holds


def test_the_whole_balance_can_be_redeemed() -> None:
    after, (held,) = run(player_with("5000"), "RedeemPoints", points="5000")
    assert isinstance(held, RedemptionHeld) and after.points_available == 0


def test_held_points_cannot_be_redeemed_twice() -> None:
    held_state, _ = run(player_with("1500"), "RedeemPoints", points="1000")
    _, outputs = run(held_state, "RedeemPoints", points="1000")
    assert rejected(outputs).code == "insufficient_points"


def test_the_same_command_twice_has_one_effect() -> None:
    state = player_with("5000")
    hold = command("RedeemPoints", points="1000")
    once, first = received(state, hold, programme())
    twice, second = received(once, hold, programme())
    assert first and second == () and twice is once
    refusal = command("RedeemPoints", points="9000")
    refused, outputs = received(state, refusal, programme())
    assert rejected(outputs).code == "insufficient_points"
    assert received(refused, refusal, programme()) == (refused, ())


def test_a_redelivered_command_offset_changes_nothing() -> None:
    source = SourcePosition("loyalty.commands:0", 7)
    state, _ = received(
        player_with("5000"), command("RedeemPoints", points="1000"), programme(), source
    )
    other = command("RedeemPoints", points="1000")  # a new id, but an offset already applied
    assert received(state, other, programme(), source) == (state, ())


def test_execute_never_changes_the_record_it_was_given() -> None:
    state = player_with("5000")
    snapshot = PlayerState.from_json(state.to_json())
    run(state, "RedeemPoints", points="1000")
    assert state == snapshot


def test_a_command_of_another_brand_is_refused_as_unusable() -> None:
    with pytest.raises(EventRejected):
        received(None, command("ClaimBirthdayGift", brand_id="lucky-sweeps"), programme())


# -- adjustments ------------------------------------------------------------------------------


def test_a_credit_and_a_debit_with_reason_and_actor() -> None:
    credited, (credit,) = run(
        player_with("100"), "AdjustPoints", direction="credit", points="50.5", reason="goodwill",
        actor="ops-anna",
    )  # fmt: skip
    assert isinstance(credit, PointsAdjusted) and credit.actor == "ops-anna"
    assert credited.points_available == Decimal("150.5") and credited.points_credited == 50.5
    debited, _ = run(
        credited, "AdjustPoints", direction="debit", points="150.5", reason="fraud", actor="ops"
    )
    assert debited.points_available == 0 and debited.points_debited == Decimal("150.5")


def test_a_debit_larger_than_the_balance_is_rejected() -> None:
    state = player_with("100")
    after, outputs = run(
        state, "AdjustPoints", direction="debit", points="100.01", reason="fix", actor="ops"
    )
    refusal = rejected(outputs)
    assert refusal.code == "insufficient_points" and "below zero" in refusal.reason
    assert after.points_available == Decimal(100)


def test_held_points_cannot_be_debited() -> None:
    held_state, _ = run(player_with("1000"), "RedeemPoints", points="1000")
    _, outputs = run(
        held_state, "AdjustPoints", direction="debit", points="1", reason="fix", actor="ops"
    )
    assert rejected(outputs).code == "insufficient_points"


def test_malformed_commands_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="points"):
        command("AdjustPoints", direction="credit", points="0", reason="x", actor="ops")
    with pytest.raises(ValidationError, match="decimal places"):
        command("AdjustPoints", direction="credit", points="1.001", reason="x", actor="ops")
    with pytest.raises(ValidationError, match="until"):
        command("ForceLevel", level="Gold", reason="x", actor="ops", until=T0)
    with pytest.raises(ValidationError):
        decode_command(b'{"type": "RedeemPoints", "command_id": "c"}')
    for actor in ("ev\nil", "anna\u202e", "\u200b", "ops\x00"):  # log injection, spoofing
        with pytest.raises(ValidationError, match="actor"):
            command("AdjustPoints", direction="credit", points="5", reason="x", actor=actor)
    command("AdjustPoints", direction="credit", points="5", reason="x", actor="Anna Ödén@ops")


# -- forced status ----------------------------------------------------------------------------


def test_a_forced_level_holds_until_its_end_then_normal_evaluation_resumes() -> None:
    until = T0 + timedelta(days=10)
    forced, (change,) = run(
        player_with("100"), "ForceLevel", level="Gold", until=until, reason="match", actor="ops"
    )
    assert isinstance(change, LevelChanged)
    assert (change.direction, change.to_level, change.reason) == (Direction.UP, "Gold", "forced")
    # no turnover to keep Gold, but time leaves it alone while forced
    assert forced.timer_at is None or forced.timer_at > until - timedelta(seconds=1)
    during = advance(forced, until - timedelta(seconds=1), programme())
    assert not of_levels(during.outputs) and during.state.level_rank == 3
    # after the end: a downgrade pending from then, carried out after the 7-day grace
    ended = advance(during.state, until, programme())
    assert not of_levels(ended.outputs) and ended.state.forced is None
    assert ended.state.downgrade_pending_since == until
    (change,) = of_levels(advance(ended.state, until + timedelta(days=7), programme()).outputs)
    assert change.to_level == "Bronze" and change.occurred_at == until + timedelta(days=7)


def test_a_forced_level_without_end_stops_play_from_moving_it() -> None:
    forced, _ = run(player_with("100"), "ForceLevel", level="Silver", reason="vip", actor="ops")
    later, outputs = apply(forced, bet("60000"), programme())
    assert later.level_rank == 2 and not any(isinstance(o, LevelChanged) for o in outputs)


def test_forcing_an_unknown_level_names_the_levels() -> None:
    _, outputs = run(player_with("100"), "ForceLevel", level="Diamond", reason="x", actor="ops")
    refusal = rejected(outputs)
    assert refusal.code == "unknown_level" and "Bronze, Silver, Gold, Platinum" in refusal.reason


# -- audit trail ------------------------------------------------------------------------------


def test_an_adjustment_is_audited_with_who_what_before_and_after() -> None:
    entry = audit_of(
        player_with("100"), "AdjustPoints", direction="credit", points="50.5", reason="goodwill",
        actor="ops-anna", command_id="adj-1",
    )  # fmt: skip
    assert entry is not None
    assert (entry.actor, entry.action, entry.outcome) == (
        "ops-anna", AuditAction.POINTS_ADJUST, AuditOutcome.APPLIED,
    )  # fmt: skip
    assert (entry.output_id, entry.command_id, entry.occurred_at) == ("adj-1:audit", "adj-1", T0)
    assert entry.before is not None and entry.after is not None
    before, after = entry.before["points_available"], entry.after["points_available"]
    assert (Decimal(before), Decimal(after)) == (100, Decimal("150.5"))
    assert entry.reason == "goodwill"


def test_a_refused_adjustment_is_audited_as_rejected_with_nothing_changed() -> None:
    entry = audit_of(
        player_with("100"), "AdjustPoints", direction="debit", points="500", reason="fix",
        actor="ops",
    )  # fmt: skip
    assert entry is not None and entry.outcome is AuditOutcome.REJECTED
    assert entry.before == entry.after and "below zero" in entry.reason


def test_a_forced_status_is_audited_with_the_levels_before_and_after() -> None:
    until = T0 + timedelta(days=3)
    entry = audit_of(
        player_with("100"), "ForceLevel", level="Gold", until=until, reason="match", actor="ops"
    )
    assert entry is not None and entry.action is AuditAction.STATUS_FORCE
    assert entry.before == {
        "level": "Bronze", "points_available": "100.00", "points_held": "0",
        "forced_level": None, "forced_until": None,
    }  # fmt: skip
    assert entry.after is not None
    assert (entry.after["level"], entry.after["forced_level"]) == ("Gold", "Gold")
    assert entry.after["forced_until"] == until.isoformat()


def test_commands_are_audited_when_a_person_issued_them() -> None:
    assert audit_of(player_with("5000"), "RedeemPoints", points="1000") is None  # the cashier
    entry = audit_of(player_with("5000"), "RedeemPoints", points="1000", actor="ops-anna")
    assert entry is not None
    assert (entry.action, entry.actor, entry.reason) == (
        AuditAction.REDEMPTION_REQUEST, "ops-anna", "RedeemPoints",
    )  # fmt: skip
    assert entry.before is not None and entry.after is not None
    assert (entry.before["points_held"], entry.after["points_held"]) == ("0", "1000")
    refused = audit_of(player_with("5000"), "ClaimBirthdayGift", actor="ops-anna")
    assert refused is not None and refused.outcome is AuditOutcome.REJECTED


# -- birthday gifts ---------------------------------------------------------------------------

NEW_YORK_EVE = datetime(2027, 1, 1, 4, 59, tzinfo=UTC)  # 31 December 23:59 in New York


def test_a_birthday_gift_once_per_calendar_year_of_the_brand() -> None:
    state = player_with("1500", "lucky-sweeps")  # Silver: 20 GC and 10 SC
    claimed, (gift,) = run(state, "ClaimBirthdayGift", "lucky-sweeps", issued_at=NEW_YORK_EVE)
    assert isinstance(gift, BirthdayGiftGranted)
    assert (gift.year, gift.level, gift.gc, gift.sc) == (2026, "Silver", 20, 10)
    new_year = NEW_YORK_EVE + timedelta(minutes=1)  # 1 January in New York
    again, (gift,) = run(claimed, "ClaimBirthdayGift", "lucky-sweeps", issued_at=new_year)
    assert isinstance(gift, BirthdayGiftGranted) and gift.year == 2027
    _, outputs = run(again, "ClaimBirthdayGift", "lucky-sweeps", issued_at=new_year)
    refusal = rejected(outputs)
    assert refusal.code == "already_claimed" and "2027" in refusal.reason


def test_a_level_without_a_gift_rejects_the_claim() -> None:
    _, outputs = run(player_with("100"), "ClaimBirthdayGift")
    assert rejected(outputs).code == "no_gift"


# -- the command's clock ----------------------------------------------------------------------


def test_a_command_runs_at_the_time_it_was_received_not_the_time_it_claims() -> None:
    sweeps = programme("lucky-sweeps")
    state = player_with("1500", "lucky-sweeps")
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    gifts = 0
    for year in (2027, 2028, 2099):  # each was a gift of its own year, paid at once
        claim = command(
            "ClaimBirthdayGift", brand_id="lucky-sweeps", issued_at=now.replace(year=year)
        )
        state, outputs = received(state, claim, sweeps, at=now)
        assert rejected(outputs).code == "clock_skew"
        assert str(year) in rejected(outputs).reason
        gifts += sum(isinstance(o, BirthdayGiftGranted) for o in outputs)
    assert gifts == 0 and state.birthday_year is None
    state, (gift,) = received(
        state, command("ClaimBirthdayGift", brand_id="lucky-sweeps", issued_at=now), sweeps, at=now
    )
    assert isinstance(gift, BirthdayGiftGranted) and gift.year == 2026


def test_a_redemption_dated_far_ahead_holds_nothing() -> None:
    state = player_with("5000")
    later = datetime(2100, 1, 1, tzinfo=UTC)
    after, outputs = received(
        state, command("RedeemPoints", points="1000", issued_at=later), programme(), at=T0
    )
    assert rejected(outputs).code == "clock_skew"
    assert balances(after) == (Decimal(5000), Decimal(0)) and not after.holds


def test_a_confirmation_received_after_the_timeout_is_late_whatever_it_claims() -> None:
    held_state, _ = run(player_with("5000"), "RedeemPoints", points="2500", command_id="r1")
    timeout = T0 + timedelta(minutes=30)
    confirm = command(
        "ConfirmRedemption", redemption_id="r1", issued_at=timeout - timedelta(minutes=2)
    )
    late, outputs = unaudited(
        received(held_state, confirm, programme(), at=timeout + timedelta(minutes=1))
    )
    assert [type(o) for o in outputs] == [RedemptionReleased, CommandRejected]
    assert rejected(outputs[1:]).code == "hold_expired"
    assert balances(late) == (Decimal(5000), Decimal(0))


def test_the_clock_skew_allowed_is_inclusive_and_outputs_carry_the_received_time() -> None:
    at = T0 + timedelta(minutes=5)  # issued_at is T0: exactly the skew
    _, (held,) = unaudited(
        received(player_with("5000"), command("RedeemPoints", points="1000"), programme(), at=at)
    )
    assert isinstance(held, RedemptionHeld) and held.occurred_at == at
    _, outputs = received(
        player_with("5000"),
        command("RedeemPoints", points="1000"),
        programme(),
        at=at + timedelta(microseconds=1),
    )
    assert rejected(outputs).code == "clock_skew"


def test_an_audit_entry_keeps_the_time_the_sender_wrote_and_the_time_it_ran() -> None:
    issued = T0 - timedelta(minutes=3)
    adjust = command(
        "AdjustPoints", points="50", direction="credit", reason="goodwill", actor="anna",
        issued_at=issued,
    )  # fmt: skip
    _, outputs = received(player_with("100"), adjust, programme(), at=T0)
    (entry,) = [o for o in outputs if isinstance(o, AuditEntry)]
    assert (entry.occurred_at, entry.issued_at) == (T0, issued)
    (adjusted,) = [o for o in outputs if isinstance(o, PointsAdjusted)]
    assert adjusted.occurred_at == T0


# -- re-checks of a level ---------------------------------------------------------------------


def gold_retention_raised_to(retention: str) -> Programme:
    """Aurora's next version, where keeping Gold needs `retention` EUR in 30 days."""
    aurora = programme()
    levels = [
        level.model_copy(update={"retention": Decimal(retention)})
        if level.name == "Gold"
        else level
        for level in aurora.levels
    ]
    return aurora.model_copy(update={"version": aurora.version + 1, "levels": levels})


def test_a_recheck_after_a_raised_retention_starts_the_grace_then_downgrades() -> None:
    gold, _ = apply(None, bet("60000"), programme())
    assert programme().level_at(gold.level_rank).name == "Gold"
    stricter = gold_retention_raised_to("100000")
    at = T0 + timedelta(hours=1)
    recheck = command("RecheckLevel", reason="Gold needs more", actor="ops-anna", issued_at=at)
    assert isinstance(recheck, RecheckLevel)

    pending, outputs = received(gold, recheck, stricter)
    assert pending.downgrade_pending_since == at and pending.level_rank == gold.level_rank
    (entry,) = outputs  # no level change yet: the grace runs first
    assert isinstance(entry, AuditEntry)
    assert (entry.action, entry.outcome, entry.actor, entry.reason) == (
        AuditAction.LEVEL_RECHECK, AuditOutcome.APPLIED, "ops-anna", "Gold needs more",
    )  # fmt: skip
    assert (entry.output_id, entry.command_id, entry.player_id) == (
        f"{recheck.command_id}:audit", recheck.command_id, "p1",
    )  # fmt: skip
    assert entry.before == entry.after and entry.occurred_at == at
    assert received(pending, recheck, stricter) == (pending, ())  # the same command once

    ended = at + timedelta(days=7)  # the grace's end: a second re-check downgrades
    again = command("RecheckLevel", reason="grace over", actor="ops-anna", issued_at=ended)
    silver, outputs = received(pending, again, stricter)
    assert programme().level_at(silver.level_rank).name == "Silver"
    (change,) = of_levels(outputs)
    assert (change.output_id, change.cause_id) == (f"{again.command_id}:level", again.command_id)
    assert (change.from_level, change.to_level, change.reason) == (
        "Gold", "Silver", "retention_missed",
    )  # fmt: skip
    assert change.occurred_at == ended and change.programme_version == stricter.version
    (entry,) = [o for o in outputs if isinstance(o, AuditEntry)]
    assert entry.before is not None and entry.after is not None
    assert (entry.before["level"], entry.after["level"]) == ("Gold", "Silver")


def test_a_recheck_that_changes_nothing_is_still_audited() -> None:
    state = player_with("100")
    checked, outputs = received(
        state, command("RecheckLevel", reason="programme v2", actor="ops"), programme()
    )
    (entry,) = outputs
    assert isinstance(entry, AuditEntry)
    assert (entry.action, entry.outcome) == (AuditAction.LEVEL_RECHECK, AuditOutcome.APPLIED)
    assert entry.before == entry.after and checked.level_rank == state.level_rank


def test_a_recheck_names_who_and_why() -> None:
    with pytest.raises(ValidationError, match="actor"):
        command("RecheckLevel", reason="programme v2")
    with pytest.raises(ValidationError, match="reason"):
        command("RecheckLevel", actor="ops")


def test_a_brand_recheck_is_read_from_the_commands_topic_but_is_no_player_command() -> None:
    record = RecheckBrand(
        command_id="rb-1", brand_id="aurora-casino", partition=3, issued_at=T0,
        actor="ops", reason="programme v2",
    )  # fmt: skip
    raw = record.model_dump_json()
    assert decode_inbound_command(raw) == record and record.key == "aurora-casino"
    birthday = command("ClaimBirthdayGift")
    assert decode_inbound_command(birthday.model_dump_json()) == birthday
    with pytest.raises(ValidationError):
        decode_command(raw)
    for bad in ({"partition": -1}, {"actor": None}, {"player_id": "p1"}, {"reason": ""}):
        with pytest.raises(ValidationError):
            decode_inbound_command(orjson.dumps(record.model_dump(mode="json") | bad))


# -- multipliers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "boost", "base", "final"),
    [
        ("Bronze", Boost.DAILY_BONUS, "100", "100.00"),
        ("Silver", Boost.DAILY_BONUS, "100", "110.00"),
        ("Diamond", Boost.STORE, "10000", "15000.00"),
        ("Gold", Boost.STORE, "0.05", "0.05"),  # 0.055 rounds down
    ],
)
def test_level_multipliers_on_a_base_amount(
    level: str, boost: Boost, base: str, final: str
) -> None:
    sweeps = programme("lucky-sweeps")
    rank = next(lv.rank for lv in sweeps.levels if lv.name == level)
    assert boosted(sweeps, rank, boost, Decimal(base)) == Decimal(final)


def of_levels(outputs: tuple[Output, ...]) -> list[LevelChanged]:
    return [o for o in outputs if isinstance(o, LevelChanged)]
