"""The archive end to end on the embedded broker: `loyalty-streams archive` as a process, stopped
in its crash window (files renamed, offsets not committed), SIGKILLed while it archives, and
restarted; then the replay's reader must give each brand's events exactly once, in offset
order per partition, the unarchived tail included."""

import itertools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from loyalty_streams.archive.files import NULL_PARTITION, Segment, group_id, holdings
from loyalty_streams.archive.history import history
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.domain.events import BetPlaced, DepositMade, GameCategory, PlayerEvent
from loyalty_streams.domain.money import Currency
from loyalty_streams.kafka.clients import connection, producer_config
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.services.archive import CRASH_EXIT
from loyalty_streams.settings import Settings
from tests.integration.conftest import Cluster, wait_until

BRANDS = {"aurora-casino": Currency.EUR, "lucky-sweeps": Currency.SC}
START = datetime(2026, 11, 19, 20, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sent:
    partition: int
    offset: int
    event: PlayerEvent | None
    """None for a record that is no event."""


def events(first: int, count: int) -> list[PlayerEvent]:
    """Events `first` to `first + count` of 24 players per brand, 7 minutes apart (days apart
    as the numbers grow), a deposit every ninth."""
    made: list[PlayerEvent] = []
    for n in range(first, first + count):
        brand_id = list(BRANDS)[n % 2]
        common = {
            "event_id": f"e{n}",
            "brand_id": brand_id,
            "player_id": f"p{n % 24}",
            "occurred_at": START + timedelta(minutes=7 * n),
            "amount": "2.50",
            "currency": BRANDS[brand_id],
        }
        if n % 9 == 0:
            made.append(DepositMade.model_validate(common))
        else:
            bet = {"bet_id": f"b{n}", "game_id": "g1", "game_category": GameCategory.SLOTS}
            made.append(BetPlaced.model_validate({**common, **bet}))
    return made


def publish(settings: Settings, items: Sequence[PlayerEvent | bytes]) -> list[Sent]:
    """Each event keyed by its player, stamped with its time; raw bytes with no key."""
    producer = Producer(producer_config(settings))
    sent: list[Sent] = []

    def delivered(item: PlayerEvent | None) -> Callable[[KafkaError | None, Message], None]:
        def report(error: KafkaError | None, message: Message) -> None:
            assert error is None, error
            sent.append(Sent(int(message.partition() or 0), int(message.offset() or 0), item))

        return report

    for item in items:
        if isinstance(item, bytes):
            producer.produce(PLAYER_EVENTS, item, None, on_delivery=delivered(None))
        else:
            producer.produce(
                PLAYER_EVENTS,
                item.model_dump_json().encode(),
                item.key.encode(),
                timestamp=int(item.occurred_at.timestamp() * 1000),
                on_delivery=delivered(item),
            )
    assert producer.flush(10) == 0
    assert len(sent) == len(items)
    return sent


def ends(sent: list[Sent]) -> dict[int, int]:
    found: dict[int, int] = {}
    for record in sent:
        found[record.partition] = max(found.get(record.partition, 0), record.offset + 1)
    return found


def committed(settings: Settings) -> dict[int, int]:
    """The archive group's committed offset per partition (those with one)."""
    consumer = Consumer({**connection(settings), "group.id": group_id(settings)})
    try:
        asked = [TopicPartition(PLAYER_EVENTS, number) for number in range(12)]
        return {tp.partition: tp.offset for tp in consumer.committed(asked, 10) if tp.offset >= 0}
    finally:
        consumer.close()


def caught_up(settings: Settings, sent: list[Sent]) -> bool:
    position = committed(settings)
    return all(position.get(p, 0) >= end for p, end in ends(sent).items())


def no_segment_twice(root: Path) -> None:
    """Per partition, the segments on disk never overlap: nothing was written twice."""
    for number, found in holdings(root).segments.items():
        ordered = sorted(found)
        for earlier, later in itertools.pairwise(ordered):
            assert earlier.last < later.first, f"partition {number}: {earlier} and {later}"


def archive(settings: Settings, log: Path) -> ServiceProcess:
    return ServiceProcess(settings, log, "archive").start()


def test_every_event_once_through_a_crash_before_the_commit_and_a_kill(
    cluster: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "archive"
    settings = cluster.settings.model_copy(
        update={
            "archive_dir": root,
            "archive_roll_records": 120,
            "archive_roll_s": 0.5,
            # a SIGKILLed member holds its partitions until its session ends: keep that short
            "session_timeout_s": 3.0,
        }
    )
    first = publish(settings, [*events(0, 300), b"not an event", b'{"type": "Jackpot"}'])

    # 1. the crash window: the first roll renamed, then the process ends before its commit
    crashed = archive(
        settings.model_copy(update={"archive_exit_before_commit": True}), tmp_path / "1.log"
    )
    wait_until(lambda: not crashed.running, 20, "the archive to stop before its commit")
    assert crashed.returncode == CRASH_EXIT, crashed.log_tail()
    assert committed(settings) == {}
    left = set(root.rglob("*.parquet"))
    assert left, "the first roll's files were renamed"

    # 2. restarted: that roll is written again under the same names, and the rest is archived
    restarted = archive(settings, tmp_path / "2.log")
    wait_until(lambda: caught_up(settings, first), 30, "the archive to catch up")
    assert left <= set(root.rglob("*.parquet"))
    no_segment_twice(root)

    # 3. killed while it archives more: after a roll of the new records was committed, with
    # more on their way; then restarted again
    second = publish(settings, events(300, 150))
    moved = ends(first)
    wait_until(
        lambda: any(committed(settings).get(p, 0) > end for p, end in moved.items()),
        30,
        "a roll of the new records",
    )
    second += publish(settings, events(450, 150))
    restarted.kill()
    again = archive(settings, tmp_path / "3.log")
    second += publish(settings, events(600, 100))
    wait_until(lambda: caught_up(settings, first + second), 30, "the archive to catch up again")
    assert again.stop() == 0, again.log_tail()
    no_segment_twice(root)
    assert not list(root.rglob("*.tmp"))

    # 4. published after the archive stopped: the reader takes them from the topic
    tail = publish(settings, events(700, 60))
    archived = committed(settings)
    assert all(t.offset >= archived.get(t.partition, 0) for t in tail)

    everything = first + second + tail
    for brand_id in BRANDS:
        expected = {
            (s.partition, s.offset): s.event
            for s in everything
            if s.event is not None and s.event.brand_id == brand_id
        }
        found = list(history(settings, brand_id, None, None))
        places = [(int(p.topic_partition.rpartition(":")[2]), p.offset) for p, _ in found]
        assert len(places) == len(set(places)), "an event came twice"
        assert set(places) == set(expected), brand_id
        for place, item in zip(places, (item for _, item in found), strict=True):
            assert item == expected[place]
        per_partition: dict[int, list[int]] = defaultdict(list)
        for partition, offset in places:
            per_partition[partition].append(offset)
        assert all(offsets == sorted(offsets) for offsets in per_partition.values())
        assert any(place[1] >= archived.get(place[0], 0) for place in places), "no tail read"

    # a range: [the second day, the fourth day)
    since, until = datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC)
    found = list(history(settings, "lucky-sweeps", since, until))
    expected_ids = {
        s.event.event_id
        for s in everything
        if s.event is not None
        and s.event.brand_id == "lucky-sweeps"
        and since <= s.event.occurred_at < until
    }
    assert {item.event_id for _, item in found} == expected_ids and expected_ids
    # the records that are no event were archived too, under the null brand
    nulls = list((root / f"brand_id={NULL_PARTITION}").rglob("*.parquet"))
    assert nulls and all(Segment.of(path.name) for path in nulls)
