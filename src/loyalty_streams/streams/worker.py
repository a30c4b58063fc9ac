"""`loyalty-streams worker`: check the topics, then run the Faust worker until a signal."""

import sys

import faust
from confluent_kafka.admin import AdminClient

from loyalty_streams.domain.programme import shipped_programmes
from loyalty_streams.kafka_config import kafka_client_config
from loyalty_streams.settings import Settings
from loyalty_streams.streams.app import create_app, quiet_library_loggers
from loyalty_streams.streams.topics import DEAD_LETTER, LEVEL_CHANGED, PLAYER_EVENTS, POINTS_ACCRUED

REQUIRED_TOPICS = (PLAYER_EVENTS, POINTS_ACCRUED, LEVEL_CHANGED, DEAD_LETTER)


def missing_topics(settings: Settings) -> list[str]:
    """Declared topics the cluster lacks (asking for all topics creates none)."""
    existing = AdminClient({**kafka_client_config(settings)}).list_topics(timeout=15).topics
    return [name for name in REQUIRED_TOPICS if name not in existing]


def run_worker(settings: Settings) -> int:
    missing = missing_topics(settings)
    if missing:
        print(
            f"topics missing on {settings.bootstrap_servers}: {', '.join(missing)}; "
            "create them first with `loyalty-streams topics apply`",
            file=sys.stderr,
        )
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, {p.brand_id: p for p in shipped_programmes()})
    worker = faust.Worker(app, loglevel=settings.log_level, redirect_stdouts=False)
    # Faust's terminal spinner sets the root logger to DEBUG below INFO, which makes aiokafka
    # and Faust build a debug record per message on the hot path; without it they stay quiet.
    worker.spinner = None
    quiet_library_loggers()
    worker.execute_from_commandline()
    return 0
