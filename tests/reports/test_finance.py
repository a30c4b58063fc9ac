"""Finance CSV exports without a broker: columns, exact decimals, filters, repeats, bad records."""

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import orjson
import pytest

from loyalty_streams.cli.main import EXPORT_KINDS
from loyalty_streams.domain.events import GameCategory
from loyalty_streams.domain.money import Currency
from loyalty_streams.domain.outputs import (
    BirthdayGiftGranted,
    CancellationRefused,
    CashbackAwarded,
    DailyRewardGranted,
    MonthlyBonusGranted,
    Output,
    PointsAccrued,
    PointsFactors,
    PointsRedeemed,
    PointsReversed,
    RedemptionHeld,
    RedemptionReleased,
    ReleaseReason,
    StoreBonusGranted,
    TierRewardGranted,
    encode,
)
from loyalty_streams.kafka.reading import ReadRecord
from loyalty_streams.reports import finance as exports
from loyalty_streams.reports.finance import (
    ExportKind,
    csv_header,
    export_csv,
    parse_bound,
    render_csv,
)
from loyalty_streams.settings import Settings

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 2, 1, tzinfo=UTC)
D = Decimal


def accrued(
    n: int, *, brand: str = "aurora-casino", at: datetime = SINCE, points: str = "12.30"
) -> PointsAccrued:
    return PointsAccrued(
        output_id=f"e-{n}:points",
        event_id=f"e-{n}",
        bet_id=f"b-{n}",
        brand_id=brand,
        player_id=f"p-{n % 7}",
        occurred_at=at,
        amount=D("12.30"),
        currency=Currency.EUR,
        game_category=GameCategory.SLOTS,
        points=D(points),
        factors=PointsFactors(D("1"), D("1.0"), D("2"), ("Double, Week", "Happy"), D("1"), "Gold"),
        programme_version=3,
        points_available=D("99.99"),
    )


def redeemed(rid: str, *, at: datetime = SINCE, value: str = "30.00") -> PointsRedeemed:
    return PointsRedeemed(
        output_id=f"{rid}:redeemed",
        command_id=f"cf-{rid}",
        redemption_id=rid,
        brand_id="aurora-casino",
        player_id="p1",
        occurred_at=at,
        points=D("3000"),
        value=D(value),
        currency=Currency.EUR,
        points_available=D("0"),
        points_held=D("0"),
        programme_version=1,
    )


def cashback(day: date, *, amount: str = "9.00") -> CashbackAwarded:
    return CashbackAwarded(
        output_id=f"cashback:lucky-sweeps:p1:{day.isoformat()}",
        brand_id="lucky-sweeps",
        player_id="p1",
        occurred_at=datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC),
        day=day,
        level="Silver",
        ngr=D("900"),
        percent=D("1"),
        amount=D(amount),
        currency=Currency.SC,
        capped=False,
        programme_version=1,
    )


