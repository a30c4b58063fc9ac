"""CSV exports for finance: one brand's accruals, reversals of cancelled bets, redemptions,
cashback or coin rewards over a time range.

One row per output (per `output_id`), streamed: the topic is scanned once
(`kafka.reading.scan_topic`), rows are filtered by brand and by the output's own event time
(`occurred_at`, in [since, until)) and written in chunks of `ROWS_PER_CHUNK`, so memory stays
flat whatever the range. Amounts and points are the outputs' decimal strings, written
fixed-point and never through a float.

Which records are read: output records carry the time they were produced as their Kafka
timestamp (the worker's clock), not their event time. An output is produced at or after its
event time (late events only make the gap larger; cashback is produced after the day closed),
except when an event or command is dated ahead of the worker's clock. So the scan seeks to
`since - EVENT_TIME_SLACK` by Kafka timestamp and reads every partition to its end (a late
output of the range can be anywhere after): a row is missed only if its event was dated more
than the slack ahead of the clock of the worker that processed it.
"""

import csv
import io
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.kafka.clients import KafkaClients
from loyalty_streams.kafka.reading import ReadRecord, scan_topic
from loyalty_streams.kafka.topics import POINTS_ACCRUED, REDEMPTIONS, REWARDS
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

ROWS_PER_CHUNK = 500
"""Rows per yielded chunk of CSV text (the header is a chunk of its own, yielded first)."""

EVENT_TIME_SLACK = timedelta(days=1)
"""How far ahead of a worker's clock an event may be dated and still be found (see above)."""

DEDUPE_WINDOW = 20_000
"""Output ids remembered per partition to drop repeats. A repeat comes from a worker replaying
a batch after a crash: it lands on the same partition (same key) within a batch or two (5,000
inbound records each) of the first copy, so a bounded window catches it in bounded memory."""


class ExportKind(StrEnum):
    ACCRUALS = "accruals"
    REVERSALS = "reversals"
    REDEMPTIONS = "redemptions"
    CASHBACK = "cashback"
    COIN_REWARDS = "coin-rewards"


class Undecodable(ValueError):
    """A record that is not the output it should be; skipped and counted, never fatal."""


Field = Callable[[dict[str, Any]], str]


def _text(name: str, within: str | None = None) -> Field:
    def get(value: dict[str, Any]) -> str:
        found = _field(value, name, within)
        if not isinstance(found, str):
            raise Undecodable(f"{name}: not a string")
        return found

    return get


def _optional(name: str, read: Field, absent: str) -> Field:
    """A field records written before it existed lack: `absent` for those, `read` otherwise."""

    def get(value: dict[str, Any]) -> str:
        return absent if name not in value else read(value)

    return get


def _field(value: dict[str, Any], name: str, within: str | None) -> object:
    holder = value.get(within) if within is not None else value
    return holder.get(name) if isinstance(holder, dict) else None


def _decimal(name: str, within: str | None = None) -> Field:
    """A decimal string, written fixed-point (exact: `30.00` stays `30.00`, `1E+3` is `1000`)."""

    def get(value: dict[str, Any]) -> str:
        found = _field(value, name, within)
        if not isinstance(found, str):  # a JSON number would have been through a float
            raise Undecodable(f"{name}: not a decimal string")
        try:
            number = Decimal(found)
        except InvalidOperation as error:
            raise Undecodable(f"{name}: {found!r} is not a decimal") from error
        if not number.is_finite():
            raise Undecodable(f"{name}: {found!r} is not a finite decimal")
        return format(number, "f")

    return get


def _moment(name: str) -> Field:
    def get(value: dict[str, Any]) -> str:
        return _utc(_parse_moment(value, name))

    return get


def _day(name: str) -> Field:
    def get(value: dict[str, Any]) -> str:
        found = _text(name)(value)
        try:
            return date.fromisoformat(found).isoformat()
        except ValueError as error:
            raise Undecodable(f"{name}: {found!r} is not a date") from error

    return get


