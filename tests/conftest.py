"""The suite's broker: one embedded Tansu per test session, on a free port, topics applied.

A free port per session lets parallel runs (and a developer's own broker on 9092) coexist.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from loyalty_streams.edges.broker import EmbeddedBroker
from loyalty_streams.edges.topic_admin import apply_topics
from loyalty_streams.settings import Settings
from loyalty_streams.streams.topics import load_specs

TOPICS_DIR = Path(__file__).resolve().parent.parent / "topics"


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap servers of the session broker, with every declared topic created."""
    with EmbeddedBroker() as broker:
        settings = Settings(
            bootstrap_servers=broker.bootstrap_servers, security_protocol="PLAINTEXT"
        )
        report = apply_topics(settings, load_specs(TOPICS_DIR))
        assert report.ok, report.render()
        yield broker.bootstrap_servers


@pytest.fixture
def settings(kafka: str, tmp_path: Path) -> Settings:
    """Settings aimed at the session broker, with the repo's topics and a fresh data dir; a
    development run, so the workers it starts accept the default secrets."""
    return Settings(
        bootstrap_servers=kafka,
        security_protocol="PLAINTEXT",
        topics_dir=TOPICS_DIR,
        data_dir=tmp_path / "data",
        development=True,
    )
