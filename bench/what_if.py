"""Replay a synthetic history through the what-if engine and print events/s.

Target: at least 50,000 events/s on a 2-core machine, end to end (processes started, both runs
folded, figures merged, report built), counting each event once for both runs.

The history is the generator's (`devtools.generator.synthetic_events`, with cancellations),
aurora-casino's events only, placed on 12 partitions as producers place them, built before
the clock starts (reading the archive is `bench/archive_read.py`'s to measure). The baseline is
the shipped aurora-casino programme; the proposal lowers Silver to 500 EUR and Gold to 2,500
so that the generator's heavier players move. `--from-share F` lets the proposal govern from
that share of the history on (the history before it is folded once).

Run: .venv/bin/python bench/what_if.py [--events N] [--players N] [--days D]
     [--processes N] [--from-share F] [--profile]

Notes, measured on the project's 2-core machine while other test runs shared it (load 2.4 to
3.9), 400,000 events of 1,822 players over 11 days, three rounds (bench/README.md has the table
and what limits it):
- 2 processes, the proposal governing all of the history (every event folded twice):
  22,600 to 55,500 events/s on the .venv's pyenv 3.11.7 (median 33,800; 55,300 and 55,500 in
  the runs that had both cores), 27,900 to 59,200 on Debian's python3.11; 30 to 35 us of CPU an
  event for both runs (27 to 31 on Debian's);
- 1 process: 23,900 to 26,700 events/s;
- 2 processes, the proposal governing the last third (`--from-share 0.67`): 44,600 to 75,000.
The target is met when the two cores are free, missed by 30 to 55 % under that contention; the
domain's two folds are 88 to 90 % of the CPU.
"""

import argparse
import cProfile
import itertools
import pstats
import resource
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from loyalty_streams.devtools.generator import synthetic_events
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.programme import Programme, shipped_programmes
from loyalty_streams.runtime.gc_tuning import tune_collector
from loyalty_streams.whatif.render import csv_tables, render_html, render_text
from loyalty_streams.whatif.replay import MemorySource, Plan, ShareFold, positioned
from loyalty_streams.whatif.run import what_if

BRAND = "aurora-casino"
START = datetime(2026, 3, 1, tzinfo=UTC)
BRAND_SHARE = 0.45
"""The generator's share of aurora-casino players (`devtools.generator.BRANDS`)."""


def history(events: int, players: int, days: float, seed: int) -> list[PlayerEvent]:
    """`events` aurora-casino events of about `players` x 0.45 players over `days` days."""
    rate = events / BRAND_SHARE / (days * 86_400)
    stream = synthetic_events(players, seed, START, rate=rate, cancellations=True)
    return list(itertools.islice((e for e in stream if e.brand_id == BRAND), events))


def programmes() -> tuple[Programme, Programme]:
    """The shipped programme, and the proposal: Silver at 500, Gold at 2,500 EUR."""
    baseline = next(p for p in shipped_programmes() if p.brand_id == BRAND)
    lower = {"Silver": Decimal(500), "Gold": Decimal(2500)}
    levels = [
        level.model_copy(update={"threshold": lower[level.name]}) if level.name in lower else level
        for level in baseline.levels
    ]
    return baseline, baseline.model_copy(update={"version": 2, "levels": levels})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--players", type=int, default=4_000, help="of every brand")
    parser.add_argument("--days", type=float, default=14.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--from-share", type=float, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="what-ifs of the same history")
    parser.add_argument("--profile", action="store_true", help="one process, under cProfile")
    args = parser.parse_args()

    began = time.perf_counter()
    events = history(args.events, args.players, args.days, args.seed)
    source = MemorySource(positioned(events))
    first, last = events[0].occurred_at, events[-1].occurred_at
    until = last + timedelta(days=1)
    since = None
    if args.from_share is not None:
        since = first + (last - first) * args.from_share
    baseline, proposal = programmes()
    print(
        f"built {len(events):,} events of {len({e.player_id for e in events}):,} players "
        f"({first:%Y-%m-%d} to {last:%Y-%m-%d}) in {time.perf_counter() - began:.1f} s"
    )
    tune_collector()  # as the CLI does; forked processes inherit it, the events frozen
    if args.profile:
        plan = Plan(BRAND, (baseline,), proposal, since, until)
        fold = ShareFold(plan)
        profile = cProfile.Profile()
        profile.enable()
        fold.fold_all(source(0, 1))
        fold.finish()
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return
    for _ in range(args.repeat):
        measure(source, baseline, proposal, since, until, args.processes)


def measure(
    source: MemorySource,
    baseline: Programme,
    proposal: Programme,
    since: datetime | None,
    until: datetime,
    processes: int,
) -> None:
    """One what-if of the history, timed; then its rendering."""
    cpu = _cpu_seconds()
    report = what_if(source, BRAND, [baseline], proposal, since, until, "day", processes)
    cpu = _cpu_seconds() - cpu
    stats = report.stats
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        f"{stats.events:,} events ({stats.folds:,} folds, both runs) of {stats.players:,} "
        f"players in {processes} process(es), proposal from "
        f"{'the start' if since is None else since.isoformat()}: {stats.seconds:.2f} s, "
        f"{stats.events_per_second:,.0f} events/s (each event once, both runs), "
        f"{stats.folds / stats.seconds:,.0f} folds/s; CPU {cpu:.1f} s in all, "
        f"{cpu / stats.events * 1e6:.1f} us an event"
    )
    rendering = time.perf_counter()
    render_text(report)
    csv_tables(report)
    page = render_html(report)
    print(
        f"rendered (text, CSV, HTML of {len(page) / 1e6:.1f} MB) in "
        f"{time.perf_counter() - rendering:.2f} s; largest process {children / 1024:,.0f} MB, "
        f"this one {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB; "
        f"players moved: {sum(m.players for m in report.moves if m.baseline != m.proposal):,}"
    )


def _cpu_seconds() -> float:
    """CPU time (user and system) of this process and of its children that ended."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


if __name__ == "__main__":
    main()
