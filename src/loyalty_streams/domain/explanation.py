"""Why a player has their balance and their level: an explanation, from the player's record,
their programme and their history rows.

Two parts, as JSON-ready values (decimals as strings, times in UTC):

- **the balance as a reconciliation**: from an opening balance to `points_available +
  points_held`, movement by movement, grouped by brand day (the programme's zone), oldest day
  first, a page of days at a time. Each history row that moves points says by how much it moved
  the available and the held balance (`EFFECTS`); coin rewards and level changes are lines that
  move nothing. History rows are kept for a limited time (the store's retention): the opening
  balance is what the record's balance less every movement kept leaves, so the reconciliation is
  exact whatever was forgotten, and it is zero when the history holds every movement. The totals
  by kind are checked against the record's counters: what the history holds of each is at most
  what the record counts, and equal when nothing was forgotten;
- **the level as a statement**: the basis and the figures that decide it, the current level with
  its threshold and retention, the next level and what it still needs, a pending downgrade and
  the instant it would take effect, a forced level, and the last level changes.

Pure: no I/O, no clock (`now` is given). Refused commands and cancellations are left out (they
change nothing; the player's history lists them).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, localcontext
from typing import Any

from loyalty_streams.domain.event_rules import cumulative_basis, target_index
from loyalty_streams.domain.money import EXACT
from loyalty_streams.domain.player import ZERO, PlayerState
from loyalty_streams.domain.programme import LevelBasis, Programme

DAYS_PAGE = 31
"""Brand days a page of the reconciliation holds by default."""

CHANGES_SHOWN = 10
"""Level changes the statement lists, newest first."""

ORDER = "oldest_first"
"""The order of the reconciliation's days and of the lines within a day: a running balance
reads forward, and the cursor moves forward in time."""

Row = Mapping[str, Any]
"""A history row: an output as the engine emitted it, decoded from its JSON."""

COUNTERS = ("accrued", "reversed", "redeemed", "expired", "credited", "debited", "unrecovered")
"""The kinds of movement the record counts (`PlayerState.points_<kind>`)."""


def _points(row: Row) -> Decimal:
    return Decimal(row["points"])


def _adjusted(row: Row) -> tuple[str, Decimal, Decimal]:
    if row["direction"] == "credit":
        return "credited", _points(row), ZERO
    return "debited", -_points(row), ZERO


EFFECTS: dict[str, Callable[[Row], tuple[str, Decimal, Decimal]]] = {
    "PointsAccrued": lambda row: ("accrued", _points(row), ZERO),
    "PointsReversed": lambda row: ("reversed", -Decimal(row["points_reversed"]), ZERO),
    "RedemptionHeld": lambda row: ("held", -_points(row), _points(row)),
    "RedemptionReleased": lambda row: (
        "released",
        _points(row) - Decimal(row.get("points_reversed", 0)),
        -_points(row),
    ),
    "PointsRedeemed": lambda row: ("redeemed", ZERO, -_points(row)),
    "PointsAdjusted": _adjusted,
    "PointsExpired": lambda row: ("expired", -_points(row), ZERO),
}
"""Each output type that moves points: its kind, and what it adds to the available and to the
held balance (the rules in `event_rules`, `cancellations`, `command_rules`, `time_rules`)."""

NOTES: dict[str, str] = {
    "LevelChanged": "level",
    "CashbackAwarded": "cashback",
    "TierRewardGranted": "tier_reward",
    "BirthdayGiftGranted": "birthday_gift",
    "DailyRewardGranted": "daily_reward",
    "MonthlyBonusGranted": "monthly_bonus",
    "StoreBonusGranted": "store_bonus",
}
"""Output types shown as lines that move no points: their kind."""


def _factors(row: Row) -> str:
    f = row["factors"]
    promotions = f" ({', '.join(f['promotions'])})" if f["promotions"] else ""
    return (
        f"{f['points_per_unit']} points per unit x weight {f['category_weight']} x promotions "
        f"{f['promotion_multiplier']}{promotions} x {f['level']} {f['level_multiplier']}"
    )


def _reversed(row: Row) -> str:
    text = (
        f"bet {row['bet_id']} cancelled ({row['reason']}): {row['amount']} {row['currency']} "
        f"of it, {row['remaining']} left; it had earned {row['points']} points, "
        f"{row['points_reversed']} taken back"
    )
    if Decimal(row.get("points_owed", 0)):
        text += f", {row['points_owed']} owed from a redemption hold"
    if Decimal(row["points_unrecovered"]):
        text += f", {row['points_unrecovered']} no longer in the balance (unrecovered)"
    return text


def _released(row: Row) -> str:
    why = "cancelled" if row["reason"] == "cancelled" else "not confirmed in time"
    text = f"redemption {row['redemption_id']} {why}: {row['points']} points back to available"
    if Decimal(row.get("points_reversed", 0)):
        text += f", less {row['points_reversed']} owed by cancelled bets"
    return text


def _coins(row: Row, gc: str = "gc", sc: str = "sc") -> str:
    return f"{row[gc]} GC, {row[sc]} SC"


TEXTS: dict[str, Callable[[Row], str]] = {
    "PointsAccrued": lambda row: (
        f"bet {row['bet_id']}: {row['amount']} {row['currency']} on {row['game_category']} x "
        f"{_factors(row)} = {row['points']} points (programme v{row['programme_version']})"
    ),
    "PointsReversed": _reversed,
    "RedemptionHeld": lambda row: (
        f"redemption {row['redemption_id']} requested: {row['points']} points held for "
        f"{row['value']} {row['currency']}, until {row['expires_at']}"
    ),
    "RedemptionReleased": _released,
    "PointsRedeemed": lambda row: (
        f"redemption {row['redemption_id']} confirmed: {row['points']} held points redeemed for "
        f"{row['value']} {row['currency']}"
    ),
    "PointsAdjusted": lambda row: (
        f"{row['direction']} of {row['points']} points by {row['actor']}: {row['reason']}"
    ),
    "PointsExpired": lambda row: (
        f"{row['points']} points expired: no activity since {row['inactive_since']}"
    ),
    "LevelChanged": lambda row: (
        f"level {row['direction']} from {row['from_level']} to {row['to_level']} "
        f"({row['reason']}): {row['basis']} {row['cumulative']} in all, {row['rolling_30d']} "
        f"in 30 days (programme v{row['programme_version']})"
    ),
    "CashbackAwarded": lambda row: (
        f"cashback of {row['day']} at {row['level']}: {row['percent']} % of NGR {row['ngr']} "
        f"= {row['amount']} {row['currency']}" + (" (the daily cap)" if row["capped"] else "")
    ),
    "TierRewardGranted": lambda row: f"tier-up reward for reaching {row['level']}: {row['gc']} GC",
    "BirthdayGiftGranted": lambda row: (
        f"birthday gift of {row['year']} at {row['level']}: {_coins(row)}"
    ),
    "DailyRewardGranted": lambda row: (
        f"daily reward, day {row['streak']} of the streak, at {row['level']}: "
        f"{_coins(row, 'base_gc', 'base_sc')} x {row['multiplier']} = {_coins(row)}"
    ),
    "MonthlyBonusGranted": lambda row: (
        f"monthly bonus of {row['month']} at {row['level']}: {_coins(row)}"
    ),
    "StoreBonusGranted": lambda row: (
        f"store bonus on package {row['package_id']} ({row['price']} {row['currency']}) at "
        f"{row['level']}, x {row['multiplier']}: {_coins(row, 'bonus_gc', 'bonus_sc')} more"
    ),
}
"""One sentence per output type the explanation shows."""

DETAILS: dict[str, tuple[str, ...]] = {
    "PointsAccrued": ("event_id", "bet_id", "amount", "currency", "game_category", "points",
                      "factors", "programme_version"),
    "PointsReversed": ("event_id", "bet_id", "placed_at", "reason", "amount", "currency",
                       "remaining", "points", "points_reversed", "points_unrecovered", "factors",
                       "programme_version"),
    "RedemptionHeld": ("redemption_id", "points", "value", "currency", "expires_at"),
    "RedemptionReleased": ("redemption_id", "cause_id", "points", "reason"),
    "PointsRedeemed": ("redemption_id", "command_id", "points", "value", "currency"),
    "PointsAdjusted": ("command_id", "direction", "points", "reason", "actor"),
    "PointsExpired": ("points", "inactive_since"),
    "LevelChanged": ("cause_id", "direction", "from_level", "to_level", "reason", "basis",
                     "cumulative", "rolling_30d", "programme_version"),
    "CashbackAwarded": ("day", "level", "ngr", "percent", "amount", "currency", "capped"),
    "TierRewardGranted": ("level", "rank", "gc"),
    "BirthdayGiftGranted": ("year", "level", "gc", "sc"),
    "DailyRewardGranted": ("day", "streak", "level", "multiplier", "base_gc", "base_sc", "gc",
                           "sc"),
    "MonthlyBonusGranted": ("month", "level", "gc", "sc"),
    "StoreBonusGranted": ("purchase_id", "package_id", "level", "multiplier", "gc", "sc",
                          "bonus_gc", "bonus_sc", "price", "currency"),
}  # fmt: skip
"""The fields of a row a line repeats, by output type."""


@dataclass(frozen=True, slots=True)
class Balance:
    """Points available and held."""

    available: Decimal = ZERO
    held: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.available + self.held

    def __add__(self, other: "Balance") -> "Balance":
        return Balance(self.available + other.available, self.held + other.held)

    def to_json(self) -> dict[str, str]:
        return {"available": str(self.available), "held": str(self.held), "total": str(self.total)}


@dataclass(frozen=True, slots=True)
class Line:
    """One history row the explanation shows: when, on which brand day (proleptic ordinal), its
    kind, and what it added to the available and held balances (None: it moves no points)."""

    row: Row
    at: datetime
    day: int
    kind: str
    moved: Balance | None


def lines_of(rows: Iterable[Row], programme: Programme) -> list[Line]:
    """The history rows the explanation shows, as lines in time order (the rows' own order among
    rows of one instant); rows of other types (refusals) are left out."""
    lines = []
    for row in rows:
        kind_of = row["type"]
        effect = EFFECTS.get(kind_of)
        if effect is None and kind_of not in NOTES:
            continue
        at = datetime.fromisoformat(row["occurred_at"])
        day = brand_day(at, programme)
        if effect is None:
            lines.append(Line(row, at, day, NOTES[kind_of], None))
        else:
            kind, available, held = effect(row)
            lines.append(Line(row, at, day, kind, Balance(available, held)))
    lines.sort(key=lambda line: line.at)
    return lines


def brand_day(moment: datetime, programme: Programme) -> int:
    """The brand day (proleptic ordinal) of `moment`, as `Programme.day_of` gives it, without
    its cache of the last day: the explanation runs beside the fold, in another thread, and
    that cache is the fold's."""
    return moment.astimezone(programme.zone).date().toordinal()


