"""Time-driven work of one worker: a population-wide day close at scale, and a year of play.

Reports figures next to their targets; asserts nothing.

1. Scale run (`--players`, default 1,000,000). The worker's RocksDB store is built directly,
   before the worker starts, in its data dir (`<data_dir>/players/partition-<n>`, partition =
   `partition_of(key, 12)`), as the worker itself would have left it: each player's record,
   history rows, cashback-log rows and entries of the due-time index come from the domain
   (`runtime.fold.fold` over a bet, and for a Silver player a win, under the shipped programmes;
   then `runtime.fold.fire` for a day already closed), and each partition is marked `INDEXED`
   (else the worker would first re-check every player to index their timers). One template is
   folded per brand, day of play and profile, and cloned per player by swapping the player id
   in every key and value (fixed width), so `timer_at` and the index entry
   `timer_key(timer_at, PLAYER, key)` agree. 10 % of the players played "yesterday" (their
   brand's previous day), so their day close is due when the worker starts: the
   population-wide day close. The rest played 3-25 days ago and are closed; their next timers
   lie months ahead. 20 % of the players are Silver (cashback, so the close pays). Applied
   event ids are not seeded (they are per partition and forgotten after 7 days). The changelog
   topic stays empty and every store's changelog offset is -1, so the restore at assignment
   reads nothing; the stores are compacted before the worker starts, as a long-running
   worker's would be.
   Then the embedded broker and one worker start (LOYALTY_TIMERS_WAIT_S=0, player cache and
   census at their defaults); once it owns the 12 partitions, bets are published at `--rate`
   to random players of the population, for at least `--seconds` and until the close has been
   over for `--min-after` seconds. The worker's `/metrics` and `/health` and its
   /proc/<pid>/stat and status are sampled every 0.25 s. Publish -> PointsAccrued latency is
   split into the bets published while the day closes (until
   `loyalty_timers_fired_total{kind="player"}` stops rising) and after it.
   CPU per fired timer = (worker CPU during the close - the event path's CPU/s measured after
   the close x the close's length - census slices during the close) / player timers fired.
2. A year of play (`--year-players`, default 500; in-process, no broker): every day each
   player plays with 60 % chance (1-20 bets, 40 % of them won back, a deposit, now and then a
   bonus); events are decoded and folded through `records.decode`/`runtime.fold.fold` in batches
   (`runtime.batch.Batch`, with applied ids and their `forget` entries as the worker writes
   them); at every UTC midnight the index entries due are fired as the worker fires them
   (`runtime.timers.fire_entry`); after the year `expired_rows` runs
   for every player at the end. Every checkpoint goes to a PartitionStore and to a dict that
   stands for the compacted changelog. Reported per player: record size, RocksDB bytes, the
   compacted changelog, and everything ever written to the changelog, split into record,
   history, cashback log, index and (per partition) applied ids.

Targets: longest pause of the fold loop by time-driven work < 50 ms; publish -> PointsAccrued
p99 < 500 ms while the day closes, < 250 ms outside it.

Run: .venv/bin/python bench/timers.py --players 1000000
     .venv/bin/python bench/timers.py --players 200000 --seconds 30   (quicker)
     .venv/bin/python bench/timers.py --only year --year-players 500
     .venv/bin/python bench/timers.py --only scale --yesterday 0 --seconds 180   (no close: the
        control, for what the embedded broker does to latency over the same minutes)
Building 1,000,000 players takes about 20 s and 0.5 GB under $TMPDIR; the run lasts as long as
the close, plus `--min-after`. The embedded broker keeps its log in memory and its CPU grows
with it (the control at 2,000/s: 20 % of a core at first, a whole core after a minute): on two
cores, latency after the first minute or so of publishing is mostly the broker's.
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import orjson
from confluent_kafka import Producer
from pipeline import output_consumer  # bench/ is the script's folder: its first path
from prometheus_client.parser import text_string_to_metric_families

from loyalty_streams.devtools.broker import EmbeddedBroker, free_port
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.events import player_key
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import shipped_programmes
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.clients import producer_config
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import PLAYER_EVENTS, load_specs
from loyalty_streams.runtime.batch import Batch, batch_day
from loyalty_streams.runtime.fold import (
    Boundary,
    Outcome,
    ProgrammeFor,
    Record,
    decode,
    fire,
    fold,
)
from loyalty_streams.runtime.timers import fire_entry
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import (
    BOOKKEEPING,
    CASHBACK_PREFIX,
    FORGET,
    HISTORY_PREFIX,
    INDEXED,
    LOG_DAYS,
    PLAYER,
    RECHECK_PREFIX,
    SEEN_DAYS,
    SEEN_PREFIX,
    TIMER_PREFIX,
    cashback_player,
    due_before,
    history_player,
    parse_timer_key,
    timer_key,
)
from loyalty_streams.state.retention import expired_rows
from loyalty_streams.state.store import PlayerTable, encode_player

PARTITIONS = 12
BRANDS = (("aurora-casino", "EUR"), ("borealis-casino", "EUR"), ("lucky-sweeps", "SC"))
TEMPLATE_ID = "T3MPL4T3"
"""The template player's id: 8 characters, like every cloned id (`p0000000`)."""
CLOSED_DAYS_AGO = (3, 25)
SILVER_SHARE = 0.20
SEED_TOPIC = "bench.seed"
"""The topic named in seeded records' stamps: a real offset there would make the bench's bets
look like replays."""
WRITE_EVERY = 20_000
SAMPLE_S = 0.25
"""How often the worker's CPU and memory are read (/proc)."""
SCRAPE_S = 1.0
"""How often its /metrics and /health are read: each costs the worker a little time."""
STALL_S = 3.0
"""The close is over when the player timers fired stopped rising for this long."""
TICK_S = 0.005
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

