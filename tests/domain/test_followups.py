"""Follow-ups for the campaign engine, the notification service and the GMS."""

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from loyalty_streams.domain.event_rules import apply
from loyalty_streams.domain.followups import follow_ups
from loyalty_streams.domain.outputs import (
    CampaignTriggered,
    Channel,
    GmsFlagChanged,
    NotificationRequested,
    Output,
    PointsExpiring,
    Template,
    Trigger,
)
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import advance
from tests.domain.builders import T0, bet, programme


def played(amount: str, state: PlayerState | None = None, prog: Programme | None = None) -> tuple[
    PlayerState, tuple[Output, ...]
]:  # fmt: skip
    prog = prog or programme()
    state, outputs = apply(state, bet(amount), prog)
    return state, follow_ups(outputs, state, prog)


def test_a_jump_to_platinum_triggers_the_campaign_notifies_with_perks_and_flags_the_gms() -> None:
    _, (campaign, notification, flag) = played("200000")
    assert isinstance(campaign, CampaignTriggered)
    assert (campaign.trigger, campaign.from_level, campaign.to_level) == (
        Trigger.ON_LEVEL_UP, "Bronze", "Platinum",
    )  # fmt: skip
    assert {"personal_manager", "email_support"} <= set(campaign.perks)
    assert "vip_host" not in campaign.perks
    assert isinstance(notification, NotificationRequested)
    assert notification.template is Template.LEVEL_UP
    assert notification.channels == (Channel.EMAIL, Channel.PUSH)
    assert (notification.level, notification.points_multiplier) == ("Platinum", Decimal("1.5"))
    assert notification.perks == campaign.perks
    assert isinstance(flag, GmsFlagChanged)
    assert (flag.flag, flag.enabled, flag.level) == ("high_rtp_minimum", True, "Platinum")
    assert flag.output_id == f"{flag.cause_id}:gms"


def test_levels_below_the_gms_level_raise_no_flag() -> None:
    _, outputs = played("50000")  # Bronze -> Gold
    assert [type(o) for o in outputs] == [CampaignTriggered, NotificationRequested]


def test_leaving_platinum_clears_the_flag_and_triggers_a_win_back() -> None:
    platinum, _ = played("200000")
    idle_at = T0 + timedelta(days=40)
    grace = timedelta(days=programme().policies.downgrade_grace_days)
    swept = advance(platinum, idle_at + grace, programme())
    outputs = follow_ups(swept.outputs, swept.state, programme())
    (flag,) = [o for o in outputs if isinstance(o, GmsFlagChanged)]
    assert (flag.enabled, flag.level) == (False, "Silver")  # Gold's retention not met either
    (campaign,) = [o for o in outputs if isinstance(o, CampaignTriggered)]
    assert campaign.trigger is Trigger.ON_LEVEL_DOWN


def test_the_gms_level_is_a_programme_setting() -> None:
    from_gold = programme().model_copy(update={"gms_high_rtp_level": "Gold"})
    _, outputs = played("50000", prog=from_gold)
    assert any(isinstance(o, GmsFlagChanged) and o.enabled for o in outputs)
    nobody = programme().model_copy(update={"gms_high_rtp_level": None})
    _, outputs = played("200000", prog=nobody)
    assert not any(isinstance(o, GmsFlagChanged) for o in outputs)
    with pytest.raises(ValidationError, match="gms_high_rtp_level: no level 'Diamond'"):
        programme().model_copy(update={"gms_high_rtp_level": "Diamond"})


def test_an_expiry_warning_is_sent_as_a_notification_at_the_players_level() -> None:
    silver, _ = played("10000")
    warn_at = T0 + timedelta(days=336)
    swept = advance(silver, warn_at, programme())
    (warning,) = [o for o in swept.outputs if isinstance(o, PointsExpiring)]
    (notification,) = follow_ups(swept.outputs, swept.state, programme())
    assert isinstance(notification, NotificationRequested)
    assert notification.template is Template.POINTS_EXPIRING
    assert (notification.level, notification.points) == ("Silver", warning.points)
    assert notification.expires_at == warning.expires_at
