"""Finance exports on a real broker: a scan ends where the topic ended, and the CSVs of a worker's
outputs add up to what the topics hold, for one brand and one range only."""

import csv
import io
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from loyalty_streams.cli import main as cli
from loyalty_streams.domain.commands import Command
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.programme import Programme, shipped_programmes
from loyalty_streams.kafka.clients import producer_config
from loyalty_streams.kafka.reading import Records, read_topics, scan_topic
from loyalty_streams.kafka.topics import POINTS_ACCRUED, PROGRAMMES, REDEMPTIONS, REWARDS
from loyalty_streams.settings import Settings, get_settings
from tests.domain.builders import bet, cancellation, command, purchase, win
from tests.integration.conftest import Cluster, on_both_brokers, on_both_session_brokers

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@on_both_session_brokers  # Tansu answers offsets for times with 0; Kafka seeks
def test_a_scan_reads_every_partition_to_the_end_it_had_and_filters_by_timestamp(
    settings: Settings,
) -> None:
    kafka = settings.bootstrap_servers
    topic = f"scan-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka})
    for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": kafka, "linger.ms": "20"})
    # partition 0 in batches of 40 (Tansu lists its end as the last batch's base + 1), times
    # out of order; partition 1 one record at a time; partition 2 empty
    for i in range(200):
        stamp = EPOCH + timedelta(hours=(i * 7) % 50)
        producer.produce(topic, str(i).encode(), partition=0 if i % 4 else 1, timestamp=_ms(stamp))
        if i % 40 == 39 or i % 4 == 0:
            producer.flush()
    producer.flush()

    everything = list(scan_topic(settings, topic, since=None, until=None))
    assert sorted(int(r.value) for r in everything) == list(range(200))
    assert {r.partition for r in everything} == {0, 1}
    since, until = EPOCH + timedelta(hours=10), EPOCH + timedelta(hours=20)
    some = list(scan_topic(settings, topic, since=since, until=until))
    expected = [r for r in everything if r.timestamp is not None and since <= r.timestamp < until]
    assert sorted(r.value for r in some) == sorted(r.value for r in expected)
    assert 0 < len(some) < 200
    # a time just before 1970 is -1 ms, which ListOffsets reads as "the end": not asked
    just_before = datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=1)
    assert sum(1 for _ in scan_topic(settings, topic, since=just_before, until=None)) == 200

    # a topic written to all along: the scan stops at the end it found
    writing = threading.Event()
    writing.set()

    def keep_writing() -> None:
        other = Producer({"bootstrap.servers": kafka})
        while writing.is_set():
            other.produce(topic, b"more", partition=0)
            other.poll(0.002)
        other.flush()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert sum(1 for _ in scan_topic(settings, topic, since=None, until=None)) >= 200
    finally:
        writing.clear()
        writer.join()

    with pytest.raises(LookupError):
        list(scan_topic(settings, f"{topic}-missing", since=None, until=None))
    assert f"{topic}-missing" not in admin.list_topics(timeout=10).topics  # not created either


# -- the exports of a worker's outputs ------------------------------------------------------


def ledger(brand_id: str, zone: str) -> Programme:
    """Aurora's rules under another brand and zone; holds that outlive the test's dates."""
    aurora = next(p for p in shipped_programmes() if p.brand_id == "aurora-casino")
    policies = aurora.policies.model_copy(
        update={"timezone": zone, "redemption_hold_minutes": 14 * 24 * 60}
    )
    return aurora.model_copy(update={"brand_id": brand_id, "policies": policies})


NORTH, SOUTH = "ledger-north", "ledger-south"
CENT = Decimal("0.01")
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def play(brand: str, today: date) -> list[PlayerEvent]:
    """Two players, the same ids in both brands: a bet and a win each day for six days."""
    events: list[PlayerEvent] = []
    for days_ago in range(6, 0, -1):
        noon = datetime.combine(today - timedelta(days=days_ago), time(12), UTC)
        for n, player in enumerate(("p1", "p2"), start=1):
            first = days_ago == 6  # 12,000 EUR: Silver at once, 1 % cashback every day after
            stake = Decimal("12000") if first else Decimal(f"{1000 * n + 37 * days_ago}.45")
            base = {"brand_id": brand, "player_id": player}
            events.append(bet(stake, occurred_at=noon, **base))
            events.append(
                win((stake / 4).quantize(CENT), occurred_at=noon + timedelta(minutes=5), **base)
            )
    return events


