"""Every answer of the worker's HTTP server is JSON, its errors included.

A view refuses a request by raising `refuse(status, message)`, answered as `{"error": "..."}`
by the view (`api_view.ApiView.on_request_error`). The middleware here covers what happens
around the views: the router's 404 and 405 (with its `Allow` header), a body too large, any
exception a view did not expect (a 500 with no detail; the traceback goes to the log), and an
`Authorization` header too long to be a token (431, before anyone reads it).

Headers longer than `MAX_HEADER_BYTES` never reach the application: aiohttp's parser refuses the
request with its own plain-text 400 (aiohttp has no hook for that answer). They are logged on
one line, without the request's bytes or a traceback.
"""

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import faust
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from faust.web.exceptions import WebError

MAX_AUTHORIZATION_BYTES = 8 * 1024
"""The longest `Authorization` header read: a token is a few hundred bytes."""
MAX_HEADER_BYTES = 128 * 1024
"""The longest header aiohttp's parser takes (its default is 8 KiB): up to this, an oversized
`Authorization` header gets the API's JSON answer."""

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refuse(status: HTTPStatus, message: str) -> WebError:
    """The error to raise from a view to answer `{"error": message}` with `status`."""
    return WebError(message, code=status)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """`{"error": message}` with `status` and `headers`."""
    return web.json_response({"error": message}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's answer; its errors, and the router's, as JSON. Never raises."""
    size = len(request.headers.get("Authorization", ""))
    if size > MAX_AUTHORIZATION_BYTES:
        return json_error(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            f"the Authorization header is {size} bytes; a token is at most "
            f"{MAX_AUTHORIZATION_BYTES}",
        )
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < HTTPStatus.BAD_REQUEST:
            raise  # a redirect is not an error
        kept = {k: v for k, v in error.headers.items() if k.lower() in ("allow", "retry-after")}
        return json_error(error.status, error.reason, kept)
    except Exception:
        log.exception("%s %s failed", request.method, request.rel_url.path)
        return json_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; see the worker's log")


class OneLineParserErrors(logging.Filter):
    """aiohttp logs a request its parser refused with the traceback of the parser's exception;
    this keeps one line, with the status and the kind of error but no byte of the request."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = f"{record.msg}: refused a malformed request ({error.code}, "
            record.msg += f"{type(error).__name__})"
            record.exc_info = None
            record.exc_text = None
        return True


def serve_json_errors(app: faust.App) -> None:
    """Install the JSON error answers and the header limit on the app's web server. Must run
    before anything touches `app.web` (adding a view does); raises RuntimeError otherwise."""
    app.conf.web_application_options = {
        "middlewares": [json_errors],
        "handler_args": {"max_field_size": MAX_HEADER_BYTES},
    }
    server = app.web
    if not isinstance(server, AiohttpWeb) or json_errors not in server.web_app.middlewares:
        raise RuntimeError("serve_json_errors must run before the app's web server is built")
    logging.getLogger("aiohttp.server").addFilter(OneLineParserErrors())
