"""The back office's page: its files are in the package (and in its wheel's package data), the
page refers only to files it ships, and its routes serve them, with no token, beside the API's
routes without taking any of their requests."""

import re
import tomllib
from itertools import product
from pathlib import Path

import faust
from aiohttp.test_utils import TestClient, TestServer

from loyalty_streams.http import backoffice
from loyalty_streams.http.routes import PAGES, ROUTES

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "loyalty_streams" / "http" / "backoffice" / "static"


def test_every_file_of_the_page_is_served_and_shipped() -> None:
    on_disk = {
        str(path.relative_to(STATIC))
        for path in STATIC.rglob("*")
        if path.is_file() and path.suffix in backoffice.CONTENT_TYPES
    }
    assert set(backoffice.FILES) == on_disk
    assert {"index.html", "app.css", "js/app.js", "vendor/chart.umd.js"} <= on_disk
    assert "vendor/chart.js-LICENSE.md" in on_disk  # the vendored library's licence beside it
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["loyalty_streams.http.backoffice"]
    shipped = {
        str(path.relative_to(STATIC.parent / "static"))
        for pattern in patterns
        for path in STATIC.parent.glob(pattern)
        if path.is_file()
    }
    assert on_disk <= shipped


def test_the_page_refers_only_to_files_it_ships() -> None:
    """Every script, style and module import resolves to a file of the page: nothing is fetched
    from another origin."""
    html = (STATIC / "index.html").read_text()
    referred = set(re.findall(r'(?:src|href)="([^"#][^"]*)"', html))
    assert {ref for ref in referred if not ref.startswith("data:")} <= set(backoffice.FILES)
    assert "//" not in " ".join(referred)
    for module in STATIC.glob("js/*.js"):
        for target in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert f"js/{target}" in backoffice.FILES, (module.name, target)
    chart = (STATIC / "vendor" / "chart.umd.js").read_text()
    assert chart.startswith("/*!\n * Chart.js v4.")


def test_no_page_route_takes_an_api_request_nor_the_other_way() -> None:
    pages = [path for routes in PAGES for path in routes]
    api = [path for routes in ROUTES for path in routes]
    for first, second in product(pages, api):
        for earlier, later in ((first, second), (second, first)):
            pattern = re.sub(r"\{[^}]+\}", "[^/]+", re.sub(r"\{(\w+):\.\+\}", ".+", earlier))
            sample = re.sub(r"\{[^}:]+(:[^}]+)?\}", "id", later)
            assert not re.fullmatch(pattern, sample), f"{earlier} takes {later}'s requests"


async def test_the_page_is_served_without_a_token() -> None:
    app = faust.App("backoffice-test")
    for path, view in backoffice.ROUTES.items():
        app.page(path)(view)
    async with TestClient(TestServer(app.web.web_app)) as client:
        moved = await client.get("/backoffice", allow_redirects=False)
        assert (moved.status, moved.headers["Location"]) == (301, "backoffice/")
        page = await client.get("/backoffice/")
        assert page.status == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "<title>Loyalty back office</title>" in await page.text()
        script = await client.get("/backoffice/js/app.js")
        assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert await script.read() == (STATIC / "js" / "app.js").read_bytes()
        chart = await client.get("/backoffice/vendor/chart.umd.js")
        assert chart.status == 200 and len(await chart.read()) > 100_000
        head = await client.head("/backoffice/app.css")
        assert (head.status, head.headers["Content-Type"]) == (200, "text/css; charset=utf-8")
        for missing in ("/backoffice/nope.js", "/backoffice/js/", "/backoffice/../pyproject.toml"):
            answer = await client.get(missing)
            assert answer.status == 404, missing
        outside = await client.get("/backoffice/%2e%2e/__init__.py")
        assert outside.status == 404
