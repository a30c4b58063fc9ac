"""An operator's `vip_levels` export (CSV or JSON) read into a programme: the mapping, NULLs as
the document's defaults, the notes on what is left out, and bad tables named by row and column."""

import csv
import io
import json
import random
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty_streams.domain.programme import (
    SHIPPED_DIR,
    Level,
    LevelBasis,
    Perks,
    Programme,
    load_programme,
)
from loyalty_streams.imports.vip_levels import (
    Imported,
    ImportProblem,
    import_vip_levels,
    load_base,
    read_export,
)

BRAND = "5f0c2a9e-8d4b-4c71-b3e6-2a7d9f1c4e80"
OTHER_BRAND = "9b7e4d13-2c6a-4e8f-a15d-63f0b2c8e947"
COMPANY = "c3a1e7d2-6b5f-4f08-9e2d-7b4c1a9f3d65"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vip_levels.csv"
LUCKY = load_programme(SHIPPED_DIR / "lucky-sweeps.json")
AURORA = load_programme(SHIPPED_DIR / "aurora-casino.json")

HEADER = (
    "id,brand_id,company_id,level_name,level_rank,points_required,cashback_percentage,"
    "cashback_max_amount,daily_bonus_multiplier,store_multiplier,tier_up_gc_reward,"
    "birthday_gc_gift,birthday_sc_gift,monthly_bonus_enabled,priority_redemption,"
    "priority_support,vip_host,description,image_url,icon_url"
)
SMALL_CSV = f"""{HEADER}
2,{BRAND},{COMPANY},Silver,2,1000,1.5,25,1.1,1.05,10000,20,10,f,t,true,0,"Silver, shiny",,
1,{BRAND},{COMPANY},Bronze,1,0,0,0,1.0,1.0,0,10,10,f,f,f,f,Welcome,https://x.example/b.png,
"""
SMALL_LEVELS = (
    Level(
        name="Bronze",
        rank=1,
        threshold=Decimal(0),
        cashback_daily_cap=Decimal(0),
        description="Welcome",
        image_url="https://x.example/b.png",
    ),
    Level(
        name="Silver",
        rank=2,
        threshold=Decimal(1000),
        cashback_percent=Decimal("1.5"),
        cashback_daily_cap=Decimal(25),
        daily_bonus_multiplier=Decimal("1.1"),
        store_multiplier=Decimal("1.05"),
        tier_up_reward_gc=Decimal(10000),
        birthday_gift_gc=Decimal(20),
        perks=Perks(priority_redemption=True, priority_support=True),
        description="Silver, shiny",
    ),
)


def imported(text: str, brand: str = BRAND, base: Programme = LUCKY, **options: Any) -> Imported:
    return import_vip_levels(read_export(text), brand, base, **options)


def required(**cells: object) -> dict[str, object]:
    """A row with the NOT NULL columns filled (a level at 0 points), and `cells`."""
    row: dict[str, object] = {
        "brand_id": BRAND,
        "company_id": COMPANY,
        "level_name": "Bronze",
        "level_rank": "1",
        "points_required": "0",
    }
    return row | cells


