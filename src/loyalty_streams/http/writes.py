"""The API's writes and administration: the platform spec's endpoints, redemptions, birthday claims,
programme versions, the audit trail and finance exports.

No rule is decided here. A write becomes one command on `loyalty.commands`, carried out (or
refused, with the reason) by the worker owning the player; the request then waits a moment for
that outcome in the player's history, so the caller usually learns it in the same answer (200,
or 409 with the refusal), and otherwise gets 202 with the command id to look it up. Programme
versions are validated by the domain and published with their audit entry.

A re-check of levels (after a programme change) is a player's command like the others, or, for
a whole brand, one record to every partition of the command topic with its audit entry; each
worker re-checks the players it holds, so the brand's answer is 202 once all are published.
"""

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from http import HTTPStatus
from typing import Any, cast
from uuid import uuid4

import aiohttp
import faust
import orjson
from aiohttp import web
from faust.web import Request, Response
from pydantic import ValidationError

from loyalty_streams.domain.catalogue import Backdated, StaleVersion
from loyalty_streams.domain.commands import (
    AdjustPoints,
    CancelRedemption,
    ClaimBirthdayGift,
    Command,
    ConfirmRedemption,
    ForceLevel,
    RecheckLevel,
    RedeemPoints,
)
from loyalty_streams.domain.outputs import AdjustmentDirection
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.validation import validation_summary
from loyalty_streams.http.auth import ALL_BRANDS, Caller, Permission
from loyalty_streams.http.base import (
    ApiView,
    parse_body,
    path_identifier,
    query_flag,
    query_integer,
    query_moment,
    refuse,
)
from loyalty_streams.http.bodies import (
    AddPoints,
    BrandRecheck,
    LevelRecheck,
    PlayerOnly,
    PlayerRequest,
    RequestRedemption,
    SetPromotions,
    UpdateStatus,
)
from loyalty_streams.http.command_sender import CommandSender
from loyalty_streams.kafka.scan import scan_topic
from loyalty_streams.kafka.topics import AUDIT
from loyalty_streams.reports.finance import ExportKind, brand_zone, export_csv, parse_bound
from loyalty_streams.runtime.global_tables import publish_programmes
from loyalty_streams.runtime.worker import Worker

WAIT_S = 5.0
"""How long a write waits for its outcome by default (`?wait=` seconds, 0 to 30)."""
MAX_WAIT_S = 30.0
POLL_S = 0.1
AUDIT_POLL_S = 0.25
"""Between two reads of the audit trail for a re-check's entry (each read is a pass over it
from the command's time on)."""
AUDIT_LIMIT = 1000


def require_programme(pipeline: Worker, brand_id: str, at: datetime) -> None:
    """Refuse (404) a write for a brand with no programme in effect: the worker would
    dead-letter its command, and the caller would only see it accepted."""
    if pipeline.tables.catalogue.in_effect(brand_id, at) is None:
        raise refuse(HTTPStatus.NOT_FOUND, f"no programme of brand {brand_id!r} in effect")


