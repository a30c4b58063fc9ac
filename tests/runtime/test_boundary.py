"""The boundary of the fold: whatever an inbound record holds, it ends as outputs or a dead letter.

Each kind of record that once stopped a worker, split a player or was trusted with the engine's
clock is an example here; the property tests feed arbitrary bytes and mutated valid events and
commands through decode, fold and encode and assert that nothing raises.
"""

import base64
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.kafka.dead_letters import KEY_LIMIT, VALUE_LIMIT
from loyalty_streams.kafka.topics import COMMANDS, DEAD_LETTER, PLAYER_EVENTS
from loyalty_streams.runtime.fold import Outcome, Record
from loyalty_streams.runtime.test_driver import WorkerDriver
from tests.domain.builders import T0, bet, command
from tests.runtime.test_fold import BOUNDARY, HOME, NOW, PROGRAMMES, handle, record

KEY = b"aurora-casino:p1"
VALID_BET: dict[str, Any] = orjson.loads(bet("10", occurred_at=NOW).model_dump_json())


def letter_of(outcome: Outcome) -> dict[str, Any]:
    """The outcome's one dead letter."""
    assert outcome.dead and outcome.state is None
    ((topic, _, value),) = outcome.sends
    assert topic == DEAD_LETTER
    letter: dict[str, Any] = orjson.loads(value)
    return letter


def with_bet(**change: Any) -> bytes:
    return orjson.dumps(VALID_BET | change)


class FailingValue(bytes):
    """A record value that parses, then raises `error` when the boundary's checks read it (as
    running out of memory there would): whatever goes wrong while decoding."""

    error: BaseException

    def __new__(cls, value: bytes, error: BaseException) -> "FailingValue":
        made = super().__new__(cls, value)
        made.error = error
        return made

    def __contains__(self, _: object) -> bool:
        raise self.error

    def count(self, *_: Any) -> int:
        raise self.error


# -- poison pills: exceptions that stopped every worker ------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        ("0001-01-01T00:00:00+14:00", "outside the years 1-9999"),  # overflowed while decoding
        ("9999-12-31T23:59:59Z", "implausible time"),  # overflowed in the rules
        ("9999-12-31T23:59:59-14:00", "outside the years 1-9999"),
    ],
)
def test_times_at_the_ends_of_the_calendar_are_dead_letters(occurred_at: str, reason: str) -> None:
    letter = letter_of(handle(record(with_bet(occurred_at=occurred_at)), PROGRAMMES, {}.get))
    assert reason in letter["reason"]


def test_any_exception_in_the_rules_dead_letters_that_record_alone() -> None:
    calls = itertools.count()

    def bug_in_the_rules(brand: str, at: datetime) -> Programme | None:
        """The programme when the fold picks it; a bug when the rules consult it after that."""
        if next(calls):
            raise ZeroDivisionError("a bug in a rule")
        return PROGRAMMES(brand, at)

    letter = letter_of(handle(record(with_bet()), bug_in_the_rules, {}.get))
    assert letter["reason"] == "failed: ZeroDivisionError: a bug in a rule"


def test_any_exception_while_decoding_dead_letters_the_record() -> None:
    value = FailingValue(with_bet(), MemoryError("no room"))
    letter = letter_of(handle(record(value), PROGRAMMES, {}.get))
    assert letter["reason"] == "undecodable event: MemoryError: no room"


def test_a_huge_record_gets_a_dead_letter_that_fits_any_broker() -> None:
    value = with_bet(game_id="g" * 5_000_000)
    key = KEY * 100_000  # 1.6 MB
    letter = letter_of(handle(record(value, key=key), PROGRAMMES, {}.get))
    encoded = orjson.dumps(letter)
    assert len(encoded) < 100_000  # Kafka's default limit is 1 MB
    assert "game_id" in letter["reason"] and "at most 128 characters" in letter["reason"]
    assert base64.b64decode(letter["value_b64"]) == value[:VALUE_LIMIT]
    assert letter["value_size"] == len(value) and letter["truncated"] is True
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert base64.b64decode(letter["key_b64"]) == key[:KEY_LIMIT]
    ((_, letter_key, _),) = handle(record(value, key=key), PROGRAMMES, {}.get).sends
    assert letter_key == key[:KEY_LIMIT]