def redemptions(brand: str, now: datetime) -> list[Command]:
    """Two confirmed now, one held and cancelled. A command runs at the time the broker stamps
    it (`loyalty.commands` is LogAppendTime): a redemption cannot be dated in the past on
    Kafka, so the range that holds them is today's."""
    base = {"brand_id": brand}
    commands: list[Command] = []
    for name, player, points in (("a", "p1", "2500"), ("b", "p2", "1200")):
        rid = f"{brand}-{name}"
        commands.append(command("RedeemPoints", command_id=rid, points=points, player_id=player,
                                issued_at=now, **base))  # fmt: skip
        commands.append(command("ConfirmRedemption", command_id=f"{rid}-ok", redemption_id=rid,
                                player_id=player, issued_at=now, **base))  # fmt: skip
    held = f"{brand}-held"
    commands.append(command("RedeemPoints", command_id=held, points="1000", player_id="p2",
                            issued_at=now, **base))  # fmt: skip
    commands.append(command("CancelRedemption", command_id=f"{held}-no", redemption_id=held,
                            player_id="p2", issued_at=now, **base))  # fmt: skip
    return commands


def outputs(records: Records, *topics: str) -> dict[str, dict[str, Any]]:
    return {
        value["output_id"]: value
        for topic in topics
        for value in (orjson.loads(record.value) for record in records[topic])
    }


def read_until(cluster: Cluster, done: Callable[[dict[str, dict[str, Any]]], bool]) -> Records:
    topics = (POINTS_ACCRUED, REDEMPTIONS, REWARDS)
    records = read_topics(
        cluster.settings, topics, until=lambda r: done(outputs(r, *topics)), timeout=60
    )
    assert done(outputs(records, *topics)), "the worker's outputs did not all arrive"
    return records


