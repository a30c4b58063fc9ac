"""Points in time as every contract takes them: aware, and held in UTC.

pydantic gives parsed times its own zone class, whose offset is a call back into Python from
every comparison, conversion and serialisation of the time; the engine compares and writes event
times many times per event. Converted once at the edge to the standard library's UTC, they cost
what a naive time costs, and every time the engine writes reads the same way (`+00:00`).
"""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def in_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


Moment = Annotated[AwareDatetime, AfterValidator(in_utc)]
"""An aware time (an offset is required); held in UTC."""
