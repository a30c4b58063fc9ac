"""Which programme version governs an event: the latest in effect at the event's time."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from loyalty_streams.domain.catalogue import Catalogue, StaleVersion
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


def test_a_new_version_must_number_above_the_latest_and_a_successor_does() -> None:
    aurora = programme()
    catalogue = Catalogue([aurora])
    with pytest.raises(StaleVersion, match="version: 1 is not above the latest, 1"):
        catalogue.check_new(aurora)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    successor = catalogue.successor(aurora.brand_id, later, promotions=())
    assert (successor.version, successor.effective_from) == (2, later)
    catalogue.check_new(successor)
    with pytest.raises(KeyError):
        catalogue.successor("nobody", later)
    overlapping = [
        {"name": n, "multiplier": "2", "starts_at": later, "ends_at": later + timedelta(days=2)}
        for n in ("A", "B")
    ]
    with pytest.raises(ValidationError, match="overlap"):
        catalogue.successor(aurora.brand_id, later, promotions=overlapping)
