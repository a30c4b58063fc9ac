"""The OpenAPI 3.1 document, served at `/openapi.json`: one `Operation` a documented route and
method, built from the same models, grants and limits the views use, so it cannot drift from them
on bodies, roles, parameters or answers."""

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from faust.web import Request, Response
from pydantic import BaseModel, TypeAdapter

from loyalty_streams.domain.events import Identifier
from loyalty_streams.domain.explanation import DAYS_PAGE
from loyalty_streams.domain.programme import Programme
from loyalty_streams.http.api_view import WorkerView
from loyalty_streams.http.audit import AUDIT_ACTIONS, AUDIT_LIMIT
from loyalty_streams.http.auth import GRANTS, Permission
from loyalty_streams.http.bodies import (
    AddPoints,
    BrandRecheck,
    LevelRecheck,
    PlayerOnly,
    RequestRedemption,
    SetPromotions,
    UpdateStatus,
)
from loyalty_streams.http.commands import MAX_WAIT_S, WAIT_S
from loyalty_streams.http.explain import DAYS_MAX as EXPLAIN_DAYS_MAX
from loyalty_streams.http.parameters import BRAND_HEADER
from loyalty_streams.http.players import HISTORY_MAX, HISTORY_PAGE
from loyalty_streams.http.whatif import (
    JOBS,
    WHAT_IF_PERMISSION,
    WhatIfAccepted,
    WhatIfJob,
    WhatIfRequest,
)
from loyalty_streams.reports.finance import ExportKind
from loyalty_streams.whatif.jobs import TABLES


@dataclass(frozen=True, slots=True)
class Parameter:
    """A query parameter or header of an operation, with the schema the view checks."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    where: str = "query"
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    summary: str
    permission: Permission
    body: type[BaseModel] | None = None
    parameters: tuple[Parameter, ...] = ()
    answers: dict[str, str] = field(default_factory=lambda: {"200": "OK"})
    """Its answers other than errors: status and what it means."""
    csv: bool = False
    html: bool = False
    """Its answers are an HTML page."""
    answer: type[BaseModel] | None = None
    """The model of its JSON answers (None: an object)."""
    refusals: dict[str, str] = field(default_factory=dict)
    """Errors only it gives, besides `ERRORS`: status and when."""


def _moment(name: str, description: str) -> Parameter:
    return Parameter(name, {"type": "string", "format": "date-time"}, description)


def _limit(default: int, most: int) -> Parameter:
    schema = {"type": "integer", "minimum": 1, "maximum": most, "default": default}
    return Parameter("limit", schema, "How many rows at most")


def _text(name: str, description: str, required: bool = False) -> Parameter:
    return Parameter(name, {"type": "string"}, description, required=required)


WAIT = Parameter(
    "wait",
    {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S, "default": WAIT_S},
    "Seconds to wait for the outcome; 0 does not wait",
)
BOUND = "A date (midnight in the brand's time zone) or an ISO time (without an offset: the zone's)"
COMMAND_ANSWERS = {
    "200": "Carried out: the outputs it produced",
    "202": "Published, not carried out within `wait`: look it up by command_id",
    "409": "Refused by the rules: the code and the reason",
}


def _refusals(**codes: str) -> dict[str, str]:
    """`COMMAND_ANSWERS` with its 409 naming the rules' `codes` (code: when it is given)."""
    listed = "; ".join(f"`{code}`: {when}" for code, when in codes.items())
    return COMMAND_ANSWERS | {"409": f"{COMMAND_ANSWERS['409']}. Codes: {listed}"}


BIRTHDAY_REFUSALS = _refusals(
    already_claimed="this calendar year's gift (brand time zone) was claimed",
    no_gift="the level has no birthday gift",
)
DAILY_REWARD_REFUSALS = _refusals(
    no_daily_reward="the brand pays no daily reward",
    already_claimed="this brand day's reward was claimed; the reason says from when the next "
    "one can be",
)
MONTHLY_BONUS_REFUSALS = _refusals(
    no_monthly_bonus="the brand pays no monthly bonus",
    not_eligible="the player's level has not the monthly_bonus perk",
    already_claimed="this calendar month's bonus (brand time zone) was claimed",
)
PLAYER = "/loyalty/{brand_id}/{player_id}"
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "brand_id": TypeAdapter(Identifier).json_schema(),
    "player_id": TypeAdapter(Identifier).json_schema(),
    "redemption_id": TypeAdapter(Identifier).json_schema(),
    "kind": {"type": "string", "enum": [kind.value for kind in ExportKind]},
    "job_id": {"type": "string", "format": "uuid"},
}

