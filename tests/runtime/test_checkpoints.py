"""The fold loop's checkpoints in flight, with the cluster's acknowledgements held back by hand.

The producer and the consumer's commit are replaced by recorders (no broker); the player table is
a real RocksDB. Each test releases acknowledgements step by step and checks that a batch reaches
the store and the committed offsets only in the checkpoint's order, while later batches fold on
the records of the batches still in flight.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError

from loyalty_streams.domain.commands import Command
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.kafka.topics import (
    COMMANDS,
    DEAD_LETTER,
    PLAYER_EVENTS,
    PLAYERS_CHANGELOG,
    PLAYERS_HISTORY,
    POINTS_ACCRUED,
)
from loyalty_streams.runtime.fold import Boundary
from loyalty_streams.runtime.loop import DeliveryFailed, FoldLoop
from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import CHECKPOINT_KEY, TIMER_PREFIX
from loyalty_streams.state.store import PlayerTable
from loyalty_streams.state.timer_index import FORGET, parse
from tests.domain.builders import T0, bet, command, programme

KEY = "aurora-casino:p1"

Delivery = Callable[[KafkaError | None, "Delivered"], None]


@dataclass
class Delivered:
    """What a delivery report carries about its record."""

    _topic: str
    _partition: int
    _offset: int

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


@dataclass
class HeldProducer:
    """Takes records and reports them delivered only when a test releases them."""

    held: list[tuple[str, bytes | None, bytes | None, int, Delivery]] = field(default_factory=list)
    ends: dict[tuple[str, int], int] = field(default_factory=dict)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        partition: int = -1,
        *,
        on_delivery: Any,
    ) -> None:
        self.held.append((topic, key, value, max(partition, 0), on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        self.release()
        return 0

    def release(self, topic: str | None = None, error: KafkaError | None = None) -> None:
        """Acknowledge the held records (of one topic), in the order they were produced."""
        kept = []
        for record in self.held:
            name, _, _, partition, on_delivery = record
            if topic is not None and name != topic:
                kept.append(record)
                continue
            offset = self.ends.get((name, partition), 0)
            self.ends[name, partition] = offset + 1
            on_delivery(error, Delivered(name, partition, offset))
        self.held = kept

    def values(self, topic: str, key: str | None = None) -> list[bytes | None]:
        """Values held for a topic (and a key)."""
        return [
            value
            for name, held_key, value, _, _ in self.held
            if name == topic and (key is None or held_key == key.encode())
        ]


@dataclass
class CommitRecorder:
    commits: list[dict[tuple[str, int], int]] = field(default_factory=list)

    def commit(self, offsets: list[Any], asynchronous: bool) -> None:
        self.commits.append({(tp.topic, tp.partition): tp.offset for tp in offsets})

    def close(self) -> None:
        pass


@dataclass
class Inbound:
    """An inbound message as the consumer hands it over."""

    event: PlayerEvent
    _offset: int

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return PLAYER_EVENTS

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self.event.key.encode()

    def value(self) -> bytes:
        return self.event.model_dump_json().encode()

    def timestamp(self) -> tuple[int, int]:
        return (0, 0)


@dataclass
class Garbled(Inbound):
    """An inbound message whose value is not an event."""

    def value(self) -> bytes:
        return b"{not json"


@pytest.fixture
def table(tmp_path: Path) -> Iterator[PlayerTable]:
    made = PlayerTable(tmp_path / "players")
    yield made
    made.close()


@pytest.fixture
def held(table: PlayerTable, tmp_path: Path) -> Iterator[tuple[FoldLoop, HeldProducer]]:
    settings = Settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp_path)
    rules = programme()
    made = FoldLoop(settings, lambda brand, at: rules, table, lambda: T0, lambda _: None, Metrics())
    made._consumer.close()
    made.boundary = Boundary.of(settings, partitions=1)  # every key's home is partition 0
    producer = HeldProducer()
    made._producer = producer  # type: ignore[assignment]
    made._consumer = CommitRecorder()  # type: ignore[assignment]
    yield made, producer


def fold_and_seal(processor: FoldLoop, *messages: Inbound) -> None:
    processor._fold(list(messages))  # type: ignore[arg-type]
    assert processor._open is not None
    processor._seal(processor._open)


def sent_values(producer: HeldProducer) -> list[tuple[str, Any]]:
    """Each record produced so far: its topic and its decoded value."""
    return [(name, orjson.loads(value or b"null")) for name, _, value, _, _ in producer.held]


def stored(table: PlayerTable) -> PlayerState | None:
    return table.player(0, KEY)


def turnover(raw: bytes | None) -> Decimal:
    assert raw is not None
    return PlayerState.from_json(raw).cumulative_turnover


def test_a_batch_reaches_the_store_and_the_offsets_only_after_its_changelog_and_in_order(
    held: tuple[FoldLoop, HeldProducer], table: PlayerTable
) -> None:
    processor, producer = held
    commits = processor._consumer.commits  # type: ignore[attr-defined]
    fold_and_seal(processor, Inbound(bet("100"), 0))
    fold_and_seal(processor, Inbound(bet("50"), 1))  # folds on the first batch, still in flight

    # nothing acknowledged: two outputs out, no changelog, nothing stored or committed
    assert len(producer.values(POINTS_ACCRUED)) == 2
    assert producer.values(PLAYERS_CHANGELOG) == []
    assert stored(table) is None and commits == []

    producer.release(POINTS_ACCRUED)
    processor._advance()
    # the first batch's outputs are acknowledged: its record goes to the changelog, the second
    # batch waits its turn
    records = producer.values(PLAYERS_CHANGELOG, KEY)
    assert [turnover(v) for v in records] == [Decimal("100")]
    assert stored(table) is None and commits == []

    # its history row goes to the history topic, never to the changelog
    assert [orjson.loads(v or b"")["type"] for v in producer.values(PLAYERS_HISTORY)] == [
        "PointsAccrued"
    ]
    assert not any(
        k.startswith(b"\x00history:") for _, k, *_ in producer.held if _ == PLAYERS_CHANGELOG
    )
    release_logs(producer)
    processor._advance()
    first = stored(table)
    assert first is not None and first.cumulative_turnover == Decimal("100")
    assert commits == [{(PLAYER_EVENTS, 0): 1}]
    records = producer.values(PLAYERS_CHANGELOG, KEY)
    assert [turnover(v) for v in records] == [Decimal("150")]  # the second batch's turn

    release_logs(producer)
    processor._advance()
    second = stored(table)
    assert second is not None and second.cumulative_turnover == Decimal("150")
    assert commits[-1] == {(PLAYER_EVENTS, 0): 2}
    assert table.partition(0).changelog_offset == producer.ends[PLAYERS_CHANGELOG, 0] - 1
    assert table.partition(0).history_offset == producer.ends[PLAYERS_HISTORY, 0] - 1 == 1
    assert not processor._in_flight


def release_logs(producer: HeldProducer) -> None:
    """Acknowledge a checkpoint's changelog records and history rows."""
    producer.release(PLAYERS_CHANGELOG)
    producer.release(PLAYERS_HISTORY)


