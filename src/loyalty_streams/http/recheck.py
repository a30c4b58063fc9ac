"""Level re-checks, after a programme change: one player's (`POST
/loyalty/{brand_id}/{player_id}/recheck`, a `RecheckLevel` command answered with its outcome), or
a whole brand's (`POST /loyalty/admin/brands/{brand_id}/recheck`: one `RecheckBrand` record to
every partition of the command topic with one audit entry; each worker re-checks the players it
holds, so the answer is 202 once all are published).
"""

from http import HTTPStatus
from typing import Any
from uuid import uuid4

from faust.web import Request, Response
from pydantic import ValidationError

from loyalty_streams.domain.commands import Command, RecheckLevel
from loyalty_streams.domain.validation import validation_summary
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.bodies import BrandRecheck, LevelRecheck, parse_body
from loyalty_streams.http.command_sender import CommandSender
from loyalty_streams.http.commands import CommandView, require_programme
from loyalty_streams.http.errors import refuse
from loyalty_streams.http.parameters import path_identifier


class RecheckLevelView(CommandView):
    """Re-check a player's level now, by the caller: the brand and player are in the path."""

    permission = Permission.RECHECK_LEVELS
    body = LevelRecheck

    async def read(self, request: Request, path: dict[str, str]) -> tuple[Any, str, str]:
        brand_id = path_identifier(path["brand_id"], "brand_id")
        player_id = path_identifier(path["player_id"], "player_id")
        self.authorize(request, self.permission, brand_id)
        return await parse_body(request, self.body), brand_id, player_id

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return RecheckLevel(**fields, reason=body.reason)


class RecheckBrandView(ApiView):
    """Re-check the level of every player of a brand, by the caller: one record to every
    partition of the command topic and one audit entry; answered 202 once all are acknowledged
    (each worker re-checks the players it holds, in its own time)."""

    sender: CommandSender
    """Bound when `routes` installs the view: one per worker."""

    async def post(self, request: Request, brand_id: str) -> Response:
        caller = self.authorize(request, Permission.RECHECK_LEVELS)
        brand_id = path_identifier(brand_id, "brand_id")
        self.authorize(request, Permission.RECHECK_LEVELS, brand_id)
        body = await parse_body(request, BrandRecheck)
        now = self.worker.clock()
        require_programme(self.worker, brand_id, now)
        command_id = str(uuid4())
        try:
            partitions = await self.sender.recheck_brand(
                brand_id,
                command_id=command_id,
                issued_at=now,
                actor=caller.subject,
                reason=body.reason,
            )
        except ValidationError as error:
            raise refuse(HTTPStatus.UNPROCESSABLE_ENTITY, validation_summary(error)) from error
        except RuntimeError as error:
            raise refuse(HTTPStatus.SERVICE_UNAVAILABLE, str(error)) from error
        return self.json(
            {"command_id": command_id, "brand_id": brand_id, "partitions": partitions},
            status=HTTPStatus.ACCEPTED,
        )


ROUTES: dict[str, type[ApiView]] = {
    "/loyalty/{brand_id}/{player_id}/recheck": RecheckLevelView,
    "/loyalty/admin/brands/{brand_id}/recheck": RecheckBrandView,
}
