"""A brand's history read back by `archive.history` (what the what-if replay reads): events/s.

The archive is written as `loyalty-streams archive` writes it (`archive.files.write_roll`: a roll
every `--roll-records` records of all 12 partitions, one file per partition, brand and UTC day
a roll holds) from a synthetic stream (`devtools.generator`, three brands, bet cancellations and
coin purchases) of `--events` events over `--days` days of event time. An embedded Tansu broker
holds the archive group's committed offsets, so `history()` runs as the replay runs it: the
group's position, the topic's ends, the files, the (empty) tail. Then the tail alone:
`--tail` events published to the topic and read by `history()` with nothing archived, the
speed of the part of a history the archive has not written yet.

Target: the replay aims at 50,000 events/s end to end on 2 cores, so reading must be a small
part of it: at least 150,000 events/s from the files.
Run: .venv/bin/python bench/archive_read.py [--events N] [--players N] [--days D]
     [--roll-records R] [--tail N] [--rounds K]

Notes (the project's 2-core machine, shared with other jobs: load 2.7-3.3 during the runs;
the venv's pyenv CPython 3.11.7, pyarrow 26; 1,000,000 events of 20,000 players over 30 days,
435,125 of them aurora-casino's, read 5 times):
- rolls of 100,000 records (the default): 1,152 files, 88 bytes an event on disk; 141,000-195,000
  events/s from the files, median 178,000, 4.9-5.4 µs of CPU an event (`decode_player_event`
  alone is 3.5-3.8 µs of it);
- rolls of 10,000: 4,378 files, 105 bytes an event; 106,000-125,000 events/s, median 117,000,
  6.4-7.0 µs an event: each file costs about 0.6 ms of CPU (1 ms of wall) to open and read,
  so the fresher files of shorter rolls make a quiet stream's history slow to read (why
  LOYALTY_ARCHIVE_ROLL_S is 900 s);
- the topic's tail, nothing archived: 200,000 records scanned at 92,000 records/s (every
  brand's records are fetched; only the brand's are decoded).
"""

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition

from loyalty_streams.archive.files import ArchivedRecord, archived, group_id, write_roll
from loyalty_streams.archive.history import history
from loyalty_streams.devtools.broker import EmbeddedBroker
from loyalty_streams.devtools.generator import synthetic_events
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.clients import connection, load_producer_config
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import PLAYER_EVENTS, load_specs
from loyalty_streams.settings import Settings

PARTITIONS = 12
TOPICS = Path(__file__).resolve().parent.parent / "topics"
START = datetime(2026, 10, 1, tzinfo=UTC)


def stream(count: int, players: int, days: float) -> list[PlayerEvent]:
    rate = count / (days * 86_400)
    made = synthetic_events(players, 7, START, rate=rate, cancellations=True, purchases=True)
    return list(itertools.islice(made, count))


def write_archive(root: Path, events: list[PlayerEvent], roll_records: int) -> dict[int, int]:
    """The archive of `events` in rolls of `roll_records`; gives each partition's next offset."""
    offsets = dict.fromkeys(range(PARTITIONS), 0)
    buffers: dict[int, list[ArchivedRecord]] = {}
    waiting = 0
    for item in events:
        key = item.key.encode()
        number = partition_of(key, PARTITIONS)
        stamp = int(item.occurred_at.timestamp() * 1000)
        value = item.model_dump_json().encode()
        buffers.setdefault(number, []).append(archived(number, offsets[number], stamp, key, value))
        offsets[number] += 1
        waiting += 1
        if waiting >= roll_records:
            write_roll(root, buffers)
            buffers, waiting = {}, 0
    write_roll(root, buffers)
    return offsets


def commit(settings: Settings, offsets: dict[int, int]) -> None:
    """The archive group's position: everything written is archived."""
    consumer = Consumer({**connection(settings), "group.id": group_id(settings)})
    try:
        positions = [TopicPartition(PLAYER_EVENTS, p, end) for p, end in offsets.items() if end]
        consumer.commit(offsets=positions, asynchronous=False)
    finally:
        consumer.close()


def publish(settings: Settings, events: list[PlayerEvent]) -> None:
    producer = Producer(load_producer_config(settings))
    for item in events:
        produce(producer, PLAYER_EVENTS, item.model_dump_json().encode(), item.key.encode())
    assert producer.flush(60) == 0


def timed_read(settings: Settings, brand_id: str) -> tuple[int, float, float]:
    """Events read, wall seconds, CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = sum(1 for _ in history(settings, brand_id, None, None))
    return count, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--players", type=int, default=20_000)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--roll-records", type=int, default=100_000)
    parser.add_argument("--tail", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} at {sys.executable}")

    events = stream(args.events, args.players, args.days)
    counts: dict[str, int] = {}
    for item in events:
        counts[item.brand_id] = counts.get(item.brand_id, 0) + 1
    brand_id = max(counts, key=lambda brand: counts[brand])
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker() as broker:
        root = Path(tmp) / "archive"
        started = time.perf_counter()
        offsets = write_archive(root, events, args.roll_records)
        files = list(root.rglob("*.parquet"))
        size = sum(path.stat().st_size for path in files)
        print(
            f"archive: {len(events):,} events in {len(files):,} files, {size / len(events):.0f} "
            f"bytes/event, written in {time.perf_counter() - started:.1f} s"
        )
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers, archive_dir=root, topics_dir=TOPICS
        )
        assert apply_topics(settings, load_specs(TOPICS)).ok
        commit(settings, offsets)

        rates = []
        for round_ in range(args.rounds):
            count, wall, cpu = timed_read(settings, brand_id)
            assert count == counts[brand_id], (count, counts[brand_id])
            rates.append(count / wall)
            print(
                f"round {round_ + 1}: {count:,} events of {brand_id} in {wall:.2f} s: "
                f"{count / wall:,.0f} events/s ({cpu / count * 1e6:.1f} µs CPU each)"
            )
        print(f"from the files: median {statistics.median(rates):,.0f} events/s")

        if args.tail:
            tail_settings = settings.model_copy(
                update={"app_id": "bench-tail", "archive_dir": Path(tmp) / "none"}
            )
            tail = events[: args.tail]
            publish(settings, tail)
            wanted = sum(1 for item in tail if item.brand_id == brand_id)
            count, wall, _ = timed_read(tail_settings, brand_id)
            assert count == wanted, (count, wanted)
            print(
                f"from the topic: {len(tail):,} records scanned in {wall:.2f} s "
                f"({len(tail) / wall:,.0f} records/s), {count:,} events of {brand_id}"
            )


if __name__ == "__main__":
    main()
