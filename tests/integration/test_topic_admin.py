"""Applying the declarations creates what is missing, reports drift, and changes nothing else."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from loyalty_streams.devtools.broker import EmbeddedBroker
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.topics import PLAYER_EVENTS, TopicSpec, load_specs
from loyalty_streams.settings import Settings
from tests.integration.conftest import on_both_session_brokers

CLI = Path(sys.executable).with_name("loyalty-streams")


@pytest.fixture
def specs(settings: Settings) -> list[TopicSpec]:
    return load_specs(settings.topics_dir)


def _spec(specs: list[TopicSpec], name: str) -> TopicSpec:
    return next(spec for spec in specs if spec.name == name)


def test_apply_on_a_fresh_broker_creates_every_declared_topic(specs: list[TopicSpec]) -> None:
    with EmbeddedBroker() as broker:
        fresh = Settings(bootstrap_servers=broker.bootstrap_servers, security_protocol="PLAINTEXT")
        report = apply_topics(fresh, specs)
        assert report.ok, report.render()
        assert [r.status for r in report.results] == ["created"] * len(specs)
        assert "replication factor 1, declared 3" in report.render()
        assert "min.insync.replicas 1, declared 2" in report.render()

        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        metadata = admin.list_topics(timeout=5)
        assert set(metadata.topics) == {spec.name for spec in specs}  # nothing auto-created
        resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in specs]
        described = admin.describe_configs(resources)
        for spec, resource in zip(specs, resources, strict=True):
            assert len(metadata.topics[spec.name].partitions) == spec.partitions
            configs = {key: entry.value for key, entry in described[resource].result().items()}
            assert configs == {**spec.config, "min.insync.replicas": "1"}


@on_both_session_brokers
def test_applying_again_reports_unchanged(settings: Settings, specs: list[TopicSpec]) -> None:
    report = apply_topics(settings, specs)
    assert report.ok, report.render()
    assert [r.status for r in report.results] == ["unchanged"] * len(specs)


@on_both_session_brokers
def test_other_partitions_or_config_are_reported_not_applied(
    settings: Settings, specs: list[TopicSpec]
) -> None:
    declared = _spec(specs, PLAYER_EVENTS)
    drifted = dataclasses.replace(
        declared,
        partitions=declared.partitions + 4,
        config={**declared.config, "retention.ms": "1000"},
    )
    report = apply_topics(settings, [drifted])
    assert not report.ok
    (result,) = report.results
    assert result.status == "differs"
    assert f"partitions is {declared.partitions}, want {drifted.partitions}" in report.render()
    assert f"retention.ms is {declared.config['retention.ms']}, want 1000" in report.render()
    assert apply_topics(settings, [declared]).ok  # the topic itself was left alone


def test_cli_topics_apply_prints_the_report(settings: Settings, specs: list[TopicSpec]) -> None:
    with EmbeddedBroker() as broker:
        env = {
            **os.environ,
            "LOYALTY_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "LOYALTY_SECURITY_PROTOCOL": "PLAINTEXT",
        }
        command = [str(CLI), "topics", "apply", "--dir", str(settings.topics_dir)]
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert len(first.stdout.splitlines()) == len(specs)
    for spec in specs:
        assert f"{spec.name}: created" in first.stdout
        assert f"{spec.name}: unchanged" in second.stdout
    assert second.returncode == 0, second.stderr
