"""The HTTP API on a real worker and broker: RBAC on every endpoint, writes through the command
topic with their outcome, history, programme administration, the audit trail, CSV exports and
the follow-ups for the campaign engine, notifications and the GMS."""

import csv
import io
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.http.auth import Role
from loyalty_streams.http.openapi import OPERATIONS, openapi_document
from loyalty_streams.kafka.reading import read_topics
from loyalty_streams.kafka.topics import CAMPAIGN_TRIGGERS, GMS_FLAGS, NOTIFICATIONS
from tests.domain.builders import bet, programme
from tests.integration.conftest import (
    READER,
    Cluster,
    call,
    get,
    on_both_brokers,
    token,
    wait_until,
)

BRAND = "aurora-casino"
ADMIN = token(Role.LOYALTY_ADMIN, subject="anna")
MARKETING = token(Role.MARKETING_MANAGER, brands=[BRAND], subject="mark")
PLAYER_BODY = {"brand_id": BRAND, "player_id": "p1"}
BODIES: dict[str, Any] = {
    "/loyalty/points/add": PLAYER_BODY | {"points": "10", "reason": "r"},
    "/loyalty/status/update": PLAYER_BODY | {"level": "Gold", "reason": "r"},
    "/loyalty/redemptions": PLAYER_BODY | {"points": "1000"},
    "/loyalty/programmes/{brand_id}": programme().model_dump(mode="json") | {"version": 99},
    "/loyalty/programmes/{brand_id}/promotions": {"promotions": [], "reason": "r"},
}
PATH_VALUES = {
    "brand_id": BRAND,
    "player_id": "p1",
    "redemption_id": "r1",
    "kind": "accruals",
    "job_id": "00000000-0000-4000-8000-000000000000",
}
QUERY = "?brand_id=aurora-casino&from=2026-01-01&to=2026-01-02&wait=0"


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)


def test_every_endpoint_refuses_without_a_token_the_role_or_the_brand(cluster: Cluster) -> None:
    worker = cluster.worker("guard")
    wait_until(lambda: get(worker, "/health", None)[0] == 200, 60, "the worker")
    assert get(worker, "/openapi.json", None)[1] == openapi_document()
    nobody = token()  # valid, but no role
    elsewhere = token(*Role, brands=["another-brand"])
    for op in OPERATIONS:
        path = concrete(op.path) + QUERY
        body = BODIES.get(op.path, PLAYER_BODY)
        status, answer = call(worker, op.method.upper(), path, body, None)
        assert (status, "Bearer" in answer["error"]) == (401, True), (op.path, answer)
        status, answer = call(worker, op.method.upper(), path, body, "not.a.token")
        assert status == 401 and "invalid token" in answer["error"], op.path
        status, answer = call(worker, op.method.upper(), path, body, nobody)
        assert status == 403 and "may not" in answer["error"], (op.path, answer)
        # the audit's brand is a filter (checked below); a what-if job's is the job's own
        if op.path != "/loyalty/audit" and "{job_id}" not in op.path:
            status, answer = call(worker, op.method.upper(), path, body, elsewhere)
            assert status == 403 and "does not cover" in answer["error"], (op.path, answer)
    # each role only what it is for
    service = token(Role.SERVICE)
    assert call(worker, "POST", "/loyalty/points/add", BODIES["/loyalty/points/add"], service)[
        0
    ] == 403  # fmt: skip
    assert call(worker, "GET", f"/loyalty/exports/accruals{QUERY}", None, service)[0] == 403
    assert call(worker, "GET", f"/loyalty/audit{QUERY}", None, MARKETING)[0] == 403
    status, answer = call(
        worker, "GET", "/loyalty/audit", None, token(Role.LOYALTY_ADMIN, brands=[BRAND])
    )
    assert status == 400 and "brand_id is required" in answer["error"]
    expired = token(Role.LOYALTY_ADMIN)
    assert get(worker, "/loyalty/aurora-casino/p1", expired[:-2] + "xx")[0] == 401


