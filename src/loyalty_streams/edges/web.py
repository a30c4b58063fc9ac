"""The worker's HTTP views: player lookups and cashback logs from the tables, and a health probe.

A lookup is answered by the worker that owns the player's partition. Any worker can take the
request: it forwards it to the owner named in `loyalty.workers`, so a load balancer may send
requests anywhere. When the owner cannot be reached (or Kafka cannot), the answer comes from this
worker's own copy if it has one, marked `stale` and dated by `as_of`, rather than not at all.
"""

from datetime import datetime
from typing import Any

import aiohttp
import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest
from pydantic import TypeAdapter, ValidationError

from loyalty_streams.domain.events import Identifier
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.standing import standing
from loyalty_streams.streams.app import Pipeline

FORWARDED = "X-Loyalty-Forwarded-By"
"""Set on a forwarded lookup, so the owner answers itself instead of forwarding again."""

FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=2.0)

_identifier: TypeAdapter[str] = TypeAdapter(Identifier)


class PlayerView(View):
    """A view of one player's data, answered by the worker owning the player's partition."""

    pipeline: Pipeline

    async def get(self, request: Request, brand_id: str, player_id: str) -> Response:
        for name, value in (("brand_id", brand_id), ("player_id", player_id)):
            try:
                _identifier.validate_python(value)
            except ValidationError:
                return self._error(400, f"{name} {value!r} is not an id (no ':' or spaces)")
        key = f"{brand_id}:{player_id}"
        pipeline = self.pipeline
        partition = pipeline.partition_of(key)
        owner = None if request.headers.get(FORWARDED) else pipeline.owner_url(partition)
        if owner is not None and not pipeline.owns(partition):
            forwarded = await self._forward(owner, request)
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
        body = self.answer(state, partition, now)
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

    def answer(self, state: PlayerState, partition: int, now: datetime) -> dict[str, Any] | None:
        """The body for a player this worker holds; None when no programme is in effect."""
        raise NotImplementedError

    async def _forward(self, owner: str, request: Request) -> Response | None:
        """The owner's answer, or None when it cannot be reached."""
        try:
            async with (
                aiohttp.ClientSession(timeout=FORWARD_TIMEOUT) as session,
                session.get(
                    f"{owner}{request.url.path_qs}", headers={FORWARDED: self.pipeline.worker_id}
                ) as reply,
            ):
                body = await reply.read()
                return self.bytes(body, content_type="application/json", status=reply.status)
        except (aiohttp.ClientError, TimeoutError):
            return None

    def _error(self, status: int, message: str) -> Response:
        return self.json({"error": message}, status=status)


def install_views(app: faust.App, pipeline: Pipeline) -> None:
    @app.page("/loyalty/{brand_id}/{player_id}")
    class PlayerLookup(PlayerView):
        """Level, balances, holds, progress and perks."""

        def answer(
            self, state: PlayerState, partition: int, now: datetime
        ) -> dict[str, Any] | None:
            programme = pipeline.tables.catalogue.in_effect(state.brand_id, now)
            return None if programme is None else standing(state, programme, now)

    @app.page("/loyalty/{brand_id}/{player_id}/cashback")
    class CashbackLog(PlayerView):
        """The daily cashback log: one row per closed day with play, newest first."""

        def answer(
            self, state: PlayerState, partition: int, now: datetime
        ) -> dict[str, Any] | None:
            rows = pipeline.cashback_log(partition, state.brand_id, state.player_id)
            return {"brand_id": state.brand_id, "player_id": state.player_id, "days": rows}

    PlayerLookup.pipeline = CashbackLog.pipeline = pipeline

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


def _age(now: datetime, then: datetime) -> float:
    return max((now - then).total_seconds(), 0.0)