class CommandView(ApiView):
    """POST a command; answered with its outcome once the owning worker has carried it out."""

    permission: Permission
    body: type[PlayerRequest | LevelRecheck]
    sender: CommandSender

    async def post(self, request: Request, **path: str) -> Response:
        caller = self.authorize(request, self.permission)
        body, brand_id, player_id = await self.read(request, path)
        wait = _wait(request)
        fields = {
            "command_id": body.command_id or str(uuid4()),
            "brand_id": brand_id,
            "player_id": player_id,
            "issued_at": self.pipeline.clock(),
            "actor": caller.subject,  # recorded in the audit trail, whatever the body says
        }
        try:
            command = self.command(body, fields, path)
        except ValidationError as error:
            raise refuse(HTTPStatus.UNPROCESSABLE_ENTITY, validation_summary(error)) from error
        require_programme(self.pipeline, brand_id, command.issued_at)
        try:
            await self.sender.send(command)
        except RuntimeError as error:
            raise refuse(HTTPStatus.SERVICE_UNAVAILABLE, str(error)) from error
        return await self._outcome(request, command, wait)

    async def read(self, request: Request, path: dict[str, str]) -> tuple[Any, str, str]:
        """The body, and the brand and player it is for (named in the body), the caller's
        token checked for the brand."""
        body: Any = await parse_body(request, self.body)
        self.authorize(request, self.permission, body.brand_id)
        return body, body.brand_id, body.player_id

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        raise NotImplementedError

    async def _outcome(self, request: Request, command: Command, wait: float) -> Response:
        """What the command did, from the player's history (via whichever worker owns it)."""
        deadline = time.monotonic() + wait
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                rows = await self._rows(session, request, command)
                if rows:
                    return self._carried_out(command, rows[::-1])
                await asyncio.sleep(POLL_S)
        return self._accepted(command, wait)

    def _since(self, command: Command) -> datetime:
        """The earliest its outputs can be dated: they are dated when the stream received it,
        which is within the skew allowed of its issued_at (and may be below it: record
        timestamps are milliseconds)."""
        return command.issued_at - timedelta(seconds=self.pipeline.settings.command_clock_skew_s)

    async def _rows(
        self, session: aiohttp.ClientSession, request: Request, command: Command
    ) -> list[Any]:
        """The rows of the player's history the command made, newest first; none yet when the
        owner cannot be reached."""
        url = (
            f"{self.pipeline.settings.worker_url}"
            f"/loyalty/{command.brand_id}/{command.player_id}/history"
        )
        query = {"command_id": command.command_id, "since": self._since(command).isoformat()}
        headers = {"Authorization": request.headers["Authorization"]}
        try:
            async with session.get(url, params=query, headers=headers) as reply:
                rows: list[Any] = (await reply.json())["history"] if reply.status == 200 else []
        except (aiohttp.ClientError, TimeoutError, KeyError):
            rows = []
        return rows

    def _accepted(self, command: Command, wait: float) -> Response:
        return self.json(
            {
                "command_id": command.command_id,
                "status": "accepted",
                "detail": f"published; not carried out within {wait:g} s: see the player's "
                f"history?command_id={command.command_id}",
            },
            status=HTTPStatus.ACCEPTED,
        )

    def _carried_out(self, command: Command, rows: list[Any]) -> Response:
        refusal = next((row for row in rows if row["type"] == "CommandRejected"), None)
        body: dict[str, Any] = {"command_id": command.command_id, "outputs": rows}
        if refusal is None:
            return self.json(body | {"status": "applied"}, status=HTTPStatus.OK)
        return self.json(
            body | {"status": "rejected", "code": refusal["code"], "error": refusal["reason"]},
            status=HTTPStatus.CONFLICT,
        )


class AddPointsView(CommandView):
    """Seed 0's `POST /loyalty/points/add`: a manual credit or debit, by the caller."""

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


class UpdateStatusView(CommandView):
    """Seed 0's `POST /loyalty/status/update`: force a level, by the caller."""

    permission = Permission.FORCE_STATUS
    body = UpdateStatus

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return ForceLevel(**fields, level=body.level, until=body.until, reason=body.reason)


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

    async def _outcome(self, request: Request, command: Command, wait: float) -> Response:
        """A re-check that moves no level leaves no row in the player's history, only its
        audit entry (written whether it was carried out or refused): the answer waits for the
        entry, then for the rows it says there are, and holds both."""
        deadline = time.monotonic() + wait
        entry = await self._audit_entry(command, deadline)
        if entry is None:
            return self._accepted(command, wait)
        made_rows = entry["outcome"] != "applied" or entry["before"] != entry["after"]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            rows = await self._rows(session, request, command)
            while made_rows and not rows and time.monotonic() < deadline:
                await asyncio.sleep(POLL_S)
                rows = await self._rows(session, request, command)
        return self._carried_out(command, [*rows[::-1], entry])

    async def _audit_entry(self, command: Command, deadline: float) -> dict[str, Any] | None:
        """The command's audit entry once `loyalty.audit` holds it; None at the deadline."""
        output_id, key = f"{command.command_id}:audit", command.key.encode()
        since = self._since(command)

        def find() -> dict[str, Any] | None:
            for record in scan_topic(self.pipeline.settings, AUDIT, since=since, until=None):
                if record.key == key:
                    entry: dict[str, Any] = orjson.loads(record.value)
                    if entry.get("output_id") == output_id:
                        return entry
            return None

        while time.monotonic() < deadline:
            try:
                entry = await asyncio.to_thread(find)
            except (LookupError, TimeoutError):
                entry = None
            if entry is not None:
                return entry
            await asyncio.sleep(AUDIT_POLL_S)
        return None