def csv_text(rows: list[dict[str, object]]) -> str:
    """The rows as `psql \\copy ... csv header` writes them: NULL an empty cell, t/f."""
    columns = list(dict.fromkeys(column for row in rows for column in row))
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell_text(row.get(column)) for column in columns])
    return out.getvalue()


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def table_rows(
    levels: list[Level] | tuple[Level, ...], brand: str = BRAND
) -> list[dict[str, object]]:
    """The vip_levels rows of `levels`, with the deprecated and bookkeeping columns a real
    export has."""
    return [
        {
            "id": index,
            "brand_id": brand,
            "company_id": COMPANY,
            "level_name": level.name,
            "level_rank": level.rank,
            "required_wagering": level.threshold,
            "points_required": level.threshold,
            "dollar_value": level.threshold,
            "description": level.description,
            "image_url": level.image_url,
            "icon_url": level.icon_url,
            "cashback_percentage": level.cashback_percent,
            "cashback_max_amount": level.cashback_daily_cap,
            "daily_bonus_multiplier": level.daily_bonus_multiplier,
            "store_multiplier": level.store_multiplier,
            "tier_up_gc_reward": level.tier_up_reward_gc,
            "birthday_gc_gift": level.birthday_gift_gc,
            "birthday_sc_gift": level.birthday_gift_sc,
            "monthly_bonus_enabled": level.perks.monthly_bonus,
            "priority_redemption": level.perks.priority_redemption,
            "priority_support": level.perks.priority_support,
            "vip_host": level.perks.vip_host,
            "daily_sc_bonus": 0,
            "weekly_gc_bonus": 0,
            "weekly_sc_bonus": 0,
            "weekly_bonus_enabled": False,
            "created_at": "2024-03-18 14:02:11.532918",
            "updated_at": "2024-03-18 14:02:11.532918",
        }
        for index, level in enumerate(levels, start=1)
    ]


def test_a_csv_export_becomes_the_brands_levels_sorted_by_rank() -> None:
    result = imported(SMALL_CSV)
    assert result.programme.levels == SMALL_LEVELS
    assert result.programme.brand_id == BRAND
    assert result.programme.company_id == COMPANY
    assert result.programme.level_basis is LevelBasis.VIP_POINTS


def test_a_json_export_gives_the_same_levels_and_reads_numbers_as_decimals() -> None:
    rows = read_export(SMALL_CSV)
    for row in rows:  # as json_agg writes them: numbers, booleans, null
        row["level_rank"] = int(str(row["level_rank"]))
        row["priority_support"] = row["priority_support"] == "true"
    text = json.dumps(rows).replace('"1.05"', "1.05").replace('"1.1"', "1.1")
    assert '"store_multiplier": 1.05' in text
    for document in (text, json.dumps({"vip_levels": json.loads(text)})):
        result = imported(document)
        assert result.programme.levels == SMALL_LEVELS
        store = result.programme.levels[1].store_multiplier
        assert isinstance(store, Decimal)
        assert str(store) == "1.05"  # never through a float


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("t", True), ("f", False), ("true", True), ("FALSE", False), ("1", True), ("0", False)],
)
def test_booleans_are_read_in_every_spelling_psql_and_tools_write(
    cell: str, expected: bool
) -> None:
    rows = [required(vip_host=cell, priority_support=cell)]
    level = imported(csv_text(rows)).programme.levels[0]
    assert level.perks.vip_host is expected
    assert level.perks.priority_support is expected


def test_null_cells_take_the_documents_defaults() -> None:
    nulls = dict.fromkeys(
        [
            "cashback_percentage",
            "cashback_max_amount",
            "daily_bonus_multiplier",
            "store_multiplier",
            "tier_up_gc_reward",
            "birthday_gc_gift",
            "birthday_sc_gift",
            "monthly_bonus_enabled",
            "priority_redemption",
            "priority_support",
            "vip_host",
            "description",
            "image_url",
            "icon_url",
        ]
    )
    level = imported(csv_text([required(**nulls)])).programme.levels[0]
    assert level == Level(
        name="Bronze",
        rank=1,
        threshold=Decimal(0),
        cashback_percent=Decimal(0),
        cashback_daily_cap=None,  # no cap
        daily_bonus_multiplier=Decimal("1.0"),
        store_multiplier=Decimal("1.0"),
        tier_up_reward_gc=Decimal(0),
        birthday_gift_gc=Decimal(10),
        birthday_gift_sc=Decimal(10),
        perks=Perks(),
        description="",
        image_url=None,
        icon_url=None,
    )


def test_a_null_points_required_is_zero() -> None:
    assert imported(csv_text([required(points_required=None)])).programme.levels[0].threshold == 0