def reversed_(n: int, *, at: datetime = SINCE, unrecovered: str = "0") -> PointsReversed:
    """Bet `b-<n>` of lucky-sweeps:p1 voided in part: 40 of its 100 SC, 40 points."""
    return PointsReversed(
        output_id=f"x-{n}:reversed",
        event_id=f"x-{n}",
        bet_id=f"b-{n}",
        brand_id="lucky-sweeps",
        player_id="p1",
        occurred_at=at,
        placed_at=datetime(2025, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        reason="round_voided",
        amount=D("40.00"),
        currency=Currency.SC,
        remaining=D("60.00"),
        points=D("40.00"),
        points_reversed=D("40.00") - D(unrecovered),
        points_owed=D(0),
        points_unrecovered=D(unrecovered),
        turnover=D("40.00"),
        vip_points=D("40.0"),
        factors=PointsFactors(D("1"), D("1.0"), D("1"), (), D("1"), "Bronze"),
        programme_version=2,
        points_available=D("0"),
    )


def daily(at: datetime = SINCE) -> DailyRewardGranted:
    return DailyRewardGranted("c-1:daily-reward", "c-1", "lucky-sweeps", "p1", at,
                              date(2025, 12, 31), 3, "Silver", D("1.1"), D("7000"), D("0.3"),
                              D("7700.00"), D("0.33"), 2)  # fmt: skip


def monthly(at: datetime = SINCE) -> MonthlyBonusGranted:
    return MonthlyBonusGranted("c-2:monthly-bonus", "c-2", "lucky-sweeps", "p1", at, "2026-01",
                               "Platinum", D("100000"), D("10"), 2)  # fmt: skip


def store(at: datetime = SINCE) -> StoreBonusGranted:
    return StoreBonusGranted("store-bonus:lucky-sweeps:p1:pur-9", "e-9", "pur-9", "pack-gold",
                             "lucky-sweeps", "p1", at, "Gold", D("1.1"), D("20000"), D("20"),
                             D("2000.00"), D("2.00"), D("19.99"), Currency.USD, 2)  # fmt: skip


def record(output: Output, offset: int = 0, partition: int = 0) -> ReadRecord:
    key = f"{output.brand_id}:{output.player_id}".encode()
    return ReadRecord("t", partition, offset, key, encode(output))


def raw(value: bytes, key: bytes = b"aurora-casino:p1", offset: int = 0) -> ReadRecord:
    return ReadRecord("t", 0, offset, key, value)


def export(kind: ExportKind, brand: str, records: list[ReadRecord]) -> list[dict[str, str]]:
    text = "".join(render_csv(kind, brand, SINCE, UNTIL, records))
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == tuple(csv_header(kind))
    return list(reader)


def test_accruals_have_the_documented_columns_and_exact_decimals() -> None:
    text = "".join(render_csv(ExportKind.ACCRUALS, "aurora-casino", SINCE, UNTIL,
                              [record(accrued(1, at=SINCE + timedelta(hours=1)))]))  # fmt: skip
    assert text.splitlines(keepends=True) == [
        "output_id,event_id,bet_id,brand_id,player_id,occurred_at,game_category,amount,currency,"
        "points,points_per_unit,category_weight,promotion_multiplier,level_multiplier,level,"
        "promotions,programme_version\r\n",
        "e-1:points,e-1,b-1,aurora-casino,p-1,2026-01-01T01:00:00Z,slots,12.30,EUR,12.30,1,1.0,2,"
        '1,Gold,"Double, Week|Happy",3\r\n',
    ]


def test_an_accrual_sent_before_it_named_its_bet_is_exported_with_an_empty_bet_id() -> None:
    older = {k: v for k, v in orjson.loads(encode(accrued(1))).items() if k != "bet_id"}
    (row,) = export(ExportKind.ACCRUALS, "aurora-casino", [raw(orjson.dumps(older))])
    assert (row["output_id"], row["bet_id"], row["points"]) == ("e-1:points", "", "12.30")


def test_redemptions_are_confirmed_write_offs_only() -> None:
    held = RedemptionHeld("r1:held", "r1", "r1", "aurora-casino", "p1", SINCE, D("3000"),
                          D("30.00"), Currency.EUR, SINCE, D("0"), D("3000"), 1)  # fmt: skip
    released = RedemptionReleased("r2:released", "c2", "r2", "aurora-casino", "p1", SINCE,
                                  D("1000"), ReleaseReason.CANCELLED, D(1), D(0), 1)  # fmt: skip
    rows = export(
        ExportKind.REDEMPTIONS,
        "aurora-casino",
        [record(held), record(redeemed("r1")), record(released)],
    )
    assert rows == [
        {
            "output_id": "r1:redeemed",
            "redemption_id": "r1",
            "command_id": "cf-r1",
            "brand_id": "aurora-casino",
            "player_id": "p1",
            "occurred_at": "2026-01-01T00:00:00Z",
            "points": "3000",
            "value": "30.00",
            "currency": "EUR",
            "programme_version": "1",
        }
    ]


def test_cashback_rows_and_no_other_rewards() -> None:
    tier = TierRewardGranted("e-1:tier-reward:2", "e-1", "lucky-sweeps", "p1", SINCE, "Silver", 2,
                             D("10000"), 1)  # fmt: skip
    rows = export(
        ExportKind.CASHBACK, "lucky-sweeps", [record(tier), record(cashback(date(2026, 1, 5)))]
    )
    assert rows == [
        {
            "output_id": "cashback:lucky-sweeps:p1:2026-01-05",
            "brand_id": "lucky-sweeps",
            "player_id": "p1",
            "occurred_at": "2026-01-06T00:00:00Z",
            "day": "2026-01-05",
            "level": "Silver",
            "ngr": "900",
            "percent": "1",
            "amount": "9.00",
            "currency": "SC",
            "capped": "false",
            "programme_version": "1",
        }
    ]


def test_reversals_are_the_cancellations_carried_out_with_what_each_took_back() -> None:
    refused = CancellationRefused("x-2:refused", "x-2", "b-2", "lucky-sweeps", "p1", SINCE,
                                  "unknown_bet", "bet 'b-2' is not known")  # fmt: skip
    at = SINCE + timedelta(hours=3)
    records = [record(accrued(1, brand="lucky-sweeps")), record(refused),
               record(reversed_(1, at=at, unrecovered="15.50"))]  # fmt: skip
    text = "".join(render_csv(ExportKind.REVERSALS, "lucky-sweeps", SINCE, UNTIL, records))
    assert text.splitlines(keepends=True) == [
        "output_id,event_id,bet_id,brand_id,player_id,occurred_at,placed_at,reason,amount,"
        "currency,remaining,points,points_reversed,points_owed,points_unrecovered,turnover,"
        "vip_points,programme_version\r\n",
        "x-1:reversed,x-1,b-1,lucky-sweeps,p1,2026-01-01T03:00:00Z,2026-01-01T04:00:00Z,"
        "round_voided,40.00,SC,60.00,40.00,24.50,0,15.50,40.00,40.0,2\r\n",
    ]


def test_coin_rewards_are_one_table_of_every_coin_reward_with_each_ones_own_fields() -> None:
    birthday = BirthdayGiftGranted("c-3:birthday", "c-3", "lucky-sweeps", "p1", SINCE, 2026,
                                   "Gold", D("50"), D("20"), 2)  # fmt: skip
    tier = TierRewardGranted("e-1:tier-reward:3", "e-1", "lucky-sweeps", "p1", SINCE, "Gold", 3,
                             D("50000"), 2)  # fmt: skip
    rows = export(
        ExportKind.COIN_REWARDS,
        "lucky-sweeps",
        [record(daily()), record(cashback(date(2026, 1, 5))), record(birthday),
         record(monthly()), record(store()), record(tier)],
    )  # fmt: skip
    common = {"brand_id": "lucky-sweeps", "player_id": "p1", "occurred_at": "2026-01-01T00:00:00Z",
              "programme_version": "2"}  # fmt: skip
    nothing = dict.fromkeys(("streak", "day", "month", "year", "purchase_id", "package_id",
                             "price", "currency"), "")  # fmt: skip
    assert rows == [
        common | nothing | {"reward": "daily_reward", "output_id": "c-1:daily-reward",
                            "level": "Silver", "gc": "7700.00", "sc": "0.33", "streak": "3",
                            "day": "2025-12-31"},
        common | nothing | {"reward": "birthday_gift", "output_id": "c-3:birthday",
                            "level": "Gold", "gc": "50", "sc": "20", "year": "2026"},
        common | nothing | {"reward": "monthly_bonus", "output_id": "c-2:monthly-bonus",
                            "level": "Platinum", "gc": "100000", "sc": "10", "month": "2026-01"},
        # the bonus coins paid, not the package's; the price it was bought for
        common | nothing | {"reward": "store_bonus",
                            "output_id": "store-bonus:lucky-sweeps:p1:pur-9", "level": "Gold",
                            "gc": "2000.00", "sc": "2.00",
                            "purchase_id": "pur-9", "package_id": "pack-gold", "price": "19.99",
                            "currency": "USD"},
        # a level's one-time reward pays gold coins only
        common | nothing | {"reward": "tier_up", "output_id": "e-1:tier-reward:3",
                            "level": "Gold", "gc": "50000", "sc": "0"},
    ]  # fmt: skip
    assert list(csv_header(ExportKind.COIN_REWARDS)) == [
        "reward", "output_id", "brand_id", "player_id", "occurred_at", "level", "gc", "sc",
        "streak", "day", "month", "year", "purchase_id", "package_id", "price", "currency",
        "programme_version",
    ]  # fmt: skip


def test_a_coin_reward_missing_its_own_field_is_skipped_not_written_empty() -> None:
    good = orjson.loads(encode(store()))
    bad = [
        orjson.dumps({k: v for k, v in good.items() if k != "bonus_gc"}),
        orjson.dumps(good | {"price": 19.99}),
        orjson.dumps(orjson.loads(encode(daily())) | {"streak": "3"}),
    ]
    records = [raw(value, key=b"lucky-sweeps:p1", offset=i) for i, value in enumerate(bad)]
    rows = export(ExportKind.COIN_REWARDS, "lucky-sweeps", [*records, record(monthly())])
    assert [r["reward"] for r in rows] == ["monthly_bonus"]


def test_every_kind_is_on_the_command_line_and_in_the_cli_order() -> None:
    assert tuple(kind.value for kind in ExportKind) == EXPORT_KINDS


def test_the_range_is_half_open_on_the_outputs_own_time_in_any_offset() -> None:
    plus_two = timezone(timedelta(hours=2))
    records = [
        record(accrued(1, at=SINCE - timedelta(microseconds=1))),  # before
        record(accrued(2, at=SINCE)),  # the first instant: in
        record(accrued(3, at=UNTIL - timedelta(microseconds=1))),  # the last instant: in
        record(accrued(4, at=UNTIL)),  # excluded
        record(accrued(5, at=datetime(2026, 2, 1, 1, 30, tzinfo=plus_two))),  # 23:30 UTC: in
        record(accrued(6, at=datetime(2026, 1, 1, 1, 30, tzinfo=plus_two))),  # Dec 31: out
    ]
    rows = export(ExportKind.ACCRUALS, "aurora-casino", records)
    assert [r["output_id"] for r in rows] == ["e-2:points", "e-3:points", "e-5:points"]
    assert [r["occurred_at"] for r in rows] == [
        "2026-01-01T00:00:00Z",
        "2026-01-31T23:59:59.999999Z",
        "2026-01-31T23:30:00Z",
    ]


def test_other_brands_are_left_out_by_key_and_by_value() -> None:
    other = accrued(2, brand="borealis-casino")
    misfiled = ReadRecord("t", 0, 1, None, encode(accrued(3, brand="borealis-casino")))
    rows = export(
        ExportKind.ACCRUALS, "aurora-casino", [record(accrued(1)), record(other), misfiled]
    )
    assert [r["output_id"] for r in rows] == ["e-1:points"]
    # a brand whose id starts like another's is not taken for it
    assert export(ExportKind.ACCRUALS, "aurora", [record(accrued(1))]) == []


def test_a_repeated_output_is_one_row() -> None:
    first = record(accrued(1), offset=0)
    again = record(accrued(1), offset=7)
    other_partition = record(accrued(2), offset=7, partition=3)
    rows = export(ExportKind.ACCRUALS, "aurora-casino", [first, again, other_partition])
    assert [r["output_id"] for r in rows] == ["e-1:points", "e-2:points"]


def test_undecodable_records_are_skipped_without_stopping_the_export() -> None:
    good = orjson.loads(encode(redeemed("r1")))
    bad_values = [
        b"not json",
        b"[1, 2]",
        orjson.dumps(good | {"value": 30.1}),  # a float never makes it into a row
        orjson.dumps(good | {"value": "NaN"}),
        orjson.dumps(good | {"value": "thirty"}),
        orjson.dumps({k: v for k, v in good.items() if k != "points"}),
        orjson.dumps(good | {"occurred_at": "2026-01-02T00:00:00"}),  # no offset
        orjson.dumps(good | {"occurred_at": "yesterday"}),
        orjson.dumps(good | {"programme_version": "1"}),
        b"",
    ]
    records = [raw(value, offset=i) for i, value in enumerate(bad_values)]
    records.append(record(redeemed("r2"), offset=99))
    rows = export(ExportKind.REDEMPTIONS, "aurora-casino", records)
    assert [r["output_id"] for r in rows] == ["r2:redeemed"]


def test_decimals_are_written_fixed_point_and_exact() -> None:
    values = ["0.01", "30.00", "123456789012345678.99", "1E+3", "0.000000001"]
    records = [record(redeemed(f"r{i}", value=v), offset=i) for i, v in enumerate(values)]
    rows = export(ExportKind.REDEMPTIONS, "aurora-casino", records)
    assert [r["value"] for r in rows] == [
        "0.01", "30.00", "123456789012345678.99", "1000", "0.000000001",
    ]  # fmt: skip
    assert sum(D(r["value"]) for r in rows) == D("123456789012346709.000000001")


def test_rows_come_in_chunks_after_a_header_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports, "ROWS_PER_CHUNK", 100)
    records = [record(accrued(n), offset=n) for n in range(250)]
    chunks = list(render_csv(ExportKind.ACCRUALS, "aurora-casino", SINCE, UNTIL, records))
    assert [chunk.count("\r\n") for chunk in chunks] == [1, 100, 100, 50]
    assert chunks[0].startswith("output_id,")
    # nothing read yet when the header is there: an HTTP answer can start at once
    assert next(render_csv(ExportKind.ACCRUALS, "b", SINCE, UNTIL, iter(()))).startswith("output")
    # an empty export is the header alone
    assert list(render_csv(ExportKind.CASHBACK, "b", SINCE, UNTIL, [])) == [
        "output_id,brand_id,player_id,occurred_at,day,level,ngr,percent,amount,currency,capped,"
        "programme_version\r\n"
    ]


