"""Every version of every brand's programme, and which one governs a moment.

A new version takes effect for events at or after its `effective_from`; an event keeps the rules
that were in force when it happened, however late it arrives. That is what lets an accrual name
the version it used and be explained later, and why a new version takes effect from now on: one
dated in the past would silently change the rules late events fold under, so only an explicit
backfill may, and its audit entry says so.
"""

from bisect import bisect_right
from datetime import datetime, timedelta
from typing import Any

from loyalty_streams.domain.commands import RecheckBrand
from loyalty_streams.domain.outputs import AuditAction, AuditEntry, AuditOutcome
from loyalty_streams.domain.programme import Programme

BACKDATE_TOLERANCE = timedelta(seconds=5)
"""How far before now a new version may still take effect without being a backfill: a request's
own few seconds (and a client's clock a little behind)."""


class StaleVersion(ValueError):
    """A new version must number above the brand's latest; an existing number is history."""


class Backdated(ValueError):
    """A new version must take effect from now on, unless it is an explicit backfill."""


def backdated(programme: Programme, now: datetime) -> bool:
    """Whether `programme` takes effect before `now`, beyond `BACKDATE_TOLERANCE`."""
    return programme.effective_from < now - BACKDATE_TOLERANCE


class Catalogue:
    """Programme versions by brand, ordered by the moment they take effect."""

    def __init__(self, programmes: list[Programme] | None = None) -> None:
        # one (starts, versions) pair per brand, replaced whole: a reader in another thread
        # never sees the two out of step
        self._by_brand: dict[str, tuple[list[datetime], list[Programme]]] = {}
        for programme in programmes or ():
            self.add(programme)

    def add(self, programme: Programme) -> None:
        """Add a version; the same brand and version number again replaces the earlier copy."""
        versions = [
            known
            for known in self.versions(programme.brand_id)
            if known.version != programme.version
        ]
        versions.append(programme)
        versions.sort(key=lambda p: (p.effective_from, p.version))
        self._by_brand[programme.brand_id] = ([p.effective_from for p in versions], versions)

    def in_effect(self, brand_id: str, moment: datetime) -> Programme | None:
        """The version in force at `moment`: the latest to take effect at or before it."""
        entry = self._by_brand.get(brand_id)
        if entry is None:
            return None
        starts, versions = entry
        index = bisect_right(starts, moment) - 1
        return None if index < 0 else versions[index]

    def latest(self, brand_id: str) -> Programme | None:
        """The brand's highest version number, whenever it takes effect."""
        return max(self.versions(brand_id), key=lambda p: p.version, default=None)

    def check_new(self, programme: Programme, now: datetime, *, backfill: bool = False) -> None:
        """Refuse a version that does not number above the brand's latest (`StaleVersion`), or
        that takes effect before `now` unless `backfill` is asked for explicitly (`Backdated`)."""
        latest = self.latest(programme.brand_id)
        if latest is not None and programme.version <= latest.version:
            raise StaleVersion(
                f"version: {programme.version} is not above the latest, {latest.version}"
            )
        if backdated(programme, now) and not backfill:
            raise Backdated(
                f"effective_from: {programme.effective_from.isoformat()} is before now "
                f"({now.isoformat()}); a version takes effect from now on unless it is "
                "published as a backfill"
            )

    def successor(self, brand_id: str, effective_from: datetime, **changes: Any) -> Programme:
        """The brand's latest version with `changes`, numbered next, from `effective_from`;
        validated afresh (pydantic's ValidationError names a bad field). KeyError: no brand."""
        latest = self.latest(brand_id)
        if latest is None:
            raise KeyError(brand_id)
        return latest.model_copy(
            update=changes | {"version": latest.version + 1, "effective_from": effective_from}
        )

    def versions(self, brand_id: str) -> list[Programme]:
        entry = self._by_brand.get(brand_id)
        return [] if entry is None else list(entry[1])

    @property
    def brands(self) -> list[str]:
        return sorted(self._by_brand)

    def __len__(self) -> int:
        return sum(len(versions) for _, versions in self._by_brand.values())


def publication_audit(
    programme: Programme, previous: Programme | None, actor: str, reason: str, at: datetime
) -> AuditEntry:
    """The audit trail's entry for publishing a programme version at `at`: the whole before and
    after; its action is `programme.backfill` when the version takes effect before `at`."""
    return AuditEntry(
        output_id=f"programme:{programme.brand_id}:{programme.version}:{at.isoformat()}",
        brand_id=programme.brand_id,
        player_id=None,
        occurred_at=at,
        actor=actor,
        action=AuditAction.PROGRAMME_BACKFILL
        if backdated(programme, at)
        else AuditAction.PROGRAMME_PUBLISH,
        outcome=AuditOutcome.APPLIED,
        reason=reason,
        command_id=None,
        before=None if previous is None else previous.model_dump(mode="json"),
        after=programme.model_dump(mode="json"),
    )


def brand_recheck_audit(command: RecheckBrand, at: datetime) -> AuditEntry:
    """The audit trail's one entry for re-checking every player of a brand, published at `at`
    (whichever partition's record `command` is): no player, nothing before or after; each
    player's re-check shows in their history."""
    return AuditEntry(
        output_id=f"{command.command_id}:audit",
        brand_id=command.brand_id,
        player_id=None,
        occurred_at=at,
        actor=command.actor,
        action=AuditAction.LEVEL_RECHECK,
        outcome=AuditOutcome.APPLIED,
        reason=command.reason,
        command_id=command.command_id,
        before=None,
        after=None,
        issued_at=command.issued_at,
    )
