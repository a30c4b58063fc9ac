"""The CLI refuses JSON that names a key twice before it asks any broker: parsers keep the last."""

from pathlib import Path

import pytest

from loyalty_streams.cli.main import main
from tests.domain.builders import programme


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