def test_a_record_the_cluster_refused_stops_the_loop_before_anything_is_stored(
    held: tuple[FoldLoop, HeldProducer], table: PlayerTable
) -> None:
    processor, producer = held
    fold_and_seal(processor, Inbound(bet("100"), 0))
    producer.release(POINTS_ACCRUED, error=KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(DeliveryFailed):
        processor._advance()
    assert producer.values(PLAYERS_CHANGELOG) == []
    assert stored(table) is None
    assert processor._consumer.commits == []  # type: ignore[attr-defined]


def test_draining_checkpoints_the_open_batch_and_every_batch_in_flight(
    held: tuple[FoldLoop, HeldProducer], table: PlayerTable
) -> None:
    processor, _ = held
    fold_and_seal(processor, Inbound(bet("100"), 0))
    processor._fold([Inbound(bet("20"), 1)])  # type: ignore[list-item]
    assert processor.in_flight_records == 2  # one sealed, one open: what /health reports
    processor._drain()
    assert processor.in_flight_records == 0
    state = stored(table)
    assert state is not None and state.cumulative_turnover == Decimal("120")
    assert processor._open is None and not processor._in_flight


def test_a_fetch_decoded_first_still_folds_and_sends_in_the_order_of_its_records(
    held: tuple[FoldLoop, HeldProducer], table: PlayerTable
) -> None:
    processor, producer = held
    fold_and_seal(
        processor,
        Inbound(bet("100", event_id="e1"), 0),
        Garbled(bet("1"), 1),
        Inbound(bet("50", event_id="e2"), 2),
    )
    sent = sent_values(producer)
    assert [(name, body.get("event_id", body.get("offset"))) for name, body in sent] == [
        (POINTS_ACCRUED, "e1"),
        (DEAD_LETTER, 1),
        (POINTS_ACCRUED, "e2"),  # folded on the record e1 left, as if decoded one by one
    ]
    assert sent[2][1]["points_available"] == str(
        Decimal(sent[0][1]["points"]) + Decimal(sent[2][1]["points"])
    )
    processor._drain()
    assert processor._consumer.commits == [{(PLAYER_EVENTS, 0): 3}]  # type: ignore[attr-defined]
    state = stored(table)
    assert state is not None and state.cumulative_turnover == Decimal("150")


@dataclass
class CommandInbound(Inbound):
    """A command message as the consumer hands it over (`event` holds the command)."""

    command: Command | None = None

    def topic(self) -> str:
        return COMMANDS

    def key(self) -> bytes:
        assert self.command is not None
        return self.command.key.encode()

    def value(self) -> bytes:
        assert self.command is not None
        return self.command.model_dump_json().encode()


def contents(table: PlayerTable) -> dict[bytes, bytes]:
    """Everything partition 0's store holds but its changelog offset."""
    store = table.partition(0)
    everything = [*store.items(b"\x00"), *store.items()]  # bookkeeping, then players
    return {key: value for key, value in everything if key != CHECKPOINT_KEY}


def replay(
    tmp: Path, prefix: list[tuple[bytes, bytes | None]], batch: list[Inbound]
) -> PlayerTable:
    """A new owner: the store restored from a prefix of the changelog, then the inbound batch
    read again from its committed offset (none), every acknowledgement given at once."""
    restored = PlayerTable(tmp)
    if prefix:
        restored.partition(0).write(dict(prefix), len(prefix) - 1)
    settings = Settings(bootstrap_servers="127.0.0.1:1", data_dir=tmp)
    rules = programme()
    owner = FoldLoop(
        settings, lambda brand, at: rules, restored, lambda: T0, lambda _: None, Metrics()
    )
    owner._consumer.close()
    owner.boundary = Boundary.of(settings, partitions=1)
    owner._producer = HeldProducer()  # type: ignore[assignment]
    owner._consumer = CommitRecorder()  # type: ignore[assignment]
    owner._fold(list(batch))  # type: ignore[arg-type]
    owner._drain()
    return restored


def test_a_checkpoint_cut_at_any_record_of_its_changelog_restores_and_replays_to_the_uncut_state(
    held: tuple[FoldLoop, HeldProducer], table: PlayerTable, tmp_path: Path
) -> None:
    """A large checkpoint goes to the changelog in several produce requests; the worker may die
    between any two. Whatever prefix of its changelog records arrived, the next owner restores
    it, replays the batch, and holds exactly what an uncut checkpoint holds."""
    processor, producer = held
    batch: list[Inbound] = [
        Inbound(bet("100", event_id="e1"), 0),
        Inbound(bet("12000", event_id="e2", player_id="p2"), 1),  # a level up: history rows
        Inbound(bet("50", event_id="e3"), 2),
        CommandInbound(bet("1"), 3, command("RedeemPoints", command_id="r1", points="100")),
        Inbound(bet("7", event_id="e4", player_id="p3"), 4),
    ]
    processor._fold(list(batch))  # type: ignore[arg-type]
    assert processor._open is not None
    processor._seal(processor._open)
    producer.release()  # the outputs
    processor._advance()
    changelog = [(key or b"", value) for name, key, value, _, _ in producer.held]
    assert all(name in (PLAYERS_CHANGELOG, PLAYERS_HISTORY) for name, *_ in producer.held)
    producer.release()
    processor._advance()
    uncut = contents(table)
    assert len(changelog) == len(uncut) > 10  # ids, history rows and three player records
    forgotten = forget_lists(uncut)
    for cut in range(len(changelog) + 1):
        restored = replay(tmp_path / f"cut-{cut}", changelog[:cut], batch)
        # the same records, and every applied id listed to be forgotten (a replay that applied
        # only some ids again lists those once more: forgetting twice is harmless)
        held = contents(restored)
        assert without_forget_lists(held) == without_forget_lists(uncut), f"cut after {cut}"
        assert forget_lists(held) >= forgotten, f"cut after {cut} of {len(changelog)} records"
        restored.close()


def forget_lists(held: dict[bytes, bytes]) -> set[bytes]:
    """The applied ids a store's `forget` entries list."""
    return {
        seen
        for key, value in held.items()
        if key.startswith(TIMER_PREFIX) and parse(key)[0] == FORGET
        for seen in value.split(b"\n")
    }


def without_forget_lists(held: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {
        key: value
        for key, value in held.items()
        if not (key.startswith(TIMER_PREFIX) and parse(key)[0] == FORGET)
    }


@dataclass
class Stamped(Inbound):
    """An inbound message with a producer's timestamp (ms): any 64-bit number."""

    stamp: int = 0

    def timestamp(self) -> tuple[int, int]:
        return (TIMESTAMP_CREATE_TIME, self.stamp)


def test_a_record_timestamp_the_calendar_cannot_hold_is_a_dead_letter_not_a_stop(
    held: tuple[FoldLoop, HeldProducer], table: PlayerTable
) -> None:
    """A producer wrote -10^14 ms (year -1199): building the time stopped the fold loop."""
    processor, producer = held
    fold_and_seal(
        processor,
        Stamped(bet("10", event_id="ancient"), 0, -(10**14)),  # read as 1970: far behind
        Inbound(bet("20", event_id="after"), 1),
    )
    sent = sent_values(producer)
    assert [name for name, _ in sent] == [DEAD_LETTER, POINTS_ACCRUED]
    assert "implausible time" in sent[0][1]["reason"]
    processor._drain()
    state = stored(table)
    assert state is not None and state.cumulative_turnover == Decimal("20")
