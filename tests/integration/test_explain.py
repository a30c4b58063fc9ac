"""`GET /loyalty/{brand_id}/{player_id}/explain` on a real worker and broker: a player who played,
redeemed and had a bet cancelled. The reconciliation ends on the lookup's available + held, its
totals meet the record's counters, its pages go day by day, and `loyalty-streams explain` prints
it."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from loyalty_streams.cli.main import main
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.http.auth import Role
from tests.domain.builders import bet, cancellation
from tests.integration.conftest import READER, Cluster, call, get, token, wait_until

BRAND = "aurora-casino"
ADMIN = token(Role.LOYALTY_ADMIN, subject="anna")
PLAYER = {"brand_id": BRAND, "player_id": "p1"}


def points(worker: ServiceProcess) -> dict[str, str]:
    status, found = get(worker, f"/loyalty/{BRAND}/p1")
    return found["points"] if status == 200 else {}


def test_the_explanation_ends_on_the_lookups_balance(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = cluster.worker("explain")
    now = datetime.now(UTC)
    cluster.publish([
        bet("2500", player_id="p1", bet_id="b1", occurred_at=now - timedelta(minutes=3)),
        bet("200", player_id="p1", bet_id="b2", occurred_at=now - timedelta(minutes=2)),
    ])  # fmt: skip
    wait_until(lambda: points(worker).get("available") == "2700.00", 60, "the bets to land")

    # a redemption confirmed, a second one left held
    for redemption in ("rd-1", "rd-2"):
        body = PLAYER | {"points": "1000", "command_id": redemption}
        status, held = call(worker, "POST", "/loyalty/redemptions", body, ADMIN)
        assert status == 200 and held["outputs"][0]["type"] == "RedemptionHeld", held
    status, confirmed = call(worker, "POST", "/loyalty/redemptions/rd-1/confirm", PLAYER, ADMIN)
    assert status == 200, confirmed
    # the second bet cancelled
    cluster.publish([cancellation("b2", "200", player_id="p1", occurred_at=datetime.now(UTC))])
    wait_until(lambda: points(worker).get("reversed") == "200.00", 60, "the cancellation")

    balance = points(worker)
    assert (balance["available"], balance["held"]) == ("500.00", "1000")
    status, answer = get(worker, f"/loyalty/{BRAND}/p1/explain")
    assert status == 200, answer
    explained = answer["balance"]
    end = Decimal(balance["available"]) + Decimal(balance["held"])
    assert Decimal(explained["total"]) == end
    assert Decimal(explained["days"][-1]["closing"]["total"]) == end
    assert (explained["problems"], explained["opening"]["history_complete"]) == ([], True)
    for kind in ("accrued", "reversed", "redeemed", "expired", "credited", "debited"):
        totals = explained["totals"][kind]
        assert Decimal(totals["history"]) == Decimal(totals["record"]) == Decimal(balance[kind])
    kinds = [line["kind"] for day in explained["days"] for line in day["lines"]]
    assert kinds == ["accrued", "accrued", "held", "held", "redeemed", "reversed"]
    assert Decimal(answer["level"]["next_level"]["still_needed"]) == Decimal(7500)
    assert answer["served_by"]["stale"] is False

    # a day a page: each opens where the one before closed, the last on the balance
    opening, cursor, seen = explained["opening"]["total"], "", 0
    while cursor is not None:
        query = "limit=1" + (f"&cursor={cursor}" if cursor else "")
        status, page = get(worker, f"/loyalty/{BRAND}/p1/explain?{query}")
        assert status == 200 and len(page["balance"]["days"]) == 1, page
        (day,) = page["balance"]["days"]
        assert Decimal(day["opening"]["total"]) == Decimal(opening)
        opening, cursor, seen = day["closing"]["total"], page["balance"]["next_cursor"], seen + 1
    assert Decimal(opening) == end and seen == len(explained["days"])

    # bad parameters: 400 with the parameter named
    for query, named in (("cursor=yesterday", "cursor"), ("limit=0", "limit")):
        status, refused = get(worker, f"/loyalty/{BRAND}/p1/explain?{query}")
        assert status == 400 and named in refused["error"], refused
    assert get(worker, f"/loyalty/{BRAND}/nobody/explain")[0] == 404

    # the CLI: a statement, or the answer as JSON
    url = f"http://127.0.0.1:{worker.settings.web_port}"
    asked = ["explain", "--brand", BRAND, "--player", "p1", "--url", url, "--token", READER]
    assert main(asked) == 0
    printed = capsys.readouterr().out
    assert "500.00 available + 1000 held = 1500.00 points" in printed
    assert "redemption rd-1 confirmed" in printed and "reconciles" in printed
    assert main([*asked, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["balance"]["total"] == "1500.00"
    assert main([*asked[:-1], "not.a.token"]) == 1
    assert "401" in capsys.readouterr().err
