"""The views every route's module builds on: the worker they serve, the caller's token checked
once per request, a view's errors answered as JSON.

Errors are raised with `errors.refuse` and answered as `{"error": "..."}` with their status: 401
without a valid token, 403 without the permission or the brand, 400 for a malformed request,
422 for a well-formed one that does not validate.
"""

from collections.abc import MutableMapping
from http import HTTPStatus
from typing import Any, cast

from faust.web import Request, Response, View
from faust.web.exceptions import WebError

from loyalty_streams.http.auth import Caller, InvalidToken, Permission, TokenRules, verify_token
from loyalty_streams.http.errors import refuse
from loyalty_streams.runtime.worker import Worker

CALLER = "loyalty.caller"
"""Where a request keeps its verified caller, so the token is decoded once."""


class WorkerView(View):
    """A view of this worker's: `worker` is bound when `routes` installs the view."""

    worker: Worker


class ApiView(WorkerView):
    """A view of the API: every request needs a bearer token (`authorize`)."""

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
                    TokenRules.of(self.worker.settings),
                    request.headers.get("Authorization"),
                    self.worker.clock(),
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
