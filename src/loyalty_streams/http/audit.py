"""The audit trail: `GET /loyalty/audit`, the entries of `loyalty.audit` the caller's brands
cover, newest first, filtered by brand, player, actor, action and time."""

import asyncio
from datetime import datetime
from http import HTTPStatus
from typing import Any

import orjson
from faust.web import Request, Response

from loyalty_streams.domain.outputs import AuditAction
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import ALL_BRANDS, Permission
from loyalty_streams.http.errors import refuse
from loyalty_streams.http.parameters import query_choice, query_integer, query_moment
from loyalty_streams.kafka.reading import scan_topic
from loyalty_streams.kafka.topics import AUDIT

AUDIT_LIMIT = 1000
"""The most entries one answer holds (`?limit=`, 100 by default)."""
AUDIT_ACTIONS = tuple(action.value for action in AuditAction)
"""What `?action=` may name: an action not among them is a 400, not an empty answer."""


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
        query_choice(query.get("action"), "action", AUDIT_ACTIONS)
        wanted = {
            name: query[name]
            for name in ("brand_id", "player_id", "actor", "action")
            if name in query
        }

        def matching() -> list[Any]:
            found = []
            for record in scan_topic(self.worker.settings, AUDIT, since=None, until=None):
                entry = orjson.loads(record.value or b"")
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


ROUTES: dict[str, type[ApiView]] = {"/loyalty/audit": AuditView}
