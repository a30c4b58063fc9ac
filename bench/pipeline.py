"""End to end through one worker process on an embedded broker: events/s and latency.

Throughput: a fixed synthetic stream (default 200,000 events over 100,000 players, with bet
cancellations and coin purchases unless `--classic`) is published before the worker starts; the
clock runs from the worker's first output on loyalty.points-accrued (a PointsAccrued, or a
cancellation's PointsReversed) to its last, so start-up and group join are not counted.
Latency: with the worker caught up, events are published at a fixed rate (default half the
target, 5,000/s) and each PointsAccrued is matched to its event by id; p50/p99 from the
publish call to the bench's consumer receiving the output.

Targets: at least 10,000 events/s; p99 under 500 ms at 5,000 events/s.
Run: .venv/bin/python bench/pipeline.py [--events N] [--players N] [--rate R] [--seconds S]
     [--broker tansu|apache] [--guarantee at_least_once|exactly_once] [--classic]

`--broker` picks the embedded Tansu (default) or Apache Kafka (`devtools.apache_kafka`, jars in
.cache/kafka); `--guarantee` the worker's processing guarantee (exactly-once needs Apache
Kafka: the worker refuses Tansu). The bench's consumers read committed records only, as every
consumer of the project does, so under exactly-once the latency includes the commit.
`--classic` leaves out the cancellations and coin purchases (the stream of the figures measured
before they existed).

The worker runs on the bench's own interpreter, which is printed first: the fold is one Python
thread, and a CPython built without profile-guided optimisation (pyenv's default) folds a fifth
to a quarter slower than Debian's python3.11 or the official Docker image's.
"""

import argparse
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import Consumer, Producer, TopicPartition

from loyalty_streams.devtools.apache_kafka import ApacheKafka
from loyalty_streams.devtools.broker import EmbeddedBroker, free_port
from loyalty_streams.devtools.generator import synthetic_events
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.domain.events import BetCancelled, BetPlaced, PlayerEvent
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.clients import connection, load_producer_config, producer_config
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.topics import PLAYER_EVENTS, POINTS_ACCRUED, load_specs
from loyalty_streams.settings import Settings

TICK_S = 0.005


def output_consumer(settings: Settings, offset: int = 0) -> Consumer:
    """Reads PointsAccrued from `offset` (0: the start; -1: the end) of every partition, without
    joining a group."""
    consumer = Consumer(
        {
            **connection(settings),
            "group.id": f"bench-{uuid.uuid4()}",
            "enable.auto.commit": "false",
            "fetch.wait.max.ms": "10",
            "isolation.level": "read_committed",
        }
    )
    partitions = consumer.list_topics(POINTS_ACCRUED, timeout=10).topics[POINTS_ACCRUED].partitions
    consumer.assign([TopicPartition(POINTS_ACCRUED, p, offset) for p in partitions])
    return consumer


def publish(producer: Producer, events: list[PlayerEvent]) -> None:
    for event in events:
        produce(producer, PLAYER_EVENTS, event.model_dump_json().encode(), event.key.encode())
    producer.flush(60)


def throughput(settings: Settings, events: list[PlayerEvent], log: Path) -> ServiceProcess:
    bets = sum(isinstance(event, BetPlaced) for event in events)
    cancellations = sum(isinstance(event, BetCancelled) for event in events)
    outputs = bets + cancellations  # each has one output on loyalty.points-accrued
    producer = Producer(load_producer_config(settings))
    publish(producer, events)
    print(
        f"published {len(events):,} events ({bets:,} bets, {cancellations:,} cancellations); "
        "starting the worker"
    )
    consumer = output_consumer(settings)
    worker = ServiceProcess(settings, log)
    worker.start()
    seen = 0
    first = last = 0.0
    deadline = time.monotonic() + 1800
    while seen < outputs and time.monotonic() < deadline and worker.running:
        batch = [m for m in consumer.consume(10_000, 0.2) if m.error() is None]
        if batch:
            now = time.monotonic()
            first = first or now
            last = now
            seen += len(batch)
    consumer.close()
    if seen < outputs:
        raise SystemExit(f"only {seen:,} of {outputs:,} outputs arrived\n{worker.log_tail()}")
    elapsed = last - first
    print(f"throughput: {len(events):,} events in {elapsed:.1f} s = {len(events) / elapsed:,.0f}/s")
    return worker