def test_deprecated_columns_are_noted_with_what_supersedes_them() -> None:
    rows = table_rows(SMALL_LEVELS)
    rows[1]["weekly_gc_bonus"] = 5000
    rows[1]["weekly_bonus_enabled"] = True
    notes = imported(csv_text(rows)).notes
    assert (
        "required_wagering: ignored, deprecated (superseded by points_required); "
        "1 of 2 row(s) hold a value other than 0"
    ) in notes
    assert "daily_sc_bonus: ignored, deprecated (use daily_bonus_multiplier instead)" in notes
    assert (
        "weekly_gc_bonus: ignored, deprecated (no longer used); "
        "1 of 2 row(s) hold a value other than 0"
    ) in notes
    assert "weekly_sc_bonus: ignored, deprecated (no longer used)" in notes
    assert (
        "weekly_bonus_enabled: ignored, deprecated (no longer used); "
        "1 of 2 row(s) hold a value other than false"
    ) in notes
    assert any(note.startswith("dollar_value: ignored") for note in notes)
    assert not any(note.startswith(("id:", "created_at:", "updated_at:")) for note in notes)


def test_only_the_columns_the_export_has_are_noted_and_unknown_ones_too() -> None:
    notes = imported(csv_text([required(level_name="Platinum", loyalty_tier_colour="gold")])).notes
    # the table's own columns it lacks are said too, with what every level takes instead
    left_out = [note for note in notes if "not in the export" not in note]
    assert left_out == ["loyalty_tier_colour: ignored, not a column of vip_levels"]
    assert len(notes) - len(left_out) == 14  # 17 level and perk columns less the 3 it has


def test_rows_of_other_brands_are_skipped_unread() -> None:
    other = required(brand_id=OTHER_BRAND, company_id="someone", points_required="lots")
    result = imported(csv_text([other, *table_rows(SMALL_LEVELS)]))
    assert result.programme.levels == SMALL_LEVELS
    assert "skipped 1 row(s) of other brands" in result.notes


def test_a_brand_without_rows_is_refused_naming_the_brands_there_are() -> None:
    with pytest.raises(ImportProblem, match=f"no rows of brand 'nobody'.*{BRAND}"):
        imported(SMALL_CSV, brand="nobody")


def test_a_brand_belongs_to_one_company() -> None:
    rows = table_rows(SMALL_LEVELS)
    rows[1]["company_id"] = "another"
    with pytest.raises(ImportProblem) as caught:
        imported(csv_text(rows))
    assert str(caught.value) == (
        "row 2 (level 'Silver', rank 2), column company_id: 'another' differs from "
        f"'{COMPANY}' of row 1; a brand belongs to one company"
    )


