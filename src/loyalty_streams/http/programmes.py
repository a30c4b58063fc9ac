"""A brand's programme versions: the one in effect (GET), a new one (POST, an admin's backfill
included), every version (`/versions`) and new promotional multipliers (`/promotions`, a new
version of the latest). Each version is validated by the domain's catalogue and published with
its audit entry.
"""

import asyncio
import time
from http import HTTPStatus

from faust.web import Request, Response
from pydantic import ValidationError

from loyalty_streams.domain.catalogue import Backdated, StaleVersion
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.validation import validation_summary
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Caller, Permission
from loyalty_streams.http.bodies import SetPromotions, parse_body
from loyalty_streams.http.commands import POLL_S, WAIT_S
from loyalty_streams.http.errors import refuse
from loyalty_streams.http.parameters import query_flag
from loyalty_streams.runtime.global_tables import publish_programmes


class ProgrammeView(ApiView):
    """The brand's programme in effect now (GET) and new versions (POST)."""

    async def get(self, request: Request, brand_id: str) -> Response:
        self.authorize(request, Permission.READ_PROGRAMMES, brand_id)
        programme = self.worker.tables.catalogue.in_effect(brand_id, self.worker.clock())
        if programme is None:
            raise refuse(HTTPStatus.NOT_FOUND, f"no programme of brand {brand_id!r} in effect")
        return self.json(programme.model_dump(mode="json"))

    async def post(self, request: Request, brand_id: str) -> Response:
        """Publish a version: `?reason=` for the audit trail; `?backfill=true` (an admin's
        explicit choice, audited as `programme.backfill`) lets it take effect in the past."""
        caller = self.authorize(request, Permission.PUBLISH_PROGRAMMES, brand_id)
        backfill = query_flag(request.query.get("backfill"), "backfill")
        if backfill:
            self.authorize(request, Permission.BACKFILL_PROGRAMMES, brand_id)
        programme = await parse_body(request, Programme)
        if programme.brand_id != brand_id:
            raise refuse(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"brand_id: {programme.brand_id!r} does not match the path's {brand_id!r}",
            )
        reason = request.query.get("reason") or "published through the API"
        return await publish(self, programme, caller, reason, backfill=backfill)


class ProgrammeVersionsView(ApiView):
    """Every version of the brand's programme, oldest first, the one in effect marked."""

    async def get(self, request: Request, brand_id: str) -> Response:
        self.authorize(request, Permission.READ_PROGRAMMES, brand_id)
        catalogue = self.worker.tables.catalogue
        now = self.worker.clock()
        current = catalogue.in_effect(brand_id, now)
        versions = sorted(catalogue.versions(brand_id), key=lambda p: p.version)
        return self.json(
            {
                "brand_id": brand_id,
                "versions": [
                    {
                        "version": p.version,
                        "name": p.name,
                        "effective_from": p.effective_from.isoformat(),
                        "in_effect": p is current,
                    }
                    for p in versions
                ],
            }
        )


class PromotionsView(ApiView):
    """Replace the promotional multipliers: a new version of the latest, from a moment on."""

    async def put(self, request: Request, brand_id: str) -> Response:
        caller = self.authorize(request, Permission.MANAGE_PROMOTIONS, brand_id)
        body = await parse_body(request, SetPromotions)
        try:
            programme = self.worker.tables.catalogue.successor(
                brand_id,
                body.effective_from or self.worker.clock(),
                promotions=body.promotions,
            )
        except KeyError as error:
            raise refuse(HTTPStatus.NOT_FOUND, f"no programme of brand {brand_id!r}") from error
        except ValidationError as error:
            raise refuse(HTTPStatus.UNPROCESSABLE_ENTITY, validation_summary(error)) from error
        return await publish(self, programme, caller, body.reason)


async def publish(
    view: ApiView, programme: Programme, caller: Caller, reason: str, *, backfill: bool = False
) -> Response:
    """Publish a new version with its audit entry; answered 201 once this worker has read it
    (or `WAIT_S` seconds on). Raises a WebError: 409 if its number is not above the latest,
    422 if it takes effect in the past and `backfill` is not set."""
    catalogue = view.worker.tables.catalogue
    try:
        catalogue.check_new(programme, view.worker.clock(), backfill=backfill)
    except StaleVersion as error:
        raise refuse(HTTPStatus.CONFLICT, str(error)) from error
    except Backdated as error:
        raise refuse(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from error
    await asyncio.to_thread(
        publish_programmes,
        view.worker.settings,
        [programme],
        actor=caller.subject,
        reason=reason,
        previous=catalogue.latest,
    )
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and catalogue.latest(programme.brand_id) != programme:
        await asyncio.sleep(POLL_S)
    return view.json(
        {
            "brand_id": programme.brand_id,
            "version": programme.version,
            "effective_from": programme.effective_from.isoformat(),
        },
        status=HTTPStatus.CREATED,
    )


ROUTES: dict[str, type[ApiView]] = {
    "/loyalty/programmes/{brand_id}": ProgrammeView,
    "/loyalty/programmes/{brand_id}/versions": ProgrammeVersionsView,
    "/loyalty/programmes/{brand_id}/promotions": PromotionsView,
}
