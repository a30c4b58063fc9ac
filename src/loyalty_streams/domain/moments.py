"""Points in time as every contract takes them: RFC 3339 text with an offset, held in UTC.

pydantic gives parsed times its own zone class, whose offset is a call back into Python from
every comparison, conversion and serialisation of the time; the engine compares and writes event
times many times per event. Converted once at the edge to the standard library's UTC, they cost
what a naive time costs, and every time the engine writes reads the same way (`+00:00`).

pydantic alone would also take a JSON number (`0` is 1970) or a string of digits as a Unix time,
and a time whose conversion to UTC leaves the calendar (`0001-01-01T00:00:00+14:00`) would raise
`OverflowError` instead of a validation error: both are refused here.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator

RFC_3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)")
"""RFC 3339's date-time (section 5.6), with the `T` the standard requires."""


def rfc_3339(value: Any) -> Any:
    """Let a `datetime` or RFC 3339 text through; raises `ValueError` for anything else."""
    if isinstance(value, datetime) or (isinstance(value, str) and RFC_3339.fullmatch(value)):
        return value
    raise ValueError("a time must be RFC 3339 text with an offset, e.g. 2026-11-21T09:30:00Z")


def in_utc(moment: datetime) -> datetime:
    """The same instant in the standard library's UTC; raises `ValueError` outside years 1-9999."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is outside the years 1-9999 in UTC") from None


Moment = Annotated[AwareDatetime, BeforeValidator(rfc_3339), AfterValidator(in_utc)]
"""An aware time (an offset is required), given as RFC 3339 text; held in UTC."""