def explain(
    state: PlayerState,
    programme: Programme,
    rows: Iterable[Row],
    now: datetime,
    *,
    days: int = DAYS_PAGE,
    start: date | None = None,
    kept_from: datetime | None = None,
) -> dict[str, Any]:
    """The explanation of a player's balance and level at `now` (UTC).

    `rows`: the player's history rows the store holds (outputs as emitted, decoded JSON), oldest
    first. `days`: brand days of the reconciliation's page (at least 1); `start`: the first
    brand day of the page (the previous page's `next_cursor`; None: the oldest day kept).
    `kept_from`: the oldest time whose rows the store still keeps, said in the opening
    balance's note. Raises ValueError when `days` is below 1.
    """
    if days < 1:
        raise ValueError(f"days: {days} is below 1")
    with localcontext(EXACT):
        lines = lines_of(rows, programme)
        balance = _balance(state, programme, lines, now, days, start, kept_from)
        level = _level(state, programme, lines, now)
    return {
        "brand_id": state.brand_id,
        "player_id": state.player_id,
        "as_of": now.isoformat(),
        "programme_version": programme.version,
        "zone": programme.policies.timezone,
        "balance": balance,
        "level": level,
    }


# -- the balance ---------------------------------------------------------------------------------


def _balance(
    state: PlayerState,
    programme: Programme,
    lines: list[Line],
    now: datetime,
    days: int,
    start: date | None,
    kept_from: datetime | None,
) -> dict[str, Any]:
    end = Balance(state.points_available, state.points_held)
    kept = _kept_totals(lines)
    moved = _after(Balance(), lines)
    opening = Balance(end.available - moved.available, end.held - moved.held)
    record = _record_totals(state)
    complete = kept == record
    first_day = lines[0].day if lines else brand_day(now, programme)
    page, next_cursor = _page(lines, opening, days, start)
    return {
        **end.to_json(),
        "order": ORDER,
        "opening": {
            "before": date.fromordinal(first_day).isoformat(),
            **opening.to_json(),
            "history_complete": complete,
            "note": _opening_note(complete, first_day, kept_from),
        },
        "days": page,
        "next_cursor": next_cursor,
        "totals": {
            kind: {
                "history": str(kept[kind]),
                "record": str(record[kind]),
                "before_history": str(record[kind] - kept[kind]),
            }
            for kind in COUNTERS
        },
        "problems": _problems(state, kept, record, opening, complete),
    }


