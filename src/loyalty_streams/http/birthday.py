"""The birthday gift: a player's claim of their level's gift, once a year (a
`ClaimBirthdayGift` command)."""

from typing import Any

from loyalty_streams.domain.commands import ClaimBirthdayGift, Command
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.bodies import PlayerOnly
from loyalty_streams.http.commands import CommandView


class BirthdayView(CommandView):
    permission = Permission.ACT_FOR_PLAYERS
    body = PlayerOnly

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return ClaimBirthdayGift(**fields)


ROUTES: dict[str, type[ApiView]] = {"/loyalty/birthday/claim": BirthdayView}