@on_both_brokers
def test_exports_add_up_to_the_topics_for_one_brand_and_range(
    cluster: Cluster,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    producer = Producer(producer_config(cluster.settings))
    for programme in (ledger(NORTH, "Europe/Stockholm"), ledger(SOUTH, "America/New_York")):
        key = f"{programme.brand_id}:{programme.version}"
        producer.produce(PROGRAMMES, programme.model_dump_json().encode(), key.encode())
    assert producer.flush(10) == 0
    cluster.worker("exporter")
    today = datetime.now(UTC).date()
    events = [*play(NORTH, today), *play(SOUTH, today)]
    cluster.publish(events)
    bets = {f"{e.event_id}:points" for e in events if e.type == "BetPlaced"}
    read_until(cluster, lambda found: bets <= set(found))  # points first, then redeem them
    commands = [*redemptions(NORTH, datetime.now(UTC)), *redemptions(SOUTH, datetime.now(UTC))]
    cluster.publish(commands)

    cashback = {
        f"cashback:{brand}:{player}:{(today - timedelta(days=d)).isoformat()}"
        for brand in (NORTH, SOUTH)
        for player in ("p1", "p2")
        for d in range(1, 7)
    }
    redeemed = {f"{c.command_id}:redeemed" for c in commands if c.type == "RedeemPoints"}
    redeemed -= {f"{NORTH}-held:redeemed", f"{SOUTH}-held:redeemed"}
    read_until(cluster, lambda found: bets | cashback | redeemed <= set(found))
    # everything the topics hold now (repeats included, were there any)
    records = read_topics(
        cluster.settings, (POINTS_ACCRUED, REDEMPTIONS, REWARDS), until=lambda _: False, timeout=2
    )

    # the range: three Stockholm days, [today-5, today-2); the redemptions': today's two days
    first, end = today - timedelta(days=5), today - timedelta(days=2)
    since = datetime.combine(first, time(), STOCKHOLM)
    until = datetime.combine(end, time(), STOCKHOLM)
    recent = datetime.now(STOCKHOLM).date() - timedelta(days=1)
    recent_span = (datetime.combine(recent, time(), STOCKHOLM),
                   datetime.combine(recent + timedelta(days=2), time(), STOCKHOLM))  # fmt: skip

    def expected(
        topic: str, output_type: str, span: tuple[datetime, datetime] = (since, until)
    ) -> dict[str, dict[str, Any]]:
        """The topic read by a stock client, filtered as the export promises."""
        return {
            output_id: value
            for output_id, value in outputs(records, topic).items()
            if value["type"] == output_type
            and value["brand_id"] == NORTH
            and span[0] <= datetime.fromisoformat(value["occurred_at"]) < span[1]
        }

    monkeypatch.setenv("LOYALTY_BOOTSTRAP_SERVERS", cluster.settings.bootstrap_servers)
    get_settings.cache_clear()
    try:
        span = ["--brand", NORTH, "--from", first.isoformat(), "--to", end.isoformat()]
        capsys.readouterr()
        assert cli.main(["export", "accruals", *span]) == 0
        accruals = rows(capsys.readouterr().out)
        assert cli.main(["export", "redemptions", *span, "--out", str(tmp_path / "old.csv")]) == 0
        recent_days = [
            "--from",
            recent.isoformat(),
            "--to",
            (recent + timedelta(days=2)).isoformat(),
        ]
        assert cli.main(["export", "redemptions", "--brand", NORTH, *recent_days,
                         "--out", str(tmp_path / "r.csv")]) == 0  # fmt: skip
        assert cli.main(["export", "cashback", *span, "--out", str(tmp_path / "c.csv")]) == 0
        assert cli.main(["export", "cashback", "--brand", "nobody", "--from", first.isoformat(),
                         "--to", end.isoformat()]) == 1  # fmt: skip
    finally:
        get_settings.cache_clear()
    redemption_rows = rows((tmp_path / "r.csv").read_text(encoding="utf-8"))
    cashback_rows = rows((tmp_path / "c.csv").read_text(encoding="utf-8"))
    assert not list(tmp_path.glob("*.partial"))

    # accruals: two players, three days
    truth = expected(POINTS_ACCRUED, "PointsAccrued")
    assert len(accruals) == len(truth) == 6
    assert {r["output_id"] for r in accruals} == set(truth)
    assert total(accruals, "points") == sum(Decimal(v["points"]) for v in truth.values()) > 0
    assert total(accruals, "amount") == sum(Decimal(v["amount"]) for v in truth.values())

    # redemptions: the confirmed ones, not the held one; none in the range of days ago
    assert rows((tmp_path / "old.csv").read_text(encoding="utf-8")) == []
    truth = expected(REDEMPTIONS, "PointsRedeemed", recent_span)
    assert {r["output_id"] for r in redemption_rows} == set(truth) == {
        f"{NORTH}-a:redeemed", f"{NORTH}-b:redeemed",
    }  # fmt: skip
    assert total(redemption_rows, "value") == sum(Decimal(v["value"]) for v in truth.values())
    assert total(redemption_rows, "value") == Decimal("37.00")  # 3,700 points, 10 EUR per 1,000
    assert total(redemption_rows, "points") == Decimal("3700")

    # cashback: a closed day counts when it closed (midnight in Stockholm after it), so the day
    # before the range is in it and the range's last day is not
    truth = expected(REWARDS, "CashbackAwarded")
    assert {r["output_id"] for r in cashback_rows} == set(truth)
    assert {r["day"] for r in cashback_rows} == {
        (today - timedelta(days=d)).isoformat() for d in (6, 5, 4)
    }
    assert len(cashback_rows) == 6
    assert total(cashback_rows, "amount") == sum(Decimal(v["amount"]) for v in truth.values()) > 0

    for row in (*accruals, *cashback_rows):
        assert row["brand_id"] == NORTH
        assert since <= datetime.fromisoformat(row["occurred_at"]) < until
    for row in redemption_rows:
        assert row["brand_id"] == NORTH
        assert recent_span[0] <= datetime.fromisoformat(row["occurred_at"]) < recent_span[1]


SWEEPS = "lucky-sweeps"
NEW_YORK = ZoneInfo("America/New_York")
COIN_REWARDS = {
    "DailyRewardGranted",
    "MonthlyBonusGranted",
    "StoreBonusGranted",
    "BirthdayGiftGranted",
    "TierRewardGranted",
}
"""Every coin reward: the coin-rewards export's types."""


def test_the_exports_of_cancelled_bets_and_coin_rewards_hold_what_the_topics_do(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Lucky Sweeps' players: a bet voided in part (and a cancellation refused), a coin pack
    bought, the daily reward and the monthly bonus claimed; Aurora's voided bet beside them."""
    cluster.worker("exporter")
    now = datetime.now(UTC)
    sweeps = {"brand_id": SWEEPS, "currency": "SC"}
    played, voided = now - timedelta(hours=2), now - timedelta(hours=1)
    bets = [
        bet("2000", bet_id="b-1", player_id="p1", occurred_at=played, **sweeps),  # Silver
        bet("30000", bet_id="b-2", player_id="p2", occurred_at=played, **sweeps),  # Platinum
        bet("800", bet_id="b-3", player_id="p1", occurred_at=played),  # aurora-casino
    ]
    cancelled = cancellation("b-1", "500", reason="round_voided", player_id="p1",
                             occurred_at=voided, **sweeps)  # fmt: skip
    unknown = cancellation("b-9", "5", player_id="p1", occurred_at=voided, **sweeps)
    elsewhere = cancellation("b-3", "800", player_id="p1", occurred_at=voided)
    bought = purchase("20000", "20", "19.99", player_id="p1", occurred_at=voided)
    daily = command("ClaimDailyReward", brand_id=SWEEPS, player_id="p1", issued_at=now)
    monthly = command("ClaimMonthlyBonus", brand_id=SWEEPS, player_id="p2", issued_at=now)
    cluster.publish(bets)
    read_until(cluster, lambda found: {f"{b.event_id}:points" for b in bets} <= set(found))
    cluster.publish([cancelled, unknown, elsewhere, bought, daily, monthly])
    expected = {
        f"{cancelled.event_id}:reversed",
        f"{unknown.event_id}:refused",
        f"{elsewhere.event_id}:reversed",
        f"store-bonus:{bought.key}:{bought.purchase_id}",
        f"{daily.command_id}:daily-reward",
        f"{monthly.command_id}:monthly-bonus",
    }
    records = read_until(cluster, lambda found: expected <= set(found))
    reversals = kept(outputs(records, POINTS_ACCRUED), {"PointsReversed"})
    rewards = kept(outputs(records, REWARDS), COIN_REWARDS)

    monkeypatch.setenv("LOYALTY_BOOTSTRAP_SERVERS", cluster.settings.bootstrap_servers)
    get_settings.cache_clear()
    today = datetime.now(NEW_YORK).date()
    span = ["--brand", SWEEPS, "--from", (today - timedelta(days=1)).isoformat(),
            "--to", (today + timedelta(days=1)).isoformat()]  # fmt: skip
    try:
        capsys.readouterr()
        assert cli.main(["export", "reversals", *span]) == 0
        reversal_rows = rows(capsys.readouterr().out)
        assert cli.main(["export", "coin-rewards", *span]) == 0
        reward_rows = rows(capsys.readouterr().out)
    finally:
        get_settings.cache_clear()

    # reversals: the one carried out for the brand; the refusal and Aurora's are not rows
    (row,) = reversal_rows
    assert set(reversals) == {row["output_id"]} == {f"{cancelled.event_id}:reversed"}
    assert (row["bet_id"], row["reason"], row["amount"], row["remaining"]) == (
        "b-1", "round_voided", "500", "1500",
    )  # fmt: skip
    assert Decimal(row["points"]) == Decimal(reversals[row["output_id"]]["points"]) > 0
    taken = sum(Decimal(row[f"points_{part}"]) for part in ("reversed", "owed", "unrecovered"))
    assert taken == Decimal(row["points"])

    # coin rewards: one row each, the coins paid adding up to the topic's
    assert {r["output_id"] for r in reward_rows} == set(rewards)
    by_reward = {r["reward"]: r for r in reward_rows}
    # the tier-up rewards of the levels the bets reached are coin rewards too
    assert set(by_reward) == {"daily_reward", "monthly_bonus", "store_bonus", "tier_up"}
    first_day = by_reward["daily_reward"]
    assert (first_day["streak"], first_day["level"], first_day["purchase_id"]) == (
        "1",
        "Silver",
        "",
    )
    assert (by_reward["monthly_bonus"]["level"], by_reward["monthly_bonus"]["gc"]) == (
        "Platinum", "100000",
    )  # fmt: skip
    store = by_reward["store_bonus"]  # Silver's store multiplier is 1.05
    assert (store["gc"], store["sc"], store["price"], store["currency"], store["streak"]) == (
        "1000.00", "1.00", "19.99", "USD", "",
    )  # fmt: skip
    for coin in ("gc", "sc"):
        paid = sum(
            # a store bonus pays its bonus coins; a tier-up reward has GC only
            Decimal(v[f"bonus_{coin}"] if v["type"] == "StoreBonusGranted" else v.get(coin, 0))
            for v in rewards.values()
        )
        assert total(reward_rows, coin) == paid > 0


def kept(found: dict[str, dict[str, Any]], types: set[str]) -> dict[str, dict[str, Any]]:
    """The outputs of `types` of Lucky Sweeps."""
    return {
        output_id: value
        for output_id, value in found.items()
        if value["type"] in types and value["brand_id"] == SWEEPS
    }


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def total(found: list[dict[str, str]], column: str) -> Decimal:
    return sum((Decimal(row[column]) for row in found), Decimal(0))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
