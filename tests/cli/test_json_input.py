"""The CLI's JSON input: events and commands validated before anything is published (a key
named twice, which parsers would take the last of, included)."""

from pathlib import Path

import orjson
import pytest

from loyalty_streams.cli.main import main
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.runtime.test_driver import MemoryCluster
from tests.domain.builders import bet, cancellation, programme


def test_the_command_cli_publishes_nothing_when_a_key_appears_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The CLI re-encodes commands before publishing: the worker would see only the last key."""
    doubled = (
        '{"type": "RedeemPoints", "command_id": "r", "brand_id": "b", "player_id": "p",'
        ' "issued_at": "2026-11-29T12:00:00Z", "points": "1000", "points": "100000"}'
    )
    assert main(["command", doubled]) == 1  # before any broker is asked
    assert "appears twice" in capsys.readouterr().err


def test_programmes_load_publishes_nothing_when_a_file_names_a_key_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator's file with a threshold written twice would silently keep the second."""
    text = programme().model_dump_json(indent=2)
    doubled = text.replace('"version": ', '"version": 99, "version": ', 1)
    path = tmp_path / "aurora.json"
    path.write_text(doubled)
    assert main(["programmes", "load", str(path)]) == 1  # before any broker is asked
    assert "appears twice" in capsys.readouterr().err


def test_the_event_cli_publishes_valid_events_to_their_players_partition(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`loyalty-streams event` is how a person publishes an event by hand: validated, keyed by
    its player, on the partition Kafka's murmur2 gives the key."""
    cluster = MemoryCluster(12, range(12))
    placed = bet("25", bet_id="b-1").model_dump_json()
    voided = cancellation("b-1", "25", player_id="p1").model_dump_json()
    assert main(["event", placed, voided], clients=cluster) == 0
    assert "2 record(s) published to casino.player-events" in capsys.readouterr().out
    home = partition_of(b"aurora-casino:p1", 12)
    values = [orjson.loads(m.value()) for m in cluster.log(PLAYER_EVENTS, home)]
    assert [v["type"] for v in values] == ["BetPlaced", "BetCancelled"]
    assert all(m.key() == b"aurora-casino:p1" for m in cluster.log(PLAYER_EVENTS, home))


def test_the_event_cli_publishes_nothing_when_one_event_is_bad(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = MemoryCluster(12, range(12))
    good = bet("25").model_dump_json()
    bad = orjson.dumps(orjson.loads(cancellation("b-1", "1").model_dump_json()) | {"amount": "0"})
    assert main(["event", good, bad.decode()], clients=cluster) == 1
    assert "a cancellation cancels an amount above zero" in capsys.readouterr().err
    assert all(not cluster.log(PLAYER_EVENTS, p) for p in range(12))
