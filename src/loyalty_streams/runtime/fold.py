"""One inbound record in, the player's new record and the records to emit out.

The fold loop's work on one record: decode, check the record against the boundary, pick the
brand's programme, fold with the domain, encode. Anything that cannot be used becomes a dead
letter instead of an exception, whatever it holds and whatever goes wrong with it, so a worker
never stops on input (faults of Kafka or RocksDB are not input: they stop the worker).

The boundary (what a record must be to be folded):
- its value decodes as an event or a command of the contract, as JSON without duplicate keys;
- its key is the event's `brand_id:player_id`, and it sits on the partition that key hashes to
  (Kafka's murmur2): a record elsewhere would fold into a second record of the same player;
- an event's `occurred_at` is at most `event_max_ahead_s` after the record's timestamp and at
  most `event_max_age_days` before it;
- a command's rules run at the record's timestamp (`received_at`), never at the `issued_at` its
  sender wrote (see `domain.command_rules.execute`);
- a brand's re-check (`RecheckBrand`, keyed by the brand, one on every partition) sits on the
  partition it names.
A record's timestamp is bounded by the worker's clock: one from the future counts as now.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import get_args

import orjson
from pydantic import ValidationError

from loyalty_streams.domain import time_rules as timers
from loyalty_streams.domain.cancellations import PlacedBet
from loyalty_streams.domain.command_rules import clock_skew
from loyalty_streams.domain.commands import (
    Command,
    CommandEnvelope,
    RecheckBrand,
    decode_inbound_command,
)
from loyalty_streams.domain.event_rules import EventRejected
from loyalty_streams.domain.events import BetCancelled, PlayerEvent, decode_player_event
from loyalty_streams.domain.followups import follow_ups
from loyalty_streams.domain.outputs import (
    AuditEntry,
    BirthdayGiftGranted,
    CampaignTriggered,
    CancellationRefused,
    CashbackAwarded,
    CommandRejected,
    DailyRewardGranted,
    GmsFlagChanged,
    LevelChanged,
    MonthlyBonusGranted,
    NotificationRequested,
    Output,
    PointsAccrued,
    PointsAdjusted,
    PointsExpired,
    PointsExpiring,
    PointsRedeemed,
    PointsReversed,
    RedemptionHeld,
    RedemptionReleased,
    StoreBonusGranted,
    TierRewardGranted,
    encode,
)
from loyalty_streams.domain.player import PlayerState, SourcePosition
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.time_rules import (
    Advanced,
    CashbackDay,
    ProgrammeAt,
    advance,
    on_command,
    on_event,
)
from loyalty_streams.domain.validation import validation_summary
from loyalty_streams.kafka.dead_letters import dead_letter, dead_letter_key, encode_dead_letter
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import (
    AUDIT,
    CAMPAIGN_TRIGGERS,
    COMMAND_REJECTIONS,
    COMMANDS,
    DEAD_LETTER,
    GMS_FLAGS,
    LEVEL_CHANGED,
    NOTIFICATIONS,
    POINTS_ACCRUED,
    POINTS_ADJUSTED,
    POINTS_EXPIRY,
    REDEMPTIONS,
    REWARDS,
)
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import RECHECK_PREFIX, bet_key, cashback_key, history_key
from loyalty_streams.state.retention import rows_timer
from loyalty_streams.state.store import encode_player
from loyalty_streams.state.timer_index import player_moves

OUTPUT_TOPICS: dict[type, str] = {
    PointsAccrued: POINTS_ACCRUED,
    PointsReversed: POINTS_ACCRUED,
    CancellationRefused: POINTS_ACCRUED,
    LevelChanged: LEVEL_CHANGED,
    RedemptionHeld: REDEMPTIONS,
    PointsRedeemed: REDEMPTIONS,
    RedemptionReleased: REDEMPTIONS,
    PointsAdjusted: POINTS_ADJUSTED,
    PointsExpiring: POINTS_EXPIRY,
    PointsExpired: POINTS_EXPIRY,
    CashbackAwarded: REWARDS,
    TierRewardGranted: REWARDS,
    BirthdayGiftGranted: REWARDS,
    DailyRewardGranted: REWARDS,
    MonthlyBonusGranted: REWARDS,
    StoreBonusGranted: REWARDS,
    CommandRejected: COMMAND_REJECTIONS,
    CampaignTriggered: CAMPAIGN_TRIGGERS,
    NotificationRequested: NOTIFICATIONS,
    GmsFlagChanged: GMS_FLAGS,
    AuditEntry: AUDIT,
}

History = (
    PointsAccrued
    | PointsReversed
    | CancellationRefused
    | LevelChanged
    | RedemptionHeld
    | PointsRedeemed
    | RedemptionReleased
    | PointsAdjusted
    | PointsExpired
    | CashbackAwarded
    | TierRewardGranted
    | BirthdayGiftGranted
    | DailyRewardGranted
    | MonthlyBonusGranted
    | StoreBonusGranted
    | CommandRejected
    | AuditEntry
)
"""What a player's history keeps: every change of points or level, every reward, refused
commands and cancellations, and the audit entry of every operator's command about the player
(so a command that changed nothing a row shows, e.g. a level forced to the one held, is seen
carried out)."""

HISTORY_TYPE_NAMES = frozenset(kind.__name__ for kind in get_args(History))

ProgrammeFor = Callable[[str, datetime], Programme | None]
"""The programme version in effect for a brand at a moment (see `domain.catalogue`)."""


@dataclass(slots=True)
class Record:
    """An inbound record as the fold reads it (not frozen: a frozen dataclass's `__init__` sets
    each field through `object.__setattr__`; why: docs/decisions/fold-hot-path.md)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    received_at: datetime
    """The record's timestamp (UTC), at most the worker's clock when it was fetched."""

    @property
    def position(self) -> bytes:
        """Where the record sits: `<topic>:<partition>:<offset>`."""
        return f"{self.topic}:{self.partition}:{self.offset}".encode()


