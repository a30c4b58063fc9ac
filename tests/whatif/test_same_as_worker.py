"""Same rules, same code: a run of the what-if emits exactly what a worker emits for the same
events, output for output (points, reversals, level changes, cashback, tier rewards, expiry).

The worker is the real fold loop on RocksDB (`runtime.test_driver.WorkerDriver`): events piped
to its partitions, folded and checkpointed, then its timers fired up to the end of the range.
The baseline runs under two versions (the second from mid-stream); the proposal governs from
mid-stream too, and its worker gets the brand re-check an operator would publish then
(`RecheckBrand` named `what-if` on every partition), so its level changes carry the same ids.
The stream is the generator's, with cancellations, over two weeks of 25 players (the range
runs a week longer, idle), under thresholds low enough that players climb, fall back after
their grace, get cashback capped and have idle balances warned about and expired.
"""

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from loyalty_streams.devtools.generator import synthetic_events
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.commands import RecheckBrand
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import Output, encode
from loyalty_streams.domain.programme import Programme
from loyalty_streams.kafka.topics import (
    COMMANDS,
    LEVEL_CHANGED,
    POINTS_ACCRUED,
    POINTS_EXPIRY,
    REWARDS,
)
from loyalty_streams.runtime.fold import OUTPUT_TOPICS
from loyalty_streams.runtime.test_driver import WorkerDriver
from loyalty_streams.whatif.replay import (
    BASELINE,
    PROPOSAL,
    RECHECK_ID,
    MemorySource,
    Plan,
    ShareFold,
    positioned,
)
from tests.whatif.support import AURORA, aurora

COMPARED = (POINTS_ACCRUED, LEVEL_CHANGED, REWARDS, POINTS_EXPIRY)
"""The topics of what the rules decide (follow-ups are derived from them by the fold)."""

PARTITIONS = 3
START = datetime(2026, 3, 2, tzinfo=UTC)
SINCE = datetime(2026, 3, 12, 7, 30, tzinfo=UTC)
UNTIL = datetime(2026, 3, 25, tzinfo=UTC)


def low(programme: Programme, version: int, effective_from: datetime, **scale: str) -> Programme:
    """aurora-casino with thresholds low enough for the generator's stakes: Silver at 20 EUR
    (tier reward 100 GC), Gold at 100 (retention 60), Platinum at 400; small cashback caps,
    a 2-day grace, balances idle 6 days expire (warned 2 days ahead)."""
    factor = Decimal(scale.get("factor", "1"))
    levels = []
    for level, threshold, cap, reward in zip(
        programme.levels,
        ("0", "20", "100", "400"),
        (None, "0.5", "1", "5"),
        (0, 100, 500, 900),
        strict=True,
    ):
        update: dict[str, Any] = {
            "threshold": Decimal(threshold) * factor,
            "cashback_daily_cap": None if cap is None else Decimal(cap),
            "tier_up_reward_gc": Decimal(reward),
        }
        if level.name == "Gold":
            update["retention"] = Decimal(60) * factor
        levels.append(level.model_copy(update=update))
    policies = programme.policies.model_copy(
        update={"inactivity_expiry_days": 6, "expiry_warning_days": 2, "downgrade_grace_days": 2}
    )
    return programme.model_copy(
        update={
            "version": version,
            "effective_from": effective_from,
            "levels": levels,
            "policies": policies,
        }
    )


BASELINE_VERSIONS = (
    low(aurora(), 1, datetime(2026, 1, 1, tzinfo=UTC)),
    low(aurora(), 2, datetime(2026, 3, 9, tzinfo=UTC), factor="1.5"),
)
PROPOSED = low(aurora(), 3, datetime(2026, 6, 1, tzinfo=UTC), factor="0.6")


def stream() -> list[PlayerEvent]:
    """About 2,500 aurora-casino events of 25 players over two weeks, with cancellations."""
    events = synthetic_events(60, 11, START, rate=0.003, cancellations=True)
    return [e for e in itertools.islice(events, 5_200) if e.brand_id == AURORA]


def replayed(events: Sequence[PlayerEvent], since: datetime | None) -> list[list[Output]]:
    """Both runs' outputs, as the what-if folds them in one process."""
    seen: list[list[Output]] = [[], []]
    plan = Plan(AURORA, BASELINE_VERSIONS, PROPOSED, since, UNTIL, partitions=PARTITIONS)
    fold = ShareFold(plan, seen=lambda run, outputs: seen[run].extend(outputs))
    fold.fold_all(MemorySource(positioned(events, PARTITIONS))(0, 1))
    fold.finish()
    return seen