@pytest.mark.parametrize(
    ("row", "cells", "message"),
    [
        (1, {"points_required": "1,000"}, "column points_required: '1,000' is not a number"),
        (1, {"cashback_max_amount": "NaN"}, "column cashback_max_amount: 'NaN' is not a number"),
        (0, {"level_rank": "first"}, "column level_rank: 'first' is not a whole number"),
        (1, {"vip_host": "yes"}, "column vip_host: 'yes' is not a boolean (t/f, true/false, 1/0)"),
        (1, {"points_required": "0"}, "column points_required: 0 must be above 0 of 'Bronze'"),
        (1, {"level_rank": "1"}, "column level_rank: row 1 has this rank too"),
        (1, {"level_name": "Bronze"}, "column level_name: row 1 has this name too"),
        (0, {"points_required": "5"}, "column points_required: 5, but the lowest level must"),
        (1, {"level_name": None}, "column level_name: is NULL, and the table does not allow it"),
        (1, {"cashback_percentage": "120"}, "column cashback_percentage: Input should be less"),
        (1, {"store_multiplier": "0"}, "column store_multiplier: Input should be greater than 0"),
        (1, {"brand_id": None}, "column brand_id: is NULL"),
    ],
)
def test_a_bad_table_is_refused_in_one_line_naming_the_row_and_column(
    row: int, cells: dict[str, object], message: str
) -> None:
    rows = table_rows(SMALL_LEVELS)
    rows[row] |= cells
    with pytest.raises(ImportProblem) as caught:
        imported(csv_text(rows))
    text = str(caught.value)
    assert text.startswith(f"row {row + 1} (")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the export is empty"),
        ("[]", "the export has no rows"),
        ("brand_id,brand_id\nb,b\n", "the header names brand_id more than once"),
        (f"{HEADER}\n1,{BRAND}\n", "row 1: 2 cells, but the header has 20 columns"),
        ("brand_id,level_name\nb,B\n", "lacks the column(s) company_id, level_rank"),
        ('[{"brand_id": "b", "brand_id": "c"}]', "the key 'brand_id' appears twice"),
        ('[{"points_required": Infinity}]', "Infinity is not a number"),
        ('{"levels": []}', "expected an array of rows"),
        ("[1]", "row 1: not an object"),
        ("[{]", "not valid JSON"),
    ],
)
def test_bad_csv_and_json_shapes_are_refused(text: str, message: str) -> None:
    with pytest.raises(ImportProblem, match=re.escape(message)):
        imported(text)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ({"level_rank": True}, "column level_rank: true is not a whole number"),
        ({"points_required": True}, "column points_required: true is not a number"),
        ({"level_name": 7}, "column level_name: 7 is not text"),
        ({"level_rank": Decimal("1.5")}, "column level_rank: 1.5 is not a whole number"),
    ],
)
def test_json_types_that_are_not_the_columns_are_refused(
    cells: dict[str, object], message: str
) -> None:
    with pytest.raises(ImportProblem, match=re.escape(message)):
        import_vip_levels([required(**cells)], BRAND, LUCKY)


def test_importing_the_shipped_lucky_sweeps_table_gives_its_levels_back() -> None:
    rows = table_rows(list(reversed(LUCKY.levels)), brand=LUCKY.brand_id)
    result = imported(csv_text(rows), brand=LUCKY.brand_id)
    assert result.programme.levels == LUCKY.levels
    assert result.programme.gms_high_rtp_level == LUCKY.gms_high_rtp_level == "Platinum"
    assert result.programme.model_dump() == LUCKY.model_dump() | {"company_id": COMPANY}


def test_what_the_table_lacks_comes_from_the_base_with_overrides() -> None:
    result = imported(
        SMALL_CSV, name="Starlight VIP", version=3, effective_from="2027-01-01T00:00:00Z"
    )
    programme = result.programme
    assert (programme.name, programme.version) == ("Starlight VIP", 3)
    assert programme.effective_from.isoformat() == "2027-01-01T00:00:00+00:00"
    assert programme.currencies == LUCKY.currencies
    assert programme.policies == LUCKY.policies
    assert programme.category_weights == LUCKY.category_weights
    plain = imported(SMALL_CSV).programme
    assert (plain.name, plain.version) == (LUCKY.name, LUCKY.version)
    assert plain.effective_from == LUCKY.effective_from


def test_the_bases_gms_level_is_dropped_with_a_note_when_the_table_has_no_such_level() -> None:
    result = imported(SMALL_CSV)
    assert result.programme.gms_high_rtp_level is None
    assert any(
        note.startswith("gms_high_rtp_level: the table has no level 'Platinum'")
        for note in result.notes
    )


def test_a_turnover_base_is_noted_and_its_levels_become_vip_points() -> None:
    result = imported(SMALL_CSV, base=AURORA)
    assert result.programme.level_basis is LevelBasis.VIP_POINTS
    assert result.programme.turnover_currency == AURORA.turnover_currency
    assert any(note.startswith("level_basis: the base's is turnover") for note in result.notes)


def test_a_bad_override_is_refused_naming_the_field() -> None:
    with pytest.raises(ImportProblem, match=r"^not a valid programme: effective_from: "):
        imported(SMALL_CSV, effective_from="2027-01-01")


