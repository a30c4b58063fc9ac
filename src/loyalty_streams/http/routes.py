"""The worker's HTTP routes, installed on its Faust app: each resource module's `ROUTES`, then
the back office's page (`PAGES`), every error answered as JSON (`errors`)."""

from collections.abc import Mapping

import faust

from loyalty_streams.http import (
    audit,
    backoffice,
    birthday,
    coin_rewards,
    explain,
    exports,
    health,
    metrics,
    openapi,
    players,
    points,
    programmes,
    recheck,
    redemptions,
    status,
    whatif,
)
from loyalty_streams.http.api_view import WorkerView
from loyalty_streams.http.command_sender import CommandSender
from loyalty_streams.http.errors import serve_json_errors
from loyalty_streams.runtime.worker import Worker

ROUTES: tuple[Mapping[str, type[WorkerView]], ...] = (
    points.ROUTES,
    status.ROUTES,
    redemptions.ROUTES,
    birthday.ROUTES,
    coin_rewards.ROUTES,
    recheck.ROUTES,
    programmes.ROUTES,
    audit.ROUTES,
    exports.ROUTES,
    whatif.ROUTES,
    explain.ROUTES,
    players.ROUTES,
    metrics.ROUTES,
    health.ROUTES,
    openapi.ROUTES,
)
"""In the order they are installed, which is the order the router tries them: every fixed path
(`/loyalty/audit`, `/loyalty/points/add`) before the player routes whose ids would match it
(`/loyalty/{player_id}`, `/loyalty/{brand_id}/{player_id}`)."""
PAGES: tuple[Mapping[str, type[WorkerView]], ...] = (backoffice.ROUTES,)
"""Pages for people, not part of the API (nor of its OpenAPI document): installed after it."""


def install_routes(app: faust.App, worker: Worker) -> None:
    """Every route of `ROUTES` on `app`, its view bound to `worker` and to one command sender
    (a producer) shared by the worker's writes; the JSON error answers first. Must run before
    anything else touches `app.web`; raises RuntimeError otherwise."""
    serve_json_errors(app)
    sender = CommandSender(worker.settings)
    for routes in (*ROUTES, *PAGES):
        for path, view in routes.items():
            bound = type(view.__name__, (view,), {"worker": worker, "sender": sender})
            app.page(path)(bound)
