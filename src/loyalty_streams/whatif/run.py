"""Run a what-if: check the proposal, replay a history in processes, build the report."""

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from loyalty_streams.domain.programme import Programme
from loyalty_streams.whatif.replay import Plan, Source, fold_in_processes
from loyalty_streams.whatif.report import Period, Report, build_report


class ProposalRefused(ValueError):
    """The proposal cannot be compared with the brand's programme; the message says why."""


def check_proposal(brand_id: str, baseline: Sequence[Programme], proposed: Programme) -> None:
    """Refuse (`ProposalRefused`) a proposal of another brand, or a brand without a version.
    The proposal itself is a validated `Programme` (the domain refuses an inconsistent one)."""
    if proposed.brand_id != brand_id:
        raise ProposalRefused(
            f"brand_id: the proposal is for {proposed.brand_id!r}, not {brand_id!r}"
        )
    if not any(programme.brand_id == brand_id for programme in baseline):
        raise ProposalRefused(f"no programme version of brand {brand_id!r} to compare with")


def what_if(
    source: Source,
    brand_id: str,
    baseline: Sequence[Programme],
    proposed: Programme,
    since: datetime | None,
    until: datetime,
    by: Period | str = Period.DAY,
    processes: int = 1,
    *,
    top: int = 20,
    partitions: int | None = None,
    start_method: str = "fork",
) -> Report:
    """Replay `source` (the brand's history: see `replay.Source`) through `baseline` (the
    brand's versions, as they took effect; other brands' are ignored) and through the same with
    `proposed` governing from `since` (None: all of the history), and report [since, until)
    (UTC; `since` None: from the first event's brand day) by `by` (`day`, `month`), with the
    `top` most affected players. Folds in `processes` processes (`replay.fold_in_processes`,
    `start_method`).
    `partitions`: the topic's partition count, to skip events not on their key's partition
    (None: not checked).

    Raises `ProposalRefused` (a ValueError) for a proposal that cannot be compared, ValueError
    for a time without a zone or `since` not before `until`, `RuntimeError` when a process
    fails.
    """
    check_proposal(brand_id, baseline, proposed)
    for bound in (since, until):
        if bound is not None and bound.utcoffset() is None:
            raise ValueError(f"{bound.isoformat()} has no time zone")
    since = None if since is None else since.astimezone(UTC)
    until = until.astimezone(UTC)
    if since is not None and since >= until:
        raise ValueError(f"from ({since.isoformat()}) must be before to ({until.isoformat()})")
    plan = Plan(
        brand_id=brand_id,
        baseline=tuple(p for p in baseline if p.brand_id == brand_id),
        proposed=proposed,
        since=since,
        until=until,
        by=Period(by),
        top=top,
        partitions=partitions,
    )
    began = time.perf_counter()
    figures = fold_in_processes(plan, source, processes, start_method)
    return build_report(plan.setup, figures, processes, time.perf_counter() - began)