def test_the_base_is_the_shipped_lucky_sweeps_unless_a_file_is_named(tmp_path: Path) -> None:
    assert load_base(None) == LUCKY
    with pytest.raises(ImportProblem, match=r"^base .*missing\.json: "):
        load_base(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(LUCKY.model_dump_json().replace('"version":1', '"version":0'))
    with pytest.raises(ImportProblem, match=r"^base .*bad\.json: version: Input should be greater"):
        load_base(bad)


def test_the_shipped_example_imports_with_notes_for_its_deprecated_columns() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    result = imported(text)
    assert [level.name for level in result.programme.levels] == [
        "Bronze",
        "Silver",
        "Gold",
        "Platinum",
        "Diamond",
    ]
    assert result.programme.levels[-1].cashback_daily_cap is None
    assert result.programme.gms_high_rtp_level == "Platinum"
    assert (
        sum(note.startswith(("required_wagering", "daily_sc", "weekly_")) for note in result.notes)
        == 5
    )
    assert imported(text, brand=OTHER_BRAND).programme.levels[0].name == "Bronze"


amounts = st.decimals(min_value=0, max_value=Decimal(10) ** 12, places=2)
steps = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10) ** 9, places=2)
factors = st.decimals(min_value=Decimal("0.01"), max_value=1000, places=3)
percents = st.decimals(min_value=0, max_value=100, places=3)
urls = st.none() | st.text(min_size=1, max_size=40)
PERKS = ("monthly_bonus", "priority_redemption", "priority_support", "vip_host")


@st.composite
def level_tables(draw: st.DrawFn) -> list[Level]:
    """Any valid level table: unique names and ranks, thresholds rising from 0 with rank."""
    count = draw(st.integers(min_value=1, max_value=6))
    names = draw(
        st.lists(st.text(min_size=1, max_size=50), min_size=count, max_size=count, unique=True)
    )
    ranks = sorted(
        draw(st.lists(st.integers(1, 10**6), min_size=count, max_size=count, unique=True))
    )
    threshold, levels = Decimal(0), []
    for name, rank in zip(names, ranks, strict=True):
        levels.append(
            Level(
                name=name,
                rank=rank,
                threshold=threshold,
                cashback_percent=draw(percents),
                cashback_daily_cap=draw(st.none() | amounts),
                daily_bonus_multiplier=draw(factors),
                store_multiplier=draw(factors),
                tier_up_reward_gc=draw(amounts),
                birthday_gift_gc=draw(amounts),
                birthday_gift_sc=draw(amounts),
                perks=Perks(**{perk: draw(st.booleans()) for perk in PERKS}),
                description=draw(st.text(max_size=80)),
                image_url=draw(urls),
                icon_url=draw(urls),
            )
        )
        threshold += draw(steps)
    return levels


@given(levels=level_tables(), order=st.randoms(use_true_random=False))
def test_any_valid_level_table_written_to_csv_is_imported_as_the_same_levels(
    levels: list[Level], order: random.Random
) -> None:
    rows = table_rows(levels) + table_rows(levels[:1], brand=OTHER_BRAND)
    order.shuffle(rows)
    assert imported(csv_text(rows)).programme.levels == tuple(levels)


def test_a_column_the_export_lacks_is_noted_with_the_default_every_level_takes() -> None:
    """Dropping a column silently would take a benefit from every level: it is said."""
    rows = [
        {"brand_id": "b", "company_id": "c", "level_name": "Bronze", "level_rank": "1",
         "points_required": "0"},
        {"brand_id": "b", "company_id": "c", "level_name": "Silver", "level_rank": "2",
         "points_required": "1000"},
    ]  # fmt: skip
    imported = import_vip_levels(rows, "b", load_base(None))
    notes = "\n".join(imported.notes)
    assert "cashback_percentage: not in the export, every level takes 0" in notes
    assert "store_multiplier: not in the export, every level takes 1.0" in notes
    assert "monthly_bonus_enabled: not in the export, every level takes false" in notes
    assert "cashback_max_amount: not in the export, every level takes NULL" in notes
    assert "level_name" not in notes