class RecheckBrandView(ApiView):
    """Re-check the level of every player of a brand, by the caller: one record to every
    partition of the command topic and one audit entry; answered 202 once all are acknowledged
    (each worker re-checks the players it holds, in its own time)."""

    sender: CommandSender

    async def post(self, request: Request, brand_id: str) -> Response:
        caller = self.authorize(request, Permission.RECHECK_LEVELS)
        brand_id = path_identifier(brand_id, "brand_id")
        self.authorize(request, Permission.RECHECK_LEVELS, brand_id)
        body = await parse_body(request, BrandRecheck)
        now = self.pipeline.clock()
        require_programme(self.pipeline, brand_id, now)
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


class BirthdayView(CommandView):
    permission = Permission.ACT_FOR_PLAYERS
    body = PlayerOnly

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return ClaimBirthdayGift(**fields)


class ProgrammeView(ApiView):
    """The brand's programme in effect now (GET) and new versions (POST)."""

    async def get(self, request: Request, brand_id: str) -> Response:
        self.authorize(request, Permission.READ_PROGRAMMES, brand_id)
        programme = self.pipeline.tables.catalogue.in_effect(brand_id, self.pipeline.clock())
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
    async def get(self, request: Request, brand_id: str) -> Response:
        self.authorize(request, Permission.READ_PROGRAMMES, brand_id)
        catalogue = self.pipeline.tables.catalogue
        now = self.pipeline.clock()
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
            programme = self.pipeline.tables.catalogue.successor(
                brand_id,
                body.effective_from or self.pipeline.clock(),
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
    """Publish a new version with its audit entry; answered 201 once this worker has read it.
    Raises a WebError: 409 if its number is not above the latest, 422 if it takes effect in
    the past and `backfill` is not set."""
    catalogue = view.pipeline.tables.catalogue
    try:
        catalogue.check_new(programme, view.pipeline.clock(), backfill=backfill)
    except StaleVersion as error:
        raise refuse(HTTPStatus.CONFLICT, str(error)) from error
    except Backdated as error:
        raise refuse(HTTPStatus.UNPROCESSABLE_ENTITY, str(error)) from error
    await asyncio.to_thread(
        publish_programmes,
        view.pipeline.settings,
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


class AuditView(ApiView):
    """The audit trail, newest first: `?brand_id=&player_id=&actor=&action=&from=&to=&limit=`."""

    async def get(self, request: Request) -> Response:
        caller = self.authorize(request, Permission.READ_AUDIT)
        query = request.query
        brand_id = query.get("brand_id")
        if brand_id is None and ALL_BRANDS not in caller.brands:
            raise refuse(HTTPStatus.BAD_REQUEST, "brand_id is required for a brand-scoped token")
        if brand_id is not None:
            self.authorize(request, Permission.READ_AUDIT, brand_id)
        since = query_moment(query.get("from"), "from")
        until = query_moment(query.get("to"), "to")
        limit = query_integer(query.get("limit"), "limit", 100, AUDIT_LIMIT)
        wanted = {
            name: query[name]
            for name in ("brand_id", "player_id", "actor", "action")
            if name in query
        }

        def matching() -> list[Any]:
            found = []
            for record in scan_topic(self.pipeline.settings, AUDIT, since=None, until=None):
                entry = orjson.loads(record.value)
                at = datetime.fromisoformat(entry["occurred_at"])
                if (
                    all(entry.get(name) == value for name, value in wanted.items())
                    and caller.covers(entry["brand_id"])
                    and (since is None or at >= since)
                    and (until is None or at < until)
                ):
                    found.append(entry)
            found.sort(key=lambda entry: entry["occurred_at"], reverse=True)
            return found

        try:
            entries = await asyncio.to_thread(matching)
        except (LookupError, TimeoutError) as error:
            message = f"the audit trail cannot be read: {error}"
            raise refuse(HTTPStatus.SERVICE_UNAVAILABLE, message) from error
        return self.json(
            {"entries": entries[:limit], "total": len(entries), "truncated": len(entries) > limit}
        )


class ExportView(ApiView):
    """A finance CSV for a brand and date range, streamed: `?brand_id=&from=&to=`."""

    async def get(self, request: Request, kind: str) -> web.StreamResponse:
        self.authorize(request, Permission.EXPORT)
        query = request.query
        brand_id = query.get("brand_id", "")
        self.authorize(request, Permission.EXPORT, brand_id)
        try:
            export = ExportKind(kind)
        except ValueError as error:
            kinds = ", ".join(k.value for k in ExportKind)
            raise refuse(HTTPStatus.NOT_FOUND, f"no export {kind!r}; exports: {kinds}") from error
        zone = brand_zone(self.pipeline.tables.catalogue, brand_id, self.pipeline.clock())
        if zone is None:
            raise refuse(HTTPStatus.NOT_FOUND, f"no programme of brand {brand_id!r}")
        try:
            since = parse_bound(query.get("from", ""), zone)
            until = parse_bound(query.get("to", ""), zone)
            chunks = export_csv(self.pipeline.settings, export, brand_id, since, until)
        except ValueError as error:
            raise refuse(HTTPStatus.BAD_REQUEST, f"from/to: {error}") from error
        name = f"{brand_id}-{export.value}-{since.date()}-{until.date()}.csv"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            }
        )
        await response.prepare(cast(web.BaseRequest, request))  # Faust serves with aiohttp
        await _stream(response, chunks)
        await response.write_eof()
        return response