def _integer(name: str) -> Field:
    def get(value: dict[str, Any]) -> str:
        found = value.get(name)
        if not isinstance(found, int) or isinstance(found, bool):
            raise Undecodable(f"{name}: not an integer")
        return str(found)

    return get


def _flag(name: str) -> Field:
    def get(value: dict[str, Any]) -> str:
        found = value.get(name)
        if not isinstance(found, bool):
            raise Undecodable(f"{name}: not a boolean")
        return "true" if found else "false"

    return get


def _promotions(value: dict[str, Any]) -> str:
    found = _field(value, "promotions", "factors")
    if not isinstance(found, list) or not all(isinstance(name, str) for name in found):
        raise Undecodable("factors.promotions: not a list of names")
    return "|".join(found)


def _factor(name: str) -> tuple[str, Field]:
    return name, _decimal(name, within="factors")


def _each(kind: Callable[[str], Field], *names: str) -> tuple[tuple[str, Field], ...]:
    """Columns of the fields `names`, each read as `kind` (`_text`, `_decimal`...)."""
    return tuple((name, kind(name)) for name in names)


def _per_type(fields: dict[str, Field]) -> Field:
    """The field of a row of an export of several types: `fields[type]` of the output's
    `type`, empty for a type it does not name (a field particular to other types)."""

    def get(value: dict[str, Any]) -> str:
        kind = value.get("type")
        field = fields.get(kind) if isinstance(kind, str) else None
        return "" if field is None else field(value)

    return get


@dataclass(frozen=True, slots=True)
class ExportSpec:
    topic: str
    output_types: frozenset[str]
    """The `type`s of the outputs exported; other types on the topic are not rows."""
    columns: tuple[tuple[str, Field], ...]

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


DAILY, MONTHLY, STORE = "DailyRewardGranted", "MonthlyBonusGranted", "StoreBonusGranted"
BIRTHDAY, TIER_UP = "BirthdayGiftGranted", "TierRewardGranted"
COIN_REWARDS = {
    DAILY: "daily_reward",
    MONTHLY: "monthly_bonus",
    STORE: "store_bonus",
    BIRTHDAY: "birthday_gift",
    TIER_UP: "tier_up",
}
"""The outputs of the coin-rewards export, and the name of each in its `reward` column."""


def _reward(value: dict[str, Any]) -> str:
    """The `reward` column: which coin reward the row is (rows are of those types only)."""
    return COIN_REWARDS[value["type"]]


def _paid(coin: str) -> Field:
    """The `coin`s (gc or sc) a coin reward pays: a store bonus's are its bonus coins, not the
    package's."""
    paid = _decimal(coin)
    return _per_type(
        {
            DAILY: paid,
            MONTHLY: paid,
            STORE: _decimal(f"bonus_{coin}"),
            BIRTHDAY: paid,
            TIER_UP: paid if coin == "gc" else lambda _: "0",  # a tier-up reward pays GC only
        }
    )


