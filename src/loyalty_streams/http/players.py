"""A player's data: the lookup (`/loyalty/{brand_id}/{player_id}`, and the platform spec's
`/loyalty/{player_id}`), their history and their daily cashback log, read from the worker's
tables.

Each is answered by the worker that owns the player's partition (`forwarding`). When the owner
cannot be reached (or Kafka cannot), the answer comes from this worker's own copy if it has one,
marked `stale` and dated by `as_of`, rather than not at all. Every view needs a bearer token
whose roles may read players and whose brands cover the player.
"""

from datetime import datetime
from http import HTTPStatus
from typing import Any

from faust.web import Request, Response

from loyalty_streams.domain.events import player_key
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.standing import standing
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.errors import refuse
from loyalty_streams.http.forwarding import ask_owner
from loyalty_streams.http.parameters import (
    BRAND_HEADER,
    path_identifier,
    query_integer,
    query_moment,
)
from loyalty_streams.runtime.fold import HISTORY_TYPE_NAMES
from loyalty_streams.state.queries import cashback_log, history_page

HISTORY_PAGE = 50
"""A player's history rows a page holds by default (`?limit=`), and at most."""
HISTORY_MAX = 500


class PlayerView(ApiView):
    """A view of one player's data, answered by the worker owning the player's partition."""

    suffix = ""
    """What follows `/loyalty/{brand_id}/{player_id}` in the view's path."""

    async def get(self, request: Request, brand_id: str, player_id: str) -> Response:
        self.authorize(request, Permission.READ_PLAYERS)
        path_identifier(brand_id, "brand_id")
        path_identifier(player_id, "player_id")
        self.authorize(request, Permission.READ_PLAYERS, brand_id)
        key = player_key(brand_id, player_id)
        worker = self.worker
        partition = worker.partition_of(key)
        forwarded = await ask_owner(worker, partition, request, brand_id, player_id, self.suffix)
        if forwarded is not None:
            status, body = forwarded
            return self.bytes(body, content_type="application/json", status=status)
        stale = not worker.owns(partition)
        state, as_of = worker.read(partition, key)
        if state is None:
            if stale:
                message = f"partition {partition} of {key!r} has no reachable owner yet; retry"
                raise refuse(HTTPStatus.SERVICE_UNAVAILABLE, message)
            message = f"no player {key!r}: no event or command of theirs yet"
            raise refuse(HTTPStatus.NOT_FOUND, message)
        now = worker.clock()
        answer = self.answer(request, state, partition, now)
        if answer is None:
            message = f"no programme of brand {state.brand_id!r} in effect"
            raise refuse(HTTPStatus.SERVICE_UNAVAILABLE, message)
        answer["served_by"] = {
            "worker": worker.worker_id,
            "partition": partition,
            "stale": stale,
            "as_of": None if as_of is None else as_of.isoformat(),
            "age_s": None if as_of is None else round(_age(now, as_of), 3),
        }
        return self.json(answer)

    def answer(
        self, request: Request, state: PlayerState, partition: int, now: datetime
    ) -> dict[str, Any] | None:
        """The body for a player this worker holds; None when no programme is in effect.
        Raise a WebError for a bad query."""
        raise NotImplementedError


class PlayerLookup(PlayerView):
    """Level, balances, holds, progress and perks."""

    def answer(
        self, request: Request, state: PlayerState, partition: int, now: datetime
    ) -> dict[str, Any] | None:
        programme = self.worker.tables.catalogue.in_effect(state.brand_id, now)
        return None if programme is None else standing(state, programme, now)


class SpecLookup(PlayerLookup):
    """The platform spec's `GET /loyalty/{playerId}`: the brand from X-Brand-Id or
    `?brand_id=`."""

    async def get(self, request: Request, player_id: str) -> Response:  # type: ignore[override]
        self.authorize(request, Permission.READ_PLAYERS)
        brand_id = request.headers.get(BRAND_HEADER) or request.query.get("brand_id")
        if not brand_id:
            raise refuse(HTTPStatus.BAD_REQUEST, f"name the brand: {BRAND_HEADER} or brand_id")
        return await super().get(request, brand_id, player_id)


class CashbackLog(PlayerView):
    """The daily cashback log: one row per closed day with play, newest first."""

    suffix = "/cashback"

    def answer(
        self, request: Request, state: PlayerState, partition: int, now: datetime
    ) -> dict[str, Any] | None:
        store = self.worker.store(partition)
        rows = [] if store is None else cashback_log(store, state.brand_id, state.player_id)
        return {"brand_id": state.brand_id, "player_id": state.player_id, "days": rows}


class History(PlayerView):
    """Points, levels, redemptions, rewards and refusals, newest first, a page at a time:
    `?limit=&cursor=&types=A,B&since=&until=&command_id=`."""

    suffix = "/history"

    def answer(
        self, request: Request, state: PlayerState, partition: int, now: datetime
    ) -> dict[str, Any] | None:
        query = request.query
        types = frozenset(filter(None, query.get("types", "").split(",")))
        unknown = types - HISTORY_TYPE_NAMES
        if unknown:
            known = ", ".join(sorted(HISTORY_TYPE_NAMES))
            raise refuse(HTTPStatus.BAD_REQUEST, f"types: no {sorted(unknown)}; use {known}")
        limit = query_integer(query.get("limit"), "limit", HISTORY_PAGE, HISTORY_MAX)
        since = query_moment(query.get("since"), "since")
        until = query_moment(query.get("until"), "until")
        store = self.worker.store(partition)
        rows, cursor = (
            ([], None)
            if store is None
            else history_page(
                store,
                state.brand_id,
                state.player_id,
                limit=limit,
                cursor=query.get("cursor"),
                types=types,
                since=since,
                until=until,
                command_id=query.get("command_id"),
            )
        )
        return {
            "brand_id": state.brand_id,
            "player_id": state.player_id,
            "history": rows,
            "next_cursor": cursor,
        }


ROUTES: dict[str, type[ApiView]] = {
    "/loyalty/{player_id}": SpecLookup,
    "/loyalty/{brand_id}/{player_id}": PlayerLookup,
    "/loyalty/{brand_id}/{player_id}/cashback": CashbackLog,
    "/loyalty/{brand_id}/{player_id}/history": History,
}


def _age(now: datetime, then: datetime) -> float:
    return max((now - then).total_seconds(), 0.0)