def test_a_small_record_travels_whole_in_its_dead_letter() -> None:
    letter = letter_of(handle(record(b"{not json"), PROGRAMMES, {}.get))
    assert base64.b64decode(letter["value_b64"]) == b"{not json"
    assert (letter["value_size"], letter["truncated"]) == (9, False)


def test_a_reason_quoting_a_huge_input_is_cut() -> None:
    value = FailingValue(with_bet(), ValueError("x" * 1_000_000))
    letter = letter_of(handle(record(value), PROGRAMMES, {}.get))
    assert len(letter["reason"]) == 2000 and letter["reason"].endswith("…")


# -- times the engine trusts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("occurred_at", "verdict"),
    [
        (NOW + timedelta(minutes=5), None),  # the skew allowed: clocks differ
        (NOW + timedelta(minutes=5, seconds=1), "after the record's timestamp"),
        (NOW + timedelta(days=1), "after the record's timestamp"),  # tomorrow
        (datetime(2100, 1, 1, tzinfo=UTC), "after the record's timestamp"),
        (NOW - timedelta(days=90), None),  # a late correction
        (NOW - timedelta(days=90, seconds=1), "days before the record's timestamp"),
    ],
)
def test_an_event_time_is_plausible_only_near_its_records_timestamp(
    occurred_at: datetime, verdict: str | None
) -> None:
    outcome = handle(record(with_bet(occurred_at=occurred_at.isoformat())), PROGRAMMES, {}.get)
    if verdict is None:
        assert not outcome.dead and outcome.state is not None
    else:
        assert verdict in letter_of(outcome)["reason"]


@pytest.mark.parametrize("occurred_at", [0, 1764000000, "1764000000", None, [2026]])
def test_an_event_time_is_rfc_3339_text_only(occurred_at: Any) -> None:
    letter = letter_of(handle(record(with_bet(occurred_at=occurred_at)), PROGRAMMES, {}.get))
    assert letter["reason"].startswith("invalid event: BetPlaced.occurred_at")


def test_a_record_timestamp_from_the_future_counts_as_the_workers_clock() -> None:
    """Bounded by the worker's clock: see `FoldLoop.fetch`, whose fold builds `received_at`."""
    raw = command("ClaimBirthdayGift", issued_at=datetime(2099, 1, 1, tzinfo=UTC))
    from tests.runtime.test_fold import command_record

    outcome = handle(
        command_record(raw.model_dump_json().encode(), received_at=NOW), PROGRAMMES, {}.get
    )
    ((topic, _, value),) = outcome.sends
    assert topic != DEAD_LETTER and orjson.loads(value)["code"] == "clock_skew"


def test_a_dead_letter_is_dated_by_the_workers_clock(tmp_path: Path) -> None:
    """`failed_at` is the fold loop's clock (the driver's `now`, nowhere near the wall clock),
    whether the record is refused while decoding or while folding."""
    at = datetime(2031, 6, 1, tzinfo=UTC)
    driver = WorkerDriver(tmp_path, PROGRAMMES, now=at)
    driver.pipe(PLAYER_EVENTS, KEY, b"{not json")  # refused by decode
    driver.pipe_event(bet("10", brand_id="no-such-brand", occurred_at=at))  # refused by fold
    driver.fold()
    driver.drain()
    letters = driver.dead_letters()
    refused, unknown = letters
    assert refused.reason.startswith("invalid event")
    assert unknown.reason.startswith("no programme of brand 'no-such-brand'")
    assert (refused.failed_at, unknown.failed_at) == (at, at)
    driver.close()


# -- records that split a player ------------------------------------------------------------------


def test_a_record_without_a_key_is_misrouted() -> None:
    letter = letter_of(handle(record(with_bet(), key=None), PROGRAMMES, {}.get))
    assert letter["reason"] == f"misrouted: no key; 'aurora-casino:p1' belongs on partition {HOME}"
    assert letter["key_b64"] is None


def test_a_record_on_another_partition_than_its_key_hashes_to_is_misrouted() -> None:
    elsewhere = (HOME + 1) % 12
    letter = letter_of(handle(record(with_bet(), partition=elsewhere), PROGRAMMES, {}.get))
    assert letter["reason"] == f"misrouted: 'aurora-casino:p1' belongs on partition {HOME}"
    assert letter["partition"] == elsewhere


