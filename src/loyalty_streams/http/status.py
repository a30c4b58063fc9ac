"""A player's status: the platform spec's `POST /loyalty/status/update`, a level forced by the
caller until a moment or for good (a `ForceLevel` command, audited)."""

from typing import Any

from loyalty_streams.domain.commands import Command, ForceLevel
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.bodies import UpdateStatus
from loyalty_streams.http.commands import CommandView


class UpdateStatusView(CommandView):
    permission = Permission.FORCE_STATUS
    body = UpdateStatus

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return ForceLevel(**fields, level=body.level, until=body.until, reason=body.reason)


ROUTES: dict[str, type[ApiView]] = {"/loyalty/status/update": UpdateStatusView}