async def _stream(response: web.StreamResponse, chunks: Iterator[str]) -> None:
    """Each chunk read from the topic in a thread, then written: memory stays flat."""
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await response.write(chunk.encode())
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _wait(request: Request) -> float:
    text = request.query.get("wait")
    if text is None:
        return WAIT_S
    try:
        wait = float(text)
    except ValueError:
        wait = -1.0
    if not 0 <= wait <= MAX_WAIT_S:
        raise refuse(HTTPStatus.BAD_REQUEST, f"wait: {text!r} is not 0 to {MAX_WAIT_S:g} seconds")
    return wait


def install_api(app: faust.App, pipeline: Worker) -> None:
    """The API's routes. Installed before the player views: `/loyalty/audit` and the like must
    win over `/loyalty/{playerId}` and `/loyalty/{brand_id}/{player_id}`."""
    sender = CommandSender(pipeline.settings)
    routes: dict[str, type[ApiView]] = {
        "/loyalty/points/add": AddPointsView,
        "/loyalty/status/update": UpdateStatusView,
        "/loyalty/redemptions": RedeemView,
        "/loyalty/redemptions/{redemption_id}/confirm": ConfirmView,
        "/loyalty/redemptions/{redemption_id}/cancel": CancelView,
        "/loyalty/birthday/claim": BirthdayView,
        "/loyalty/{brand_id}/{player_id}/recheck": RecheckLevelView,
        "/loyalty/admin/brands/{brand_id}/recheck": RecheckBrandView,
        "/loyalty/programmes/{brand_id}": ProgrammeView,
        "/loyalty/programmes/{brand_id}/versions": ProgrammeVersionsView,
        "/loyalty/programmes/{brand_id}/promotions": PromotionsView,
        "/loyalty/audit": AuditView,
        "/loyalty/exports/{kind}": ExportView,
    }
    for path, view in routes.items():
        bound = type(view.__name__, (view,), {"pipeline": pipeline, "sender": sender})
        app.page(path)(bound)
