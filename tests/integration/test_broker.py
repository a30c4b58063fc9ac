"""The embedded broker starts fast, serves Kafka clients, and never outlives its owner."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from loyalty_streams.devtools.broker import BrokerError, EmbeddedBroker, free_port

CLI = Path(sys.executable).with_name("loyalty-streams")


def _create_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result()


def _round_trip(bootstrap: str, topic: str, value: bytes) -> bytes | None:
    """Produce one record and read it back from the partition's start (no group join)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, key=b"k", value=value)
    assert producer.flush(5) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "round-trip", "enable.auto.commit": False}
    )
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                return message.value()
        return None
    finally:
        consumer.close()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def test_round_trips_a_record_and_leaves_no_process() -> None:
    started = time.monotonic()
    with EmbeddedBroker() as broker:
        assert time.monotonic() - started < 5
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        pid = broker.pid
        _create_topic(broker.bootstrap_servers, "round-trip")
        assert _round_trip(broker.bootstrap_servers, "round-trip", b"hello") == b"hello"
    assert not _pid_exists(pid)
    assert not _accepts_connections(broker.port)


def test_two_brokers_at_once_are_independent() -> None:
    with EmbeddedBroker() as first, EmbeddedBroker() as second:
        assert first.port != second.port
        _create_topic(first.bootstrap_servers, "only-on-first")
        _create_topic(second.bootstrap_servers, "only-on-second")
        assert _round_trip(first.bootstrap_servers, "only-on-first", b"one") == b"one"
        assert _round_trip(second.bootstrap_servers, "only-on-second", b"two") == b"two"
        second_admin = AdminClient({"bootstrap.servers": second.bootstrap_servers})
        assert set(second_admin.list_topics(timeout=5).topics) == {"only-on-second"}


def test_stops_at_once_while_clients_are_connected() -> None:
    with EmbeddedBroker() as broker:
        admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
        admin.list_topics(timeout=5)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2


def test_a_taken_port_is_a_clear_error() -> None:
    with EmbeddedBroker() as broker, pytest.raises(BrokerError, match="cannot start"):
        EmbeddedBroker(port=broker.port).start()


def test_a_broker_not_ready_in_time_is_an_error_and_is_stopped() -> None:
    broker = EmbeddedBroker(start_timeout=0)
    with pytest.raises(BrokerError, match="was not ready within 0 s; its log ends with"):
        broker.start()
    assert not broker.running
    assert not _accepts_connections(broker.port)


def _wait_for_kafka(bootstrap: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 10
    port = int(bootstrap.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if _accepts_connections(port):
            try:
                AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=2)
            except KafkaException:
                pass
            else:
                return
        time.sleep(0.05)
    pytest.fail(f"no broker on {bootstrap} after 10 s")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_cli_broker_serves_until_signalled(stop_signal: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "LOYALTY_BROKER_PORT": str(port), "LOYALTY_BROKER_HOST": "127.0.0.1"}
    process = subprocess.Popen(
        [str(CLI), "broker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _wait_for_kafka(f"127.0.0.1:{port}", process)
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert f"listening on 127.0.0.1:{port}" in stdout
    assert "Traceback" not in stderr
    assert not _accepts_connections(port)
