"""The OpenAPI 3.1 document served at `/openapi.json`, built from the same models and grants the
views use, so it cannot drift from them on bodies or roles."""

from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import BaseModel

from loyalty_streams.domain.programme import Programme
from loyalty_streams.edges.api_requests import (
    AddPoints,
    PlayerOnly,
    RequestRedemption,
    SetPromotions,
    UpdateStatus,
)
from loyalty_streams.edges.auth import GRANTS, Permission


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    summary: str
    permission: Permission
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()


PLAYER = "/loyalty/{brand_id}/{player_id}"

OPERATIONS = (
    Operation("get", "/loyalty/{player_id}", "Seed 0's player lookup; brand from X-Brand-Id "
              "or brand_id", Permission.READ_PLAYERS, query=("brand_id",)),
    Operation("get", PLAYER, "Level, points, turnover, progress, perks, multipliers",
              Permission.READ_PLAYERS),
    Operation("get", f"{PLAYER}/history", "The player's history, newest first, paged",
              Permission.READ_PLAYERS,
              query=("limit", "cursor", "types", "since", "until", "command_id")),
    Operation("get", f"{PLAYER}/cashback", "The daily cashback log", Permission.READ_PLAYERS),
    Operation("post", "/loyalty/points/add", "Manual credit (points > 0) or debit (< 0)",
              Permission.ADJUST_POINTS, AddPoints, ("wait",)),
    Operation("post", "/loyalty/status/update", "Force a level, until a moment or for good",
              Permission.FORCE_STATUS, UpdateStatus, ("wait",)),
    Operation("post", "/loyalty/redemptions", "Request a redemption: the points are held",
              Permission.ACT_FOR_PLAYERS, RequestRedemption, ("wait",)),
    Operation("post", "/loyalty/redemptions/{redemption_id}/confirm", "Confirm a redemption",
              Permission.ACT_FOR_PLAYERS, PlayerOnly, ("wait",)),
    Operation("post", "/loyalty/redemptions/{redemption_id}/cancel", "Cancel a redemption",
              Permission.ACT_FOR_PLAYERS, PlayerOnly, ("wait",)),
    Operation("post", "/loyalty/birthday/claim", "Pay the level's birthday gift, once a year",
              Permission.ACT_FOR_PLAYERS, PlayerOnly, ("wait",)),
    Operation("get", "/loyalty/programmes/{brand_id}", "The programme version in effect",
              Permission.READ_PROGRAMMES),
    Operation("post", "/loyalty/programmes/{brand_id}", "Publish a new programme version",
              Permission.PUBLISH_PROGRAMMES, Programme, ("reason",)),
    Operation("get", "/loyalty/programmes/{brand_id}/versions", "Every version of the brand",
              Permission.READ_PROGRAMMES),
    Operation("put", "/loyalty/programmes/{brand_id}/promotions",
              "Replace the promotional multipliers (a new version)",
              Permission.MANAGE_PROMOTIONS, SetPromotions),
    Operation("get", "/loyalty/audit", "The audit trail, newest first", Permission.READ_AUDIT,
              query=("brand_id", "player_id", "actor", "action", "from", "to", "limit")),
    Operation("get", "/loyalty/exports/{kind}", "Finance CSV: accruals, redemptions, cashback",
              Permission.EXPORT, query=("brand_id", "from", "to")),
)  # fmt: skip

_ERRORS = {
    "400": "Malformed request",
    "401": "No valid bearer token",
    "403": "The token's roles or brands do not allow it",
    "404": "Unknown player, brand or export",
    "409": "Refused: the command could not be carried out, or the version is not new",
    "422": "The body does not validate; the message names the field",
    "503": "The owning worker or the cluster cannot be reached",
}


@cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for op in OPERATIONS:
        roles = sorted(role.value for role, granted in GRANTS.items() if op.permission in granted)
        names = [part[1:-1] for part in op.path.split("/") if part.startswith("{")]
        operation: dict[str, Any] = {
            "summary": op.summary,
            "description": f"Roles: {', '.join(roles)}; the token must cover the brand.",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in names
            ]
            + [{"name": name, "in": "query", "schema": {"type": "string"}} for name in op.query],
            "responses": {"200": {"description": "OK"}}
            | {status: {"$ref": "#/components/responses/Error"} for status in _ERRORS},
        }
        if op.body is not None:
            schema = op.body.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[op.body.__name__] = schema
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
                "Error": {
                    "description": "; ".join(f"{k}: {v}" for k, v in _ERRORS.items()),
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"error": {"type": "string"}},
                                "required": ["error"],
                            }
                        }
                    },
                }
            },
        },
    }
