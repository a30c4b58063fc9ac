"""An export of a brand's `vip_levels` table (CSV or JSON), read into a `Programme`.

Every rule about the table comes from the VIP-levels requirement document (the seed document
the sweepstakes brand's programme was specified from): its columns, their types, what a NULL
means (the column's documented default), and which columns are deprecated and what supersedes
them. What the table does not hold (the programme's name, version, effective_from, currencies,
category weights, promotions, policies, GMS level) comes from a base programme.

Shapes:

- an export is a list of rows; a row maps a column name to its cell: `str` from CSV, or
  `str`, `int`, `Decimal`, `bool` from JSON; `None` is SQL NULL (in CSV an empty cell).
- rows are numbered from 1 in the order of the export (CSV: the header is not a row), over
  all brands, so a message's "row 3" is the third row of the file the operator has.

Units: `points_required` is VIP points (1 SC wagered = 1 point, 100,000 GC = 1 point), so the
programme's `level_basis` is `vip_points`; `cashback_percentage` is a percent (0-100) of NGR;
`cashback_max_amount` a daily cap in the turnover currency; the multipliers are factors
(1.1 = 110 %); `tier_up_gc_reward` and `birthday_gc_gift` are GC, `birthday_sc_gift` SC. Every
number is read as a `Decimal`, never a float.
"""

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from loyalty_streams.domain.programme import (
    SHIPPED_DIR,
    Level,
    LevelBasis,
    Programme,
    load_programme,
)
from loyalty_streams.domain.validation import check_unique_keys, unique_keys, validation_summary

Row = Mapping[str, object]
"""One row of the export: column name to cell (`None` is NULL)."""

DEFAULT_BASE = SHIPPED_DIR / "lucky-sweeps.json"
"""The base programme when none is named: the shipped sweepstakes brand's."""


class ImportProblem(ValueError):
    """The export (or the base) cannot become a programme; the message is one line and names
    the row (its number, level name and rank) and the column at fault."""


class Kind(StrEnum):
    """How a column's cells are read."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"  # numeric(...): a Decimal
    BOOLEAN = "boolean"


@dataclass(frozen=True)
class Column:
    """A column of the table that becomes a field of `Level` (or of its `Perks`)."""

    name: str
    field: str
    kind: Kind
    default: str | Decimal | bool | None = None
    """What NULL stands for: the document's default (None for cashback_max_amount: no cap)."""
    required: bool = False
    """NOT NULL without a default in the document: a NULL is an error."""


LEVEL_COLUMNS = (
    Column("level_name", "name", Kind.TEXT, required=True),
    Column("level_rank", "rank", Kind.INTEGER, required=True),
    Column("points_required", "threshold", Kind.NUMBER, Decimal(0)),
    # no default documented; NULL: no cashback
    Column("cashback_percentage", "cashback_percent", Kind.NUMBER, Decimal(0)),
    Column("cashback_max_amount", "cashback_daily_cap", Kind.NUMBER, None),
    Column("daily_bonus_multiplier", "daily_bonus_multiplier", Kind.NUMBER, Decimal("1.0")),
    Column("store_multiplier", "store_multiplier", Kind.NUMBER, Decimal("1.0")),
    Column("tier_up_gc_reward", "tier_up_reward_gc", Kind.NUMBER, Decimal(0)),
    Column("birthday_gc_gift", "birthday_gift_gc", Kind.NUMBER, Decimal(10)),
    Column("birthday_sc_gift", "birthday_gift_sc", Kind.NUMBER, Decimal(10)),
    Column("description", "description", Kind.TEXT, ""),
    Column("image_url", "image_url", Kind.TEXT, None),
    Column("icon_url", "icon_url", Kind.TEXT, None),
)
"""The table's level columns and the `Level` fields they fill (document: Columns, Cashback
Configuration, Bonus & Reward Multipliers, Birthday Gifts)."""

PERK_COLUMNS = (
    Column("monthly_bonus_enabled", "monthly_bonus", Kind.BOOLEAN, False),
    Column("priority_redemption", "priority_redemption", Kind.BOOLEAN, False),
    Column("priority_support", "priority_support", Kind.BOOLEAN, False),
    Column("vip_host", "vip_host", Kind.BOOLEAN, False),
)
"""The table's perk flags and the `Perks` they set (document: VIP Perks, default false)."""


@dataclass(frozen=True)
class Deprecated:
    """A column the document marks deprecated: ignored, with a note on what supersedes it."""

    name: str
    kind: Kind
    default: Decimal | bool
    instead: str