TARGET_PAUSE_S = 0.050
TARGET_P99_CLOSE_S = 0.500
TARGET_P99_AFTER_S = 0.250


def player_id(number: int) -> str:
    return f"p{number:07d}"


def brand_of(number: int) -> tuple[str, str]:
    return BRANDS[number % len(BRANDS)]


def programmes() -> ProgrammeFor:
    return Catalogue(shipped_programmes()).in_effect


# -- 1. the scale run: building the store --------------------------------------------------------


@dataclass
class Template:
    """Every store record one player leaves, for the template player."""

    records: list[tuple[bytes, bytes]]
    timer_at: datetime | None


def template(
    programme_for: ProgrammeFor, brand: str, currency: str, days_ago: int, silver: bool
) -> Template:
    """Fold the template player's play of `days_ago` days ago (brand days) through the worker's
    own path; a day already over is closed with `runtime.fold.fire`, as the worker's timer did."""
    now = datetime.now(UTC)
    programme = programme_for(brand, now)
    assert programme is not None
    day = programme.day_of(now) - days_ago
    at = programme.day_start(day) + timedelta(hours=12)
    scale = 1 if currency == "EUR" else 10
    plays = [("BetPlaced", 12_000 // scale), ("WinCredited", 4_000 // scale)] if silver else []
    plays = plays or [("BetPlaced", 250)]
    key = player_key(brand, TEMPLATE_ID)
    boundary = Boundary.of(Settings(), PARTITIONS)
    held: dict[str, PlayerState] = {}
    writes: dict[bytes, bytes | None] = {}

    def take(outcome: Outcome) -> None:
        assert not outcome.dead, outcome.sends
        if outcome.state is not None:
            held[key] = outcome.state
        writes.update(outcome.writes)

    for offset, (kind, amount) in enumerate(plays):
        moment = at + timedelta(minutes=offset)
        event = {
            "type": kind,
            "event_id": f"{TEMPLATE_ID}-{offset}",
            "brand_id": brand,
            "player_id": TEMPLATE_ID,
            "occurred_at": moment.isoformat(),
            "amount": f"{amount}.00",
            "currency": currency,
            "bet_id": f"{TEMPLATE_ID}-0",
        }
        if kind == "BetPlaced":
            event |= {"game_id": "starburst", "game_category": "slots"}
        partition = partition_of(key.encode(), PARTITIONS)
        record = Record(SEED_TOPIC, partition, offset, key.encode(), orjson.dumps(event), moment)
        inbound = decode(record, boundary)
        assert not isinstance(inbound, Outcome), inbound.sends
        take(fold(record, inbound, boundary, programme_for, held.get))
    if days_ago > 1:
        take(fire(held[key], programme_for, now))
    state = held[key]
    writes[key.encode()] = encode_player(state)
    assert state.timer_at is not None
    assert writes.get(timer_key(state.timer_at, PLAYER, key.encode())) == b""
    return Template([(k, v) for k, v in writes.items() if v is not None], state.timer_at)


@dataclass
class Built:
    players: int
    yesterday: int
    silver: int
    records: int
    seconds: float
    disk_bytes: int


def build_store(directory: Path, players: int, seed: int, yesterday_share: float) -> Built:
    """Write `players` players into the 12 partition stores under `directory`."""
    started = time.monotonic()
    programme_for = programmes()
    rng = random.Random(seed)
    table = PlayerTable(directory)
    templates: dict[tuple[int, int, bool], Template] = {}
    pending: list[dict[bytes, bytes]] = [{} for _ in range(PARTITIONS)]
    template_id = TEMPLATE_ID.encode()
    yesterday = silver_players = records = 0
    low, high = CLOSED_DAYS_AGO
    for number in range(players):
        brand_index = number % len(BRANDS)
        days_ago = 1 if rng.random() < yesterday_share else rng.randint(low, high)
        silver = rng.random() < SILVER_SHARE
        yesterday += days_ago == 1
        silver_players += silver
        shape = (brand_index, days_ago, silver)
        cloned = templates.get(shape)
        if cloned is None:
            brand, currency = BRANDS[brand_index]
            cloned = templates[shape] = template(programme_for, brand, currency, days_ago, silver)
        brand = BRANDS[brand_index][0]
        pid = player_id(number)
        part = partition_of(player_key(brand, pid).encode(), PARTITIONS)
        out = pending[part]
        raw_pid = pid.encode()
        for key, value in cloned.records:
            out[key.replace(template_id, raw_pid)] = value.replace(template_id, raw_pid)
        records += len(cloned.records)
        if len(out) >= WRITE_EVERY:
            table.partition(part).write(out, -1)  # -1: reflects no changelog record
            pending[part] = {}
        if number and number % 500_000 == 0:
            print(f"  built {number:,} players ({time.monotonic() - started:.0f} s)", flush=True)
    for part, out in enumerate(pending):
        out[INDEXED] = b""  # every record's timer is indexed: no re-check of the whole store
        table.partition(part).write(out, -1)
    print(f"  written in {time.monotonic() - started:.0f} s; compacting", flush=True)
    for part in range(PARTITIONS):
        # the store's own handle: a full compaction, as a long-running store would be, so the
        # worker does not compact the whole build in the background while it is measured
        table.partition(part).compact()
    table.close()
    return Built(
        players,
        yesterday,
        silver_players,
        records,
        time.monotonic() - started,
        disk_usage(directory),
    )


def disk_usage(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


# -- 1. the scale run: watching the worker -------------------------------------------------------


def child_pid(marker: bytes) -> int:
    """The pid of this process's child whose command line holds `marker` (ServiceProcess does
    not expose its Popen)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rpartition(b")")[2].split()[1]) == me and marker in command:
            return int(entry.name)
    raise RuntimeError(f"no child process runs {marker!r}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_bytes().rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(rest.split()[0])
    return found


def fetch_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as reply:
        data: dict[str, object] = orjson.loads(reply.read())
        return data


Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Series:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    series: Series = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(("loyalty_timers_fired", "loyalty_time_driven")):
            continue
        for sample in family.samples:
            series[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return series


def fired(series: Series, kind: str = "player") -> float:
    return series.get(("loyalty_timers_fired_total", (("kind", kind),)), 0.0)


def slice_sum(series: Series, work: str) -> float:
    return series.get(("loyalty_time_driven_slice_seconds_sum", (("work", work),)), 0.0)


@dataclass
class Sample:
    at: float
    series: Series
    cpu_s: float
    broker_cpu_s: float
    rss_kib: int
    loop_age_s: float


@dataclass
class Watch:
    """Samples of the worker every `SAMPLE_S`, from a thread of its own."""

    port: int
    pid: int
    broker_pid: int
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        scraped = 0.0
        while not self.stop.is_set():
            at = time.monotonic()
            series, loop_age = (self.samples[-1].series if self.samples else {}), 0.0
            if at - scraped >= SCRAPE_S:  # the worker serves these on its own CPU
                scraped = at
                try:
                    series = scrape(self.port)
                    health = fetch_json(f"http://127.0.0.1:{self.port}/health")
                    loop_age = float(health["loop_age_s"])  # type: ignore[arg-type]
                except OSError:
                    pass
            self.samples.append(
                Sample(
                    at,
                    series,
                    cpu_seconds(self.pid),
                    cpu_seconds(self.broker_pid),
                    memory_kib(self.pid).get("VmRSS", 0),
                    loop_age,
                )
            )
            self.stop.wait(max(SAMPLE_S - (time.monotonic() - at), 0.0))

    def close_end(self, expected: int) -> Sample | None:
        """The first sample at the final count of player timers fired, once that count has
        stood still for `STALL_S` (and is at least half the players due)."""
        samples = list(self.samples)
        if not samples:
            return None
        final = fired(samples[-1].series)
        if final < expected / 2:
            return None
        first = next(s for s in samples if fired(s.series) == final)
        return first if samples[-1].at - first.at >= STALL_S else None

    def at(self, moment: float) -> Sample:
        """The last sample taken at or before `moment` (else the first)."""
        before = [s for s in self.samples if s.at <= moment]
        return before[-1] if before else self.samples[0]


@dataclass
class Publisher:
    """Bets at a fixed rate to random players, until told to stop."""

    settings: Settings
    rate: float
    players: int
    seed: int
    sent: dict[str, float] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    ended: float = 0.0

    def bet(self, rng: random.Random, number: int) -> tuple[str, bytes, bytes]:
        target = rng.randrange(self.players)
        brand, currency = brand_of(target)
        pid = player_id(target)
        event_id = f"bench-{self.seed}-{number}"
        raw = orjson.dumps(
            {
                "type": "BetPlaced",
                "event_id": event_id,
                "brand_id": brand,
                "player_id": pid,
                "occurred_at": datetime.now(UTC).isoformat(),
                "amount": f"{rng.randint(1, 200)}.00",
                "currency": currency,
                "bet_id": event_id,
                "game_id": "starburst",
                "game_category": "slots",
            }
        )
        return event_id, f"{brand}:{pid}".encode(), raw

    def run(self) -> None:
        # 20 ms batches, as in bench/pipeline.py: the embedded broker serves one record batch
        # per partition per fetch
        producer = Producer({**producer_config(self.settings), "linger.ms": 20})
        rng = random.Random(self.seed)
        self.started = time.monotonic()
        number = 0
        while not self.stop.is_set():
            ahead = number / self.rate - (time.monotonic() - self.started)
            if ahead > TICK_S:
                time.sleep(ahead)
            event_id, key, raw = self.bet(rng, number)
            self.sent[event_id] = time.monotonic()
            producer.produce(PLAYER_EVENTS, raw, key)
            producer.poll(0)
            number += 1
        self.ended = time.monotonic()
        producer.flush(30)


def quantiles(values: list[float]) -> str:
    if len(values) < 2:
        return f"{len(values)} outputs"
    cuts = statistics.quantiles(values, n=100)
    return (
        f"{len(values):,} outputs: p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms"
    )


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


def verdict(value: float, target: float) -> str:
    return "meets" if value < target else "MISSES"


def histogram(series: Series, work: str) -> tuple[list[tuple[str, int]], float, int, str]:
    """A slice histogram's buckets (non-cumulative, observed ones only), its sum and count, and
    the bound of the largest bucket observed."""
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in series.items()
        if name == "loyalty_time_driven_slice_seconds_bucket" and dict(labels)["work"] == work
    )
    rows, below, longest = [], 0.0, "none"
    for bound, cumulative in buckets:
        count = int(cumulative - below)
        below = cumulative
        if count:
            label = "> 1 s" if bound == float("inf") else f"<= {bound * 1000:g} ms"
            rows.append((label, count))
            longest = label
    count = int(series.get(("loyalty_time_driven_slice_seconds_count", (("work", work),)), 0))
    return rows, slice_sum(series, work), count, longest


def scale_run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="loyalty-timers-"))
    try:
        data = root / "data"
        print(f"building {args.players:,} players in {data / 'players'} ...", flush=True)
        built = build_store(data / "players", args.players, args.seed, args.yesterday)
        print(
            f"store built: {built.players:,} players ({built.yesterday:,} played yesterday, "
            f"{built.silver:,} Silver), {built.records:,} records in {built.seconds:.0f} s; "
            f"{built.disk_bytes / 2**20:,.0f} MiB on disk = "
            f"{built.disk_bytes / built.players:,.0f} bytes per player",
            flush=True,
        )
        with EmbeddedBroker() as broker:
            settings = Settings(
                bootstrap_servers=broker.bootstrap_servers,
                security_protocol="PLAINTEXT",
                data_dir=data,
                web_port=free_port(),
                log_level="warning",
                development=True,
                timers_wait_s=0,
            )
            apply_topics(settings, load_specs(settings.topics_dir))
            worker = ServiceProcess(settings, root / "worker.log")
            worker.start()
            try:
                observe(args, settings, worker, broker.pid, built)
            finally:
                worker.stop()
        print(f"store after the run: {disk_usage(data / 'players') / 2**20:,.0f} MiB on disk")
        index_passes(data / "players")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def index_passes(directory: Path) -> None:
    """Time, on the store the worker left, what its loop reads when nothing is due: the index
    from its start up to now (`_run_timers`, every `TIMER_IDLE_S`) and the re-checks' prefix
    (`_run_rechecks`, every turn of the loop), over the 12 partitions; again after a full
    compaction, which drops the deletes of the entries fired."""
    table = PlayerTable(directory)
    for part in range(PARTITIONS):
        table.partition(part)  # opened before the clock starts

    def timed() -> tuple[float, float]:
        end = due_before(datetime.now(UTC))
        spans = []
        for reads in (
            lambda s: s.items(TIMER_PREFIX, None, end),
            lambda s: s.items(RECHECK_PREFIX),
        ):
            started = time.perf_counter()
            for _ in range(5):
                for part in range(PARTITIONS):
                    for _entry in reads(table.partition(part)):
                        pass
            spans.append((time.perf_counter() - started) / 5 * 1000)
        return spans[0], spans[1]

    timers, rechecks = timed()
    for part in range(PARTITIONS):
        table.partition(part).compact()
    timers_compacted, rechecks_compacted = timed()
    table.close()
    print(
        f"a pass with nothing due, on the store after the run (12 partitions): index "
        f"{timers:.1f} ms, re-checks {rechecks:.1f} ms; after a full compaction "
        f"{timers_compacted:.2f} ms and {rechecks_compacted:.2f} ms"
    )


def wait_for_partitions(settings: Settings, worker: ServiceProcess, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{settings.web_port}/health"
    while time.monotonic() < deadline and worker.running:
        try:
            if len(fetch_json(url)["partitions"]) == PARTITIONS:  # type: ignore[arg-type]
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"the worker did not take its partitions\n{worker.log_tail()}")


def observe(
    args: argparse.Namespace,
    settings: Settings,
    worker: ServiceProcess,
    broker_pid: int,
    built: Built,
) -> None:
    started = time.monotonic()
    pid = child_pid(b"loyalty_streams.cli.main")
    consumer = output_consumer(settings, offset=-1)  # from the end
    joined = wait_for_partitions(settings, worker, 180)
    print(f"worker {pid} owns the {PARTITIONS} partitions {joined - started:.1f} s after start")
    watch = Watch(settings.web_port, pid, broker_pid)
    watcher = threading.Thread(target=watch.run, daemon=True)
    watcher.start()
    publisher = Publisher(settings, args.rate, args.players, args.seed)
    publishing = threading.Thread(target=publisher.run)
    publishing.start()
    received: dict[str, float] = {}
    end: Sample | None = None
    hard_stop = time.monotonic() + args.seconds + args.max_close
    while True:
        for message in consumer.consume(1000, 0.05):
            if message.error() is None:
                event_id = orjson.loads(message.value() or b"{}")["event_id"]
                received.setdefault(event_id, time.monotonic())
        now = time.monotonic()
        end = end or watch.close_end(built.yesterday)
        over = end is not None and now - end.at >= args.min_after
        if publisher.started and now - publisher.started >= args.seconds and over:
            break
        if now >= hard_stop or not worker.running:
            print("the close did not finish in time" if worker.running else worker.log_tail())
            break
    publisher.stop.set()
    publishing.join()
    drain_until = time.monotonic() + 30
    while len(received) < len(publisher.sent) and time.monotonic() < drain_until:
        for message in consumer.consume(1000, 0.1):
            if message.error() is None:
                event_id = orjson.loads(message.value() or b"{}")["event_id"]
                received.setdefault(event_id, time.monotonic())
    consumer.close()
    time.sleep(SCRAPE_S + SAMPLE_S)
    watch.stop.set()
    watcher.join()
    peak = memory_kib(pid)
    idle_from = cpu_seconds(pid)
    time.sleep(args.idle)  # no events: what the loop spends on its own
    idle = (cpu_seconds(pid) - idle_from) / args.idle
    report(args, built, watch, publisher, received, end, joined, peak)
    print(f"worker CPU with no events, after the close: {idle:.0%} of a core over {args.idle:g} s")


def report(
    args: argparse.Namespace,
    built: Built,
    watch: Watch,
    publisher: Publisher,
    received: dict[str, float],
    end: Sample | None,
    joined: float,
    peak: dict[str, int],
) -> None:
    samples = watch.samples
    last = samples[-1]
    close_end = end.at if end is not None else last.at
    first_fire = next((s for s in samples if fired(s.series) > 0), samples[0])
    start = watch.at(joined)
    during: list[float] = []
    after: list[float] = []
    for event_id, sent_at in publisher.sent.items():
        if event_id in received:
            (during if sent_at < close_end else after).append(received[event_id] - sent_at)
    lost = len(publisher.sent) - len(during) - len(after)
    timers = fired(last.series)
    duration = close_end - joined
    print()
    print(f"== scale run: {built.players:,} players, bets at {args.rate:,.0f}/s ==")
    print(
        f"published {len(publisher.sent):,} bets over {publisher.ended - publisher.started:.0f} s "
        f"(from {publisher.started - joined:.2f} s after the join); {lost:,} without output"
    )
    status = "" if end is not None else " (NOT finished when the bench stopped)"
    print(
        f"day close{status}: {timers:,.0f} player timers fired of {built.yesterday:,} due "
        f"(the rest closed by the players' own bets first); first fired by "
        f"+{first_fire.at - joined:.2f} s, last by +{duration:.2f} s after the join "
        f"(+-{SCRAPE_S:g} s)"
    )
    print(
        f"  time to fire the whole close {duration:.1f} s = "
        f"{timers / max(duration, 1e-9):,.0f} timers/s; kinds fired: "
        + ", ".join(
            f"{name} {fired(last.series, name):,.0f}"
            for name in ("player", "done", "failed", "forget", "rows")
        )
    )
    print(f"latency while the day closes: {quantiles(during)}")
    print(f"latency after the close:      {quantiles(after)}")
    # CPU
    at_end = watch.at(close_end)
    cpu_close = at_end.cpu_s - start.cpu_s
    census_close = slice_sum(at_end.series, "census") - slice_sum(start.series, "census")
    settle = watch.at(close_end + 2.0)
    stop = watch.at(publisher.ended)
    after_s = stop.at - settle.at
    end_cpu = stop.cpu_s - settle.cpu_s
    census_after = slice_sum(stop.series, "census") - slice_sum(settle.series, "census")
    event_rate = (end_cpu - census_after) / after_s if after_s > 1 else float("nan")
    timers_cpu = cpu_close - event_rate * duration - census_close
    print(
        f"worker CPU during the close: {cpu_close:.1f} s in {duration:.1f} s "
        f"({cpu_close / max(duration, 1e-9):.0%} of a core); census slices {census_close:.1f} s; "
        f"broker CPU {at_end.broker_cpu_s - start.broker_cpu_s:.1f} s"
    )
    print(
        f"worker CPU after the close: {end_cpu:.1f} s in {after_s:.1f} s = event path "
        f"{event_rate:.2f} core at {args.rate:,.0f}/s ({event_rate / args.rate * 1e6:.0f} us/bet; "
        f"census {census_after:.1f} s excluded)"
    )
    if not timers:
        print("no player timer fired: no CPU per timer")
    else:
        print(
            f"CPU per fired timer: ({cpu_close:.1f} - {event_rate:.2f} x {duration:.1f} - "
            f"{census_close:.1f}) / {timers:,.0f} = {timers_cpu / max(timers, 1) * 1e6:,.0f} us "
            f"(slices alone: {slice_sum(last.series, 'timers') / max(timers, 1) * 1e6:,.0f} us)"
        )
        half = next((s for s in samples if fired(s.series) >= timers / 2), last)
        half_s = max(half.at - joined, 1e-9)
        half_cpu = (
            half.cpu_s
            - start.cpu_s
            - event_rate * half_s
            - (slice_sum(half.series, "census") - slice_sum(start.series, "census"))
        )
        print(
            f"  the first half of the close: {fired(half.series):,.0f} timers in {half_s:.1f} s = "
            f"{fired(half.series) / half_s:,.0f}/s, "
            f"{half_cpu / max(fired(half.series), 1) * 1e6:,.0f} us CPU per timer "
            "(same subtraction)"
        )
    print(
        f"worker RSS: {last.rss_kib / 1024:,.0f} MiB at the end, "
        f"{max(s.rss_kib for s in samples) / 1024:,.0f} MiB at most while sampled, "
        f"VmHWM {peak.get('VmHWM', 0) / 1024:,.0f} MiB"
    )
    print(f"store on disk before the run: {built.disk_bytes / built.players:,.0f} bytes per player")
    longest_all = 0.0
    for work in ("timers", "census", "rechecks"):
        rows, total, count, longest = histogram(last.series, work)
        print(
            f"slices of {work}: {count:,}, {total:.1f} s in all; longest {longest}; "
            + ", ".join(f"{label}: {n:,}" for label, n in rows)
        )
        for label, _ in rows:
            bound = float("inf") if label.startswith(">") else float(label.split()[1]) / 1000
            longest_all = max(longest_all, bound)
    ages = sorted(samples, key=lambda s: s.loop_age_s)[-3:][::-1]
    print(
        f"highest /health loop_age_s seen (every {SCRAPE_S:g} s): "
        + ", ".join(f"{s.loop_age_s * 1000:.0f} ms at +{s.at - joined:.1f} s" for s in ages)
    )
    print()
    print("targets:")
    print(
        f"  longest pause by time-driven work < {TARGET_PAUSE_S * 1000:.0f} ms: largest slice "
        f"bucket <= {longest_all * 1000:g} ms: {verdict(longest_all, TARGET_PAUSE_S + 1e-9)}"
    )
    print(
        f"  p99 < {TARGET_P99_CLOSE_S * 1000:.0f} ms while the day closes: "
        f"{p99(during) * 1000:.0f} ms: {verdict(p99(during), TARGET_P99_CLOSE_S)}"
    )
    print(
        f"  p99 < {TARGET_P99_AFTER_S * 1000:.0f} ms outside it: "
        f"{p99(after) * 1000:.0f} ms: {verdict(p99(after), TARGET_P99_AFTER_S)}"
    )
    print()
    print("timeline (5 s windows from the join): bets published, their p99, timers fired, CPU")
    windows: dict[int, list[float]] = defaultdict(list)
    for event_id, sent_at in publisher.sent.items():
        if event_id in received:
            windows[int((sent_at - joined) // 5)].append(received[event_id] - sent_at)
    for window in range(int((last.at - joined) // 5) + 1):
        a, b = watch.at(joined + window * 5), watch.at(joined + window * 5 + 5)
        latencies = windows.get(window, [])
        tail = f"p99 {p99(latencies) * 1000:6.0f} ms" if len(latencies) >= 2 else " " * 13
        span = max(b.at - a.at, 1e-9)
        print(
            f"  +{window * 5:4d} s  {len(latencies):6,} bets  {tail}  "
            f"timers {fired(b.series) - fired(a.series):8,.0f}  "
            f"worker {(b.cpu_s - a.cpu_s) / span:4.0%}  broker "
            f"{(b.broker_cpu_s - a.broker_cpu_s) / span:4.0%}"
        )


# -- 2. a year of play ---------------------------------------------------------------------------


KINDS = ("record", "history", "cashback log", "index", "applied ids", "bookkeeping")


def kind_of(key: bytes) -> tuple[str, bytes | None]:
    """What a store key holds, and the player it belongs to (None: the partition's)."""
    if key.startswith(SEEN_PREFIX):
        return "applied ids", None
    if key.startswith(TIMER_PREFIX):
        kind, subject = parse_timer_key(key)
        return ("applied ids", None) if kind == FORGET else ("index", subject)
    if key.startswith(HISTORY_PREFIX):
        return "history", player_key(*history_player(key)).encode()
    if key.startswith(CASHBACK_PREFIX):
        return "cashback log", player_key(*cashback_player(key)).encode()
    if key.startswith(BOOKKEEPING):
        return "bookkeeping", None
    return "record", key


@dataclass
class YearSim:
    """The worker's fold, checkpoints and timers, without Kafka: batches go to the store and to
    a dict standing for the compacted changelog."""

    table: PlayerTable
    programme_for: ProgrammeFor
    boundary: Boundary
    states: dict[str, PlayerState] = field(default_factory=dict)
    offsets: list[int] = field(default_factory=lambda: [0] * PARTITIONS)
    changelog: dict[tuple[int, bytes], bytes] = field(default_factory=dict)
    history_topic: int = 0
    """Bytes of history rows written to loyalty.players-history (kept 400 days by time)."""
    written: Counter[str] = field(default_factory=Counter)
    written_records: int = 0
    fired: Counter[str] = field(default_factory=Counter)
    dead: int = 0
    events: int = 0

    def latest(self, batch: Batch, key: str) -> PlayerState | None:
        entry = batch.states.get(key)
        return entry[1] if entry is not None else self.states.get(key)

    def applied(self, batch: Batch, partition: int, applied_id: str) -> bytes | None:
        key = SEEN_PREFIX + applied_id.encode()
        value = batch.writes.get(partition, {}).get(key)
        if value is None:
            value = self.table.partition(partition).get(key)
        return None if value is None else value.partition(b"|")[2]

    def fold(self, events: list[tuple[datetime, bytes, bytes]]) -> None:
        batch = Batch(batch_day(events[0][0]))
        for received_at, key, raw in events:
            partition = partition_of(key, PARTITIONS)
            offset = self.offsets[partition]
            self.offsets[partition] += 1
            record = Record(PLAYER_EVENTS, partition, offset, key, raw, received_at)
            inbound = decode(record, self.boundary)
            outcome = (
                inbound
                if isinstance(inbound, Outcome)
                else fold(
                    record,
                    inbound,
                    self.boundary,
                    self.programme_for,
                    partial(self.latest, batch),
                    applied=partial(self.applied, batch, partition),
                )
            )
            self.dead += outcome.dead
            self.events += 1
            batch.add(outcome, partition)
        self.checkpoint(batch)

    def fire_due(self, until: datetime) -> None:
        """Every index entry due by `until`, fired as the worker's timers fire them
        (`runtime.timers.fire_entry`)."""
        batch = Batch(batch_day(until))
        end = due_before(until)

        def latest(_: int, key: str) -> PlayerState | None:
            return self.latest(batch, key)

        for partition in range(PARTITIONS):
            store = self.table.partition(partition)
            for key, value in list(store.items(TIMER_PREFIX, None, end)):
                kind, outcome = fire_entry(
                    batch, partition, store, key, value, until, latest, self.programme_for
                )
                self.fired[kind.decode()] += 1
                if outcome is not None:
                    batch.add(outcome, partition)
        self.checkpoint(batch)

    def expire(self, players: list[bytes], at: datetime) -> int:
        """`retention.expired_rows` of every player at `at`; the deletes it made."""
        batch = Batch(batch_day(at))
        deletes = 0
        for key in players:
            partition = partition_of(key, PARTITIONS)
            rows = expired_rows(self.table.partition(partition), key, at)
            deletes += sum(value is None for value in rows.values())
            batch.writes.setdefault(partition, {}).update(rows)
        self.checkpoint(batch)
        return deletes

    def checkpoint(self, batch: Batch) -> None:
        """A checkpoint's steps 2 and 3 (`runtime.checkpoint`): the changelog first, then the
        store."""
        batch.log_writes()
        for partition, records in batch.writes.items():
            for key, value in records.items():
                if key.startswith(HISTORY_PREFIX):  # its own topic, which forgets by time
                    if value is not None:
                        self.history_topic += len(key) + len(value)
                    continue
                self.written[kind_of(key)[0]] += len(key) + len(value or b"")
                self.written_records += 1
                if value is None:
                    self.changelog.pop((partition, key), None)
                else:
                    self.changelog[partition, key] = value
            self.table.partition(partition).write(records, self.written_records)
        for name, (_, state, _) in batch.states.items():
            self.states[name] = state


def day_of_play(
    rng: random.Random, number: int, midnight: datetime, stake: int
) -> list[tuple[datetime, bytes, bytes]]:
    """One player's events of a UTC day: a session of 1-20 bets with some wins, a deposit at
    its start half the time, now and then a bonus."""
    brand, currency = brand_of(number)
    pid = f"y{number:07d}"
    key = f"{brand}:{pid}".encode()
    bets = rng.randint(1, 20)
    moment = midnight + timedelta(seconds=rng.uniform(0, 86_400 - bets * 120 - 60))
    envelope = {"brand_id": brand, "player_id": pid, "currency": currency}
    events = []

    def add(kind: str, at: datetime, amount: float, **extra: str) -> None:
        event_id = f"{pid}-{at.timestamp():.6f}-{kind}"
        fields = {"type": kind, "event_id": event_id, "occurred_at": at.isoformat()}
        fields |= envelope | extra | {"amount": f"{amount:.2f}"}
        events.append((at, key, orjson.dumps(fields)))

    if rng.random() < 0.5:
        add("DepositMade", moment, stake * 20)
    if rng.random() < 0.03:
        add("BonusRedeemed", moment + timedelta(seconds=1), stake * 5, bonus_id="reload")
    for n in range(bets):
        moment += timedelta(seconds=rng.uniform(20, 100))
        amount = stake * rng.choice((0.5, 1, 2, 5))
        bet_id = f"{pid}-{midnight.date().isoformat()}-{n}"
        add("BetPlaced", moment, amount, bet_id=bet_id, game_id="starburst", game_category="slots")
        if rng.random() < 0.4:
            won = amount * rng.uniform(0.5, 2.5)
            add("WinCredited", moment + timedelta(seconds=5), won, bet_id=bet_id)
    return events


def year_of_play(args: argparse.Namespace) -> None:
    players = args.year_players
    stakes = (1, 5, 20, 100)
    rng = random.Random(args.seed)
    begin = datetime(2026, 1, 5, tzinfo=UTC)  # the shipped programmes take effect on 1 January
    keys = [f"{brand_of(n)[0]}:y{n:07d}".encode() for n in range(players)]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loyalty-year-") as tmp:
        directory = Path(tmp) / "players"
        sim = YearSim(PlayerTable(directory), programmes(), Boundary.of(Settings(), PARTITIONS))
        for day in range(args.year_days):
            midnight = begin + timedelta(days=day)
            sim.fire_due(midnight)
            events = [
                event
                for number in range(players)
                if rng.random() < 0.6
                for event in day_of_play(rng, number, midnight, stakes[number % len(stakes)])
            ]
            events.sort(key=lambda event: event[0])
            for at in range(0, len(events), args.year_batch):
                sim.fold(events[at : at + args.year_batch])
            if (day + 1) % 60 == 0:
                print(f"  day {day + 1}: {sim.events:,} events, {time.monotonic() - started:.0f} s")
        end = begin + timedelta(days=args.year_days)
        sim.fire_due(end)
        expired = sim.expire(keys, end)
        elapsed = time.monotonic() - started
        year_report(args, sim, keys, expired, elapsed, directory)


def year_report(
    args: argparse.Namespace,
    sim: YearSim,
    keys: list[bytes],
    expired: int,
    elapsed: float,
    directory: Path,
) -> None:
    players = len(keys)
    stored: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    per_player: dict[bytes, int] = Counter()
    for partition in range(PARTITIONS):
        store = sim.table.partition(partition)
        for prefix in (BOOKKEEPING, b""):  # the bookkeeping, then every player record
            for key, value in store.items(prefix):
                kind, owner = kind_of(key)
                size = len(key) + len(value)
                stored[kind] += size
                entries[kind] += 1
                if owner is not None:
                    per_player[owner] += size
    compacted: Counter[str] = Counter()
    for (_, key), value in sim.changelog.items():
        compacted[kind_of(key)[0]] += len(key) + len(value)
    records = [len(encode_player(state)) for state in sim.states.values()]
    sim.table.close()
    sim.table = PlayerTable(directory)
    for partition in range(PARTITIONS):
        sim.table.partition(partition).compact()
    sim.table.close()
    disk = disk_usage(directory)
    print()
    print(f"== a year of play: {players:,} players, {args.year_days} days ==")
    print(
        f"{sim.events:,} events folded ({sim.dead:,} dead letters) in {elapsed:.0f} s with the "
        f"timers; {sim.written_records:,} changelog records written; index entries fired: "
        + ", ".join(f"{kind} {count:,}" for kind, count in sorted(sim.fired.items()))
        + f"; rows expired at the end: {expired:,}"
    )
    print(
        f"record (encode_player): mean {statistics.mean(records):,.0f} bytes, "
        f"median {statistics.median(records):,.0f}, max {max(records):,}"
    )
    totals = sorted(per_player.values())
    print(
        f"a player's own store bytes (record + history + cashback log + index): mean "
        f"{statistics.mean(totals):,.0f}, median {statistics.median(totals):,.0f}, "
        f"max {totals[-1]:,}"
    )
    print(
        f"{'per player (bytes)':<22}{'RocksDB':>12}{'entries':>10}{'compacted':>12}{'written':>14}"
    )
    for kind in KINDS:
        print(
            f"{kind:<22}{stored[kind] / players:>12,.0f}{entries[kind] / players:>10,.1f}"
            f"{compacted[kind] / players:>12,.0f}{sim.written[kind] / players:>14,.0f}"
        )
    print(
        f"{'total':<22}{sum(stored.values()) / players:>12,.0f}"
        f"{sum(entries.values()) / players:>10,.1f}{sum(compacted.values()) / players:>12,.0f}"
        f"{sum(sim.written.values()) / players:>14,.0f}"
    )
    share = stored["history"] / max(sum(stored.values()), 1)
    print(
        f"history is {share:.0%} of the live store; applied ids (per partition, SEEN_DAYS): "
        f"{stored['applied ids']:,} bytes in {entries['applied ids']:,} entries = "
        f"{stored['applied ids'] / max(entries['applied ids'], 1):.0f} bytes each, "
        f"{stored['applied ids'] / max(sum(stored.values()), 1):.1%} of the store "
        f"(scales with events of the last {SEEN_DAYS + 1} days, not with players)"
    )
    print(
        f"loyalty.players-history: {sim.history_topic / players:,.0f} bytes per player (kept "
        f"{LOG_DAYS} days by time); history's share of the compacted changelog: "
        f"{compacted['history'] / max(sum(compacted.values()), 1):.0%}"
    )
    print(
        f"RocksDB on disk after a full compaction: {disk:,} bytes = {disk / players:,.0f} bytes "
        f"per player; changelog ever written / compacted = "
        f"{sum(sim.written.values()) / max(sum(compacted.values()), 1):.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--players", type=int, default=1_000_000)
    parser.add_argument(
        "--yesterday", type=float, default=0.10, help="share of players whose day closes (0: none)"
    )
    parser.add_argument("--rate", type=float, default=2_000.0)
    parser.add_argument("--seconds", type=float, default=60.0, help="publish at least this long")
    parser.add_argument(
        "--min-after", type=float, default=15.0, help="seconds of publishing after the close"
    )
    parser.add_argument(
        "--max-close", type=float, default=900.0, help="give up on the close after this"
    )
    parser.add_argument(
        "--idle", type=float, default=10.0, help="seconds of no events after, for the CPU"
    )
    parser.add_argument("--year-players", type=int, default=500)
    parser.add_argument("--year-days", type=int, default=365)
    parser.add_argument("--year-batch", type=int, default=200, help="events per checkpoint")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--only", choices=("scale", "year"))
    args = parser.parse_args()
    print(f"interpreter: {sys.executable} ({sys.version.split()[0]})")
    if args.only != "year":
        scale_run(args)
    if args.only != "scale":
        year_of_play(args)


if __name__ == "__main__":
    main()
