"""The reward claims: each route makes its own command from the same body, is documented with
the codes its refusals carry, and the audit's action filter names every action there is."""

from datetime import UTC, datetime
from typing import Any

import pytest

from loyalty_streams.domain.commands import ClaimBirthdayGift, ClaimDailyReward, ClaimMonthlyBonus
from loyalty_streams.domain.outputs import AuditAction
from loyalty_streams.http.auth import GRANTS, Permission, Role
from loyalty_streams.http.birthday import BirthdayView
from loyalty_streams.http.bodies import PlayerOnly
from loyalty_streams.http.coin_rewards import ROUTES, DailyRewardView, MonthlyBonusView
from loyalty_streams.http.commands import ClaimView
from loyalty_streams.http.openapi import openapi_document
from loyalty_streams.http.parameters import query_choice

FIELDS: dict[str, Any] = {
    "command_id": "c-1",
    "brand_id": "lucky-sweeps",
    "player_id": "p1",
    "issued_at": datetime(2026, 11, 2, 12, tzinfo=UTC),
    "actor": "anna",
}


@pytest.mark.parametrize(
    ("view", "kind"),
    [
        (BirthdayView, ClaimBirthdayGift),
        (DailyRewardView, ClaimDailyReward),
        (MonthlyBonusView, ClaimMonthlyBonus),
    ],
)
def test_each_claim_makes_its_command_for_the_player_in_the_body(
    view: type[ClaimView], kind: type[Any]
) -> None:
    body = PlayerOnly(brand_id="lucky-sweeps", player_id="p1")
    made = view.command(object.__new__(view), body, FIELDS, {})
    assert type(made) is kind
    assert (made.command_id, made.player_id, made.actor) == ("c-1", "p1", "anna")
    assert view.permission is Permission.ACT_FOR_PLAYERS and view.body is PlayerOnly
    assert view.permission not in GRANTS[Role.MARKETING_MANAGER]


def test_the_coin_reward_claims_are_documented_with_their_refusal_codes() -> None:
    paths = openapi_document()["paths"]
    assert set(ROUTES) == {"/loyalty/daily-reward/claim", "/loyalty/monthly-bonus/claim"}
    codes = {
        "/loyalty/birthday/claim": ("already_claimed", "no_gift"),
        "/loyalty/daily-reward/claim": ("no_daily_reward", "already_claimed"),
        "/loyalty/monthly-bonus/claim": ("no_monthly_bonus", "not_eligible", "already_claimed"),
    }
    for path, expected in codes.items():
        operation = paths[path]["post"]
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/PlayerOnly"
        }
        assert {"200", "202", "409"} <= set(operation["responses"])
        refused = operation["responses"]["409"]["description"]
        assert all(f"`{code}`" in refused for code in expected), (path, refused)
        assert "wait" in {parameter["name"] for parameter in operation["parameters"]}


def test_the_audit_filter_takes_every_action_and_refuses_others() -> None:
    (action,) = [
        parameter
        for parameter in openapi_document()["paths"]["/loyalty/audit"]["get"]["parameters"]
        if parameter["name"] == "action"
    ]
    assert set(action["schema"]["enum"]) == {a.value for a in AuditAction}
    assert {"daily_reward.claim", "monthly_bonus.claim"} <= set(action["schema"]["enum"])
    assert query_choice(None, "action", ("a.b",)) is None
    assert query_choice("a.b", "action", ("a.b",)) == "a.b"
    with pytest.raises(Exception, match=r"is not one of a\.b") as refused:
        query_choice("a.c", "action", ("a.b",))
    assert getattr(refused.value, "code", None) == 400