@on_both_brokers
def test_writes_through_the_api_are_carried_out_audited_and_kept_in_the_history(
    cluster: Cluster,
) -> None:
    worker = cluster.worker("api")
    now = datetime.now(UTC)
    cluster.publish([bet("5000", player_id="p1", occurred_at=now - timedelta(minutes=1))])
    wait_until(lambda: get(worker, f"/loyalty/{BRAND}/p1")[0] == 200, 60, "the bet to land")

    # the platform spec's lookup: the brand from a header or the query
    status, seen = get(worker, "/loyalty/p1", READER, **{"X-Brand-Id": BRAND})
    assert status == 200 and seen["points"]["available"] == "5000.00"
    assert get(worker, f"/loyalty/p1?brand_id={BRAND}")[1]["level"] == seen["level"]
    assert get(worker, "/loyalty/p1")[0] == 400

    # adjustments: carried out with the caller as actor, or refused with the reason
    status, done = call(worker, "POST", "/loyalty/points/add",
                        PLAYER_BODY | {"points": "250", "reason": "goodwill"}, ADMIN)  # fmt: skip
    assert (status, done.get("status")) == (200, "applied"), done
    (adjusted,) = [o for o in done["outputs"] if o["type"] == "PointsAdjusted"]
    assert (adjusted["actor"], adjusted["points_available"]) == ("anna", "5250.00")
    status, refused = call(worker, "POST", "/loyalty/points/add",
                           PLAYER_BODY | {"points": "-9999", "reason": "fix"}, ADMIN)  # fmt: skip
    assert (status, refused["code"]) == (409, "insufficient_points"), refused
    status, bad = call(worker, "POST", "/loyalty/points/add",
                       PLAYER_BODY | {"points": "1.001", "reason": "x"}, ADMIN)  # fmt: skip
    assert status == 422 and "points" in bad["error"]
    status, bad = call(worker, "POST", "/loyalty/points/add", PLAYER_BODY | {"points": "5"}, ADMIN)
    assert status == 422 and "reason" in bad["error"]

    # forced status, to Platinum: the GMS flag, the campaign trigger and the notification follow
    vip_deal = PLAYER_BODY | {"level": "Platinum", "reason": "VIP deal"}
    status, forced = call(worker, "POST", "/loyalty/status/update", vip_deal, ADMIN)
    assert status == 200 and forced["outputs"][0]["to_level"] == "Platinum", forced
    assert get(worker, f"/loyalty/{BRAND}/p1")[1]["level"]["name"] == "Platinum"
    status, refused = call(worker, "POST", "/loyalty/status/update",
                           PLAYER_BODY | {"level": "Diamond", "reason": "x"}, ADMIN)  # fmt: skip
    assert (status, refused["code"]) == (409, "unknown_level")

    # a redemption, confirmed; the birthday gift
    status, held = call(worker, "POST", "/loyalty/redemptions",
                        PLAYER_BODY | {"points": "1000", "command_id": "rd-1"}, ADMIN)  # fmt: skip
    assert status == 200 and held["outputs"][0]["type"] == "RedemptionHeld"
    status, confirmed = call(
        worker, "POST", "/loyalty/redemptions/rd-1/confirm", PLAYER_BODY, ADMIN
    )
    assert status == 200 and confirmed["outputs"][0]["value"] == "10.00"
    status, gift = call(worker, "POST", "/loyalty/birthday/claim", PLAYER_BODY, ADMIN)
    assert (status, gift["code"]) == (
        409,
        "no_gift",
    )  # aurora has no birthday gifts

    # the history, a page at a time, newest first
    rows, cursor = [], ""
    while cursor is not None:
        status, page = get(worker, f"/loyalty/{BRAND}/p1/history?limit=3&cursor={cursor}")
        assert status == 200 and len(page["history"]) <= 3
        rows += page["history"]
        cursor = page["next_cursor"]
    kinds = [row["type"] for row in rows if row["type"] != "AuditEntry"]
    assert kinds[::-1] == [
        "PointsAccrued", "PointsAdjusted", "CommandRejected", "LevelChanged", "CommandRejected",
        "RedemptionHeld", "PointsRedeemed", "CommandRejected",
    ]  # fmt: skip
    # and each operator's command by its audit entry: the 7 writes above, applied or refused
    assert sum(row["type"] == "AuditEntry" for row in rows) == 7
    assert len({row["output_id"] for row in rows}) == len(rows)
    only = get(worker, f"/loyalty/{BRAND}/p1/history?types=PointsAdjusted,PointsRedeemed")[1]
    assert [row["type"] for row in only["history"]] == ["PointsRedeemed", "PointsAdjusted"]
    assert get(worker, f"/loyalty/{BRAND}/p1/history?types=Nonsense")[0] == 400

    # programme administration: promotions by marketing, a broken version refused
    status, v2 = call(worker, "PUT", f"/loyalty/programmes/{BRAND}/promotions", {
        "reason": "DoublePointsWeek", "promotions": [{
            "name": "DoublePointsWeek", "multiplier": "2",
            "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=7)).isoformat(),
        }]}, MARKETING)  # fmt: skip
    assert (status, v2["version"]) == (201, 2), v2
    versions = get(worker, f"/loyalty/programmes/{BRAND}/versions")[1]["versions"]
    assert [(v["version"], v["in_effect"]) for v in versions] == [(1, False), (2, True)]
    broken = programme().model_dump(mode="json") | {"version": 3}
    broken["levels"][2]["threshold"] = "5000"
    status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}", broken, ADMIN)
    assert status == 422 and "levels[2].threshold" in answer["error"]
    stale = programme().model_dump(mode="json") | {"version": 2}
    assert call(worker, "POST", f"/loyalty/programmes/{BRAND}", stale, ADMIN)[0] == 409

    # the audit trail: every adjustment, forced status and programme change, who and what
    status, audit = call(worker, "GET", f"/loyalty/audit?brand_id={BRAND}", None, ADMIN)
    assert status == 200
    entries = [(e["action"], e["outcome"], e["actor"]) for e in audit["entries"]][::-1]
    assert entries[-8:] == [
        ("points.adjust", "applied", "anna"),
        ("points.adjust", "rejected", "anna"),
        ("status.force", "applied", "anna"),
        ("status.force", "rejected", "anna"),
        ("redemption.request", "applied", "anna"),
        ("redemption.confirm", "applied", "anna"),
        ("birthday.claim", "rejected", "anna"),
        ("programme.publish", "applied", "mark"),
    ]  # fmt: skip
    change = audit["entries"][0]
    assert (change["before"]["version"], change["after"]["version"]) == (1, 2)
    forced_entry = next(e for e in audit["entries"] if e["action"] == "status.force")
    assert (forced_entry["before"]["level"], forced_entry["after"]["level"]) != (None, None)
    assert forced_entry["after"]["forced_level"] == "Platinum"

    # the follow-ups of the forced Platinum, on their topics
    found = read_topics(
        cluster.settings,
        (CAMPAIGN_TRIGGERS, NOTIFICATIONS, GMS_FLAGS),
        until=lambda r: all(r[t] for t in (CAMPAIGN_TRIGGERS, NOTIFICATIONS, GMS_FLAGS)),
        timeout=30,
    )
    (trigger,) = [orjson.loads(r.value) for r in found[CAMPAIGN_TRIGGERS]]
    assert (trigger["trigger"], trigger["to_level"]) == ("OnLevelUp", "Platinum")
    (note,) = [orjson.loads(r.value) for r in found[NOTIFICATIONS]]
    assert note["template"] == "level_up" and "personal_manager" in note["perks"]
    (flag,) = [orjson.loads(r.value) for r in found[GMS_FLAGS]]
    assert (flag["player_id"], flag["enabled"]) == ("p1", True)

    # the finance export over HTTP: one accrual row, the bet's points
    day = now.date()
    rows_csv = export(worker, f"accruals?brand_id={BRAND}&from={day}&to={day + timedelta(days=2)}")
    assert len(rows_csv) == 1 and Decimal(rows_csv[0]["points"]) == Decimal(5000)


