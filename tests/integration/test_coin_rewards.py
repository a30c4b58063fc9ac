"""The sweepstakes brand's coin rewards on a real worker and broker (`domain.coin_rewards`): the
store bonus on a coin package, once per purchase; the daily login reward through the commands
topic, once per brand day; the monthly bonus refused below the level with the perk."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from loyalty_streams.kafka.reading import read_topics
from loyalty_streams.kafka.topics import COMMAND_REJECTIONS, REWARDS
from tests.domain.builders import bet, command, programme, purchase
from tests.integration.conftest import Cluster, get, settled
from tests.integration.test_lifecycle import wait_for_outputs

SWEEPS = {"brand_id": "lucky-sweeps", "player_id": "buyer"}


def test_store_bonus_once_per_purchase_and_the_daily_reward_once_a_day(cluster: Cluster) -> None:
    worker = cluster.worker("store")
    now = datetime.now(UTC)
    before = {"occurred_at": now - timedelta(minutes=6), **SWEEPS}
    at = {"occurred_at": now - timedelta(minutes=5), **SWEEPS}
    after = {"occurred_at": now - timedelta(minutes=4), **SWEEPS}  # Silver from `at` on
    silver = programme("lucky-sweeps").levels[1]
    assert (silver.name, silver.store_multiplier) == ("Silver", Decimal("1.05"))
    cluster.publish(
        [
            # at Bronze (store multiplier 1): no bonus
            purchase(
                "25000.00", "5.00", "4.99", purchase_id="pur-bronze", event_id="e-1", **before
            ),
            # 1,500 SC wagered = 1,500 VIP points: Silver
            bet("1500", event_id="e-2", currency="SC", **at),
            purchase("50000.00", "10.00", "9.99", purchase_id="pur-1", event_id="e-3", **after),
            # the store sends the same purchase again, under another event id
            purchase("50000.00", "10.00", "9.99", purchase_id="pur-1", event_id="e-4", **after),
            purchase("10000.00", "2.00", "1.99", purchase_id="pur-2", event_id="e-5", **after),
        ]
    )
    found = wait_for_outputs(
        cluster,
        (REWARDS,),
        {"store-bonus:lucky-sweeps:buyer:pur-1", "store-bonus:lucky-sweeps:buyer:pur-2"},
    )
    bonus = found["store-bonus:lucky-sweeps:buyer:pur-1"]
    assert (bonus["level"], Decimal(bonus["multiplier"])) == ("Silver", Decimal("1.05"))
    # the coins x (1.05 - 1)
    assert (Decimal(bonus["bonus_gc"]), Decimal(bonus["bonus_sc"])) == (2500, Decimal("0.50"))
    assert (Decimal(bonus["gc"]), Decimal(bonus["sc"])) == (50000, 10)
    assert (bonus["price"], bonus["currency"], bonus["event_id"]) == ("9.99", "USD", "e-3")
    small = found["store-bonus:lucky-sweeps:buyer:pur-2"]
    assert (Decimal(small["bonus_gc"]), Decimal(small["bonus_sc"])) == (500, Decimal("0.10"))
    # pur-2 came after the repeat on the player's partition: the repeat paid nothing
    purchases = [v["purchase_id"] for v in found.values() if v["type"] == "StoreBonusGranted"]
    assert sorted(purchases) == ["pur-1", "pur-2"]

    claims = [
        command("ClaimDailyReward", command_id="daily-1", issued_at=now, **SWEEPS),
        command("ClaimDailyReward", command_id="daily-2", issued_at=now, **SWEEPS),
        command("ClaimMonthlyBonus", command_id="monthly-1", issued_at=now, **SWEEPS),
    ]
    cluster.publish(claims)
    found = wait_for_outputs(
        cluster,
        (REWARDS, COMMAND_REJECTIONS),
        {"daily-1:daily-reward", "daily-2:rejected", "monthly-1:rejected"},
    )
    daily = found["daily-1:daily-reward"]
    assert (daily["streak"], daily["level"], Decimal(daily["multiplier"])) == (
        1, "Silver", Decimal("1.1"),
    )  # fmt: skip
    # day 1 of the schedule, 5,000 GC + 0.2 SC, x 1.1
    assert (Decimal(daily["base_gc"]), Decimal(daily["base_sc"])) == (5000, Decimal("0.2"))
    assert (Decimal(daily["gc"]), Decimal(daily["sc"])) == (5500, Decimal("0.22"))
    assert daily["day"] == now.astimezone(programme("lucky-sweeps").zone).date().isoformat()
    assert found["daily-2:rejected"]["code"] == "already_claimed"
    assert found["monthly-1:rejected"]["code"] == "not_eligible"  # Platinum and above

    settled(worker)
    status, page = get(worker, "/loyalty/lucky-sweeps/buyer/history")
    assert status == 200
    kinds = {row["type"] for row in page["history"]}
    assert {"StoreBonusGranted", "DailyRewardGranted", "CommandRejected"} <= kinds
    records = read_topics(cluster.settings, (REWARDS,), until=lambda r: False, timeout=1.0)
    rewards = [orjson.loads(record.value) for record in records[REWARDS]]
    assert sorted(v["output_id"] for v in rewards if v["type"] != "TierRewardGranted") == [
        "daily-1:daily-reward",
        "store-bonus:lucky-sweeps:buyer:pur-1",
        "store-bonus:lucky-sweeps:buyer:pur-2",
    ]  # fmt: skip
