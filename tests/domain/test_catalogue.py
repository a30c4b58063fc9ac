"""Which programme version governs an event: the latest in effect at the event's time."""

from datetime import UTC, datetime, timedelta

from loyalty_streams.domain.catalogue import Catalogue
from tests.domain.builders import programme

AURORA = programme()
START = AURORA.effective_from


def test_a_new_version_governs_events_from_its_effective_time_on() -> None:
    v2 = AURORA.model_copy(update={"version": 2, "effective_from": START + timedelta(days=30)})
    catalogue = Catalogue([v2, AURORA])
    assert catalogue.in_effect("aurora-casino", START - timedelta(seconds=1)) is None
    assert catalogue.in_effect("aurora-casino", START) is AURORA
    assert (
        catalogue.in_effect("aurora-casino", v2.effective_from - timedelta(microseconds=1))
        is AURORA
    )
    assert catalogue.in_effect("aurora-casino", v2.effective_from) is v2
    assert catalogue.in_effect("nowhere", START) is None
    assert [p.version for p in catalogue.versions("aurora-casino")] == [1, 2]


def test_the_same_version_published_again_replaces_the_earlier_copy() -> None:
    renamed = AURORA.model_copy(update={"name": "Aurora Rewards"})
    catalogue = Catalogue([AURORA, renamed])
    assert len(catalogue) == 1
    assert catalogue.in_effect("aurora-casino", datetime(2026, 6, 1, tzinfo=UTC)) is renamed
