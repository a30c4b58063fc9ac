"""The inbound contracts: valid events round-trip, invalid ones are refused with a clear reason."""

from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from loyalty_streams.domain.events import BetPlaced, decode_player_event
from tests.domain.builders import bet, bonus, deposit, win

VALID = {
    "type": "BetPlaced",
    "event_id": "e-1",
    "brand_id": "aurora-casino",
    "player_id": "p-42",
    "occurred_at": "2026-11-02T12:00:00+01:00",
    "amount": "12.50",
    "currency": "EUR",
    "bet_id": "b-1",
    "game_id": "starburst",
    "game_category": "live_casino",
}


@pytest.mark.parametrize("event", [bet("1.50"), win("3"), deposit("100.00"), bonus("5")])
def test_every_event_type_round_trips_through_json(event: object) -> None:
    raw = event.model_dump_json()  # type: ignore[attr-defined]
    assert decode_player_event(raw) == event
    assert orjson.loads(raw)["amount"] == str(event.amount)  # type: ignore[attr-defined]


def test_a_valid_record_decodes_to_its_type_with_an_exact_amount() -> None:
    event = decode_player_event(orjson.dumps(VALID))
    assert isinstance(event, BetPlaced)
    assert str(event.amount) == "12.50"
    assert event.key == "aurora-casino:p-42"
    assert event.occurred_at == datetime.fromisoformat("2026-11-02T11:00:00+00:00")


def test_an_event_time_with_any_offset_is_held_as_the_same_instant_in_utc() -> None:
    event = decode_player_event(orjson.dumps({**VALID, "occurred_at": "2026-11-02T13:00:00+02:00"}))
    assert event.occurred_at.tzinfo is UTC  # the standard library's zone, not pydantic's
    assert event.occurred_at == datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    assert event.occurred_at.isoformat() == "2026-11-02T11:00:00+00:00"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"amount": None}, "amount"),
        ({"amount": "-5.00"}, "non-negative decimal string"),
        ({"amount": 12.5}, "decimal string"),
        ({"amount": "1e3"}, "non-negative decimal string"),
        ({"amount": "NaN"}, "non-negative decimal string"),
        ({"amount": "0.001"}, "more than 2 decimal places"),
        ({"occurred_at": "2026-11-02T12:00:00"}, "with an offset"),
        # times are RFC 3339 text only: pydantic alone reads numbers as Unix times (0 is 1970)
        ({"occurred_at": 0}, "RFC 3339"),
        ({"occurred_at": 1764000000.5}, "RFC 3339"),
        ({"occurred_at": "1764000000"}, "RFC 3339"),
        ({"occurred_at": "2026-11-02 12:00:00Z"}, "RFC 3339"),
        # converting to UTC leaves the calendar: was an OverflowError, not a validation error
        ({"occurred_at": "0001-01-01T00:00:00+14:00"}, "outside the years 1-9999"),
        ({"occurred_at": "9999-12-31T23:59:59-14:00"}, "outside the years 1-9999"),
        # ids with control or invisible characters look like other ids everywhere they show
        ({"player_id": "p\u0000"}, "player_id"),
        ({"player_id": "p\u200b1"}, "player_id"),
        ({"bet_id": "b\u202e1"}, "bet_id"),
        ({"game_id": "g\ufeff"}, "game_id"),
        ({"brand_id": "aurora\u0085"}, "brand_id"),
        ({"player_id": "hx\U000e0041"}, "player_id"),  # a tag character
        ({"player_id": "hx\ufff91"}, "player_id"),
        ({"player_id": "hx\u06001"}, "player_id"),
        ({"player_id": "hx\u034f1"}, "player_id"),  # combining grapheme joiner
        ({"player_id": "hx\u3164"}, "player_id"),  # Hangul filler
        ({"player_id": "hx\ufe0f"}, "player_id"),  # a variation selector: looks like "hx"
        ({"currency": "XYZ"}, "currency"),
        ({"game_category": "bingo"}, "game_category"),
        ({"type": "BetCancelled"}, "BetCancelled"),
        ({"player_id": "a:b"}, "player_id"),
        ({"event_id": ""}, "event_id"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_events_are_refused_with_a_message_naming_the_problem(
    change: dict[str, object], message: str
) -> None:
    record = {k: v for k, v in (VALID | change).items() if v is not None}
    with pytest.raises(ValidationError) as refused:
        decode_player_event(orjson.dumps(record))
    assert message in str(refused.value)


def test_a_missing_field_is_named() -> None:
    record = {k: v for k, v in VALID.items() if k != "game_category"}
    with pytest.raises(ValidationError) as refused:
        decode_player_event(orjson.dumps(record))
    assert "game_category" in str(refused.value)
    assert "Field required" in str(refused.value)


def test_garbage_bytes_are_refused() -> None:
    with pytest.raises(ValidationError):
        decode_player_event(b"\x00\xffnot json")
