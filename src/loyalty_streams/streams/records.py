"""One inbound record in, the player's new record and the records to emit out.

The agent's whole job, without Faust: decode, pick the brand's programme, fold with the domain,
encode. Anything that cannot be used becomes a dead letter instead of an exception, so a worker
never stops on input.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from loyalty_streams.domain.engine import EventRejected, apply, evaluate
from loyalty_streams.domain.events import decode_player_event
from loyalty_streams.domain.outputs import LevelChanged, Output, PointsAccrued, encode
from loyalty_streams.domain.player import PlayerState, SourcePosition
from loyalty_streams.domain.programme import Programme
from loyalty_streams.streams.dead_letter import dead_letter, encode_dead_letter
from loyalty_streams.streams.topics import DEAD_LETTER, LEVEL_CHANGED, POINTS_ACCRUED

OUTPUT_TOPICS: dict[type, str] = {PointsAccrued: POINTS_ACCRUED, LevelChanged: LEVEL_CHANGED}

ProgrammeFor = Callable[[str, datetime], Programme | None]
"""The programme version in effect for a brand at a moment (see `domain.catalogue`)."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class Outcome:
    """What handling one record produced: a record to store (if any) and records to send."""

    state: PlayerState | None = None
    sends: list[tuple[str, bytes | None, bytes]] = field(default_factory=list)
    dead: bool = False
    event_id: str | None = None
    """Set when an event was applied: the id to remember, so a re-publish is recognised."""


def handle(
    record: Record,
    programme_for: ProgrammeFor,
    load_state: Callable[[str], PlayerState | None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    seen: Callable[[str], bool] = lambda _: False,
) -> Outcome:
    """Fold one record; `load_state` reads the player's record by key.

    `seen` tells whether an event id was already applied: the records' own stamps catch replays
    by offset and the player's last 32 ids; this catches any older re-publish as well.
    """
    try:
        event = decode_player_event(record.value)
    except ValidationError as error:
        return _dead(record, f"invalid event: {_summary(error)}", clock)
    if record.key is not None and record.key != event.key.encode():
        return _dead(record, f"key {record.key!r} does not match the event's {event.key!r}", clock)
    programme = programme_for(event.brand_id, event.occurred_at)
    if programme is None:
        reason = f"no programme of brand {event.brand_id!r} in effect at {event.occurred_at}"
        return _dead(record, reason, clock)
    if seen(event.event_id):
        return Outcome()
    source = SourcePosition(f"{record.topic}:{record.partition}", record.offset)
    previous = load_state(event.key)
    try:
        state, outputs = apply(previous, event, programme, source)
    except EventRejected as error:
        return _dead(record, f"rejected: {error}", clock)
    if state is previous:  # a repeat: nothing to write or send
        return Outcome()
    return Outcome(state=state, sends=_sends(event.key, outputs), event_id=event.event_id)


def sweep(state: PlayerState, programme_for: ProgrammeFor, now: datetime) -> Outcome:
    """Re-check one stored player at `now` (the daily sweep): decay, and downgrades after grace."""
    programme = programme_for(state.brand_id, now)
    if programme is None:
        return Outcome()
    new, outputs = evaluate(state, now, programme)
    return Outcome(state=new if outputs or new != state else None, sends=_sends(state.key, outputs))


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
    return Outcome(sends=[(DEAD_LETTER, record.key, encode_dead_letter(letter))], dead=True)


def _summary(error: ValidationError) -> str:
    """The validation errors on one line: where, and what was wrong."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)
