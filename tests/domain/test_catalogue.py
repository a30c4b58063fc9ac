"""Which programme version governs an event: the latest in effect at the event's time."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from loyalty_streams.domain.catalogue import (
    BACKDATE_TOLERANCE,
    Backdated,
    Catalogue,
    StaleVersion,
    brand_recheck_audit,
    publication_audit,
)
from loyalty_streams.domain.commands import RecheckBrand
from loyalty_streams.domain.outputs import AuditAction, AuditOutcome
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
        catalogue.check_new(aurora, START)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    successor = catalogue.successor(aurora.brand_id, later, promotions=())
    assert (successor.version, successor.effective_from) == (2, later)
    catalogue.check_new(successor, START)
    with pytest.raises(KeyError):
        catalogue.successor("nobody", later)
    overlapping = [
        {"name": n, "multiplier": "2", "starts_at": later, "ends_at": later + timedelta(days=2)}
        for n in ("A", "B")
    ]
    with pytest.raises(ValidationError, match="overlap"):
        catalogue.successor(aurora.brand_id, later, promotions=overlapping)


def test_a_new_version_takes_effect_from_now_on_unless_it_is_a_backfill() -> None:
    catalogue = Catalogue([AURORA])
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    at = {
        offset: catalogue.successor(AURORA.brand_id, now + offset)
        for offset in (
            timedelta(days=1),
            timedelta(0),
            -BACKDATE_TOLERANCE,  # the request's own few seconds
            -BACKDATE_TOLERANCE - timedelta(microseconds=1),
            timedelta(days=-365),
        )
    }
    for offset, version in at.items():
        if offset >= -BACKDATE_TOLERANCE:
            catalogue.check_new(version, now)
        else:
            with pytest.raises(Backdated, match=r"effective_from: .* is before now"):
                catalogue.check_new(version, now)
        catalogue.check_new(version, now, backfill=True)  # an admin's explicit backfill
    with pytest.raises(StaleVersion):  # a backfill is still a new version
        catalogue.check_new(AURORA, now, backfill=True)


def test_the_audit_entry_of_a_version_that_takes_effect_before_it_was_published_says_so() -> None:
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    later = AURORA.model_copy(update={"version": 2, "effective_from": now})
    entry = publication_audit(later, AURORA, "anna", "new rules", now + timedelta(seconds=1))
    assert entry.action == AuditAction.PROGRAMME_PUBLISH
    backfilled = AURORA.model_copy(update={"version": 2, "effective_from": now - timedelta(days=3)})
    entry = publication_audit(backfilled, AURORA, "anna", "late fix", now)
    assert (entry.action, entry.outcome) == (AuditAction.PROGRAMME_BACKFILL, AuditOutcome.APPLIED)


def test_a_brand_recheck_has_one_audit_entry_without_a_player() -> None:
    issued = START + timedelta(days=40)
    record = RecheckBrand(
        command_id="rb-1", brand_id="aurora-casino", partition=7, issued_at=issued,
        actor="anna", reason="Gold retention raised",
    )  # fmt: skip
    at = issued + timedelta(seconds=1)
    entry = brand_recheck_audit(record, at)
    assert (entry.output_id, entry.command_id, entry.brand_id, entry.player_id) == (
        "rb-1:audit", "rb-1", "aurora-casino", None,
    )  # fmt: skip
    assert (entry.action, entry.outcome) == (AuditAction.LEVEL_RECHECK, AuditOutcome.APPLIED)
    assert (entry.actor, entry.reason, entry.occurred_at, entry.issued_at) == (
        "anna", "Gold retention raised", at, issued,
    )  # fmt: skip
    assert entry.before is None and entry.after is None
