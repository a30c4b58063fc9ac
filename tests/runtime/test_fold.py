"""runtime.fold without a broker: good records fold, everything else becomes a dead letter."""

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import get_args

import orjson

from loyalty_streams.domain.cancellations import PlacedBet
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.outputs import Output, PointsReversed
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import shipped_programmes
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import (
    CAMPAIGN_TRIGGERS,
    COMMAND_REJECTIONS,
    COMMANDS,
    DEAD_LETTER,
    LEVEL_CHANGED,
    NOTIFICATIONS,
    POINTS_ACCRUED,
    REDEMPTIONS,
    REWARDS,
)
from loyalty_streams.runtime.fold import (
    OUTPUT_TOPICS,
    Boundary,
    Outcome,
    ProgrammeFor,
    Record,
    decode,
    fire,
    fold,
)
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import (
    BET_PREFIX,
    HISTORY_PREFIX,
    PLAYER,
    RECHECK_PREFIX,
    ROWS,
    TIMER_PREFIX,
    bet_key,
    cashback_key,
    history_key,
    parse_timer_key,
    timer_key,
)
from tests.domain.builders import T0, bet, cancellation, command, deposit

PROGRAMMES = Catalogue(shipped_programmes()).in_effect
NOW = datetime(2026, 11, 21, tzinfo=UTC)
BOUNDARY = Boundary.of(Settings(), partitions=12)
HOME = partition_of(b"aurora-casino:p1", 12)
"""The partition aurora-casino:p1 hashes to."""