def test_the_range_is_checked_before_anything_is_read() -> None:
    naive = datetime(2026, 1, 1)
    for since, until in ((naive, UNTIL), (SINCE, naive), (UNTIL, SINCE), (SINCE, SINCE)):
        with pytest.raises(ValueError):
            render_csv(ExportKind.ACCRUALS, "aurora-casino", since, until, [])
    with pytest.raises(ValueError):
        render_csv(ExportKind.ACCRUALS, "", SINCE, UNTIL, [])


def test_command_line_bounds_are_in_the_brands_time_zone() -> None:
    malta = ZoneInfo("Europe/Malta")
    assert parse_bound("2026-01-01", malta) == datetime(2026, 1, 1, tzinfo=malta)
    assert parse_bound("2026-01-01", malta).astimezone(UTC) == datetime(
        2025, 12, 31, 23, tzinfo=UTC
    )
    assert parse_bound("2026-07-01T06:00", malta) == datetime(2026, 7, 1, 6, tzinfo=malta)
    assert parse_bound("2026-07-01T06:00:00Z", malta) == datetime(2026, 7, 1, 6, tzinfo=UTC)
    assert parse_bound("2026-07-01T06:00+02:00", malta).utcoffset() == timedelta(hours=2)
    with pytest.raises(ValueError):
        parse_bound("01/07/2026", malta)


