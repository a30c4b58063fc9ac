"""A request's parameters other than its body: path ids, query parameters, the brand header.

Each reader returns the parameter's value or raises a 400 WebError (`errors.refuse`) naming it.
"""

from collections.abc import Collection
from datetime import datetime
from http import HTTPStatus

from pydantic import TypeAdapter, ValidationError

from loyalty_streams.domain.events import Identifier
from loyalty_streams.domain.moments import Moment
from loyalty_streams.domain.validation import validation_summary
from loyalty_streams.http.errors import refuse

BRAND_HEADER = "X-Brand-Id"
"""The platform spec's `GET /loyalty/{playerId}` takes the brand from this header (or
`?brand_id=`)."""

_moment: TypeAdapter[datetime] = TypeAdapter(Moment)
_identifier: TypeAdapter[str] = TypeAdapter(Identifier)


def path_identifier(value: str, name: str) -> str:
    """The path parameter `name` as an id; raises a 400 WebError for anything else."""
    try:
        return _identifier.validate_python(value)
    except ValidationError as error:
        raise refuse(
            HTTPStatus.BAD_REQUEST, f"{name} {value!r} is not an id (no ':' or spaces)"
        ) from error


def query_moment(text: str | None, name: str) -> datetime | None:
    """The query parameter `name`'s time, RFC 3339 with an offset, in UTC; None when absent.
    Raises a 400 WebError naming the parameter for anything else (a time outside the calendar
    once in UTC included)."""
    if text is None:
        return None
    try:
        return _moment.validate_python(text)
    except ValidationError as error:
        raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {validation_summary(error)}") from error


def query_integer(text: str | None, name: str, default: int, most: int) -> int:
    """The query parameter `name`'s count from 1 to `most` (ASCII digits); `default` when
    absent. Raises a 400 WebError for anything else."""
    if text is None:
        return default
    if (
        not (text.isascii() and text.isdigit())
        or len(text) > len(str(most))  # and never past int()'s digit limit
        or not 1 <= int(text) <= most
    ):
        raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {text!r} is not 1 to {most}")
    return int(text)


def query_flag(text: str | None, name: str) -> bool:
    """The query parameter `name` as a flag: `true` or `false`, false when absent. Raises a
    400 WebError for anything else."""
    if text is None or text == "false":
        return False
    if text == "true":
        return True
    raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {text!r} is neither true nor false")


def query_choice(text: str | None, name: str, choices: Collection[str]) -> str | None:
    """The query parameter `name`, one of `choices`; None when absent. Raises a 400 WebError
    naming the choices for anything else."""
    if text is None or text in choices:
        return text
    raise refuse(HTTPStatus.BAD_REQUEST, f"{name}: {text!r} is not one of {', '.join(choices)}")
