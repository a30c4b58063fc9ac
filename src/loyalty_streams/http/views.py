"""The worker's HTTP views of one player: lookup, history and cashback log, from the tables.

A lookup is answered by the worker that owns the player's partition. Any worker can take the
request: it forwards it to the owner named in `loyalty.workers`, so a load balancer may send
requests anywhere. When the owner cannot be reached (or Kafka cannot), the answer comes from this
worker's own copy if it has one, marked `stale` and dated by `as_of`, rather than not at all.
Every view needs a bearer token whose roles may read players and whose brands cover the player.
"""

from collections.abc import Mapping
from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import aiohttp
import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest
from pydantic import TypeAdapter, ValidationError
from yarl import URL

from loyalty_streams.domain.events import Identifier
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.standing import standing
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.base import (
    BRAND_HEADER,
    HISTORY_MAX,
    HISTORY_PAGE,
    ApiView,
    query_integer,
    query_moment,
    refuse,
)
from loyalty_streams.http.errors import serve_json_errors
from loyalty_streams.http.openapi import openapi_document
from loyalty_streams.http.writes import install_api
from loyalty_streams.runtime.fold import HISTORY_TYPE_NAMES
from loyalty_streams.runtime.worker import Worker

FORWARDED = "X-Loyalty-Forwarded-By"
"""Set on a forwarded lookup, so the owner answers itself instead of forwarding again."""

PASSED_ON = ("Authorization", BRAND_HEADER)
"""Headers a forwarded lookup keeps: the owner checks the token again."""

FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=2.0)

_identifier: TypeAdapter[str] = TypeAdapter(Identifier)


class PlayerView(ApiView):
    """A view of one player's data, answered by the worker owning the player's partition."""

    suffix = ""
    """What follows `/loyalty/{brand_id}/{player_id}` in the view's path."""

    async def get(self, request: Request, brand_id: str, player_id: str) -> Response:
        self.authorize(request, Permission.READ_PLAYERS)
        for name, value in (("brand_id", brand_id), ("player_id", player_id)):
            try:
                _identifier.validate_python(value)
            except ValidationError:
                return self._error(400, f"{name} {value!r} is not an id (no ':' or spaces)")
        self.authorize(request, Permission.READ_PLAYERS, brand_id)
        key = f"{brand_id}:{player_id}"
        pipeline = self.pipeline
        partition = pipeline.partition_of(key)
        owner = None if request.headers.get(FORWARDED) else pipeline.owner_url(partition)
        if owner is not None and not pipeline.owns(partition):
            url = owner_url(owner, brand_id, player_id, self.suffix, request.query)
            forwarded = await self._forward(url, request)
            if forwarded is not None:
                return forwarded
        stale = not pipeline.owns(partition)
        state, as_of = pipeline.read(partition, key)
        if state is None:
            if stale:
                return self._error(
                    503, f"partition {partition} of {key!r} has no reachable owner yet; retry"
                )
            return self._error(404, f"no player {key!r}: no event or command of theirs yet")
        now = pipeline.clock()
        body = self.answer(request, state, partition, now)
        if body is None:
            return self._error(503, f"no programme of brand {state.brand_id!r} in effect")
        body["served_by"] = {
            "worker": pipeline.worker_id,
            "partition": partition,
            "stale": stale,
            "as_of": None if as_of is None else as_of.isoformat(),
            "age_s": None if as_of is None else round(_age(now, as_of), 3),
        }
        return self.json(body)

    def answer(
        self, request: Request, state: PlayerState, partition: int, now: datetime
    ) -> dict[str, Any] | None:
        """The body for a player this worker holds; None when no programme is in effect.
        Raise a WebError for a bad query."""
        raise NotImplementedError

    async def _forward(self, url: URL, request: Request) -> Response | None:
        """The owner's answer at `url`, or None when it cannot be reached."""
        try:
            async with (
                aiohttp.ClientSession(timeout=FORWARD_TIMEOUT) as session,
                session.get(
                    url,
                    headers={
                        FORWARDED: self.pipeline.worker_id,
                        **{h: request.headers[h] for h in PASSED_ON if h in request.headers},
                    },
                ) as reply,
            ):
                body = await reply.read()
                return self.bytes(body, content_type="application/json", status=reply.status)
        except (aiohttp.ClientError, TimeoutError):
            return None

    def _error(self, status: int, message: str) -> Response:
        return self.json({"error": message}, status=status)