def test_an_export_from_the_dawn_of_time_starts_without_a_broker() -> None:
    """Checked and headed before connecting: nothing listens on port 9 (discard)."""
    settings = Settings(bootstrap_servers="127.0.0.1:9", security_protocol="PLAINTEXT")
    dawn = datetime.min.replace(tzinfo=UTC)  # minus the slack would overflow: from the start
    chunks = export_csv(settings, ExportKind.CASHBACK, "lucky-sweeps", dawn, UNTIL)
    assert next(chunks).startswith("output_id,brand_id,")
    chunks.close()  # the scan never started
    with pytest.raises(ValueError):
        export_csv(settings, ExportKind.CASHBACK, "lucky-sweeps", UNTIL, dawn)


def test_coin_rewards_of_one_kind_are_each_a_row_and_only_repeats_are_dropped() -> None:
    """Rows are told apart by output_id, wherever its column is (coin-rewards starts with
    the reward's kind: rows of one kind are not repeats)."""
    days = [replace(daily(), output_id=f"c-{n}:daily-reward", streak=n) for n in (1, 2, 3)]
    records = [record(o) for o in days] + [record(days[0])]  # the first one again
    rows = export(ExportKind.COIN_REWARDS, "lucky-sweeps", records)
    assert [(r["output_id"], r["streak"]) for r in rows] == [
        ("c-1:daily-reward", "1"),
        ("c-2:daily-reward", "2"),
        ("c-3:daily-reward", "3"),
    ]