SPECS: dict[ExportKind, ExportSpec] = {
    ExportKind.ACCRUALS: ExportSpec(
        POINTS_ACCRUED,
        frozenset({"PointsAccrued"}),
        (
            *_each(_text, "output_id", "event_id"),
            ("bet_id", _optional("bet_id", _text("bet_id"), "")),  # empty: sent before it was
            *_each(_text, "brand_id", "player_id"),
            ("occurred_at", _moment("occurred_at")),
            ("game_category", _text("game_category")),
            ("amount", _decimal("amount")),
            ("currency", _text("currency")),
            ("points", _decimal("points")),
            _factor("points_per_unit"),
            _factor("category_weight"),
            _factor("promotion_multiplier"),
            _factor("level_multiplier"),
            ("level", _text("level", within="factors")),
            ("promotions", _promotions),
            ("programme_version", _integer("programme_version")),
        ),
    ),
    ExportKind.REVERSALS: ExportSpec(
        POINTS_ACCRUED,
        frozenset({"PointsReversed"}),
        (
            *_each(_text, "output_id", "event_id", "bet_id", "brand_id", "player_id"),
            *_each(_moment, "occurred_at", "placed_at"),
            ("reason", _text("reason")),
            ("amount", _decimal("amount")),
            ("currency", _text("currency")),
            *_each(_decimal, "remaining", "points", "points_reversed"),
            ("points_owed", _optional("points_owed", _decimal("points_owed"), "0")),
            ("points_unrecovered", _decimal("points_unrecovered")),
            *_each(_decimal, "turnover", "vip_points"),
            ("programme_version", _integer("programme_version")),
        ),
    ),
    ExportKind.REDEMPTIONS: ExportSpec(
        REDEMPTIONS,
        frozenset({"PointsRedeemed"}),
        (
            *_each(_text, "output_id", "redemption_id", "command_id", "brand_id", "player_id"),
            ("occurred_at", _moment("occurred_at")),
            *_each(_decimal, "points", "value"),
            ("currency", _text("currency")),
            ("programme_version", _integer("programme_version")),
        ),
    ),
    ExportKind.CASHBACK: ExportSpec(
        REWARDS,
        frozenset({"CashbackAwarded"}),
        (
            *_each(_text, "output_id", "brand_id", "player_id"),
            ("occurred_at", _moment("occurred_at")),
            ("day", _day("day")),
            ("level", _text("level")),
            *_each(_decimal, "ngr", "percent", "amount"),
            ("currency", _text("currency")),
            ("capped", _flag("capped")),
            ("programme_version", _integer("programme_version")),
        ),
    ),
    ExportKind.COIN_REWARDS: ExportSpec(
        REWARDS,
        frozenset(COIN_REWARDS),
        (
            ("reward", _reward),
            *_each(_text, "output_id", "brand_id", "player_id"),
            ("occurred_at", _moment("occurred_at")),
            ("level", _text("level")),
            *_each(_paid, "gc", "sc"),
            ("streak", _per_type({DAILY: _integer("streak")})),
            ("day", _per_type({DAILY: _day("day")})),
            ("month", _per_type({MONTHLY: _text("month")})),
            ("year", _per_type({BIRTHDAY: _integer("year")})),
            ("purchase_id", _per_type({STORE: _text("purchase_id")})),
            ("package_id", _per_type({STORE: _text("package_id")})),
            ("price", _per_type({STORE: _decimal("price")})),
            ("currency", _per_type({STORE: _text("currency")})),
            ("programme_version", _integer("programme_version")),
        ),
    ),
}


def export_csv(
    settings: Settings,
    kind: ExportKind,
    brand_id: str,
    since: datetime,
    until: datetime,
    clients: KafkaClients | None = None,
) -> Iterator[str]:
    """CSV text of one brand's `kind` outputs with `since <= occurred_at < until`, in chunks.

    The header is the first chunk, then a chunk per `ROWS_PER_CHUNK` rows, in topic order
    (partition by partition as they are read, not sorted by time). Arguments are checked here,
    before anything is read (`ValueError`); the topic is read as the chunks are taken, and
    closing the iterator early stops the read. `clients` makes the reader (by default
    librdkafka's).
    """
    _check_range(brand_id, since, until)
    spec = SPECS[kind]
    try:
        read_from: datetime | None = since - EVENT_TIME_SLACK
    except OverflowError:  # since is near year 1: from the beginning
        read_from = None
    records = scan_topic(settings, spec.topic, since=read_from, until=None, clients=clients)
    return render_csv(kind, brand_id, since, until, records)


def render_csv(
    kind: ExportKind,
    brand_id: str,
    since: datetime,
    until: datetime,
    records: Iterable[ReadRecord],
) -> Iterator[str]:
    """The CSV chunks of `export_csv`, from records already read (no broker)."""
    _check_range(brand_id, since, until)
    return _render(SPECS[kind], brand_id, since, until, records)


