"""Real workers on a real broker: exact outputs, lookups from any worker, crash fail-over, replays.

Expected results come from folding the inbound topic through the rules once, outside any worker
(`devtools.replay`): whatever the workers did (one or two, killed or not) must come out the same.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

import orjson

from loyalty_streams.devtools.generator import synthetic_events
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.devtools.replay import Replay, replay
from loyalty_streams.domain.events import PlayerEvent
from loyalty_streams.domain.outputs import PointsAccrued, encode
from loyalty_streams.domain.player import PlayerState
from loyalty_streams.kafka.reading import Records, read_topics
from loyalty_streams.kafka.topics import LEVEL_CHANGED, PLAYER_EVENTS, POINTS_ACCRUED, REWARDS
from tests.domain.builders import bet, deposit, win
from tests.integration.conftest import (
    CATALOGUE,
    Cluster,
    get,
    on_both_brokers,
    owned,
    settled,
    wait_until,
)

OUTPUTS = (POINTS_ACCRUED, LEVEL_CHANGED, REWARDS)


def expected(cluster: Cluster) -> Replay:
    records = read_topics(cluster.settings, [PLAYER_EVENTS], until=lambda r: False, timeout=1.0)
    return replay(records[PLAYER_EVENTS], CATALOGUE.in_effect)


def outputs_by_id(records: Records) -> dict[str, list[dict[str, Any]]]:
    found: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for topic in OUTPUTS:
        for record in records[topic]:
            value = orjson.loads(record.value)
            found[value["output_id"]].append(value)
    return found


def read_outputs(cluster: Cluster, ids: set[str], timeout: float = 90) -> dict[str, Any]:
    """Every output until all of `ids` are present; each id's copies must be identical."""
    records = read_topics(
        cluster.settings,
        OUTPUTS,
        until=lambda r: ids <= set(outputs_by_id(r)),
        timeout=timeout,
    )
    found = outputs_by_id(records)
    missing = ids - set(found)
    assert not missing, f"{len(missing)} outputs never came, e.g. {sorted(missing)[:3]}"
    for output_id, copies in found.items():
        assert all(copy == copies[0] for copy in copies), f"{output_id} differs between copies"
    return {output_id: copies[0] for output_id, copies in found.items()}


def points_of(outputs: dict[str, Any], player: str) -> Decimal:
    return sum(
        (
            Decimal(v["points"])
            for v in outputs.values()
            if v["player_id"] == player and "points" in v
        ),
        Decimal(0),
    )


def as_json(replayed: Replay) -> dict[str, Any]:
    return {output.output_id: orjson.loads(encode(output)) for output in replayed.outputs}


def assert_lookup_matches(worker: ServiceProcess, state: PlayerState) -> dict[str, Any]:
    status, body = get(worker, f"/loyalty/{state.brand_id}/{state.player_id}")
    assert status == 200, body
    programme = CATALOGUE.in_effect(state.brand_id, datetime.now(UTC))
    assert programme is not None
    assert body["level"]["rank"] == state.level_rank
    assert body["points"]["available"] == str(state.points_available)
    assert body["turnover"]["cumulative"] == str(state.cumulative_turnover)
    assert body["vip_points"] == str(state.vip_points)
    return body


def wait_for_partitions(workers: list[ServiceProcess], timeout: float = 60) -> None:
    """Until the workers between them own all 12 partitions, each exactly once."""

    def shared() -> bool:
        claimed = [p for worker in workers for p in owned(worker)]
        return sorted(claimed) == list(range(12)) and all(owned(w) for w in workers)

    wait_until(shared, timeout, "the group to share the partitions")


@on_both_brokers
def test_exact_points_a_two_level_jump_and_a_downgrade_by_a_timer(cluster: Cluster) -> None:
    worker = cluster.worker("solo")
    now = datetime.now(UTC)
    old = now - timedelta(days=40)
    events = [
        bet("60000", player_id="jumper", occurred_at=now),  # Bronze -> Gold, over Silver
        bet("20.50", "table", player_id="small", occurred_at=now),
        win("15", player_id="small", occurred_at=now),
        deposit("100", player_id="small", occurred_at=now),
        bet(
            "1200",
            "live_casino",
            brand_id="lucky-sweeps",
            player_id="sweeper",
            currency="SC",
            occurred_at=now,
        ),  # 1200 x 1.5 VIP points: Bronze -> Silver
        bet("250000", brand_id="lucky-sweeps", player_id="sweeper", currency="GC", occurred_at=now),
        bet(
            "1500",
            "exclusive",
            brand_id="borealis-casino",
            player_id="nordic",
            currency="SEK",
            occurred_at=now,
        ),
        bet(
            "60000", brand_id="test-casino", player_id="idle", occurred_at=old
        ),  # Gold, 40 days ago
    ]
    cluster.publish(events)
    replayed = expected(cluster)
    want = as_json(replayed)
    assert {(v["player_id"], v["to_level"]) for v in want.values() if "to_level" in v} == {
        ("jumper", "Gold"),
        ("sweeper", "Silver"),
        ("idle", "Gold"),
    }

    # idle's bet left the 30 days at the start of the brand day 30 days after it; no grace:
    # Silver at that instant, dated then though noticed now
    rules = CATALOGUE.in_effect("test-casino", now)
    assert rules is not None
    falls = rules.day_start(rules.day_of(old) + 30)
    timer_down = f"timers:test-casino:idle:{falls.isoformat()}:level"
    # and the cashback of idle's day, closed at its midnight: 2 % of 60,000, capped at 500
    idle_day = old.astimezone(rules.zone).date()
    cashback = f"cashback:test-casino:idle:{idle_day.isoformat()}"
    got = read_outputs(cluster, set(want) | {timer_down, cashback})
    assert worker.running, worker.log_tail()
    assert {k: v for k, v in got.items() if k in want} == want
    assert points_of(got, "jumper") == Decimal("60000.00")  # at Bronze's x1, before the jump
    down = got[timer_down]
    assert (down["direction"], down["from_level"], down["to_level"]) == ("down", "Gold", "Silver")
    assert down["reason"] == "retention_missed" and down["occurred_at"] == falls.isoformat()
    assert (got[cashback]["amount"], got[cashback]["capped"]) == ("500.00", True)
    assert got[cashback]["occurred_at"] == rules.day_start(rules.day_of(old) + 1).isoformat()
    # time changed nobody else: every other output came from an event
    assert set(got) - set(want) == {timer_down, cashback}

    settled(worker)
    for key in ("aurora-casino:jumper", "aurora-casino:small", "lucky-sweeps:sweeper"):
        assert_lookup_matches(worker, replayed.states[key])
    _, body = get(worker, "/loyalty/aurora-casino/jumper")
    assert body["level"]["name"] == "Gold"
    assert body["progress"]["next_level"] == {
        "name": "Platinum",
        "rank": 4,
        "threshold": "200000",
        "still_needed": "140000",
    }
    assert body["perks"]["email_support"] is True
    assert body["multipliers"]["points"] == "1.25"
    _, body = get(worker, "/loyalty/test-casino/idle")
    assert body["level"]["name"] == "Silver"