OPERATIONS = (
    Operation("get", "/loyalty/{player_id}", "The player lookup; brand from X-Brand-Id "
              "or brand_id", Permission.READ_PLAYERS,
              parameters=(_text("brand_id", f"The brand, unless {BRAND_HEADER} names it"),
                          Parameter(BRAND_HEADER, {"type": "string"}, "The brand", "header"))),
    Operation("get", PLAYER, "Level, points, turnover, progress, perks, multipliers",
              Permission.READ_PLAYERS),
    Operation("get", f"{PLAYER}/history", "The player's history, newest first, paged",
              Permission.READ_PLAYERS,
              parameters=(_limit(HISTORY_PAGE, HISTORY_MAX),
                          _text("cursor", "The previous page's next_cursor"),
                          _text("types", "Output types, comma-separated"),
                          _moment("since", "From this time on (RFC 3339, with an offset)"),
                          _moment("until", "Before this time (RFC 3339, with an offset)"),
                          _text("command_id", "What one command did"))),
    Operation("get", f"{PLAYER}/cashback", "The daily cashback log", Permission.READ_PLAYERS),
    Operation("get", f"{PLAYER}/explain",
              "Why this balance and this level: the history as a reconciliation by brand day, "
              "oldest first, paged, ending on available + held; the level's statement",
              Permission.READ_PLAYERS,
              parameters=(Parameter("limit", _limit(DAYS_PAGE, EXPLAIN_DAYS_MAX).schema,
                                    "How many brand days at most"),
                          Parameter("cursor", {"type": "string", "format": "date"},
                                    "The brand day to start at (YYYY-MM-DD): the previous "
                                    "page's next_cursor"))),
    Operation("post", "/loyalty/points/add", "Manual credit (points > 0) or debit (< 0)",
              Permission.ADJUST_POINTS, AddPoints, (WAIT,), COMMAND_ANSWERS),
    Operation("post", "/loyalty/status/update", "Force a level, until a moment or for good",
              Permission.FORCE_STATUS, UpdateStatus, (WAIT,), COMMAND_ANSWERS),
    Operation("post", "/loyalty/redemptions", "Request a redemption: the points are held",
              Permission.ACT_FOR_PLAYERS, RequestRedemption, (WAIT,), COMMAND_ANSWERS),
    Operation("post", "/loyalty/redemptions/{redemption_id}/confirm", "Confirm a redemption",
              Permission.ACT_FOR_PLAYERS, PlayerOnly, (WAIT,), COMMAND_ANSWERS),
    Operation("post", "/loyalty/redemptions/{redemption_id}/cancel", "Cancel a redemption",
              Permission.ACT_FOR_PLAYERS, PlayerOnly, (WAIT,), COMMAND_ANSWERS),
    Operation("post", "/loyalty/birthday/claim", "Pay the level's birthday gift, once a year",
              Permission.ACT_FOR_PLAYERS, PlayerOnly, (WAIT,), BIRTHDAY_REFUSALS),
    Operation("post", "/loyalty/daily-reward/claim",
              "Pay the daily login reward (the streak day's base x the level's daily bonus "
              "multiplier), once per brand day", Permission.ACT_FOR_PLAYERS, PlayerOnly, (WAIT,),
              DAILY_REWARD_REFUSALS),
    Operation("post", "/loyalty/monthly-bonus/claim",
              "Pay the monthly bonus to a level with the perk, once per calendar month",
              Permission.ACT_FOR_PLAYERS, PlayerOnly, (WAIT,), MONTHLY_BONUS_REFUSALS),
    Operation("post", f"{PLAYER}/recheck",
              "Re-check the player's level now (after a programme change); audited",
              Permission.RECHECK_LEVELS, LevelRecheck, (WAIT,), COMMAND_ANSWERS),
    Operation("post", "/loyalty/admin/brands/{brand_id}/recheck",
              "Re-check every player of the brand: one record to each partition of "
              "loyalty.commands, one audit entry", Permission.RECHECK_LEVELS, BrandRecheck,
              answers={"202": "Published to every partition: the command_id and how many "
                              "partitions"}),
    Operation("get", "/loyalty/programmes/{brand_id}", "The programme version in effect",
              Permission.READ_PROGRAMMES),
    Operation("post", "/loyalty/programmes/{brand_id}",
              "Publish a new version, from now on (an admin's backfill: from any time)",
              Permission.PUBLISH_PROGRAMMES, Programme,
              (_text("reason", "Why, for the audit trail"),
               Parameter("backfill", {"type": "boolean", "default": False},
                         "Let it take effect in the past (loyalty_admin; audited as "
                         "programme.backfill)")),
              {"201": "Published, and read by this worker"}),
    Operation("get", "/loyalty/programmes/{brand_id}/versions", "Every version of the brand",
              Permission.READ_PROGRAMMES),
    Operation("put", "/loyalty/programmes/{brand_id}/promotions",
              "Replace the promotional multipliers (a new version, from now or later)",
              Permission.MANAGE_PROMOTIONS, SetPromotions,
              answers={"201": "Published, and read by this worker"}),
    Operation("get", "/loyalty/audit", "The audit trail, newest first", Permission.READ_AUDIT,
              parameters=(_text("brand_id", "Required for a brand-scoped token"),
                          _text("player_id", "Of this player"), _text("actor", "By this actor"),
                          Parameter("action", {"type": "string", "enum": list(AUDIT_ACTIONS)},
                                    "Of this action"),
                          _moment("from", "From this time on (RFC 3339, with an offset)"),
                          _moment("to", "Before this time (RFC 3339, with an offset)"),
                          _limit(100, AUDIT_LIMIT))),
    Operation("get", "/loyalty/exports/{kind}", f"Finance CSV: {', '.join(ExportKind)}",
              Permission.EXPORT,
              parameters=(_text("brand_id", "The brand", True), _text("from", BOUND, True),
                          _text("to", f"{BOUND}; excluded", True)),
              csv=True),
    Operation("post", "/loyalty/what-if/{brand_id}",
              "Start a what-if of a proposed programme over the brand's history, as a job on "
              "this worker (the proposal and the range are checked at once; nothing live is "
              "touched); GET the answer's url until the job is done",
              WHAT_IF_PERMISSION, WhatIfRequest,
              answers={"202": "Started: the job's id and its url, on this worker"},
              answer=WhatIfAccepted,
              refusals={"429": "As many what-if jobs as this worker runs at once are running "
                               "(LOYALTY_WHAT_IF_MAX_JOBS): submit again once one is done"}),
    Operation("get", JOBS, "A what-if job: running, done (with its report) or failed (with "
              "the reason); kept by the worker that accepted it", WHAT_IF_PERMISSION,
              answer=WhatIfJob),
    Operation("get", f"{JOBS}/report.html",
              "The done job's report as a self-contained HTML page of plotly charts (409 while "
              "it runs or if it failed)", WHAT_IF_PERMISSION, html=True),
    Operation("get", f"{JOBS}/report.csv",
              "One table of the done job's report as CSV (409 while it runs or if it failed)",
              WHAT_IF_PERMISSION,
              parameters=(Parameter("table", {"type": "string", "enum": list(TABLES)},
                                    "Which table", required=True),),
              csv=True),
)  # fmt: skip