def test_a_player_claims_the_daily_reward_once_a_day_and_a_low_level_no_monthly_bonus(
    cluster: Cluster,
) -> None:
    worker = cluster.worker("claims")
    sweeps = "lucky-sweeps"
    now = datetime.now(UTC)
    cluster.publish([bet("100", brand_id=sweeps, currency="SC", player_id="p1",
                         occurred_at=now - timedelta(minutes=1))])  # fmt: skip
    wait_until(lambda: get(worker, f"/loyalty/{sweeps}/p1")[0] == 200, 60, "the bet to land")
    body = {"brand_id": sweeps, "player_id": "p1"}
    shown = get(worker, f"/loyalty/{sweeps}/p1")[1]["rewards"]["daily_reward"]
    assert (shown["streak"], shown["next_reward"]) == (0, {"gc": "5000.00", "sc": "0.20"})

    # the first claim of the brand day: day 1 of the streak, at Bronze's multiplier (1.0)
    status, claimed = call(worker, "POST", "/loyalty/daily-reward/claim?wait=30", body, ADMIN)
    assert (status, claimed["status"]) == (200, "applied"), claimed
    (granted,) = [o for o in claimed["outputs"] if o["type"] == "DailyRewardGranted"]
    assert (granted["streak"], granted["level"]) == (1, "Bronze")
    assert (granted["gc"], granted["sc"]) == (
        shown["next_reward"]["gc"],
        shown["next_reward"]["sc"],
    )
    rewards = get(worker, f"/loyalty/{sweeps}/p1")[1]["rewards"]
    assert (rewards["daily_reward"]["streak"], rewards["daily_reward"]["last_claimed_day"]) == (
        1, granted["day"],
    )  # fmt: skip
    opens = datetime.fromisoformat(rewards["daily_reward"]["next_claim_from"])
    assert now < opens <= now + timedelta(days=1, hours=1)  # the next midnight in New York

    # the same day again: refused, with when the next one opens
    status, again = call(worker, "POST", "/loyalty/daily-reward/claim?wait=30", body, ADMIN)
    assert (status, again["status"], again["code"]) == (409, "rejected", "already_claimed"), again
    assert opens.isoformat() in again["error"]

    # the monthly bonus: Bronze has not the perk
    assert rewards["monthly_bonus"]["eligible"] is False
    status, bonus = call(worker, "POST", "/loyalty/monthly-bonus/claim?wait=30", body, ADMIN)
    assert (status, bonus["code"]) == (409, "not_eligible"), bonus

    # each claim audited under its own action, which the audit filters by
    def outcomes(action: str) -> list[str]:
        query = f"/loyalty/audit?brand_id={sweeps}&action={action}"
        status, audit = call(worker, "GET", query, None, ADMIN)
        assert status == 200, audit
        return sorted(entry["outcome"] for entry in audit["entries"])

    wait_until(lambda: outcomes("daily_reward.claim") == ["applied", "rejected"], 30, "audit")
    wait_until(lambda: outcomes("monthly_bonus.claim") == ["rejected"], 30, "audit")
    assert call(worker, "GET", "/loyalty/audit?action=daily.claim", None, ADMIN)[0] == 400


def export(worker: ServiceProcess, query: str) -> list[dict[str, str]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{worker.settings.web_port}/loyalty/exports/{query}",
        headers={"Authorization": f"Bearer {MARKETING}"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.headers["Content-Type"].startswith("text/csv")
        return list(csv.DictReader(io.StringIO(reply.read().decode())))