def _kept_totals(lines: list[Line]) -> dict[str, Decimal]:
    """Points of each counted kind the lines move."""
    totals = dict.fromkeys(COUNTERS, ZERO)
    for line in lines:
        moved = line.moved
        if line.kind == "released":  # what cancelled bets were owed, taken from the hold
            totals["reversed"] += Decimal(line.row.get("points_reversed", 0))
        if moved is None or line.kind not in totals:
            continue
        if line.kind == "redeemed":
            totals["redeemed"] -= moved.held
        elif line.kind in ("accrued", "credited"):
            totals[line.kind] += moved.available
        else:  # reversed, expired, debited: taken from the available balance
            totals[line.kind] -= moved.available
        if line.kind == "reversed":
            totals["unrecovered"] += Decimal(line.row["points_unrecovered"])
        elif line.kind == "redeemed":  # what they were owed, gone with the redemption
            totals["unrecovered"] += Decimal(line.row.get("points_unrecovered", 0))
    return totals


def _record_totals(state: PlayerState) -> dict[str, Decimal]:
    return {kind: getattr(state, f"points_{kind}") for kind in COUNTERS}


def _opening_note(complete: bool, first_day: int, kept_from: datetime | None) -> str:
    if complete:
        return "the history holds every movement of points: the balance starts from zero"
    kept = "" if kept_from is None else f" (rows are kept from {kept_from.isoformat()})"
    return (
        f"before {date.fromordinal(first_day).isoformat()}: the history is no longer kept"
        f"{kept}; this opening balance is the record's balance less every movement kept"
    )


