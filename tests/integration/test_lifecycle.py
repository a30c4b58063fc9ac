"""The points lifecycle on a real worker and broker: a redemption end to end, a cashback close."""

from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
import pytest

from loyalty_streams.cli import main as cli
from loyalty_streams.kafka.reading import Records, read_topics
from loyalty_streams.kafka.topics import COMMAND_REJECTIONS, COMMANDS, REDEMPTIONS, REWARDS
from loyalty_streams.settings import get_settings
from tests.domain.builders import bet, command, programme, win
from tests.integration.conftest import Cluster, get, on_both_brokers, scrape, settled, wait_until


def by_id(records: Records, *topics: str) -> dict[str, dict[str, Any]]:
    return {
        value["output_id"]: value
        for topic in topics
        for value in (orjson.loads(record.value) for record in records[topic])
    }


def wait_for_outputs(cluster: Cluster, topics: tuple[str, ...], ids: set[str]) -> dict[str, Any]:
    records = read_topics(
        cluster.settings, topics, until=lambda r: ids <= set(by_id(r, *topics)), timeout=60
    )
    found = by_id(records, *topics)
    assert ids <= set(found), f"missing {sorted(ids - set(found))}"
    return found


@on_both_brokers
def test_a_redemption_is_held_then_confirmed_and_a_repeat_has_no_effect(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = cluster.worker("cashier")
    now = datetime.now(UTC)
    cluster.publish([bet("5000", player_id="redeemer", occurred_at=now)])
    wait_until(
        lambda: get(worker, "/loyalty/aurora-casino/redeemer")[0] == 200, 60, "the bet to land"
    )
    request = command("RedeemPoints", player_id="redeemer", command_id="rd-1", points="3000",
                      issued_at=now)  # fmt: skip
    too_much = command("RedeemPoints", player_id="redeemer", command_id="rd-2", points="3000",
                       issued_at=now)  # fmt: skip
    confirm = command("ConfirmRedemption", player_id="redeemer", command_id="cf-1",
                      redemption_id="rd-1", issued_at=now + timedelta(minutes=1))  # fmt: skip
    # sent as an operator would, through the CLI; the confirmation twice
    texts = [c.model_dump_json() for c in (request, too_much, confirm, confirm)]
    monkeypatch.setenv("LOYALTY_BOOTSTRAP_SERVERS", cluster.settings.bootstrap_servers)
    get_settings.cache_clear()
    try:
        assert cli.main(["command", texts[0], '{"type": "RedeemPoints"}']) == 1  # nothing sent
        assert cli.main(["command", *texts]) == 0
    finally:
        get_settings.cache_clear()

    found = wait_for_outputs(
        cluster, (REDEMPTIONS, COMMAND_REJECTIONS), {"rd-1:held", "rd-1:redeemed", "rd-2:rejected"}
    )
    assert found["rd-1:held"]["points_held"] == "3000"
    redeemed = found["rd-1:redeemed"]
    assert (redeemed["points"], redeemed["value"], redeemed["currency"]) == ("3000", "30.00", "EUR")
    assert found["rd-2:rejected"]["code"] == "insufficient_points"
    assert "3000 points requested, 2000.00 available" in found["rd-2:rejected"]["reason"]

    settled(worker)
    status, body = get(worker, "/loyalty/aurora-casino/redeemer")
    assert status == 200
    points = body["points"]
    assert (points["available"], points["held"], points["redeemed"]) == ("2000.00", "0", "3000")
    assert body["holds"] == []
    # one effect: one redemption, the repeated confirmation changed and sent nothing
    records = read_topics(
        cluster.settings, (REDEMPTIONS, COMMANDS), until=lambda r: False, timeout=1.0
    )
    assert sorted(by_id(records, REDEMPTIONS)) == ["rd-1:held", "rd-1:redeemed"]
    assert len(records[REDEMPTIONS]) == 2
    assert len(records[COMMANDS]) == 4  # the refused CLI call published nothing

    metrics = scrape(worker)
    assert metrics['points_accrued_total{brand="aurora-casino"}'] == 5000
    assert metrics['points_redeemed_total{brand="aurora-casino"}'] == 3000
    assert metrics['loyalty_records_processed_total{topic="loyalty.commands"}'] == 4
    assert metrics['loyalty_outputs_total{type="CommandRejected"}'] == 1
    assert metrics["loyalty_processing_latency_seconds_count"] == 5  # the bet too


@on_both_brokers
def test_a_timer_closes_yesterday_at_midnight_and_pays_cashback_once(cluster: Cluster) -> None:
    worker = cluster.worker("closer", census_interval_s=1.0)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    day = yesterday.astimezone(programme("lucky-sweeps").zone).date()
    sc = {"brand_id": "lucky-sweeps", "player_id": "spinner", "currency": "SC"}
    # 1,500 VIP points: Silver (1 % cashback, at most 10 SC a day); NGR 1,500 - 600 = 900
    cluster.publish(
        [bet("1500", occurred_at=yesterday, **sc), win("600", occurred_at=yesterday, **sc)]
    )

    cashback_id = f"cashback:lucky-sweeps:spinner:{day.isoformat()}"
    found = wait_for_outputs(cluster, (REWARDS,), {cashback_id})
    award = found[cashback_id]
    assert (award["ngr"], award["percent"], award["amount"], award["capped"]) == (
        "900.00", "1", "9.00", False,
    )  # fmt: skip
    midnight = datetime.combine(day + timedelta(days=1), time(), programme("lucky-sweeps").zone)
    assert award["occurred_at"] == midnight.astimezone(UTC).isoformat()  # UTC, the close's instant
    assert award["level"] == "Silver" and award["currency"] == "SC"
    rewards = {v["type"] for v in found.values()}
    assert rewards == {"CashbackAwarded", "TierRewardGranted"}  # and Silver's 10,000 GC

    wait_until(
        lambda: scrape(worker).get('players_per_level{brand="lucky-sweeps",level="Silver"}') == 1,
        30,
        "a census to count the players",
    )
    metrics = scrape(worker)
    assert metrics['cashback_awarded_total{brand="lucky-sweeps",currency="SC"}'] == 9
    paid_at = 'brand="lucky-sweeps",currency="SC",level="Silver"'  # the day's play, by level
    assert metrics[f"loyalty_closed_day_bets_total{{{paid_at}}}"] == 1500
    assert metrics[f"loyalty_closed_day_wins_total{{{paid_at}}}"] == 600
    assert metrics['loyalty_active_players{brand="lucky-sweeps",level="Silver",window="30d"}'] == 1

    def caught_up() -> bool:  # a lag sample for each owned partition of both inputs, all 0
        lags = {k: v for k, v in scrape(worker).items() if k.startswith("loyalty_consumer_lag{")}
        return len(lags) == 24 and not any(lags.values())

    wait_until(caught_up, 30, "the lag of all 24 input partitions to read 0")
    status, log = get(worker, "/loyalty/lucky-sweeps/spinner/cashback")
    assert status == 200
    (row,) = log["days"]
    assert (row["day"], row["bets"], row["wins"], row["amount"]) == (
        day.isoformat(), "1500.00", "600.00", "9.00",
    )  # fmt: skip
    # time passing pays nothing more for that day
    records = read_topics(cluster.settings, (REWARDS,), until=lambda r: False, timeout=3.0)
    types = [orjson.loads(record.value)["type"] for record in records[REWARDS]]
    assert types.count("CashbackAwarded") == 1
