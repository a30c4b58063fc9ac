"""Cancelled bets on a real worker and broker: exact reversals, refusals, the bet's record kept in
the worker's store (restored from the changelog by the next worker), redeemed points that a
cancellation can no longer take (`domain.cancellations`)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.kafka.reading import read_topics
from loyalty_streams.kafka.topics import (
    COMMAND_REJECTIONS,
    DEAD_LETTER,
    POINTS_ACCRUED,
    REDEMPTIONS,
)
from tests.domain.builders import bet, cancellation, command
from tests.integration.conftest import Cluster, get, owned, settled, wait_until
from tests.integration.test_lifecycle import by_id, wait_for_outputs

PLAY = (POINTS_ACCRUED,)


def lookup(worker: ServiceProcess, player_id: str) -> dict[str, Any]:
    status, body = get(worker, f"/loyalty/aurora-casino/{player_id}")
    assert status == 200, body
    return body


def figures(worker: ServiceProcess, player_id: str) -> tuple[Decimal, ...]:
    """The points available and held, the cumulative turnover and the VIP points a lookup
    shows, as numbers (a figure's places depend on how it was reached)."""
    body = lookup(worker, player_id)
    points = body["points"]
    return tuple(
        Decimal(figure)
        for figure in (
            points["available"],
            points["held"],
            body["turnover"]["cumulative"],
            body["vip_points"],
        )
    )


def test_a_bet_cancelled_in_two_parts_takes_back_exactly_what_it_earned(cluster: Cluster) -> None:
    worker = cluster.worker("voider")
    now = datetime.now(UTC)
    player = {"player_id": "voider", "occurred_at": now - timedelta(minutes=10)}
    # live casino (weight 1.5) and table (0.5): no promotion of the shipped programme applies
    kept = bet("20", "live_casino", event_id="bet-kept", **player)  # 30.00 points
    placed = bet("100.05", "table", event_id="bet-void", **player)  # 50.025 -> 50.02 points
    cluster.publish([kept, placed])
    wait_for_outputs(cluster, PLAY, {"bet-kept:points", "bet-void:points"})
    settled(worker)
    before = figures(worker, "voider")
    assert before == (Decimal("80.02"), 0, Decimal("120.05"), Decimal("120.05"))

    # a part: the bet's points at what is left of it (70.04 x 0.5 = 35.02) are what it keeps
    later = {"player_id": "voider", "occurred_at": now - timedelta(minutes=5)}
    part = cancellation(placed.bet_id, "30.01", event_id="void-1", reason="round_voided", **later)
    cluster.publish([part])
    found = wait_for_outputs(cluster, PLAY, {"void-1:reversed"})
    first = found["void-1:reversed"]
    assert first["type"] == "PointsReversed" and first["bet_id"] == placed.bet_id
    assert first["reason"] == "round_voided"
    assert Decimal(first["points"]) == Decimal("15.00")
    assert Decimal(first["points_reversed"]) == Decimal("15.00")
    assert Decimal(first["points_unrecovered"]) == 0
    assert Decimal(first["remaining"]) == Decimal("70.04")
    assert Decimal(first["turnover"]) == Decimal("30.01")
    assert Decimal(first["points_available"]) == Decimal("65.02")
    settled(worker)
    assert figures(worker, "voider") == (Decimal("65.02"), 0, Decimal("90.04"), Decimal("90.04"))

    # more than is left is refused; then the rest; then the bet again; then a bet never placed
    cluster.publish(
        [
            cancellation(placed.bet_id, "70.05", event_id="void-2", **later),
            cancellation(placed.bet_id, "70.04", event_id="void-3", **later),
            cancellation(placed.bet_id, "1", event_id="void-4", **later),
            cancellation("no-such-bet", "5", event_id="void-5", **later),
        ]
    )
    found = wait_for_outputs(
        cluster,
        PLAY,
        {"void-2:refused", "void-3:reversed", "void-4:refused", "void-5:refused"},
    )
    assert found["void-2:refused"]["code"] == "exceeds_remaining"
    rest = found["void-3:reversed"]
    assert Decimal(rest["points"]) == Decimal("35.02") == Decimal(rest["points_reversed"])
    assert Decimal(rest["remaining"]) == 0
    assert Decimal(first["points"]) + Decimal(rest["points"]) == Decimal("50.02")  # all it earned
    assert found["void-4:refused"]["code"] == "already_cancelled"
    assert found["void-5:refused"]["code"] == "unknown_bet"
    assert found["void-5:refused"]["bet_id"] == "no-such-bet"

    settled(worker)
    # back where the kept bet alone left them: its points, its turnover, its VIP points
    assert figures(worker, "voider") == (30, 0, 20, 20)
    status, page = get(worker, "/loyalty/aurora-casino/voider/history")
    assert status == 200
    kinds = [row["type"] for row in page["history"]][::-1]  # oldest first
    assert kinds == [
        "PointsAccrued", "PointsAccrued", "PointsReversed", "CancellationRefused",
        "PointsReversed", "CancellationRefused", "CancellationRefused",
    ]  # fmt: skip
    status, only = get(worker, "/loyalty/aurora-casino/voider/history?types=PointsReversed")
    assert [row["output_id"] for row in only["history"]] == ["void-3:reversed", "void-1:reversed"]


def test_a_cancellation_for_a_player_with_no_record_is_a_dead_letter(cluster: Cluster) -> None:
    cluster.worker("solo")
    stranger = cancellation("bet-x", "5", event_id="void-stranger", player_id="stranger")
    cluster.publish([stranger, bet("1", event_id="bet-after", player_id="stranger")])
    wait_for_outputs(cluster, PLAY, {"bet-after:points"})
    records = read_topics(
        cluster.settings, (DEAD_LETTER, *PLAY), until=lambda r: bool(r[DEAD_LETTER]), timeout=10
    )
    (letter,) = [orjson.loads(record.value) for record in records[DEAD_LETTER]]
    assert "unknown_bet" in letter["reason"] and "no record" in letter["reason"]
    assert set(by_id(records, *PLAY)) == {"bet-after:points"}  # nothing said about the stranger


def test_the_next_worker_finds_the_bet_restored_from_the_changelog(cluster: Cluster) -> None:
    first = cluster.worker("first")
    now = datetime.now(UTC)
    placed = bet("40", "live_casino", event_id="bet-1", player_id="mover", occurred_at=now)
    cluster.publish([placed])
    wait_for_outputs(cluster, PLAY, {"bet-1:points"})  # 60.00 points
    settled(first)
    first.kill()  # SIGKILL; the next worker has a data dir of its own: only the changelog is left

    second = cluster.worker("second")
    wait_until(lambda: len(owned(second)) == 12, 30, "the second worker to own every partition")
    void = cancellation(placed.bet_id, "40", event_id="void-1", player_id="mover", occurred_at=now)
    cluster.publish([void])
    found = wait_for_outputs(cluster, PLAY, {"void-1:reversed"})
    reversed_ = found["void-1:reversed"]
    assert Decimal(reversed_["points"]) == Decimal("60.00") == Decimal(reversed_["points_reversed"])
    settled(second)
    assert figures(second, "mover") == (0, 0, 0, 0)


def test_redeemed_points_are_unrecovered_and_the_balance_never_goes_negative(
    cluster: Cluster,
) -> None:
    worker = cluster.worker("cashier")
    now = datetime.now(UTC)
    placed = bet("2000", "live_casino", event_id="bet-1", player_id="spender", occurred_at=now)
    cluster.publish([placed])  # 3,000.00 points
    wait_for_outputs(cluster, PLAY, {"bet-1:points"})
    player = {"player_id": "spender", "issued_at": now}
    cluster.publish(
        [
            command("RedeemPoints", command_id="rd-1", points="2000", **player),
            command("ConfirmRedemption", command_id="cf-1", redemption_id="rd-1", **player),
        ]
    )
    wait_for_outputs(cluster, (REDEMPTIONS, COMMAND_REJECTIONS), {"rd-1:redeemed"})

    void = cancellation(placed.bet_id, "2000", event_id="void-1", player_id="spender",
                        occurred_at=now + timedelta(seconds=1))  # fmt: skip
    cluster.publish([void])
    found = wait_for_outputs(cluster, PLAY, {"void-1:reversed"})
    reversed_ = found["void-1:reversed"]
    # it earned 3,000; 2,000 were redeemed: the 1,000 left are taken, the rest is unrecovered
    assert Decimal(reversed_["points"]) == 3000
    assert Decimal(reversed_["points_reversed"]) == 1000
    assert Decimal(reversed_["points_unrecovered"]) == 2000
    assert Decimal(reversed_["points_available"]) == 0
    settled(worker)
    body = lookup(worker, "spender")
    points = body["points"]
    assert Decimal(points["available"]) == 0 and Decimal(points["held"]) == 0
    assert Decimal(points["redeemed"]) == 2000
    # accrued - reversed - redeemed = available + held
    assert Decimal(points["accrued"]) - 1000 - Decimal(points["redeemed"]) == 0
    assert Decimal(body["turnover"]["cumulative"]) == 0


def test_a_closed_day_corrected_by_a_cancellation_closes_and_the_worker_goes_on(
    cluster: Cluster,
) -> None:
    worker = cluster.worker("closer")
    now = datetime.now(UTC)
    placed = bet("50", "live_casino", event_id="bet-1", player_id="late",
                 occurred_at=now - timedelta(days=3))  # fmt: skip
    cluster.publish([placed])
    wait_for_outputs(cluster, PLAY, {"bet-1:points"})
    # two days later, after its day closed: the stake comes off the cancellation's own day
    cluster.publish(
        [
            cancellation(
                placed.bet_id,
                "50",
                event_id="void-1",
                player_id="late",
                occurred_at=now - timedelta(days=1),
            ),
            bet("1", "live_casino", event_id="bet-2", player_id="late", occurred_at=now),
        ]
    )
    wait_for_outputs(cluster, PLAY, {"void-1:reversed", "bet-2:points"})
    assert worker.settled(timeout=15), f"the fold loop stopped\n{worker.log_tail()}"
    status, log = get(worker, "/loyalty/aurora-casino/late/cashback")
    assert status == 200
    # the bet's day, and the cancellation's, which took its stake off
    days = sorted((Decimal(day["bets"]), Decimal(day["cancelled"])) for day in log["days"])
    assert days == [(0, 50), (50, 0)]
    assert all(Decimal(day["ngr"]) == Decimal(day["bets"]) - Decimal(day["cancelled"])
               for day in log["days"])  # fmt: skip
    cluster.publish([bet("1", "live_casino", event_id="bet-3", player_id="late", occurred_at=now)])
    wait_for_outputs(cluster, PLAY, {"bet-3:points"})