def synthetic(players: int, count: int, seed: int) -> list[PlayerEvent]:
    start = datetime.now(UTC) - timedelta(hours=1)
    return list(islice(synthetic_events(players, seed, start, rate=50.0), count))


@on_both_brokers
def test_any_worker_answers_a_lookup_for_any_player(cluster: Cluster) -> None:
    first, second = cluster.worker("a"), cluster.worker("b")
    wait_for_partitions([first, second])
    cluster.publish(synthetic(players=30, count=300, seed=11))
    replayed = expected(cluster)
    read_outputs(cluster, {output.output_id for output in replayed.outputs})
    settled(first, second)

    forwarded = 0
    for state in replayed.states.values():
        path = f"/loyalty/{state.brand_id}/{state.player_id}"
        wait_until(lambda p=path: get(first, p)[0] == 200, 30, f"{path} from the first worker")
        one = assert_lookup_matches(first, state)
        two = assert_lookup_matches(second, state)
        assert one.pop("served_by")["worker"] == two.pop("served_by")["worker"]  # the owner
        assert one == two
        forwarded += 1
    assert forwarded == len(replayed.states) >= 20

    assert get(first, "/loyalty/aurora-casino/nobody")[0] == 404
    status, body = get(second, "/loyalty/aurora-casino/bad%20id")
    assert status == 400 and "player_id" in body["error"]
    status, body = get(first, "/health")
    assert status == 200 and body["status"] == "ok"
    assert sorted(body["programmes"]) == sorted(CATALOGUE.brands)


@on_both_brokers
def test_a_killed_worker_loses_and_doubles_nothing(cluster: Cluster) -> None:
    survivor, victim = cluster.worker("survivor"), cluster.worker("victim")
    wait_for_partitions([survivor, victim])
    events = synthetic(players=40, count=1200, seed=12)
    cluster.publish(events[:600])
    wait_until(lambda: len(owned(victim)) > 0, 10, "the victim to own partitions")
    half = replay_ids(cluster)
    read_outputs(cluster, half)  # the victim has processed its share
    victim.kill()  # SIGKILL: no commit, no goodbye
    cluster.publish(events[600:])

    replayed = expected(cluster)
    want = as_json(replayed)
    got = read_outputs(cluster, set(want), timeout=120)
    assert got == want  # every output once (copies identical), none extra
    assert survivor.running, survivor.log_tail()
    wait_until(lambda: len(owned(survivor)) == 12, 30, "the survivor to own every partition")
    settled(survivor)
    for state in replayed.states.values():
        assert_lookup_matches(survivor, state)


def replay_ids(cluster: Cluster) -> set[str]:
    return {output.output_id for output in expected(cluster).outputs}


@on_both_brokers
def test_the_same_events_published_twice_change_nothing(cluster: Cluster) -> None:
    worker = cluster.worker("solo")
    events = synthetic(players=10, count=200, seed=13)
    cluster.publish(events)
    once = expected(cluster)
    read_outputs(cluster, {output.output_id for output in once.outputs})

    cluster.publish(events)  # a producer retry storm: same events, new offsets
    now = datetime.now(UTC)
    closing = [
        bet("1", player_id=state.player_id, brand_id=state.brand_id, occurred_at=now)
        for state in once.states.values()
        if state.brand_id == "aurora-casino"
    ]
    cluster.publish(closing)  # behind the repeats on each player's partition
    records = read_topics(
        cluster.settings,
        OUTPUTS,
        until=lambda r: {f"{e.event_id}:points" for e in closing} <= set(outputs_by_id(r)),
        timeout=60,
    )
    settled(worker)
    accrued = [orjson.loads(r.value) for r in records[POINTS_ACCRUED]]
    ids = [value["output_id"] for value in accrued]
    assert (
        len(ids)
        == len(set(ids))
        == len([o for o in once.outputs if isinstance(o, PointsAccrued)]) + len(closing)
    )
    for state in once.states.values():
        if state.brand_id != "aurora-casino":
            assert_lookup_matches(worker, state)  # exactly as after the first publish
            continue
        _, body = get(worker, f"/loyalty/{state.brand_id}/{state.player_id}")
        assert Decimal(body["turnover"]["cumulative"]) == state.cumulative_turnover + 1