def latency(settings: Settings, rate: float, seconds: float, players: int, every: bool) -> None:
    # serialised beforehand: on two cores the bench's own CPU would otherwise slow the worker
    kinds = {"cancellations": every, "purchases": every}
    stream = synthetic_events(players, 7, datetime.now(UTC), rate=rate, **kinds)
    payloads = [
        (event.event_id if isinstance(event, BetPlaced) else None, event.key.encode(), raw)
        for event in (next(stream) for _ in range(int(rate * seconds)))
        for raw in (event.model_dump_json().encode(),)
    ]
    sent: dict[str, float] = {}
    consumer = output_consumer(settings)
    consumer.assign(
        [
            TopicPartition(POINTS_ACCRUED, tp.partition, -1)  # from the end
            for tp in consumer.assignment()
        ]
    )
    # 20 ms batches: the embedded broker serves one record batch per partition per fetch, so
    # with smaller batches a plain consumer already lags by seconds at 5,000/s (measured:
    # linger 5 ms p99 2.2 s, 20 ms p99 0.12 s) and the bench would measure the broker's fetch
    # loop, not the worker. The 20 ms are inside the latency reported.
    producer = Producer({**producer_config(settings), "linger.ms": 20})
    done = threading.Event()

    def paced() -> None:
        started = time.monotonic()
        for i, (bet_id, key, raw) in enumerate(payloads):
            ahead = i / rate - (time.monotonic() - started)
            if ahead > TICK_S:  # sleep in ticks, not per event: the bench shares two cores
                time.sleep(ahead)
            if bet_id is not None:
                sent[bet_id] = time.monotonic()
            producer.produce(PLAYER_EVENTS, raw, key)
            producer.poll(0)
        producer.flush(30)
        done.set()

    publisher = threading.Thread(target=paced)
    publisher.start()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds + 60
    while time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.05):
            if message.error() is not None:
                continue
            received = time.monotonic()
            event_id = orjson.loads(message.value() or b"{}")["event_id"]
            if event_id in sent:
                latencies.append(received - sent[event_id])
        if done.is_set() and len(latencies) >= len(sent):
            break
    publisher.join()
    consumer.close()
    if len(latencies) < 2:
        raise SystemExit("no outputs matched during the latency run")
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"latency at {rate:,.0f} events/s for {seconds:.0f} s: {len(latencies):,} outputs, "
        f"p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5_000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--broker", choices=("tansu", "apache"), default="tansu")
    parser.add_argument(
        "--guarantee", choices=("at_least_once", "exactly_once"), default="at_least_once"
    )
    parser.add_argument(
        "--classic", action="store_true", help="no bet cancellations and coin purchases"
    )
    args = parser.parse_args()
    print(f"interpreter: {sys.executable} ({platform.python_implementation()} {sys.version})")
    every = not args.classic
    kinds = {"cancellations": every, "purchases": every}
    start = datetime(2026, 11, 1, tzinfo=UTC)
    stream = synthetic_events(args.players, 2026, start, rate=1000, **kinds)
    events = [next(stream) for _ in range(args.events)]
    print(
        f"broker: {args.broker}; processing guarantee: {args.guarantee}; stream: "
        + ("classic" if args.classic else "with cancellations and coin purchases")
    )
    embedded: ApacheKafka | EmbeddedBroker = (
        ApacheKafka(cache=Path(".cache") / "kafka") if args.broker == "apache" else EmbeddedBroker()
    )
    with tempfile.TemporaryDirectory(prefix="loyalty-bench-") as tmp, embedded as broker:
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers,
            security_protocol="PLAINTEXT",
            data_dir=Path(tmp) / "data",
            web_port=free_port(),
            log_level="warning",
            processing_guarantee=args.guarantee,
            development=True,  # the worker it starts may keep the default token secret
        )
        apply_topics(settings, load_specs(settings.topics_dir))
        worker = throughput(settings, events, Path(tmp) / "worker.log")
        try:
            latency(settings, args.rate, args.seconds, args.players, every)
        finally:
            worker.stop()


if __name__ == "__main__":
    main()