@dataclass(frozen=True, slots=True)
class Boundary:
    """What a record must satisfy to be folded (see the module's docstring)."""

    partitions: int
    """Partitions of the inbound topics: a record must sit on the one its key hashes to."""
    event_max_ahead: timedelta
    event_max_age: timedelta
    command_skew: timedelta

    @classmethod
    def of(cls, settings: Settings, partitions: int) -> "Boundary":
        return cls(
            partitions,
            timedelta(seconds=settings.event_max_ahead_s),
            timedelta(days=settings.event_max_age_days),
            timedelta(seconds=settings.command_clock_skew_s),
        )


@dataclass(slots=True)
class Outcome:
    """What handling one record produced: a record to store (if any) and records to send."""

    state: PlayerState | None = None
    sends: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    dead: bool = False
    applied_id: str | None = None
    """Set when an event or command was applied: the id to remember, so a re-publish is
    recognised (`cmd:<command_id>` for a command; an event id has no colon)."""
    applied_from: bytes = b""
    """The applied record's `position`, remembered with its id: the same record read again
    (a replay) is told apart from the same id published again (a re-publish)."""
    state_json: bytes = b""
    """`state` encoded for the store and its changelog."""
    writes: list[tuple[bytes, bytes | None]] = field(default_factory=list)
    """Other records for the partition's store (None deletes): history and cashback-log rows,
    and entries of the timer index."""
    outputs: tuple[Output, ...] = ()
    """What `sends` carries, before encoding: for the metrics."""


Inbound = PlayerEvent | Command | RecheckBrand