DEPRECATED = (
    # NOT NULL without a documented default; any value but 0 is worth saying
    Deprecated("required_wagering", Kind.NUMBER, Decimal(0), "superseded by points_required"),
    Deprecated("daily_sc_bonus", Kind.NUMBER, Decimal(0), "use daily_bonus_multiplier instead"),
    Deprecated("weekly_gc_bonus", Kind.NUMBER, Decimal(0), "no longer used"),
    Deprecated("weekly_sc_bonus", Kind.NUMBER, Decimal(0), "no longer used"),
    Deprecated("weekly_bonus_enabled", Kind.BOOLEAN, False, "no longer used"),
)
"""The document's Deprecated Columns, and `required_wagering` ("Legacy ... superseded by
points_required")."""

BRAND = Column("brand_id", "brand_id", Kind.TEXT, required=True)
COMPANY = Column("company_id", "company_id", Kind.TEXT, required=True)
"""The programme's owners (document: uuid, NOT NULL); the brand's rows name one company."""

REQUIRED_COLUMNS = (BRAND.name, COMPANY.name, "level_name", "level_rank", "points_required")
"""Columns an export must have: the level's identity, and its threshold (the basis of levels)."""

BOOKKEEPING = frozenset({"id", "created_at", "updated_at"})
"""The database's own columns (key, timestamps): not part of a programme, ignored silently."""

DISPLAY_ONLY = {"dollar_value": "a reference/display figure; levels are reached by points_required"}
"""Columns with content the programme has no place for: ignored, with a note."""

_FIELD_COLUMNS = {c.field: c.name for c in LEVEL_COLUMNS} | {
    f"perks.{c.field}": c.name for c in PERK_COLUMNS
}
_KNOWN = (
    {c.name for c in LEVEL_COLUMNS + PERK_COLUMNS}
    | {d.name for d in DEPRECATED}
    | {BRAND.name, COMPANY.name}
    | BOOKKEEPING
    | set(DISPLAY_ONLY)
)
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_BOOLEANS = {"t": True, "true": True, "1": True, "f": False, "false": False, "0": False}
"""PostgreSQL's output (t/f) and the spellings other tools write, in any case."""


@dataclass(frozen=True)
class Imported:
    """A programme made from the table, and one line per thing the import left out or changed."""

    programme: Programme
    notes: tuple[str, ...]


def read_export(text: str) -> list[dict[str, object]]:
    """The rows of an export: JSON if `text` starts with `[` or `{`, else CSV.

    JSON: an array of row objects (`json_agg`, most tools), or `{"vip_levels": [...]}`; numbers
    are read as `Decimal` (or `int`), never float. CSV: a header row, then one row per level, as
    `psql \\copy ... csv header` writes it; an empty cell is NULL. Raises `ImportProblem` for
    text that is neither, a row that is not an object, or a row whose cells do not match the
    header.
    """
    if text.lstrip()[:1] in ("[", "{"):
        return _read_json(text)
    return _read_csv(text)


def _read_json(text: str) -> list[dict[str, object]]:
    try:
        data = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_no_constant,
            object_pairs_hook=unique_keys,
        )
    except ValueError as error:  # JSONDecodeError, a key twice, NaN or Infinity
        raise ImportProblem(f"not valid JSON: {error}") from None
    if isinstance(data, dict) and "vip_levels" in data:
        data = data["vip_levels"]
    if not isinstance(data, list):
        raise ImportProblem('JSON: expected an array of rows, or {"vip_levels": [...]}')
    rows: list[dict[str, object]] = []
    for position, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise ImportProblem(f"row {position}: not an object")
        rows.append(row)
    return rows


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a number a table holds")


def _read_csv(text: str) -> list[dict[str, object]]:
    lines = [line for line in csv.reader(io.StringIO(text, newline="")) if line]
    if not lines:
        raise ImportProblem("the export is empty: expected a header row, then the rows")
    header = [name.strip() for name in lines[0]]
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise ImportProblem(f"the header names {', '.join(twice)} more than once")
    rows: list[dict[str, object]] = []
    for position, cells in enumerate(lines[1:], start=1):
        if len(cells) != len(header):
            raise ImportProblem(
                f"row {position}: {len(cells)} cells, but the header has {len(header)} columns"
            )
        rows.append({name: cell or None for name, cell in zip(header, cells, strict=True)})
    return rows


def load_base(path: Path | None) -> Programme:
    """The base programme: the file at `path`, or the shipped lucky-sweeps programme when None.
    Raises `ImportProblem` (one line) if it cannot be read or is not a valid programme."""
    path = path or DEFAULT_BASE
    try:
        base = load_programme(path)
        check_unique_keys(path.read_bytes())  # as `programmes load` does: parsers keep the last
    except ValidationError as error:
        raise ImportProblem(f"base {path}: {validation_summary(error)}") from None
    except (OSError, ValueError) as error:
        raise ImportProblem(f"base {path}: {error}") from None
    return base


