"""The back office: a web page for VIP hosts, loyalty admins and marketing managers, served by
every worker at `/backoffice/` (`GET /backoffice` redirects there).

The page is static files shipped in the package (`static/`: `index.html`, its modules under
`js/`, `app.css`, and the vendored charting library under `vendor/`); they need no token. The
page signs in with a bearer token the user pastes and sends it with every call it makes to the
API, which stays the only authority: the page only hides what the token's roles cannot do.

Only the files in `static/` are served, by their path (no directory listing, nothing outside
it), with a Content-Security-Policy that lets the page load its own scripts, styles and API
answers and nothing from another origin.
"""

from http import HTTPStatus
from importlib.resources import files
from importlib.resources.abc import Traversable

from faust.web import Request, Response

from loyalty_streams.http.api_view import WorkerView
from loyalty_streams.http.errors import refuse

PREFIX = "/backoffice/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
"""The kinds of file served, by suffix; any other file of `static/` is not."""
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # a new release of the workers serves new files: the browser asks again (cheap, local)
    "Cache-Control": "no-cache",
}


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return "" if dot < 0 else name[dot:]


def static_files() -> dict[str, Traversable]:
    """Every file the page is made of, by its path below `/backoffice/` (`index.html`,
    `js/app.js`, `vendor/chart.umd.js`, ...)."""
    found: dict[str, Traversable] = {}

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif _suffix(entry.name) in CONTENT_TYPES:
                found[prefix + entry.name] = entry

    walk(files(__name__) / "static", "")
    return found


FILES = static_files()


class FileView(WorkerView):
    """A view answering with one of the page's files."""

    def file(self, path: str) -> Response:
        """The file's bytes with its type and the page's headers; raises a 404 WebError for a
        path that is not one of `FILES`."""
        entry = FILES.get(path)
        if entry is None:
            raise refuse(HTTPStatus.NOT_FOUND, f"no file {path!r} in the back office")
        headers = HEADERS | {"Content-Type": CONTENT_TYPES[_suffix(path)]}
        # a few hundred KB in all, read at each request (the OS caches them): an edit shows on
        # reload
        return self.bytes(entry.read_bytes(), headers=headers)


class Page(FileView):
    """`/backoffice/`: the page itself."""

    async def get(self, request: Request) -> Response:
        return self.file("index.html")

    async def head(self, request: Request) -> Response:
        return self.file("index.html")


class Asset(FileView):
    """`/backoffice/{path}`: one of the page's files; 404 for any other path."""

    async def get(self, request: Request, path: str) -> Response:
        return self.file(path)

    async def head(self, request: Request, path: str) -> Response:
        return self.file(path)


class ToPage(WorkerView):
    """`/backoffice`: a redirect to `/backoffice/`, relative, so it holds behind a proxy that
    serves the workers under a path of its own."""

    async def get(self, request: Request) -> Response:
        location = {"Location": "backoffice/"}
        return self.bytes(b"", status=HTTPStatus.MOVED_PERMANENTLY, headers=location)

    async def head(self, request: Request) -> Response:
        return await self.get(request)


ROUTES: dict[str, type[WorkerView]] = {
    "/backoffice": ToPage,
    PREFIX: Page,
    PREFIX + "{path:.+}": Asset,
}
"""The page's routes: installed after the API's (`routes.PAGES`); none of them is a path of the
API, nor in its OpenAPI document."""