def decode(
    record: Record,
    boundary: Boundary,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Inbound | Outcome:
    """The record's event or command (by its topic), or its dead letter; never raises.

    The fold loop decodes what it fetched in one pass before folding it: interleaved with the
    rest of the fold, the validator's code is cold (why: docs/decisions/fold-hot-path.md).
    """
    is_command = record.topic == COMMANDS
    kind = "command" if is_command else "event"
    try:
        inbound = (decode_inbound_command if is_command else decode_player_event)(record.value)
        refusal = _misplaced(record, inbound, boundary) or _duplicate_key(record, inbound, kind)
        if refusal is None and not isinstance(inbound, CommandEnvelope | RecheckBrand):
            refusal = _implausible(record, inbound, boundary)
    except ValidationError as error:
        refusal = f"invalid {kind}: {validation_summary(error)}"
    except Exception as error:  # whatever a record holds, it must not stop the worker
        refusal = f"undecodable {kind}: {type(error).__name__}: {error}"
    return inbound if refusal is None else _dead(record, refusal, clock)


def _misplaced(record: Record, inbound: Inbound, boundary: Boundary) -> str | None:
    """Why the record is not where the player's record lives (a brand's re-check: not on the
    partition it names), if it is not."""
    key = inbound.key.encode()
    if isinstance(inbound, RecheckBrand):
        if record.key != key:
            return f"key {record.key!r} does not match {inbound.key!r}"
        if inbound.partition != record.partition:
            return f"misrouted: a re-check for partition {inbound.partition}"
        return None
    if record.key is None:
        return f"misrouted: no key; {inbound.key!r} belongs on partition {_home(key, boundary)}"
    if record.key != key:
        return f"key {record.key!r} does not match {inbound.key!r}"
    home = _home(key, boundary)
    if home != record.partition:
        return f"misrouted: {inbound.key!r} belongs on partition {home}"
    return None


def _home(key: bytes, boundary: Boundary) -> int:
    return _partition_of(key, boundary.partitions)


_partition_of = lru_cache(maxsize=1 << 16)(partition_of)
"""murmur2 in Python is slow and players come back, so their keys are cached (why:
docs/decisions/fold-hot-path.md)."""

_KEY = re.compile(rb'(?<!\\)"\s*:')
"""The end of an object key in JSON text: a quote, then a colon (after white space, if any)."""


def _duplicate_key(record: Record, inbound: Inbound, kind: str) -> str | None:
    """Why the value's JSON names a field twice, if it does (JSON parsers keep the last one).

    Every field of the contracts is flat and every key in the value is a known field (unknown
    ones are refused), so the value names a field twice exactly when it has more keys than the
    fields it set. A key is a quote followed by a colon; a string value holds one only with an
    escaped quote, which `_KEY` passes over.
    """
    value = record.value
    if b"\\" in value or b" :" in value or b"\t:" in value or b"\n:" in value or b"\r:" in value:
        keys = len(_KEY.findall(value))
    else:  # the common case, compact JSON: a C-speed count
        keys = value.count(b'":')
    if keys > len(inbound.model_fields_set):
        return f"invalid {kind}: a key appears twice"
    return None


def _implausible(record: Record, event: PlayerEvent, boundary: Boundary) -> str | None:
    """Why an event's time cannot be true, if it cannot: too far after or before its record."""
    ahead = event.occurred_at - record.received_at
    if ahead > boundary.event_max_ahead:
        return (
            f"implausible time: occurred_at {event.occurred_at.isoformat()} is more than "
            f"{boundary.event_max_ahead} after the record's timestamp "
            f"{record.received_at.isoformat()}"
        )
    if -ahead > boundary.event_max_age:
        return (
            f"implausible time: occurred_at {event.occurred_at.isoformat()} is more than "
            f"{boundary.event_max_age.days} days before the record's timestamp "
            f"{record.received_at.isoformat()}"
        )
    return None


def fold(
    record: Record,
    inbound: Inbound,
    boundary: Boundary,
    programme_for: ProgrammeFor,
    load_state: Callable[[str], PlayerState | None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    applied: Callable[[str], bytes | None] = lambda _: None,
    stored: Callable[[bytes], bytes | None] = lambda _: None,
) -> Outcome:
    """Fold one decoded event or command; `load_state` reads a player by key, `stored` any
    other key of the record's partition's store (a cancelled bet's record).

    `applied` gives the position of the record an id was applied from (`Outcome.applied_from`),
    or None: the records' own stamps catch replays by offset and the player's last 32 ids; this
    catches any older re-publish as well. The same record read again is folded again (the
    player's stamp then makes it a repeat), so a checkpoint whose ids reached the changelog
    but whose player records did not is replayed in full.

    `load_state`'s and `applied`'s faults (the store's) propagate; anything the rules or the
    encoding raise for this record makes it a dead letter.
    """
    if isinstance(inbound, CommandEnvelope | RecheckBrand):
        moment, applied_id = record.received_at, f"cmd:{inbound.command_id}"
    else:
        moment, applied_id = inbound.occurred_at, inbound.dedupe_id
    programme = programme_for(inbound.brand_id, moment)
    if programme is None:
        return _dead(
            record, f"no programme of brand {inbound.brand_id!r} in effect at {moment}", clock
        )
    position = record.position
    applied_from = applied(applied_id)
    if applied_from is not None and applied_from != position:  # published again
        return Outcome()
    if isinstance(inbound, RecheckBrand):  # the partition's players, a slice at a time
        skewed = clock_skew(inbound.issued_at, moment, boundary.command_skew)
        if skewed is not None:
            return _dead(record, f"rejected: clock_skew: {skewed}", clock)
        job = {"brand_id": inbound.brand_id, "at": moment.isoformat(), "next": ""}
        writes: list[tuple[bytes, bytes | None]] = [
            (RECHECK_PREFIX + inbound.command_id.encode(), orjson.dumps(job))
        ]
        return Outcome(applied_id=applied_id, applied_from=position, writes=writes)
    source = SourcePosition(f"{record.topic}:{record.partition}", record.offset)
    previous = load_state(inbound.key)
    try:
        if isinstance(inbound, CommandEnvelope):
            at, skew = record.received_at, boundary.command_skew
            rules = _versions(programme_for, programme)
            step = on_command(previous, inbound, rules, at, skew, source)
        else:
            rules = _versions(programme_for, programme)
            step = on_event(previous, inbound, rules, source, _bet_of(inbound, stored))
        if step.state is previous:  # a repeat: nothing to write or send
            return Outcome()
        outcome = _outcome(previous, step, programme)
        outcome.applied_id = applied_id
        outcome.applied_from = position
        return outcome
    except EventRejected as error:
        return _dead(record, f"rejected: {error}", clock)
    except Exception as error:  # the rules or the encoding failed on this record alone
        return _dead(record, f"failed: {type(error).__name__}: {error}", clock)


def _bet_of(event: PlayerEvent, stored: Callable[[bytes], bytes | None]) -> PlacedBet | None:
    """The stored record of the bet a cancellation names; None for other events."""
    if not isinstance(event, BetCancelled):
        return None
    raw = stored(bet_key(event.brand_id, event.player_id, event.bet_id))
    return None if raw is None else PlacedBet.from_json(raw)


def fire(state: PlayerState, programme_for: ProgrammeFor, until: datetime) -> Outcome:
    """What a stored player's timers do up to `until` (UTC): closes, downgrades, holds, expiry,
    each at its own instant (see `domain.time_rules`)."""
    due = state.timer_at or until
    programme = programme_for(state.brand_id, due)
    if programme is None:
        return Outcome()
    return _changed(state, advance(state, until, _versions(programme_for, programme)), programme)


def recheck(state: PlayerState, programme_for: ProgrammeFor, at: datetime, cause: str) -> Outcome:
    """A brand's re-check of one stored player at `at` (UTC), under the programme in effect
    then; a level change's id is `<cause>:level` (see `domain.time_rules.recheck`)."""
    programme = programme_for(state.brand_id, at)
    if programme is None:
        return Outcome()
    rules = _versions(programme_for, programme)
    return _changed(state, timers.recheck(state, at, rules, cause), programme)


def _versions(programme_for: ProgrammeFor, programme: Programme) -> ProgrammeAt:
    """The brand's version in effect at each instant (`programme` before the first one)."""
    brand = programme.brand_id

    def at(moment: datetime) -> Programme:
        return programme_for(brand, moment) or programme

    return at


def _changed(state: PlayerState, step: Advanced, programme: Programme) -> Outcome:
    """A step of time-driven work: nothing when it changed nothing."""
    if step.state == state:
        return Outcome()
    return _outcome(state, step, programme)


def _outcome(previous: PlayerState | None, step: Advanced, programme: Programme) -> Outcome:
    """A step's record, outputs (with their follow-ups), history and log rows, and the index
    writes of its timers."""
    state = step.state
    outputs = (*step.outputs, *follow_ups(step.outputs, state, programme))
    sends = _sends(state.key, outputs)
    writes = _history(state, outputs, sends)
    for row in step.cashback:
        writes.append((cashback_key(row.brand_id, row.player_id, row.day), _row(row)))
    bet = step.bet
    if bet is not None:
        writes.append((bet_key(state.brand_id, state.player_id, bet.bet_id), bet.to_json()))
    writes.extend(rows_timer(previous, state))
    writes.extend(player_moves(previous, state))
    return Outcome(
        state=state, sends=sends, state_json=encode_player(state), writes=writes, outputs=outputs
    )


def _history(
    state: PlayerState, outputs: tuple[Output, ...], sends: list[tuple[str, bytes | None, bytes]]
) -> list[tuple[bytes, bytes | None]]:
    """History rows of `state`'s player: the outputs of a step that belong there (`History`),
    as they were sent."""
    brand_id, player_id = state.brand_id, state.player_id
    return [
        (history_key(brand_id, player_id, o.occurred_at, o.output_id), value)
        for o, (_, _, value) in zip(outputs, sends, strict=True)
        if isinstance(o, History)
    ]


def _row(row: CashbackDay) -> bytes:
    return orjson.dumps(row, default=str)


def _sends(key: str, outputs: Iterable[Output]) -> list[tuple[str, bytes | None, bytes]]:
    """Each output encoded, addressed to its topic, keyed by its player."""
    raw_key = key.encode()
    return [(OUTPUT_TOPICS[type(output)], raw_key, encode(output)) for output in outputs]


def _dead(record: Record, reason: str, clock: Callable[[], datetime]) -> Outcome:
    letter = dead_letter(
        reason,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        failed_at=clock(),
    )
    return Outcome(
        sends=[(DEAD_LETTER, dead_letter_key(record.key), encode_dead_letter(letter))], dead=True
    )