def _problems(
    state: PlayerState,
    kept: dict[str, Decimal],
    record: dict[str, Decimal],
    opening: Balance,
    complete: bool,
) -> list[str]:
    """Why the history and the record do not reconcile; empty when they do."""
    problems = []
    net = (
        record["accrued"]
        - record["reversed"]
        - record["redeemed"]
        - record["expired"]
        - record["debited"]
        + record["credited"]
    )
    total = state.points_available + state.points_held
    if net != total:
        problems.append(
            f"the record's counters give {net} points (accrued - reversed - redeemed - expired "
            f"- debited + credited), its balance is {total}"
        )
    problems.extend(
        f"the history holds {kept[kind]} points {kind}, more than the record's {record[kind]}"
        for kind in COUNTERS
        if kept[kind] > record[kind]
    )
    if complete and (opening.available or opening.held):
        problems.append(f"the history holds every movement but opens at {opening.to_json()}")
    return problems


def _page(
    lines: list[Line], opening: Balance, days: int, start: date | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The days from `start` (or the oldest) on, at most `days` of them, each with its opening,
    its lines with the balance after each, and its closing; and the next page's first day."""
    groups: list[tuple[int, list[Line]]] = []
    for line in lines:
        if groups and groups[-1][0] == line.day:
            groups[-1][1].append(line)
        else:
            groups.append((line.day, [line]))
    first = 0 if start is None else start.toordinal()
    running = opening
    page: list[dict[str, Any]] = []
    for day, group in groups:
        if day < first:
            running = _after(running, group)
            continue
        if len(page) == days:
            return page, date.fromordinal(day).isoformat()
        opened = running
        shown = []
        for line in group:
            if line.moved is not None:
                running += line.moved
            shown.append(_shown(line, running))
        page.append(
            {
                "day": date.fromordinal(day).isoformat(),
                "opening": opened.to_json(),
                "lines": shown,
                "closing": running.to_json(),
            }
        )
    return page, None


def _after(balance: Balance, lines: list[Line]) -> Balance:
    for line in lines:
        if line.moved is not None:
            balance += line.moved
    return balance


def _shown(line: Line, after: Balance) -> dict[str, Any]:
    """A line as the answer shows it: what it moved and the balance after it (None for a line
    that moves no points)."""
    row, moved = line.row, line.moved
    kind_of = row["type"]
    return {
        "at": line.at.isoformat(),
        "type": kind_of,
        "kind": line.kind,
        "output_id": row["output_id"],
        "text": TEXTS[kind_of](row),
        "available": None if moved is None else str(moved.available),
        "held": None if moved is None else str(moved.held),
        "balance": None if moved is None else after.to_json(),
        "details": _details(row),
    }


def _details(row: Row) -> dict[str, Any]:
    return {name: row[name] for name in DETAILS[row["type"]] if name in row}


# -- the level -----------------------------------------------------------------------------------


def _level(
    state: PlayerState, programme: Programme, lines: list[Line], now: datetime
) -> dict[str, Any]:
    index = programme.level_index(state.level_rank)
    level = programme.levels[index]
    cumulative = cumulative_basis(state, programme)
    rolling = state.rolling_sum(brand_day(now, programme))
    retention = programme.retentions[index]
    following = programme.levels[index + 1] if index + 1 < len(programme.levels) else None
    unit = (
        programme.turnover_currency.value
        if programme.level_basis is LevelBasis.TURNOVER
        else "VIP points"
    )
    statement = [
        f"{level.name} (rank {level.rank}) since {state.level_since.isoformat()}; levels are on "
        f"{programme.level_basis.value} ({unit}), version {programme.version} of the programme",
        f"cumulative {cumulative} {unit}: {level.name} starts at {level.threshold}",
        f"keeping {level.name} needs {retention} {unit} in 30 days: {rolling} now"
        + ("" if rolling >= retention else ", below it")
        if index
        else f"{level.name} is the lowest level: nothing is needed to keep it",
    ]
    upcoming = None
    if following is not None:
        needed = max(following.threshold - cumulative, ZERO)
        upcoming = {
            "name": following.name,
            "rank": following.rank,
            "threshold": str(following.threshold),
            "still_needed": str(needed),
        }
        statement.append(f"{following.name} starts at {following.threshold}: {needed} to go")
    downgrade = _downgrade(state, programme, cumulative, rolling, index)
    if downgrade is not None:
        # what the level misses now: its threshold (a cancelled bet can take the lifetime
        # figure below it), its 30-day retention, or both
        missing = []
        if cumulative < level.threshold:
            missing.append(f"the figure reaches {level.threshold} again")
        if rolling < retention:
            missing.append(f"the 30-day figure reaches {retention}")
        unless = f"unless {' and '.join(missing)}, " if missing else ""
        statement.append(
            f"a downgrade is pending since {downgrade['pending_since']}: {unless}it takes effect "
            f"at {downgrade['takes_effect_at']} (to {downgrade['to_level']} at today's figures)"
        )
    forced = _forced(state, programme)
    if forced is not None:
        until = "for good" if forced["until"] is None else f"until {forced['until']}"
        statement.append(
            f"forced to {forced['level']} by {forced['actor']} ({forced['reason']}) "
            f"{until}: neither play nor time moves it until then"
        )
    changes = [line for line in lines if line.kind == "level"][-CHANGES_SHOWN:][::-1]
    return {
        "basis": programme.level_basis.value,
        "unit": unit,
        "cumulative": str(cumulative),
        "rolling_30d": str(rolling),
        "current": {
            "name": level.name,
            "rank": level.rank,
            "threshold": str(level.threshold),
            "retention_30d": str(retention),
            "retention_met": rolling >= retention,
            "since": state.level_since.isoformat(),
        },
        "next_level": upcoming,
        "downgrade": downgrade,
        "forced": forced,
        "last_changes": [{"at": line.at.isoformat(), **_details(line.row)} for line in changes],
        "statement": statement,
    }


def _downgrade(
    state: PlayerState, programme: Programme, cumulative: Decimal, rolling: Decimal, index: int
) -> dict[str, Any] | None:
    """A pending downgrade: since when, when it takes effect (the grace's end), and the level
    it would go to at the figures of now; None when none is pending."""
    pending = state.downgrade_pending_since
    if pending is None:
        return None
    target = min(target_index(programme, cumulative, lambda: rolling), index)
    return {
        "pending_since": pending.isoformat(),
        "takes_effect_at": programme.grace_ends(pending).isoformat(),
        "to_level": programme.levels[target].name,
    }


def _forced(state: PlayerState, programme: Programme) -> dict[str, Any] | None:
    forced = state.forced
    if forced is None:
        return None
    return {
        "level": programme.level_at(forced.rank).name,
        "reason": forced.reason,
        "actor": forced.actor,
        "since": forced.since.isoformat(),
        "until": None if forced.until is None else forced.until.isoformat(),
    }


# -- as text -------------------------------------------------------------------------------------


def statement_lines(answer: Mapping[str, Any]) -> list[str]:
    """An explanation (as `explain` gives it, or its JSON decoded) as readable lines of text."""
    balance, level = answer["balance"], answer["level"]
    opening = balance["opening"]
    text = [
        f"{answer['brand_id']}:{answer['player_id']} as of {answer['as_of']} "
        f"(brand days in {answer['zone']})",
        "",
        "Level",
        *(f"  {sentence}" for sentence in level["statement"]),
    ]
    text += [
        f"  {change['at']}  {change['from_level']} -> {change['to_level']} ({change['reason']})"
        for change in level["last_changes"]
    ]
    text += [
        "",
        f"Balance: {balance['available']} available + {balance['held']} held = "
        f"{balance['total']} points",
        f"  opening before {opening['before']}: {opening['total']} ({opening['note']})",
    ]
    for day in balance["days"]:
        text.append(f"  {day['day']}  opening {day['opening']['total']}")
        for line in day["lines"]:
            text.append(f"    {line['at'][11:19]}  {_moved(line):>30}  {line['text']}")
        text.append(f"  {day['day']}  closing {day['closing']['total']}")
    if balance["next_cursor"] is not None:
        text.append(f"  ... more from {balance['next_cursor']} (cursor)")
    text += ["", "Totals (history / record / before the history)"]
    text += [
        f"  {kind:<12} {t['history']:>14} {t['record']:>14} {t['before_history']:>14}"
        for kind, t in balance["totals"].items()
    ]
    problems = balance["problems"]
    text.append("  reconciles" if not problems else "  DOES NOT RECONCILE:")
    text += [f"  - {problem}" for problem in problems]
    return text


def _moved(line: Mapping[str, Any]) -> str:
    """`+12.50 = 112.50`, `-1000 +1000 held = 2700.00`: what a line moved (the held balance
    named) and the total after it; empty for a line that moves no points."""
    if line["balance"] is None:
        return ""
    available, held = Decimal(line["available"]), Decimal(line["held"])
    moved = [_signed(available)] if available or not held else []
    moved += [f"{_signed(held)} held"] if held else []
    return f"{' '.join(moved)} = {line['balance']['total']}"


def _signed(points: Decimal) -> str:
    return f"+{points}" if points >= 0 else str(points)