def _render(
    spec: ExportSpec,
    brand_id: str,
    since: datetime,
    until: datetime,
    records: Iterable[ReadRecord],
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: quoted when needed, CRLF line ends
    writer.writerow(spec.header)
    yield _take(buffer)
    key_prefix = f"{brand_id}:".encode()
    identity = spec.header.index("output_id")  # a repeat is the same output: its id
    recent: dict[int, _Recent] = {}
    rows = pending = skipped = repeats = 0
    for record in records:
        if record.key is not None and not record.key.startswith(key_prefix):
            continue  # keyed brand_id:player_id: another brand's, without decoding it
        try:
            row = _row(spec, brand_id, since, until, record)
        except Undecodable as error:
            skipped += 1
            log.debug("%s[%d]@%d skipped: %s", record.topic, record.partition, record.offset, error)
            continue
        if row is None:
            continue
        if not recent.setdefault(record.partition, _Recent(DEDUPE_WINDOW)).add(row[identity]):
            repeats += 1
            continue
        writer.writerow(row)
        rows += 1
        pending += 1
        if pending >= ROWS_PER_CHUNK:
            yield _take(buffer)
            pending = 0
    if pending:
        yield _take(buffer)
    if skipped:
        log.warning("%s: %d undecodable record(s) skipped", spec.topic, skipped)
    log.info(
        "export of %s for %s [%s, %s): %d row(s), %d repeated output(s) dropped",
        "/".join(sorted(spec.output_types)),
        brand_id,
        since.isoformat(),
        until.isoformat(),
        rows,
        repeats,
    )


def _row(
    spec: ExportSpec, brand_id: str, since: datetime, until: datetime, record: ReadRecord
) -> list[str] | None:
    """The record's row; None when it is not one of the export (type, brand, time)."""
    try:
        value = orjson.loads(record.value or b"")  # a tombstone: not JSON
    except orjson.JSONDecodeError as error:
        raise Undecodable(f"not JSON: {error}") from error
    if not isinstance(value, dict):
        raise Undecodable("not a JSON object")
    if value.get("type") not in spec.output_types or value.get("brand_id") != brand_id:
        return None
    if not since <= _parse_moment(value, "occurred_at") < until:
        return None
    return [get(value) for _, get in spec.columns]


def _parse_moment(value: dict[str, Any], name: str) -> datetime:
    found = value.get(name)
    if not isinstance(found, str):
        raise Undecodable(f"{name}: not a time")
    try:
        moment = datetime.fromisoformat(found)
    except ValueError as error:
        raise Undecodable(f"{name}: {found!r} is not a time") from error
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Undecodable(f"{name}: {found!r} has no UTC offset")
    return moment


def _utc(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z: one offset for the whole column, so text order is time order."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


class _Recent:
    """The last `size` ids seen, as a set with first-in-first-out eviction."""

    __slots__ = ("_ids", "_order", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: set[str] = set()
        self._order: deque[str] = deque()

    def add(self, item: str) -> bool:
        """False when `item` is among the last `size` ids; otherwise remember it."""
        if item in self._ids:
            return False
        self._ids.add(item)
        self._order.append(item)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


def _check_range(brand_id: str, since: datetime, until: datetime) -> None:
    if not brand_id:
        raise ValueError("brand_id is empty")
    for name, moment in (("since", since), ("until", until)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{name} {moment.isoformat()} has no time zone")
    if not since < until:
        raise ValueError(f"empty range: {since.isoformat()} is not before {until.isoformat()}")


# -- for the command line: dates in the brand's time zone ----------------------------------


def brand_zone(catalogue: Catalogue, brand_id: str, now: datetime) -> ZoneInfo | None:
    """The time zone export dates are read in: the brand's programme in effect now (its first
    version if none is yet); None for a brand without a programme."""
    programme = catalogue.in_effect(brand_id, now)
    if programme is None:
        versions = catalogue.versions(brand_id)
        if not versions:
            return None
        programme = versions[0]
    return programme.zone


def parse_bound(text: str, zone: ZoneInfo) -> datetime:
    """`2026-01-01` is midnight in `zone`; an ISO date-time without an offset is in `zone` too;
    one with an offset (or Z) is taken as it is."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), zone)
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{text!r} is neither a date (YYYY-MM-DD) nor an ISO time") from error
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def csv_header(kind: ExportKind) -> Sequence[str]:
    """The columns of an export, in order."""
    return SPECS[kind].header
