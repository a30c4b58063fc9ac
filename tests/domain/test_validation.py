"""JSON that names a key twice is refused before anything reads it: parsers keep the last one."""

import pytest

from loyalty_streams.domain.validation import check_unique_keys


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
