"""`loyalty-streams worker`: check the topics, then run the Faust worker until a signal."""

import sys

import faust

from loyalty_streams.http.routes import install_routes
from loyalty_streams.kafka.admin import missing_topics_problem, partition_counts
from loyalty_streams.kafka.clients import KafkaClients
from loyalty_streams.kafka.topics import (
    COMMAND_REJECTIONS,
    COMMANDS,
    DEAD_LETTER,
    LEVEL_CHANGED,
    PLAYER_EVENTS,
    PLAYERS_CHANGELOG,
    PLAYERS_HISTORY,
    POINTS_ACCRUED,
    POINTS_ADJUSTED,
    POINTS_EXPIRY,
    PROGRAMMES,
    REDEMPTIONS,
    REWARDS,
    WORKERS,
)
from loyalty_streams.runtime.gc_tuning import tune_collector
from loyalty_streams.runtime.transactions import TransactionsUnavailable
from loyalty_streams.runtime.worker import Worker, create_app
from loyalty_streams.settings import Settings

REQUIRED_TOPICS = (
    PLAYER_EVENTS,
    COMMANDS,
    POINTS_ACCRUED,
    LEVEL_CHANGED,
    REDEMPTIONS,
    POINTS_ADJUSTED,
    POINTS_EXPIRY,
    REWARDS,
    COMMAND_REJECTIONS,
    DEAD_LETTER,
    PLAYERS_CHANGELOG,
    PLAYERS_HISTORY,
    PROGRAMMES,
    WORKERS,
)

CO_PARTITIONED = (PLAYER_EVENTS, COMMANDS, PLAYERS_CHANGELOG, PLAYERS_HISTORY)
"""Partition n of each holds the same players: they must have as many partitions."""


def topic_problems(settings: Settings, clients: KafkaClients | None = None) -> list[str]:
    """What keeps the worker from starting: missing topics, inputs not co-partitioned;
    `clients` makes the admin client that asks (by default librdkafka's)."""
    existing = partition_counts(settings, clients)
    missing = missing_topics_problem(settings, REQUIRED_TOPICS, existing)
    if missing:
        return [missing]
    counts = {name: existing[name] for name in CO_PARTITIONED}
    if len(set(counts.values())) > 1:
        found = ", ".join(f"{name} has {count}" for name, count in counts.items())
        return [f"topics must have the same number of partitions: {found}"]
    return []


def run_worker(settings: Settings, clients: KafkaClients | None = None) -> int:
    """Run the worker until a signal: 0, or 1 if its fold loop failed; 2 (with the reasons on
    stderr) if it cannot start: a weak API token secret, missing or skewed topics, exactly-once
    asked of a cluster without transactions. `clients` makes its Kafka clients (by default
    librdkafka's)."""
    # the secret first: it needs no broker, and a worker must not serve with a public key
    problems = settings.secret_problems("api_token_secret") or topic_problems(settings, clients)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    loyalty = Worker(settings, clients=clients)
    try:
        loyalty.fold_loop.start_transactions()  # exactly-once: before anything is served
    except TransactionsUnavailable as refused:
        print(refused, file=sys.stderr)
        loyalty.players.close()
        return 2
    app = create_app(settings)
    install_routes(app, loyalty)
    worker = faust.Worker(app, loyalty, loglevel=settings.log_level, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG below INFO; without it the
    # libraries' debug records are never built.
    worker.spinner = None
    tune_collector()
    worker.execute_from_commandline()
    return 1 if loyalty.fold_loop.failure is not None else 0
