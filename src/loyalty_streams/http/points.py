"""Points: the platform spec's `POST /loyalty/points/add`, a manual credit or debit by the caller
(an `AdjustPoints` command, audited)."""

from decimal import Decimal
from typing import Any

from loyalty_streams.domain.commands import AdjustPoints, Command
from loyalty_streams.domain.outputs import AdjustmentDirection
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.bodies import AddPoints
from loyalty_streams.http.commands import CommandView


class AddPointsView(CommandView):
    """A credit for `points` above 0, a debit of their size below 0."""

    permission = Permission.ADJUST_POINTS
    body = AddPoints

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        points: Decimal = body.points
        return AdjustPoints(
            **fields,
            points=str(abs(points)),
            direction=AdjustmentDirection.DEBIT if points < 0 else AdjustmentDirection.CREDIT,
            reason=body.reason,
        )


ROUTES: dict[str, type[ApiView]] = {"/loyalty/points/add": AddPointsView}
