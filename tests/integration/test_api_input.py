"""What the API does with input it must refuse: never a 500, always a JSON body naming what was
wrong; tokens whose claims are not what they must be; backdated programme versions; ids that
need quoting when a lookup is forwarded; oversized headers."""

import socket
import urllib.parse
from datetime import UTC, datetime, timedelta

import jwt
import orjson

from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.domain.events import BetPlaced
from loyalty_streams.http.auth import Role
from loyalty_streams.kafka.partitioner import partition_of
from tests.domain.builders import bet, programme
from tests.integration.conftest import SECRET, Cluster, call, get, owned, token, wait_until
from tests.integration.test_worker_cluster import wait_for_partitions

BRAND = "aurora-casino"
ADMIN = token(Role.LOYALTY_ADMIN, subject="anna")
MARKETING = token(Role.MARKETING_MANAGER, brands=[BRAND], subject="mark")
EDGES_OF_TIME = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")


def ready(cluster: Cluster, name: str) -> ServiceProcess:
    worker = cluster.worker(name)
    wait_until(lambda: get(worker, "/health", None)[0] == 200, 60, "the worker")
    wait_until(lambda: get(worker, f"/loyalty/programmes/{BRAND}")[0] == 200, 30, "programmes")
    return worker


def raw(worker: ServiceProcess, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, the headers and the body of the answer."""
    with socket.create_connection(("127.0.0.1", worker.settings.web_port), timeout=10) as conn:
        conn.sendall(request)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body


def test_times_at_the_edges_of_the_calendar_are_refused_with_the_field_named(
    cluster: Cluster,
) -> None:
    worker = ready(cluster, "times")
    cluster.publish([bet("10", player_id="p1")])
    wait_until(lambda: get(worker, f"/loyalty/{BRAND}/p1")[0] == 200, 60, "the bet to land")
    version = programme().model_dump(mode="json") | {"version": 50}
    for moment in EDGES_OF_TIME:
        status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}",
                              version | {"effective_from": moment}, ADMIN)  # fmt: skip
        assert status == 422 and "effective_from" in answer["error"], (moment, answer)
        status, answer = call(worker, "PUT", f"/loyalty/programmes/{BRAND}/promotions",
                              {"promotions": [], "reason": "r", "effective_from": moment},
                              MARKETING)  # fmt: skip
        assert status == 422 and "effective_from" in answer["error"], (moment, answer)
        status, answer = call(worker, "POST", "/loyalty/status/update?wait=0",
                              {"brand_id": BRAND, "player_id": "p1", "level": "Gold",
                               "reason": "r", "until": moment}, ADMIN)  # fmt: skip
        assert status == 422 and "until" in answer["error"], (moment, answer)
        quoted = urllib.parse.quote(moment)
        for query in (f"since={quoted}", f"until={quoted}"):
            status, answer = get(worker, f"/loyalty/{BRAND}/p1/history?{query}")
            assert status == 400 and "error" in answer, (query, answer)
        for query in (f"from={quoted}", f"to={quoted}"):
            status, answer = get(worker, f"/loyalty/audit?brand_id={BRAND}&{query}", ADMIN)
            assert status == 400 and "error" in answer, (query, answer)
            status, answer = get(worker, f"/loyalty/exports/accruals?brand_id={BRAND}&{query}",
                                 ADMIN)  # fmt: skip
            assert status == 400 and "error" in answer, (query, answer)
    status, answer = get(worker, f"/loyalty/{BRAND}/p1/history?limit=%C2%B2")  # superscript 2
    assert status == 400 and "limit" in answer["error"], answer
    status, answer = get(worker, f"/loyalty/{BRAND}/p1/history?limit={'9' * 5000}")
    assert status == 400 and "limit" in answer["error"], answer  # past int()'s digit limit

    # a body naming a field twice: parsers keep the last, so this credited 100,000 points
    doubled = (
        b'{"brand_id":"aurora-casino","player_id":"p1","points":"1","points":"100000","reason":"x"}'
    )
    status, _, body = raw(
        worker,
        b"POST /loyalty/points/add?wait=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + f"Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(doubled)}\r\n\r\n".encode()
        + doubled,
    )
    assert status == 400 and "appears twice" in orjson.loads(body)["error"], body


def test_a_programme_version_takes_effect_from_now_unless_an_admin_backfills_it(
    cluster: Cluster,
) -> None:
    worker = ready(cluster, "versions")
    now = datetime.now(UTC)
    base = programme().model_dump(mode="json")
    promotions = f"/loyalty/programmes/{BRAND}/promotions"
    for when in (0, 1764374400, "1764374400", (now - timedelta(hours=1)).isoformat()):
        status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}",
                              base | {"version": 2, "effective_from": when}, ADMIN)  # fmt: skip
        assert status == 422 and "effective_from" in answer["error"], (when, answer)
        for caller in (MARKETING, ADMIN):  # the promotions route never backdates
            status, answer = call(worker, "PUT", f"{promotions}?backfill=true",
                                  {"promotions": [], "reason": "r", "effective_from": when},
                                  caller)  # fmt: skip
            assert status == 422 and "effective_from" in answer["error"], (when, answer)
    backdated = base | {"version": 2, "effective_from": (now - timedelta(days=2)).isoformat()}
    status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}?backfill=true",
                          backdated, MARKETING)  # fmt: skip
    assert status == 403, answer
    status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}?backfill=maybe",
                          backdated, ADMIN)  # fmt: skip
    assert status == 400 and "backfill" in answer["error"], answer
    status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}?backfill=true&reason=fix",
                          backdated, ADMIN)  # fmt: skip
    assert (status, answer["version"]) == (201, 2), answer
    status, answer = call(worker, "PUT", promotions, {"promotions": [], "reason": "r"}, MARKETING)
    assert (status, answer["version"]) == (201, 3), answer
    status, audit = get(worker, f"/loyalty/audit?brand_id={BRAND}", ADMIN)
    assert status == 200
    actions = [(e["action"], e["actor"], e["after"]["version"]) for e in audit["entries"]]
    assert actions[:2] == [("programme.publish", "mark", 3), ("programme.backfill", "anna", 2)]


def test_tokens_with_claims_of_the_wrong_type_or_too_long_a_life_are_refused(
    cluster: Cluster,
) -> None:
    worker = ready(cluster, "claims")
    now = int(datetime.now(UTC).timestamp())
    good = {"sub": "x", "roles": ["loyalty_admin"], "brands": ["*"], "exp": now + 600}
    assert get(worker, f"/loyalty/programmes/{BRAND}", jwt.encode(good, SECRET))[0] == 200
    for claims in (
        good | {"exp": str(now + 600)},
        good | {"exp": [now + 600]},
        good | {"roles": None},
        good | {"roles": 1},
        good | {"roles": {"loyalty_admin": True, "service": True}},
        good | {"exp": now + 400 * 86400},  # beyond the longest lifetime
    ):
        status, answer = get(worker, f"/loyalty/programmes/{BRAND}", jwt.encode(claims, SECRET))
        assert status == 401 and "invalid token" in answer["error"], (claims, answer)


def test_every_error_is_json_even_from_the_router_and_the_http_parser(cluster: Cluster) -> None:
    worker = ready(cluster, "errors")
    status, answer = get(worker, "/nowhere")
    assert status == 404 and "error" in answer
    status, headers, body = raw(
        worker, b"DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert status == 405 and "GET" in headers["Allow"] and "error" in orjson.loads(body)
    status, headers, _ = raw(
        worker, b"HEAD /loyalty/points/add HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert (status, headers["Allow"]) == (405, "POST")
    status, answer = call(worker, "POST", "/loyalty/points/add", "x" * 2_000_000, ADMIN)
    assert status == 413 and "error" in answer
    huge = "Bearer " + "A" * 100_000
    status, headers, body = raw(
        worker,
        f"GET /loyalty/{BRAND}/p1 HTTP/1.1\r\nHost: x\r\nAuthorization: {huge}\r\n"
        "Connection: close\r\n\r\n".encode(),
    )
    assert status in (400, 431) and headers["Content-Type"].startswith("application/json")
    assert "error" in orjson.loads(body)
    log = worker.log_text()
    assert "AAAAAAAAAA" not in log and "Traceback" not in log, log[-3000:]


def test_a_forwarded_lookup_reaches_the_player_asked_for_whatever_its_id(
    cluster: Cluster,
) -> None:
    first, second = cluster.worker("a"), cluster.worker("b")
    wait_for_partitions([first, second])
    ids = ["v%41x", "vAx", "w#1", "w", "q?x=1", "q", "s/t", "t"]
    bets: list[BetPlaced] = [bet(str(10 + n), player_id=i) for n, i in enumerate(ids)]
    cluster.publish(bets)
    for placed in bets:
        key = f"{BRAND}:{placed.player_id}"
        owner = first if partition_of(key.encode(), 12) in owned(first) else second
        other = second if owner is first else first
        path = f"/loyalty/{BRAND}/{urllib.parse.quote(placed.player_id, safe='')}"
        wait_until(lambda p=path, o=owner: get(o, p)[0] == 200, 60, f"{path} on its owner")
        status, body = get(other, path)
        assert status == 200, (placed.player_id, body)
        assert (body["player_id"], body["points"]["available"]) == (
            placed.player_id,
            f"{placed.amount}.00",
        ), body
        assert body["served_by"]["worker"] != other.settings.worker_url
