"""JSON that names a key twice is refused before anything reads it: parsers keep the last one."""

from pathlib import Path

import pytest

from loyalty_streams.cli.main import main
from loyalty_streams.domain.validation import check_unique_keys
from loyalty_streams.http.base import query_integer
from tests.domain.builders import programme


@pytest.mark.parametrize(
    "text",
    [
        '{"points": "1", "points": "100000"}',
        '{"a": {"b": 1, "b": 2}}',
        '[{"x": 1}, {"y": 1, "y": 1}]',
    ],
)
def test_a_key_twice_in_any_object_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="appears twice"):
        check_unique_keys(text)


def test_json_with_unique_keys_passes() -> None:
    check_unique_keys('{"a": {"b": 1}, "b": [{"a": 2}]}')


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


def test_a_count_past_pythons_digit_limit_is_a_bad_request() -> None:
    with pytest.raises(Exception, match="is not 1 to 500") as refused:
        query_integer("9" * 5000, "limit", 50, 500)
    assert getattr(refused.value, "code", None) == 400


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