def import_vip_levels(
    rows: Sequence[Row],
    brand_id: str,
    base: Programme,
    *,
    name: str | None = None,
    version: int | None = None,
    effective_from: str | None = None,
) -> Imported:
    """The programme of brand `brand_id` made from the table's `rows` (of any brands).

    Levels come from the brand's rows, sorted by rank; `company_id` from the rows (one for the
    whole brand); everything else from `base`, with `name`, `version` and `effective_from`
    (RFC 3339) in place of the base's when given. The base's `gms_high_rtp_level` is kept only
    if the table has a level of that name. Raises `ImportProblem` naming the row and column for
    a bad table (a missing column, a bad cell, ranks or names twice, thresholds not increasing),
    or the field for a programme that is not valid.
    """
    if not rows:
        raise ImportProblem("the export has no rows")
    columns = _columns(rows)
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise ImportProblem(f"the export lacks the column(s) {', '.join(missing)}")
    ours = _brand_rows(rows, brand_id)
    notes = _column_notes(columns, ours)
    if len(ours) < len(rows):
        notes.append(f"skipped {len(rows) - len(ours)} row(s) of other brands")
    company_id = _company(ours)
    levels = _in_order([(position, row, _level(position, row)) for position, row in ours])
    fields: dict[str, object] = {
        "brand_id": brand_id,
        "company_id": company_id,
        "level_basis": LevelBasis.VIP_POINTS,
        "levels": levels,
    }
    if base.level_basis != LevelBasis.VIP_POINTS:
        notes.append(
            f"level_basis: the base's is {base.level_basis.value}; the table's levels are on "
            "vip_points (points_required)"
        )
    names = {level.name for level in levels}
    if base.gms_high_rtp_level is not None and base.gms_high_rtp_level not in names:
        fields["gms_high_rtp_level"] = None
        notes.append(
            f"gms_high_rtp_level: the table has no level {base.gms_high_rtp_level!r} (the "
            "base's); set to null, so no level gets the higher RTP minimum"
        )
    overrides = {"name": name, "version": version, "effective_from": effective_from}
    fields |= {key: value for key, value in overrides.items() if value is not None}
    try:
        programme = Programme.model_validate(base.model_dump() | fields)
    except ValidationError as error:
        raise ImportProblem(f"not a valid programme: {validation_summary(error)}") from None
    return Imported(programme, tuple(notes))


def _columns(rows: Sequence[Row]) -> list[str]:
    """Every column of the export, in the order first met (a JSON row may leave one out)."""
    return list(dict.fromkeys(column for row in rows for column in row))


def _brand_rows(rows: Sequence[Row], brand_id: str) -> list[tuple[int, Row]]:
    """The brand's rows with their positions; raises `ImportProblem` if it has none."""
    ours: list[tuple[int, Row]] = []
    brands: set[str] = set()
    for position, row in enumerate(rows, start=1):
        brand = str(_cell(position, row, BRAND))
        brands.add(brand)
        if brand == brand_id:
            ours.append((position, row))
    if not ours:
        found = ", ".join(sorted(brands)[:10]) + (" ..." if len(brands) > 10 else "")
        raise ImportProblem(
            f"no rows of brand {brand_id!r} in the export (its brands: {found or 'none'})"
        )
    return ours


def _company(rows: list[tuple[int, Row]]) -> str:
    """The one company_id of the brand's rows (at least one); raises `ImportProblem` at a NULL
    or a second company."""
    first_position, first_row = rows[0]
    company = str(_cell(first_position, first_row, COMPANY))
    for position, row in rows[1:]:
        other = str(_cell(position, row, COMPANY))
        if other != company:
            raise _problem(
                position,
                row,
                COMPANY.name,
                f"{other!r} differs from {company!r} of row {first_position}; "
                "a brand belongs to one company",
            )
    return company


def _level(position: int, row: Row) -> Level:
    """The `Level` of one row; raises `ImportProblem` naming the row and the column."""
    fields: dict[str, object] = {c.field: _cell(position, row, c) for c in LEVEL_COLUMNS}
    fields["perks"] = {c.field: _cell(position, row, c) for c in PERK_COLUMNS}
    try:
        return Level.model_validate(fields)
    except ValidationError as error:
        item = error.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in item["loc"])
        raise _problem(position, row, _FIELD_COLUMNS.get(field, field), item["msg"]) from None


def _cell(position: int, row: Row, column: Column) -> object:
    """A cell read as its column's kind; NULL gives the column's default."""
    value = row.get(column.name)
    if value is None:
        if column.required:
            raise _problem(position, row, column.name, "is NULL, and the table does not allow it")
        return column.default
    try:
        return parse(value, column.kind)
    except ValueError as error:
        raise _problem(position, row, column.name, str(error)) from None


