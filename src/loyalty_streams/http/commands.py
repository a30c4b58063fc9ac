"""A write as a command: the view every player's write builds on (`CommandView`), and how long
a write waits for its outcome.

No rule is decided here. A write becomes one command on `loyalty.commands`, carried out (or
refused, with the reason) by the worker owning the player; the request then waits a moment for
that outcome in the player's history, so the caller usually learns it in the same answer (200,
or 409 with the refusal), and otherwise gets 202 with the command id to look it up.
"""

import asyncio
import time
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from uuid import uuid4

import aiohttp
from faust.web import Request, Response
from pydantic import ValidationError

from loyalty_streams.domain.commands import (
    ClaimBirthdayGift,
    ClaimDailyReward,
    ClaimMonthlyBonus,
    Command,
)
from loyalty_streams.domain.validation import validation_summary
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.bodies import LevelRecheck, PlayerOnly, PlayerRequest, parse_body
from loyalty_streams.http.command_sender import CommandSender
from loyalty_streams.http.errors import refuse
from loyalty_streams.runtime.worker import Worker

WAIT_S = 5.0
"""How long a write waits for its outcome by default (`?wait=` seconds, 0 to 30)."""
MAX_WAIT_S = 30.0
POLL_S = 0.1
"""Between two looks for a write's outcome."""


def require_programme(worker: Worker, brand_id: str, at: datetime) -> None:
    """Refuse (404) a write for a brand with no programme in effect: the worker would
    dead-letter its command, and the caller would only see it accepted."""
    if worker.tables.catalogue.in_effect(brand_id, at) is None:
        raise refuse(HTTPStatus.NOT_FOUND, f"no programme of brand {brand_id!r} in effect")


class CommandView(ApiView):
    """POST a command; answered with its outcome once the owning worker has carried it out.
    A subclass names the permission, the body and the command the body becomes."""

    permission: Permission
    body: type[PlayerRequest | LevelRecheck]
    sender: CommandSender
    """Bound when `routes` installs the view: one per worker."""

    async def post(self, request: Request, **path: str) -> Response:
        caller = self.authorize(request, self.permission)
        body, brand_id, player_id = await self.read(request, path)
        wait = _wait(request)
        fields = {
            "command_id": body.command_id or str(uuid4()),
            "brand_id": brand_id,
            "player_id": player_id,
            "issued_at": self.worker.clock(),
            "actor": caller.subject,  # recorded in the audit trail, whatever the body says
        }
        try:
            command = self.command(body, fields, path)
        except ValidationError as error:
            raise refuse(HTTPStatus.UNPROCESSABLE_ENTITY, validation_summary(error)) from error
        require_programme(self.worker, brand_id, command.issued_at)
        try:
            await self.sender.send(command)
        except RuntimeError as error:
            raise refuse(HTTPStatus.SERVICE_UNAVAILABLE, str(error)) from error
        return await self.outcome(request, command, wait)

    async def read(self, request: Request, path: dict[str, str]) -> tuple[Any, str, str]:
        """The body, and the brand and player it is for (named in the body), the caller's
        token checked for the brand."""
        body: Any = await parse_body(request, self.body)
        self.authorize(request, self.permission, body.brand_id)
        return body, body.brand_id, body.player_id

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        """The command `body` asks for, with the common `fields` (id, brand, player, time,
        actor) and the `path`'s parameters; pydantic's ValidationError for a bad field."""
        raise NotImplementedError

    async def outcome(self, request: Request, command: Command, wait: float) -> Response:
        """What the command did, from the player's history (via whichever worker owns it)."""
        deadline = time.monotonic() + wait
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                rows = await self.rows(session, request, command)
                if rows:
                    return self.carried_out(command, rows[::-1])
                await asyncio.sleep(POLL_S)
        return self.accepted(command, wait)

    def since(self, command: Command) -> datetime:
        """The earliest its outputs can be dated: they are dated when the stream received it,
        which is within the skew allowed of its issued_at (and may be below it: record
        timestamps are milliseconds)."""
        return command.issued_at - timedelta(seconds=self.worker.settings.command_clock_skew_s)

    async def rows(
        self, session: aiohttp.ClientSession, request: Request, command: Command
    ) -> list[Any]:
        """The rows of the player's history the command made, newest first; none yet when the
        owner cannot be reached."""
        url = (
            f"{self.worker.settings.worker_url}"
            f"/loyalty/{command.brand_id}/{command.player_id}/history"
        )
        query = {"command_id": command.command_id, "since": self.since(command).isoformat()}
        headers = {"Authorization": request.headers["Authorization"]}
        try:
            async with session.get(url, params=query, headers=headers) as reply:
                rows: list[Any] = (await reply.json())["history"] if reply.status == 200 else []
        except (aiohttp.ClientError, TimeoutError, KeyError):
            rows = []
        return rows

    def accepted(self, command: Command, wait: float) -> Response:
        """202: published, not carried out within `wait` seconds."""
        return self.json(
            {
                "command_id": command.command_id,
                "status": "accepted",
                "detail": f"published; not carried out within {wait:g} s: see the player's "
                f"history?command_id={command.command_id}",
            },
            status=HTTPStatus.ACCEPTED,
        )

    def carried_out(self, command: Command, rows: list[Any]) -> Response:
        """200 with the outputs `rows` (oldest first, an operator's audit entry, the record of
        the whole command, last), or 409 with the refusal among them."""
        rows = sorted(rows, key=lambda row: row["type"] == "AuditEntry")  # stable
        refusal = next((row for row in rows if row["type"] == "CommandRejected"), None)
        body: dict[str, Any] = {"command_id": command.command_id, "outputs": rows}
        if refusal is None:
            return self.json(body | {"status": "applied"}, status=HTTPStatus.OK)
        return self.json(
            body | {"status": "rejected", "code": refusal["code"], "error": refusal["reason"]},
            status=HTTPStatus.CONFLICT,
        )


class ClaimView(CommandView):
    """A player's claim of a reward, by someone acting for them: the body names the player
    (`PlayerOnly`), the command (`claim`) needs nothing more; whether it is due is the rules'."""

    permission = Permission.ACT_FOR_PLAYERS
    body = PlayerOnly
    claim: type[ClaimBirthdayGift | ClaimDailyReward | ClaimMonthlyBonus]

    def command(self, body: Any, fields: dict[str, Any], path: dict[str, str]) -> Command:
        return self.claim(**fields)


def _wait(request: Request) -> float:
    """`?wait=`: seconds from 0 to `MAX_WAIT_S`, `WAIT_S` when absent; a 400 WebError else."""
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