def owner_url(
    owner: str, brand_id: str, player_id: str, suffix: str, query: Mapping[str, str]
) -> URL:
    """The URL at which the worker at `owner` answers `/loyalty/{brand_id}/{player_id}{suffix}`
    with `query`: each id quoted whole, so a `%`, `#`, `?` or `/` in it stays part of the id."""
    path = f"/loyalty/{quote(brand_id, safe='')}/{quote(player_id, safe='')}{suffix}"
    return URL(f"{owner}{path}", encoded=True).with_query(query)


def install_views(app: faust.App, pipeline: Worker) -> None:
    """The worker's routes, every error of theirs answered as JSON."""
    serve_json_errors(app)
    install_api(app, pipeline)

    @app.page("/loyalty/{player_id}")
    class SeedLookup(PlayerView):
        """Seed 0's `GET /loyalty/{playerId}`: the brand from X-Brand-Id or `?brand_id=`."""

        async def get(self, request: Request, player_id: str) -> Response:  # type: ignore[override]
            self.authorize(request, Permission.READ_PLAYERS)
            brand_id = request.headers.get(BRAND_HEADER) or request.query.get("brand_id")
            if not brand_id:
                raise refuse(HTTPStatus.BAD_REQUEST, f"name the brand: {BRAND_HEADER} or brand_id")
            return await super().get(request, brand_id, player_id)

        def answer(
            self, request: Request, state: PlayerState, partition: int, now: datetime
        ) -> dict[str, Any] | None:
            return _standing(pipeline, state, now)

    @app.page("/loyalty/{brand_id}/{player_id}")
    class PlayerLookup(PlayerView):
        """Level, balances, holds, progress and perks."""

        def answer(
            self, request: Request, state: PlayerState, partition: int, now: datetime
        ) -> dict[str, Any] | None:
            return _standing(pipeline, state, now)

    @app.page("/loyalty/{brand_id}/{player_id}/cashback")
    class CashbackLog(PlayerView):
        """The daily cashback log: one row per closed day with play, newest first."""

        suffix = "/cashback"

        def answer(
            self, request: Request, state: PlayerState, partition: int, now: datetime
        ) -> dict[str, Any] | None:
            rows = pipeline.cashback_log(partition, state.brand_id, state.player_id)
            return {"brand_id": state.brand_id, "player_id": state.player_id, "days": rows}

    @app.page("/loyalty/{brand_id}/{player_id}/history")
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
            rows, cursor = pipeline.history(
                partition,
                state.brand_id,
                state.player_id,
                limit=query_integer(query.get("limit"), "limit", HISTORY_PAGE, HISTORY_MAX),
                cursor=query.get("cursor"),
                types=types,
                since=query_moment(query.get("since"), "since"),
                until=query_moment(query.get("until"), "until"),
                command_id=query.get("command_id"),
            )
            return {
                "brand_id": state.brand_id,
                "player_id": state.player_id,
                "history": rows,
                "next_cursor": cursor,
            }

    for view in (SeedLookup, PlayerLookup, CashbackLog, History):
        view.pipeline = pipeline

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(pipeline.metrics.registry)
            return self.bytes(body, content_type="text/plain; version=0.0.4", status=200)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            report = pipeline.health()
            return self.json(report, status=200 if report["status"] == "ok" else 503)

    @app.page("/openapi.json")
    class OpenApi(View):
        async def get(self, request: Request) -> Response:
            return self.json(openapi_document())


def _standing(pipeline: Worker, state: PlayerState, now: datetime) -> dict[str, Any] | None:
    programme = pipeline.tables.catalogue.in_effect(state.brand_id, now)
    return None if programme is None else standing(state, programme, now)


def _age(now: datetime, then: datetime) -> float:
    return max((now - then).total_seconds(), 0.0)