def parse(value: object, kind: Kind) -> str | int | Decimal | bool:
    """A non-NULL cell as `kind`: text as it is; an integer; a finite `Decimal` (from text or a
    JSON number, never a float); a boolean from JSON's true/false or t/f/true/false/1/0 in any
    case. Raises `ValueError` saying what the cell is not."""
    text = value.strip() if isinstance(value, str) else None
    if kind is Kind.TEXT:
        if not isinstance(value, str):
            raise ValueError(f"{_shown(value)} is not text")
        return value
    if kind is Kind.BOOLEAN:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _BOOLEANS:
            return _BOOLEANS[text.lower()]
        raise ValueError(f"{_shown(value)} is not a boolean (t/f, true/false, 1/0)")
    numeric = not isinstance(value, bool)  # bool is an int to Python, never to the table
    if kind is Kind.INTEGER:
        if numeric and isinstance(value, int):
            return value
        if text is not None and _INTEGER.fullmatch(text):
            return int(text)
        raise ValueError(f"{_shown(value)} is not a whole number")
    if numeric and isinstance(value, int | Decimal) and Decimal(value).is_finite():
        return Decimal(value)
    if text is not None and _NUMBER.fullmatch(text):
        return Decimal(text)
    raise ValueError(f"{_shown(value)} is not a number")


def _shown(value: object) -> str:
    """A cell as the operator wrote it: text quoted, JSON's true/false, a number as it is."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _in_order(levels: list[tuple[int, Row, Level]]) -> tuple[Level, ...]:
    """The levels by rank, checked as `Programme` checks them but naming the row and column:
    ranks and names unique, the lowest at 0 points, thresholds increasing with rank."""
    levels = sorted(levels, key=lambda item: item[2].rank)
    seen_names: dict[str, int] = {}
    for i, (position, row, level) in enumerate(levels):
        if level.name in seen_names:
            where = seen_names[level.name]
            raise _problem(position, row, "level_name", f"row {where} has this name too")
        seen_names[level.name] = position
        if i == 0:
            if level.threshold != 0:
                raise _problem(
                    position,
                    row,
                    "points_required",
                    f"{level.threshold}, but the lowest level must start at 0",
                )
            continue
        low_position, _, low = levels[i - 1]
        if level.rank == low.rank:
            raise _problem(position, row, "level_rank", f"row {low_position} has this rank too")
        if level.threshold <= low.threshold:
            raise _problem(
                position,
                row,
                "points_required",
                f"{level.threshold} must be above {low.threshold} of {low.name!r} (rank "
                f"{low.rank}, row {low_position}); points_required increases with level_rank",
            )
    return tuple(level for _, _, level in levels)


def _column_notes(columns: list[str], rows: list[tuple[int, Row]]) -> list[str]:
    """One line per column the import leaves out: deprecated (what supersedes it, and whether
    the brand's rows hold anything but its default), display-only, or unknown; and one per
    column of the table the export lacks, whose default every level then takes."""
    notes = []
    for old in DEPRECATED:
        if old.name not in columns:
            continue
        note = f"{old.name}: ignored, deprecated ({old.instead})"
        used = sum(1 for _, row in rows if not _is_default(row.get(old.name), old))
        if used:
            default = str(old.default).lower()
            note += f"; {used} of {len(rows)} row(s) hold a value other than {default}"
        notes.append(note)
    notes += [
        f"{column.name}: not in the export, every level takes "
        f"{'NULL' if column.default is None else _shown(column.default)}"
        for column in LEVEL_COLUMNS + PERK_COLUMNS
        if column.name not in columns and not column.required
    ]
    notes += [f"{name}: ignored, {why}" for name, why in DISPLAY_ONLY.items() if name in columns]
    notes += [
        f"{name}: ignored, not a column of vip_levels" for name in columns if name not in _KNOWN
    ]
    return notes


def _is_default(value: object, column: Deprecated) -> bool:
    """NULL, or a cell equal to the column's default (a cell that cannot be read is not)."""
    if value is None:
        return True
    try:
        return parse(value, column.kind) == column.default
    except ValueError:
        return False


def _problem(position: int, row: Row, column: str, what: str) -> ImportProblem:
    """`row 3 (level 'Gold', rank 3), column points_required: <what>`."""
    name, rank = row.get("level_name"), row.get("level_rank")
    about = ([f"level {name!r}"] if isinstance(name, str) else []) + (
        [f"rank {rank if isinstance(rank, str) else _shown(rank)}"] if rank is not None else []
    )
    where = f"row {position}" + (f" ({', '.join(about)})" if about else "")
    return ImportProblem(f"{where}, column {column}: {what}")