def worker(
    directory: Path,
    programme_for: Any,
    events: Sequence[PlayerEvent],
    recheck_at: datetime | None = None,
) -> list[dict[str, Any]]:
    """What a worker emits on the compared topics for `events`, then its timers fired to
    UNTIL; with `recheck_at`, a brand re-check is published when the stream reaches it."""
    driver = WorkerDriver(
        directory, programme_for, now=UNTIL, partitions=PARTITIONS, timers_wait_s=0
    )
    before = [e for e in events if recheck_at is None or e.occurred_at < recheck_at]
    after = [e for e in events if recheck_at is not None and e.occurred_at >= recheck_at]
    for event in before:
        driver.pipe_event(event, timestamp=_ms(event.occurred_at))
    driver.fold()
    driver.drain()
    if recheck_at is not None:
        for partition in range(PARTITIONS):
            command = RecheckBrand(
                command_id=RECHECK_ID,
                brand_id=AURORA,
                partition=partition,
                issued_at=recheck_at,
                actor="ops",
                reason="the proposal is published",
            )
            value = command.model_dump_json().encode()
            driver.cluster.append(COMMANDS, partition, AURORA.encode(), value, _ms(recheck_at))
        driver.fold()
        driver.drain()
        while not driver.run_rechecks():
            pass
        driver.drain()
        for event in after:
            driver.pipe_event(event, timestamp=_ms(event.occurred_at))
        driver.fold()
        driver.drain()
    while not driver.fire_timers():
        pass
    driver.drain()
    assert driver.dead_letters() == []
    emitted = [output for topic in COMPARED for output in driver.outputs_json(topic)]
    driver.close()
    return sorted(emitted, key=lambda output: output["output_id"])


def as_sent(outputs: Sequence[Output]) -> list[dict[str, Any]]:
    """Outputs as a worker sends them (`domain.outputs.encode`), on the compared topics."""
    sent = [orjson.loads(encode(o)) for o in outputs if OUTPUT_TOPICS[type(o)] in COMPARED]
    return sorted(sent, key=lambda output: output["output_id"])


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_the_baseline_emits_what_a_worker_emits(tmp_path: Path) -> None:
    events = stream()
    expected = worker(tmp_path, Catalogue(list(BASELINE_VERSIONS)).in_effect, events)
    assert as_sent(replayed(events, SINCE)[BASELINE]) == expected
    kinds = {output["type"] for output in expected}
    assert {"PointsAccrued", "PointsReversed", "LevelChanged", "CashbackAwarded"} <= kinds
    assert {"TierRewardGranted", "PointsExpiring", "PointsExpired"} <= kinds
    downs = [o for o in expected if o["type"] == "LevelChanged" and o["direction"] == "down"]
    assert downs  # a grace ended: time-driven work ran at its instants
    assert {o["programme_version"] for o in expected if o["type"] == "PointsAccrued"} == {1, 2}


def test_the_proposal_emits_what_a_worker_running_it_emits(tmp_path: Path) -> None:
    """From SINCE the proposal governs, and the brand is re-checked then."""
    events = stream()
    catalogue = Catalogue(list(BASELINE_VERSIONS))

    def proposal_for(brand: str, moment: datetime) -> Programme | None:
        return PROPOSED if moment >= SINCE else catalogue.in_effect(brand, moment)

    expected = worker(tmp_path, proposal_for, events, recheck_at=SINCE)
    outputs = replayed(events, SINCE)
    assert as_sent(outputs[PROPOSAL]) == expected
    rechecked = [o for o in expected if o["output_id"].startswith(f"{RECHECK_ID}:")]
    assert rechecked  # the lower thresholds moved players at SINCE
    assert as_sent(outputs[PROPOSAL]) != as_sent(outputs[BASELINE])


def test_a_proposal_from_the_start_emits_what_a_worker_running_it_alone_emits(
    tmp_path: Path,
) -> None:
    events = stream()
    expected = worker(tmp_path, lambda brand, moment: PROPOSED, events)
    assert as_sent(replayed(events, None)[PROPOSAL]) == expected
