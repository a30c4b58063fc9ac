"""Query parameters the API reads: a bad one is a 400 with a message, whatever its size."""

import pytest

from loyalty_streams.http.parameters import query_integer


def test_a_count_past_pythons_digit_limit_is_a_bad_request() -> None:
    with pytest.raises(Exception, match="is not 1 to 500") as refused:
        query_integer("9" * 5000, "limit", 50, 500)
    assert getattr(refused.value, "code", None) == 400