@pytest.mark.parametrize(
    "value",
    [
        with_bet()[:-1] + b',"amount":"9999"}',  # the last amount won
        with_bet()[:-1] + b',"amount" :"9999"}',
        with_bet()[:-1] + b',\n  "amount"\t:\n "9999"}',
        with_bet(game_id='say"hi')[:-1] + b',"event_id":"again"}',
    ],
)
def test_json_naming_a_field_twice_is_refused(value: bytes) -> None:
    letter = letter_of(handle(record(value), PROGRAMMES, {}.get))
    assert letter["reason"] == "invalid event: a key appears twice"


def test_quotes_and_colons_inside_text_are_not_taken_for_keys() -> None:
    credit = command(
        "AdjustPoints", points="5", direction="credit", actor="anna", reason='He said "x": ok'
    )
    raw = orjson.loads(credit.model_dump_json())
    from tests.runtime.test_fold import command_record

    for value in (orjson.dumps(raw), orjson.dumps(raw, option=orjson.OPT_INDENT_2)):
        outcome = handle(command_record(value), PROGRAMMES, {}.get)
        assert not outcome.dead, outcome.sends


@pytest.mark.parametrize("player_id", ["p\u200b1", "p\x001", "p\u202e1", "p\ufeff"])
def test_ids_with_control_or_invisible_characters_are_refused(player_id: str) -> None:
    key = f"aurora-casino:{player_id}".encode()
    value = with_bet(player_id=player_id)
    letter = letter_of(handle(record(value, key=key), PROGRAMMES, {}.get))
    assert "player_id" in letter["reason"]


# -- properties: nothing raises -------------------------------------------------------------------


def through(rec: Record) -> Outcome:
    """decode -> fold -> encode, as the worker runs them, on a fresh player."""
    outcome = handle(rec, PROGRAMMES, {}.get, clock=lambda: NOW)
    for _, _, value in outcome.sends:
        orjson.loads(value)  # every record sent is JSON
    if outcome.state is not None:
        assert PlayerState.from_json(outcome.state_json) == outcome.state
    return outcome


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    value=st.binary(max_size=400),
    key=st.none() | st.binary(max_size=40),
    topic=st.sampled_from([PLAYER_EVENTS, COMMANDS]),
    partition=st.integers(0, 11),
)
def test_arbitrary_bytes_never_raise(
    value: bytes, key: bytes | None, topic: str, partition: int
) -> None:
    outcome = through(Record(topic, partition, 0, key, value, NOW))
    assert outcome.dead


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)
TIMES = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda t: t.isoformat())
COMMANDS_VALID = [
    orjson.loads(command(kind, **fields).model_dump_json())
    for kind, fields in [
        ("RedeemPoints", {"points": "1000"}),
        ("ConfirmRedemption", {"redemption_id": "r1"}),
        ("CancelRedemption", {"redemption_id": "r1"}),
        ("AdjustPoints", {"points": "5", "direction": "debit", "reason": "x", "actor": "a"}),
        ("ForceLevel", {"level": "Gold", "reason": "vip", "actor": "a"}),
        ("ClaimBirthdayGift", {}),
    ]
]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    base=st.sampled_from([VALID_BET, *COMMANDS_VALID]),
    changes=st.dictionaries(
        st.sampled_from(
            [
                "occurred_at",
                "issued_at",
                "amount",
                "points",
                "currency",
                "player_id",
                "game_id",
                "until",
                "level",
                "type",
                "extra",
            ]
        ),
        JSON_VALUES | TIMES | st.text(max_size=8).map(lambda s: s + "1"),
        max_size=3,
    ),
    received_at=st.sampled_from([NOW, T0])  # the bet's and the commands' times
    | st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_mutated_events_and_commands_never_raise(
    base: dict[str, Any], changes: dict[str, Any], received_at: datetime
) -> None:
    value = json.dumps(base | changes).encode()  # the standard library writes any integer
    topic = PLAYER_EVENTS if "occurred_at" in base else COMMANDS
    through(Record(topic, HOME, 0, KEY, value, received_at))


def test_the_property_tests_reach_the_rules() -> None:
    """A mutated record that stays valid is folded: the properties above are not all refusals."""
    assert not through(record(with_bet(amount="12.50"))).dead
    assert BOUNDARY.partitions == 12
