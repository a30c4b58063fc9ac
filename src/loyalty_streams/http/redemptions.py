"""Redemptions, for a player: request one (the points are held), then confirm or cancel it by
its id (`RedeemPoints`, `ConfirmRedemption`, `CancelRedemption` commands)."""

from typing import Any

from loyalty_streams.domain.commands import (
    CancelRedemption,
    Command,
    ConfirmRedemption,
    RedeemPoints,
)
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.bodies import PlayerOnly, RequestRedemption
from loyalty_streams.http.commands import CommandView


class RedeemView(CommandView):
    permission = Permission.ACT_FOR_PLAYERS
    body = RequestRedemption

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return RedeemPoints(**fields, points=str(body.points))


class ConfirmView(CommandView):
    permission = Permission.ACT_FOR_PLAYERS
    body = PlayerOnly

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return ConfirmRedemption(**fields, redemption_id=path["redemption_id"])


class CancelView(CommandView):
    permission = Permission.ACT_FOR_PLAYERS
    body = PlayerOnly

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return CancelRedemption(**fields, redemption_id=path["redemption_id"])


ROUTES: dict[str, type[ApiView]] = {
    "/loyalty/redemptions": RedeemView,
    "/loyalty/redemptions/{redemption_id}/confirm": ConfirmView,
    "/loyalty/redemptions/{redemption_id}/cancel": CancelView,
}
