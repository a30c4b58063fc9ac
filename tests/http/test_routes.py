"""Every route is owned by one resource module, documented unless it is for operators, and
installed where no earlier route's pattern takes its requests."""

import re
from itertools import combinations

from loyalty_streams.http.forwarding import owner_url
from loyalty_streams.http.openapi import OPERATIONS
from loyalty_streams.http.routes import ROUTES

UNDOCUMENTED = {"/health", "/metrics", "/openapi.json"}


def installed() -> list[str]:
    return [path for routes in ROUTES for path in routes]


def test_each_route_is_owned_by_one_module() -> None:
    paths = installed()
    assert len(paths) == len(set(paths))


def test_the_document_names_every_route_but_the_operators() -> None:
    assert set(installed()) == {op.path for op in OPERATIONS} | UNDOCUMENTED


def test_no_route_is_shadowed_by_an_earlier_pattern() -> None:
    """The router tries routes in order: `/loyalty/{player_id}` installed before
    `/loyalty/audit` would answer every request for the audit trail."""
    for earlier, later in combinations(installed(), 2):
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", earlier)
        sample = re.sub(r"\{[^}]+\}", "id", later)
        assert not re.fullmatch(pattern, sample), f"{earlier} takes {later}'s requests"


def test_a_forwarded_lookup_keeps_each_id_whole() -> None:
    url = owner_url("http://worker-2:6066", "b/1", "p#?%", "/history", {"limit": "5"})
    assert str(url) == "http://worker-2:6066/loyalty/b%2F1/p%23%3F%25/history?limit=5"
