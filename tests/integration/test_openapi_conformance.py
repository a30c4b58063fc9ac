"""The API against its own OpenAPI document, on a live worker: schemathesis draws requests for
each operation from the document (valid ones, and ones the document says are invalid), sends
them with an admin's token so every route is reached, and checks that no answer is a server
error and every answer is one the document describes: its status, content type, headers and
body."""

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from loyalty_streams.http.auth import Role
from tests.domain.builders import bet
from tests.integration.conftest import Cluster, get, token, wait_until

ADMIN = token(Role.LOYALTY_ADMIN, subject="fuzz")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 30
"""Requests per operation: enough to reach every parameter, within a minute or so."""
KNOWN = {"brand_id": "aurora-casino", "player_id": "p1"}
"""A brand and player that exist: half the requests name them, to go past the lookups' 404."""


def aimed(case: schemathesis.Case, known: bool) -> schemathesis.Case:
    """`case` naming the known brand and player where it names any, when `known`; a command
    that does not wait for its outcome (the outcome is not what is checked here)."""
    if known:
        for name, value in KNOWN.items():
            if name in (case.path_parameters or {}):
                case.path_parameters = {**(case.path_parameters or {}), name: value}
            if isinstance(case.body, dict) and name in case.body:
                case.body = {**case.body, name: value}
    if "wait" in {parameter.name for parameter in case.operation.query}:
        case.query = {**(case.query or {}), "wait": 0}
    return case


def test_every_answer_is_one_the_document_describes(cluster: Cluster) -> None:
    worker = cluster.worker("fuzz")
    cluster.publish([bet("10", player_id="p1")])
    wait_until(lambda: get(worker, "/loyalty/aurora-casino/p1")[0] == 200, 60, "the worker")
    base = f"http://127.0.0.1:{worker.settings.web_port}"
    api = schemathesis.openapi.from_url(f"{base}/openapi.json")
    api.config.update(base_url=base)
    modes = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

    for found in api.get_all_operations():
        operation = found.ok()

        @given(case=modes.flatmap(operation.as_strategy), known=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def answered_as_documented(case: schemathesis.Case, known: bool) -> None:
            aimed(case, known).call_and_validate(
                headers={"Authorization": f"Bearer {ADMIN}"}, checks=CHECKS, timeout=30
            )

        answered_as_documented()
    assert "Traceback" not in worker.log_text(), worker.log_tail(60)