ERRORS = {
    "400": "Malformed request: a query parameter, an id or the JSON body",
    "401": "No valid bearer token",
    "403": "The token's roles or brands do not allow it",
    "404": "Unknown player, brand, programme, export or what-if job",
    "405": "The path does not take this method (Allow lists those it takes)",
    "409": "Refused: the command could not be carried out, the version is not new, or the "
    "what-if job has no report (it runs, or it failed)",
    "413": "The body is too large",
    "422": "The body does not validate, or a version would take effect in the past; the "
    "message names the field",
    "431": "The Authorization header is too large to be a token",
    "503": "The owning worker, the programme or the cluster cannot be reached",
}
"""Every error is `{"error": "..."}`; 401 comes with `WWW-Authenticate`, 405 with `Allow`."""

_ERROR_BODY = {
    "application/json": {
        "schema": {
            "type": "object",
            "properties": {"error": {"type": "string"}},
            "required": ["error"],
        }
    }
}
_HEADERS = {
    "401": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
    "405": {"Allow": {"required": True, "schema": {"type": "string"}}},
}


@cache
def openapi_document() -> dict[str, Any]:
    """The document, built once."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for op in OPERATIONS:
        operation = _operation(op)
        for model in (op.body, op.answer):
            if model is not None:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
        if op.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}
                    }
                },
            }
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "loyalty-streams", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": schemas,
            "responses": {
                f"Error{status}": {"description": text, "content": _ERROR_BODY}
                | ({"headers": _HEADERS[status]} if status in _HEADERS else {})
                for status, text in ERRORS.items()
            },
        },
    }


def _operation(op: Operation) -> dict[str, Any]:
    """One operation's entry: roles, parameters with their schemas, answers."""
    roles = sorted(role.value for role, granted in GRANTS.items() if op.permission in granted)
    names = [part[1:-1] for part in op.path.split("/") if part.startswith("{")]
    success = (
        {"text/csv": {"schema": {"type": "string"}}}
        if op.csv
        else {"text/html": {"schema": {"type": "string"}}}
        if op.html
        else {"application/json": {"schema": _answer_schema(op.answer)}}
    )
    return {
        "summary": op.summary,
        "description": f"Roles: {', '.join(roles)}; the token must cover the brand.",
        "security": [{"bearer": []}],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": PATH_SCHEMAS[name]}
            for name in names
        ]
        + [
            {"name": p.name, "in": p.where, "required": p.required, "schema": p.schema}
            | ({"description": p.description} if p.description else {})
            for p in op.parameters
        ],
        "responses": {
            status: {"description": text, "content": success} for status, text in op.answers.items()
        }
        | {
            status: {"$ref": f"#/components/responses/Error{status}"}
            for status in ERRORS
            if status not in op.answers
        }
        | {
            status: {"description": text, "content": _ERROR_BODY}
            for status, text in op.refusals.items()
        },
    }


def _answer_schema(model: type[BaseModel] | None) -> dict[str, Any]:
    """The schema of a JSON answer: its model's, or any object."""
    if model is None:
        return {"type": "object"}
    return {"$ref": f"#/components/schemas/{model.__name__}"}


class OpenApiView(WorkerView):
    async def get(self, request: Request) -> Response:
        return self.json(openapi_document())


ROUTES: dict[str, type[WorkerView]] = {"/openapi.json": OpenApiView}
