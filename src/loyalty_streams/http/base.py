"""What every API view shares: the caller's token checked, bodies validated, errors as JSON.

Errors are raised as Faust `WebError`s and answered as `{"error": "..."}` with their status: 401
without a valid token, 403 without the permission or the brand, 400 for a malformed request,
422 for a well-formed one that does not validate.
"""

from collections.abc import MutableMapping
from datetime import datetime
from http import HTTPStatus
from typing import Any, TypeVar, cast

from faust.web import Request, Response, View
from faust.web.exceptions import WebError
from pydantic import BaseModel, TypeAdapter, ValidationError

from loyalty_streams.domain.events import Identifier
from loyalty_streams.domain.moments import Moment
from loyalty_streams.domain.validation import check_unique_keys, validation_summary
from loyalty_streams.http.auth import Caller, InvalidToken, Permission, TokenRules, verify_token
from loyalty_streams.runtime.worker import Worker

BRAND_HEADER = "X-Brand-Id"
"""Seed 0's `GET /loyalty/{playerId}` takes the brand from this header (or `?brand_id=`)."""

Body = TypeVar("Body", bound=BaseModel)

CALLER = "loyalty.caller"

HISTORY_PAGE = 50
"""A player's history rows a page holds by default (`?limit=`), and at most."""
HISTORY_MAX = 500

_moment: TypeAdapter[datetime] = TypeAdapter(Moment)
_identifier: TypeAdapter[str] = TypeAdapter(Identifier)


def refuse(status: HTTPStatus, message: str) -> WebError:
    return WebError(message, code=status)


class ApiView(View):
    pipeline: Worker

    def authorize(
        self, request: Request, permission: Permission, brand_id: str | None = None
    ) -> Caller:
        """The caller, if their token is valid, grants `permission` and covers `brand_id`.

        The token is verified once per request: a view checks the role first and the brand once
        it has read it (from the path, the query or the body), without decoding again.
        """
        scope = cast(MutableMapping[str, Any], request)  # aiohttp's request holds per-request state
        caller: Caller | None = scope.get(CALLER)
        if caller is None:
            try:
                caller = verify_token(
                    TokenRules.of(self.pipeline.settings),
                    request.headers.get("Authorization"),
                    self.pipeline.clock(),
                )
            except InvalidToken as error:
                raise refuse(HTTPStatus.UNAUTHORIZED, str(error)) from error
            scope[CALLER] = caller
        if not caller.may(permission):
            roles = ", ".join(sorted(caller.roles)) or "no role"
            raise refuse(HTTPStatus.FORBIDDEN, f"{roles} may not {permission}")
        if brand_id is not None and not caller.covers(brand_id):
            raise refuse(HTTPStatus.FORBIDDEN, f"the token does not cover brand {brand_id!r}")
        return caller

    async def on_request_error(self, request: Request, exc: WebError) -> Response:
        """The error as JSON; a 401 says which scheme it wants, a 405 which methods it takes."""
        headers = None
        if exc.code == HTTPStatus.UNAUTHORIZED:
            headers = {"WWW-Authenticate": "Bearer"}
        elif exc.code == HTTPStatus.METHOD_NOT_ALLOWED:  # e.g. HEAD where there is no GET
            taken = self.get_methods() - ({"HEAD"} if "GET" not in self.get_methods() else set())
            headers = {"Allow": ", ".join(sorted(taken))}
        return self.error(exc.code, exc.detail, headers=headers)


async def parse_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON body as `model`; raises a 400 WebError for text that is not JSON or
    names a field twice (parsers keep the last, so `"points"` twice would credit the second),
    and a 422 for a body that does not validate."""
    raw = await request.read()
    try:
        check_unique_keys(raw or b"{}")
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise refuse(HTTPStatus.BAD_REQUEST, f"invalid JSON: {error}") from error
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as error:
        invalid_json = any(item["type"] == "json_invalid" for item in error.errors())
        status = HTTPStatus.BAD_REQUEST if invalid_json else HTTPStatus.UNPROCESSABLE_ENTITY
        raise refuse(status, validation_summary(error)) from error


def path_identifier(value: str, name: str) -> str:
    """The path parameter `name` as an id; raises a 400 WebError for anything else."""
    try:
        return _identifier.validate_python(value)
    except ValidationError as error:
        raise refuse(
            HTTPStatus.BAD_REQUEST, f"{name} {value!r} is not an id (no ':' or spaces)"
        ) from error


def query_moment(text: str | None, name: str) -> datetime | None:
    """The query parameter `name`'s time, RFC 3339 with an offset, in UTC; None when absent.
    Raises a 400 WebError naming the parameter for anything else (a time outside the calendar
    once in UTC included)."""
    if text is None:
        return None
    try:
        return _moment.validate_python(text)
    except ValidationError as error:
        raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {validation_summary(error)}") from error


def query_integer(text: str | None, name: str, default: int, most: int) -> int:
    """The query parameter `name`'s count from 1 to `most` (ASCII digits); `default` when
    absent. Raises a 400 WebError for anything else."""
    if text is None:
        return default
    if (
        not (text.isascii() and text.isdigit())
        or len(text) > len(str(most))  # and never past int()'s digit limit
        or not 1 <= int(text) <= most
    ):
        raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {text!r} is not 1 to {most}")
    return int(text)


def query_flag(text: str | None, name: str) -> bool:
    """The query parameter `name` as a flag: `true` or `false`, false when absent. Raises a
    400 WebError for anything else."""
    if text is None or text == "false":
        return False
    if text == "true":
        return True
    raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {text!r} is neither true nor false")