def handle(
    rec: Record,
    programme_for: ProgrammeFor,
    load_state: Callable[[str], PlayerState | None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    applied: Callable[[str], bytes | None] = lambda _: None,
) -> Outcome:
    """One record through fold's two steps (decode, fold), as the fold loop takes it."""
    decoded = decode(rec, BOUNDARY, clock)
    if isinstance(decoded, Outcome):
        return decoded
    return fold(rec, decoded, BOUNDARY, programme_for, load_state, clock, applied)


def record(
    value: bytes,
    key: bytes | None = b"aurora-casino:p1",
    offset: int = 0,
    received_at: datetime = NOW,
    partition: int = HOME,
) -> Record:
    """An event's record, on its player's partition, with NOW for its timestamp."""
    return Record("casino.player-events", partition, offset, key, value, received_at)


def run(rec: Record, store: dict[str, PlayerState]) -> tuple[list[str], list[dict[str, object]]]:
    outcome = handle(rec, PROGRAMMES, store.get, clock=lambda: NOW)
    if outcome.state is not None:
        store[outcome.state.key] = outcome.state
    return [topic for topic, _, _ in outcome.sends], [orjson.loads(v) for _, _, v in outcome.sends]


def test_a_bet_is_folded_and_its_outputs_are_addressed_to_their_topics() -> None:
    store: dict[str, PlayerState] = {}
    topics, values = run(record(bet("10000").model_dump_json().encode()), store)
    assert topics == [POINTS_ACCRUED, LEVEL_CHANGED, CAMPAIGN_TRIGGERS, NOTIFICATIONS]
    assert values[0]["points"] == "10000.00"
    assert values[1]["to_level"] == "Silver"
    assert (values[2]["trigger"], values[2]["to_level"]) == ("OnLevelUp", "Silver")
    assert (values[3]["template"], values[3]["cause_id"]) == ("level_up", values[1]["output_id"])
    assert store["aurora-casino:p1"].applied_offsets == {f"casino.player-events:{HOME}": 0}


def test_a_replayed_offset_writes_nothing_and_sends_nothing() -> None:
    store: dict[str, PlayerState] = {}
    raw = bet("10").model_dump_json().encode()
    run(record(raw, offset=7), store)
    outcome = handle(record(raw, offset=7), PROGRAMMES, store.get)
    assert outcome.state is None and outcome.sends == []


def test_garbage_goes_to_the_dead_letter_topic_with_the_original_bytes() -> None:
    topics, (letter,) = run(record(b"\x00not json"), {})
    assert topics == [DEAD_LETTER]
    assert letter["reason"].startswith("invalid event:")
    assert base64.b64decode(letter["value_b64"]) == b"\x00not json"
    assert (letter["topic"], letter["partition"], letter["offset"]) == (
        "casino.player-events",
        HOME,
        0,
    )


def test_schema_violations_name_the_field() -> None:
    raw = orjson.loads(bet("10").model_dump_json())
    raw["amount"] = "-1"
    _, (letter,) = run(record(orjson.dumps(raw)), {})
    assert "amount" in letter["reason"] and "non-negative" in letter["reason"]


def test_unknown_brand_and_rejected_currency_are_dead_letters() -> None:
    other = bet("10", brand_id="nowhere-casino").model_dump_json().encode()
    nowhere = b"nowhere-casino:p1"
    _, (letter,) = run(record(other, key=nowhere, partition=partition_of(nowhere, 12)), {})
    assert "no programme of brand 'nowhere-casino'" in letter["reason"]
    coins = bet("10", currency="GC").model_dump_json().encode()
    _, (letter,) = run(record(coins), {})
    assert "currency GC is not accepted" in letter["reason"]


def test_a_key_that_does_not_match_the_event_is_refused() -> None:
    _, (letter,) = run(record(bet("10").model_dump_json().encode(), key=b"aurora-casino:p2"), {})
    assert "does not match" in letter["reason"]


def test_an_event_before_the_first_version_took_effect_is_a_dead_letter() -> None:
    then = datetime(2025, 6, 1, tzinfo=UTC)
    early = bet("10", occurred_at=then).model_dump_json().encode()
    _, (letter,) = run(record(early, received_at=then), {})
    assert "in effect at 2025-06-01" in letter["reason"]


def test_timers_downgrade_an_idle_player_after_the_grace_and_not_before() -> None:
    store: dict[str, PlayerState] = {}
    run(record(bet("60000", occurred_at=NOW).model_dump_json().encode()), store)
    gold = store["aurora-casino:p1"]
    assert gold.level_rank == 3

    falls = datetime(2026, 12, 20, 23, tzinfo=UTC)  # 21 Dec in Malta: the bet leaves the 30 days
    quiet = fire(gold, PROGRAMMES, falls + timedelta(days=1))
    assert [topic for topic, _, _ in quiet.sends] == [REWARDS]  # the day's cashback, no level
    assert quiet.state is not None  # grace starts, and is stored
    assert quiet.state.downgrade_pending_since == falls
    assert (timer_key(falls + timedelta(days=7), PLAYER, b"aurora-casino:p1"), b"") in quiet.writes

    later = fire(quiet.state, PROGRAMMES, NOW + timedelta(days=47))
    (topic, key, value), *follow_ups = later.sends
    change = orjson.loads(value)
    assert (topic, key) == (LEVEL_CHANGED, b"aurora-casino:p1")
    assert [topic for topic, _, _ in follow_ups] == [CAMPAIGN_TRIGGERS, NOTIFICATIONS]
    assert orjson.loads(follow_ups[0][2])["trigger"] == "OnLevelDown"
    assert (change["direction"], change["from_level"], change["to_level"]) == (
        "down",
        "Gold",
        "Silver",  # Silver's retention is Bronze's threshold, 0: kept for life
    )
    assert later.state is not None and later.state.level_rank == 2


def test_a_timer_not_yet_due_writes_nothing() -> None:
    store: dict[str, PlayerState] = {}
    run(record(bet("10", occurred_at=NOW).model_dump_json().encode()), store)
    outcome = fire(store["aurora-casino:p1"], PROGRAMMES, NOW + timedelta(hours=1))
    assert outcome.state is None and outcome.sends == []


def test_an_event_id_seen_before_is_skipped_however_long_ago() -> None:
    store: dict[str, PlayerState] = {}
    raw = bet("10").model_dump_json().encode()
    first = handle(record(raw, offset=1), PROGRAMMES, store.get)
    assert first.applied_id is not None and first.state is not None
    assert first.applied_from == f"casino.player-events:{HOME}:1".encode()
    applied = {first.applied_id: first.applied_from}.get
    again = handle(record(raw, offset=900), PROGRAMMES, store.get, applied=applied)
    assert again.state is None and again.sends == [] and again.applied_id is None


def test_the_record_an_id_was_applied_from_is_folded_again_when_its_effect_is_missing() -> None:
    """A checkpoint cut after its applied ids and before its player records: the replay folds."""
    raw = bet("10").model_dump_json().encode()
    first = handle(record(raw, offset=1), PROGRAMMES, {}.get)
    applied = {first.applied_id or "": first.applied_from}.get
    replayed = handle(record(raw, offset=1), PROGRAMMES, {}.get, applied=applied)  # no record
    assert replayed.state == first.state and replayed.sends == first.sends
    assert first.state is not None
    stored = {first.state.key: first.state}.get  # the record has it: a repeat
    again = handle(record(raw, offset=1), PROGRAMMES, stored, applied=applied)
    assert again.state is None and again.sends == []


# -- commands ---------------------------------------------------------------------------------


def command_record(
    value: bytes,
    offset: int = 0,
    received_at: datetime = T0,
    key: bytes = b"aurora-casino:p1",
    partition: int = HOME,
) -> Record:
    """A command's record, received at T0 (the builders' `issued_at`)."""
    return Record(COMMANDS, partition, offset, key, value, received_at)


def encoded(kind: str, **fields: object) -> bytes:
    return command(kind, **fields).model_dump_json().encode()


def test_commands_are_executed_and_their_outputs_go_to_their_topics() -> None:
    store: dict[str, PlayerState] = {}
    run(record(bet("3000").model_dump_json().encode()), store)
    topics, (held,) = run(
        command_record(encoded("RedeemPoints", points="2000", command_id="r")), store
    )
    assert topics == [REDEMPTIONS] and held["type"] == "RedemptionHeld"
    topics, (refusal,) = run(command_record(encoded("RedeemPoints", points="2000"), 1), store)
    assert topics == [COMMAND_REJECTIONS] and refusal["code"] == "insufficient_points"
    topics, (done,) = run(command_record(encoded("ConfirmRedemption", redemption_id="r"), 2), store)
    assert topics == [REDEMPTIONS] and done["type"] == "PointsRedeemed" and done["value"] == "20.00"
    assert store["aurora-casino:p1"].applied_offsets[f"loyalty.commands:{HOME}"] == 2


def test_a_command_id_seen_before_is_remembered_apart_from_event_ids() -> None:
    outcome = handle(
        command_record(encoded("ClaimBirthdayGift", command_id="c1")), PROGRAMMES, {}.get
    )
    assert outcome.applied_id == "cmd:c1"


def test_a_malformed_command_is_a_dead_letter_naming_the_field() -> None:
    raw = orjson.loads(
        encoded("AdjustPoints", direction="credit", points="5", reason="x", actor="o")
    )
    raw["direction"] = "sideways"
    _, (letter,) = run(command_record(orjson.dumps(raw)), {})
    assert letter["reason"].startswith("invalid command:") and "direction" in letter["reason"]


DAY_END_MALTA = datetime(2026, 11, 21, 23, tzinfo=UTC)


def test_a_timer_closes_a_cashback_day_into_a_log_row_of_the_store() -> None:
    store: dict[str, PlayerState] = {}
    run(record(bet("20000", occurred_at=NOW).model_dump_json().encode()), store)  # Silver
    silver = store["aurora-casino:p1"]
    assert silver.timer_at == DAY_END_MALTA
    closed = fire(silver, PROGRAMMES, NOW + timedelta(days=1))
    ((topic, _, value),) = closed.sends
    assert topic == REWARDS and orjson.loads(value)["amount"] == "100.00"  # 1 % of 20,000, capped
    history, (key, row), *index = closed.writes
    assert key == cashback_key("aurora-casino", "p1", NOW.date())
    assert orjson.loads(row)["ngr"] == "20000.00" and orjson.loads(row)["capped"] is True
    # the close's entry goes; Silver asks no retention: next is the expiry warning
    warning = datetime(2027, 11, 21, tzinfo=UTC) - timedelta(days=30)
    assert index == [
        (timer_key(DAY_END_MALTA, PLAYER, b"aurora-casino:p1"), None),
        (timer_key(warning, PLAYER, b"aurora-casino:p1"), b""),
    ]
    assert history == (
        history_key("aurora-casino", "p1", DAY_END_MALTA, "cashback:aurora-casino:p1:2026-11-21"),
        value,
    )


def test_points_and_level_changes_and_refusals_are_kept_in_the_players_history() -> None:
    store: dict[str, PlayerState] = {}
    bet_at = datetime(2026, 11, 21, 9, 30, 0, 250000, tzinfo=UTC)
    folded = handle(
        record(
            bet("10000", occurred_at=bet_at, bet_id="b-9").model_dump_json().encode(),
            received_at=bet_at,
        ),
        PROGRAMMES,
        store.get,
    )
    rows = [(key, value) for key, value in folded.writes if key.startswith(HISTORY_PREFIX)]
    prefix = history_key("aurora-casino", "p1", bet_at)  # the player's rows at the bet's time
    assert all(key.startswith(prefix) for key, _ in rows)  # sorted by time within the player
    types = [orjson.loads(value or b"")["type"] for _, value in rows]
    assert types == ["PointsAccrued", "LevelChanged"]  # not the follow-ups for other services
    # and the bet's record, for a cancellation
    placed = [PlacedBet.from_json(v or b"") for k, v in folded.writes if k.startswith(BET_PREFIX)]
    assert [(b.bet_id, b.amount, b.points) for b in placed] == [("b-9", 10000, Decimal("10000"))]
    # the player's timer (the day's close) and the day's rows' retention are indexed
    index = [parse_timer_key(key) for key, _ in folded.writes if key.startswith(TIMER_PREFIX)]
    assert index == [(ROWS, b"aurora-casino:p1"), (PLAYER, b"aurora-casino:p1")]
    assert folded.state is not None
    store[folded.state.key] = folded.state
    refused = command("RedeemPoints", points="999999", issued_at=bet_at)
    outcome = handle(
        command_record(refused.model_dump_json().encode(), received_at=bet_at),
        PROGRAMMES,
        store.get,
    )
    ((key, value),) = outcome.writes  # the same day: no new retention entry
    assert key.startswith(history_key("aurora-casino", "p1"))
    assert orjson.loads(value or b"")["type"] == "CommandRejected"


def test_a_cancellation_reads_its_bets_record_and_writes_it_back_cancelled() -> None:
    """The bet's record sits beside the player's, under `bet_key`: the fold reads it through
    `stored` (the batches not checkpointed, then the store) and writes it back."""
    placed_at = datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    placing = bet("250", occurred_at=placed_at, bet_id="b-7").model_dump_json().encode()
    first = handle(record(placing, offset=1, received_at=placed_at), PROGRAMMES, {}.get)
    assert first.state is not None
    rows = dict(first.writes)
    key = bet_key("aurora-casino", "p1", "b-7")
    players = {first.state.key: first.state}
    voided = cancellation("b-7", "100", occurred_at=placed_at + timedelta(minutes=5))
    raw = voided.model_dump_json().encode()
    at = placed_at + timedelta(minutes=5)
    outcome = fold_stored(record(raw, offset=2, received_at=at), players.get, rows.get)
    (reversed_,) = [o for o in outcome.outputs if isinstance(o, PointsReversed)]
    assert (reversed_.points, reversed_.remaining) == (Decimal("100.00"), Decimal(150))
    assert [topic for topic, _, _ in outcome.sends][:1] == [POINTS_ACCRUED]
    after = PlacedBet.from_json(dict(outcome.writes)[key] or b"")
    assert after.cancellations == ((voided.event_id, Decimal(100)),)
    # without the bet's record (never placed, or forgotten) nothing changes, and the reason shows
    unknown = fold_stored(record(raw, offset=3, received_at=at), players.get, {}.get)
    assert [type(o).__name__ for o in unknown.outputs] == ["CancellationRefused"]
    assert unknown.state is not None
    assert unknown.state.points_available == first.state.points_available
    assert key not in dict(unknown.writes)


def fold_stored(
    rec: Record,
    load_state: Callable[[str], PlayerState | None],
    stored: Callable[[bytes], bytes | None],
) -> Outcome:
    decoded = decode(rec, BOUNDARY)
    assert not isinstance(decoded, Outcome)
    return fold(rec, decoded, BOUNDARY, PROGRAMMES, load_state, stored=stored)


def test_an_operators_command_that_changes_no_row_is_in_the_history_by_its_audit_entry() -> None:
    """A level forced to the one held emits no level change: its audit entry is the history's
    record of it, which the API's write waits for (a 202 after 5 s otherwise)."""
    first = handle(record(bet("10").model_dump_json().encode(), received_at=T0), PROGRAMMES, {}.get)
    assert first.state is not None
    players = {first.state.key: first.state}
    forced = encoded("ForceLevel", level="Bronze", reason="hold", actor="ops", command_id="f-1")
    outcome = handle(command_record(forced, offset=1), PROGRAMMES, players.get)
    rows = [orjson.loads(v or b"") for k, v in outcome.writes if k.startswith(HISTORY_PREFIX)]
    assert [(row["type"], row["command_id"], row["action"]) for row in rows] == [
        ("AuditEntry", "f-1", "status.force")
    ]


def test_every_output_has_a_topic() -> None:
    assert set(OUTPUT_TOPICS) == set(get_args(Output))


def test_a_brands_recheck_is_taken_on_the_partition_it_names_only() -> None:
    made = {
        "type": "RecheckBrand", "command_id": "rc-9", "brand_id": "aurora-casino",
        "partition": 4, "issued_at": T0.isoformat(), "actor": "ops", "reason": "v2",
    }  # fmt: skip
    value = orjson.dumps(made)
    taken = handle(command_record(value, key=b"aurora-casino", partition=4), PROGRAMMES, {}.get)
    ((key, job),) = taken.writes
    assert key == RECHECK_PREFIX + b"rc-9" and taken.applied_id == "cmd:rc-9"
    expected = {"brand_id": "aurora-casino", "at": T0.isoformat(), "next": ""}
    assert orjson.loads(job or b"") == expected
    for partition, key in ((5, b"aurora-casino"), (4, b"aurora-casino:p1")):
        refused = handle(command_record(value, key=key, partition=partition), PROGRAMMES, {}.get)
        assert refused.dead and refused.state is None, (partition, key)


def test_a_brands_recheck_with_a_loose_partition_or_a_skewed_clock_is_a_dead_letter() -> None:
    made = {
        "type": "RecheckBrand", "command_id": "rc-9", "brand_id": "aurora-casino",
        "partition": 4, "issued_at": T0.isoformat(), "actor": "ops", "reason": "v2",
    }  # fmt: skip
    for change, reason in (
        ({"partition": "4"}, "partition"),
        ({"partition": 4.0}, "partition"),
        ({"issued_at": "2099-01-01T00:00:00Z"}, "clock_skew"),
    ):
        value = orjson.dumps(made | change)
        letter = handle(
            command_record(value, key=b"aurora-casino", partition=4), PROGRAMMES, {}.get
        )
        assert letter.dead and reason in orjson.loads(letter.sends[0][2])["reason"], change


def test_a_players_first_record_of_a_day_indexes_that_days_rows_even_without_rows() -> None:
    store: dict[str, PlayerState] = {}
    first = handle(record(deposit("50", occurred_at=NOW).model_dump_json().encode()), PROGRAMMES,
                   store.get)  # fmt: skip
    assert first.state is not None
    store[first.state.key] = first.state
    assert [parse_timer_key(key) for key, _ in first.writes if key.startswith(TIMER_PREFIX)] == [
        (ROWS, b"aurora-casino:p1")
    ]  # the bet later that day writes rows: they are covered
    later = handle(record(bet("10", occurred_at=NOW).model_dump_json().encode(), offset=1),
                   PROGRAMMES, store.get)  # fmt: skip
    assert not [key for key, _ in later.writes if parse_timer_key(key)[0] == ROWS]
