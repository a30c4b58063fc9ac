"""Re-checks of levels through the API and the CLI on a real worker and broker: a player's,
carried out by the worker holding them and audited; a brand's, one record on every partition of
the command topic and one audit entry."""

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from loyalty_streams.cli import main as cli
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.http.auth import Role
from loyalty_streams.kafka.reading import Records, read_topics
from loyalty_streams.kafka.topics import AUDIT, COMMANDS, LEVEL_CHANGED
from loyalty_streams.settings import get_settings
from tests.domain.builders import bet, programme
from tests.integration.conftest import (
    Cluster,
    call,
    get,
    on_both_brokers,
    scrape,
    token,
    wait_until,
)

BRAND = "aurora-casino"
ADMIN = token(Role.LOYALTY_ADMIN, subject="anna")
MARKETING = token(Role.MARKETING_MANAGER, brands=[BRAND], subject="mark")


def ready(cluster: Cluster, name: str) -> ServiceProcess:
    worker = cluster.worker(name)
    wait_until(lambda: get(worker, "/health", None)[0] == 200, 60, "the worker")
    wait_until(lambda: get(worker, f"/loyalty/programmes/{BRAND}")[0] == 200, 30, "programmes")
    return worker


def level_of(worker: ServiceProcess, player_id: str) -> dict[str, Any]:
    status, seen = get(worker, f"/loyalty/{BRAND}/{player_id}")
    assert status == 200, seen
    level: dict[str, Any] = seen["level"]
    return level


@on_both_brokers
def test_a_player_recheck_after_a_programme_change_is_carried_out_and_audited(
    cluster: Cluster,
) -> None:
    worker = ready(cluster, "recheck")
    now = datetime.now(UTC)
    earlier = now - timedelta(minutes=1)
    cluster.publish(
        [
            bet("60000", player_id="gold", occurred_at=earlier),
            bet("8000", player_id="near", occurred_at=earlier),
            bet("100", player_id="small", occurred_at=earlier),
        ]
    )
    wait_until(lambda: get(worker, f"/loyalty/{BRAND}/small")[0] == 200, 60, "the bets")
    assert level_of(worker, "gold")["name"] == "Gold"

    # version 2: keeping Gold needs 100,000 EUR in 30 days; Silver starts at 5,000
    v2 = programme().model_dump(mode="json") | {"version": 2, "effective_from": now.isoformat()}
    v2["levels"][1]["threshold"] = "5000"
    v2["levels"][2]["retention"] = "100000"
    status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}?reason=v2", v2, ADMIN)
    assert status == 201, answer

    # Gold no longer kept: the grace starts, the level stays for now
    status, done = call(
        worker, "POST", f"/loyalty/{BRAND}/gold/recheck?wait=20",
        {"reason": "Gold retention raised", "command_id": "rc-gold"}, ADMIN,
    )  # fmt: skip
    assert (status, done["status"], done["command_id"]) == (200, "applied", "rc-gold"), done
    (entry,) = done["outputs"]
    assert (entry["type"], entry["action"], entry["outcome"]) == (
        "AuditEntry", "level.recheck", "applied",
    )  # fmt: skip
    assert (entry["actor"], entry["reason"], entry["player_id"]) == (
        "anna", "Gold retention raised", "gold",
    )  # fmt: skip
    level = level_of(worker, "gold")
    assert level["name"] == "Gold" and level["downgrade_pending_since"] is not None

    # Silver now reached: the level moves at once
    status, done = call(worker, "POST", f"/loyalty/{BRAND}/near/recheck?wait=20",
                        {"reason": "Silver lowered"}, ADMIN)  # fmt: skip
    assert (status, done["status"]) == (200, "applied"), done
    change = next(o for o in done["outputs"] if o["type"] == "LevelChanged")
    assert change["output_id"] == f"{done['command_id']}:level"
    assert (change["from_level"], change["to_level"], change["programme_version"]) == (
        "Bronze", "Silver", 2,
    )  # fmt: skip
    assert done["outputs"][-1]["type"] == "AuditEntry"
    assert level_of(worker, "near")["name"] == "Silver"

    # nothing to change: still carried out, and audited
    status, done = call(worker, "POST", f"/loyalty/{BRAND}/small/recheck?wait=20",
                        {"reason": "programme v2"}, ADMIN)  # fmt: skip
    assert (status, done["status"], [o["type"] for o in done["outputs"]]) == (
        200, "applied", ["AuditEntry"],
    ), done  # fmt: skip

    # a retry with the same command id has one effect, and is answered with it
    retry = {"reason": "Gold retention raised", "command_id": "rc-gold"}
    status, again = call(worker, "POST", f"/loyalty/{BRAND}/gold/recheck", retry, ADMIN)
    assert (status, again["outputs"]) == (200, [entry]), again
    status, audit = get(worker, f"/loyalty/audit?brand_id={BRAND}&action=level.recheck", ADMIN)
    assert status == 200
    assert sorted(e["player_id"] for e in audit["entries"]) == ["gold", "near", "small"]

    # refused before anything is published: the role, the brand, the body, the ids
    path = f"/loyalty/{BRAND}/gold/recheck?wait=0"
    assert call(worker, "POST", path, {"reason": "r"}, MARKETING)[0] == 403
    elsewhere = token(Role.LOYALTY_ADMIN, brands=["another-brand"])
    assert call(worker, "POST", path, {"reason": "r"}, elsewhere)[0] == 403
    for body, field in (({}, "reason"), ({"reason": ""}, "reason"), ({"reason": "r", "x": 1}, "x"),
                        ({"reason": "r", "command_id": "a:b"}, "command_id")):  # fmt: skip
        status, answer = call(worker, "POST", path, body, ADMIN)
        assert status == 422 and field in answer["error"], (body, answer)
    status, answer = call(worker, "POST", f"/loyalty/{BRAND}/a%20b/recheck", {"reason": "r"}, ADMIN)
    assert status == 400 and "player_id" in answer["error"], answer
    # a brand with no programme: refused at once, as every write is, never "accepted"
    status, answer = call(worker, "POST", "/loyalty/no-such-brand/p1/recheck?wait=0",
                          {"reason": "r"}, ADMIN)  # fmt: skip
    assert status == 404 and "no-such-brand" in answer["error"], answer
    add = {"brand_id": "no-such-brand", "player_id": "p1", "points": "5", "reason": "r"}
    status, answer = call(worker, "POST", "/loyalty/points/add?wait=0", add, ADMIN)
    assert status == 404 and "no-such-brand" in answer["error"], answer
    assert "Traceback" not in worker.log_text(), worker.log_tail(60)


def rechecks(records: Records, command_id: str) -> list[dict[str, Any]]:
    found = []
    for record in records[COMMANDS]:
        value = orjson.loads(record.value)
        if value.get("type") == "RecheckBrand" and value["command_id"] == command_id:
            found.append(value | {"at": (record.partition, record.key)})
    return found


def audited(records: Records, command_id: str) -> list[dict[str, Any]]:
    entries = [orjson.loads(record.value) | {"key": record.key} for record in records[AUDIT]]
    return [entry for entry in entries if entry["command_id"] == command_id]


@on_both_brokers
def test_a_brand_recheck_puts_one_record_on_every_partition_and_one_audit_entry(
    cluster: Cluster,
) -> None:
    worker = ready(cluster, "brand-recheck")
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    cluster.publish(
        [
            bet("60000", player_id="gold-b", occurred_at=earlier),
            bet("8000", player_id="near-b", occurred_at=earlier),
            bet("100", player_id="small-b", occurred_at=earlier),
            bet("8000", brand_id="lucky-sweeps", currency="SC", player_id="elsewhere",
                occurred_at=earlier),
        ]
    )  # fmt: skip
    wait_until(lambda: get(worker, f"/loyalty/{BRAND}/small-b")[0] == 200, 60, "the bets")
    # version 2: keeping Gold needs 100,000 EUR in 30 days; Silver starts at 5,000
    v2 = programme().model_dump(mode="json") | {"version": 2, "effective_from": now_iso()}
    v2["levels"][1]["threshold"] = "5000"
    v2["levels"][2]["retention"] = "100000"
    status, answer = call(worker, "POST", f"/loyalty/programmes/{BRAND}?reason=v2", v2, ADMIN)
    assert status == 201, answer

    path = f"/loyalty/admin/brands/{BRAND}/recheck"
    status, answer = call(worker, "POST", path, {"reason": "Gold retention raised"}, ADMIN)
    assert status == 202 and answer["brand_id"] == BRAND, answer
    command_id, partitions = answer["command_id"], answer["partitions"]
    assert partitions == 12

    found = read_topics(
        cluster.settings,
        (COMMANDS, AUDIT),
        until=lambda r: (
            len(rechecks(r, command_id)) == partitions and len(audited(r, command_id)) == 1
        ),
        timeout=30,
    )
    records = rechecks(found, command_id)
    assert sorted(r["partition"] for r in records) == list(range(partitions))
    for record in records:  # each on the partition it names, keyed by the brand
        assert record["at"] == (record["partition"], BRAND.encode())
        assert (record["brand_id"], record["actor"], record["reason"]) == (
            BRAND, "anna", "Gold retention raised",
        )  # fmt: skip
    (entry,) = audited(found, command_id)
    assert (entry["action"], entry["outcome"], entry["actor"], entry["player_id"]) == (
        "level.recheck", "applied", "anna", None,
    )  # fmt: skip
    assert (entry["output_id"], entry["before"], entry["after"]) == (
        f"{command_id}:audit", None, None,
    )  # fmt: skip
    assert entry["key"] == BRAND.encode() and entry["reason"] == "Gold retention raised"

    # each partition's worker re-checks the brand's players it holds, under version 2
    wait_until(lambda: level_of(worker, "near-b")["name"] == "Silver", 30, "the re-check")
    gold = level_of(worker, "gold-b")
    assert gold["name"] == "Gold" and gold["downgrade_pending_since"] is not None
    assert level_of(worker, "small-b")["name"] == "Bronze"
    moved = read_topics(
        cluster.settings,
        (LEVEL_CHANGED,),
        until=lambda r: any(
            orjson.loads(x.value)["cause_id"].startswith(command_id) for x in r[LEVEL_CHANGED]
        ),
        timeout=30,
    )
    (change,) = [
        v for v in map(orjson.loads, (x.value for x in moved[LEVEL_CHANGED]))
        if v["cause_id"].startswith(command_id)
    ]  # fmt: skip
    assert change["output_id"] == f"{command_id}:{BRAND}:near-b:level"
    assert (change["to_level"], change["programme_version"]) == ("Silver", 2)
    _, other = get(worker, "/loyalty/lucky-sweeps/elsewhere")
    assert other["level"]["downgrade_pending_since"] is None  # another brand: untouched
    assert scrape(worker).get('loyalty_dead_letters_total{topic="loyalty.commands"}', 0) == 0

    # refused, nothing published: no programme, the role, the brand, the body
    status, answer = call(worker, "POST", "/loyalty/admin/brands/nowhere/recheck",
                          {"reason": "r"}, ADMIN)  # fmt: skip
    assert status == 404 and "nowhere" in answer["error"], answer
    assert call(worker, "POST", path, {"reason": "r"}, MARKETING)[0] == 403
    elsewhere = token(Role.LOYALTY_ADMIN, brands=["another-brand"])
    assert call(worker, "POST", path, {"reason": "r"}, elsewhere)[0] == 403
    for body in ({}, {"reason": ""}, {"reason": "r", "player_id": "p1"}):
        status, answer = call(worker, "POST", path, body, ADMIN)
        assert status == 422 and "error" in answer, (body, answer)
    status, answer = call(worker, "POST", "/loyalty/admin/brands/a%3Ab/recheck",
                          {"reason": "r"}, ADMIN)  # fmt: skip
    assert status == 400 and "brand_id" in answer["error"], answer
    status, answer = call(worker, "GET", path, None, ADMIN)
    assert status == 405 and "error" in answer, answer


def test_the_recheck_cli_publishes_a_players_command_or_a_brands_records(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = ready(cluster, "cli")
    cluster.publish([bet("100", player_id="p1")])
    wait_until(lambda: get(worker, f"/loyalty/{BRAND}/p1")[0] == 200, 60, "the bet to land")
    monkeypatch.setenv("LOYALTY_BOOTSTRAP_SERVERS", cluster.settings.bootstrap_servers)
    get_settings.cache_clear()
    recheck = ["recheck", "--brand", BRAND, "--reason", "programme v2", "--actor", "ops-anna"]
    try:
        assert cli.main([*recheck, "--player", "p1"]) == 0
        player_id = capsys.readouterr().out.split()[2]
        assert cli.main(recheck) == 0
        brand_id = capsys.readouterr().out.split()[2]
        # refused, nothing published: no programme, an empty reason, an actor with a newline
        assert cli.main(["recheck", "--brand", "nowhere", "--reason", "r", "--actor", "a"]) == 1
        assert "no programme" in capsys.readouterr().err
        assert cli.main([*recheck[:4], "", "--actor", "a", "--player", "p1"]) == 1
        assert cli.main([*recheck[:6], "ev\nil"]) == 1
        assert "nothing was published" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()

    found = read_topics(
        cluster.settings,
        (COMMANDS, AUDIT),
        until=lambda r: len(rechecks(r, brand_id)) == 12 and len(audited(r, player_id)) == 1,
        timeout=30,
    )
    assert sorted(r["partition"] for r in rechecks(found, brand_id)) == list(range(12))
    (entry,) = audited(found, brand_id)
    assert (entry["action"], entry["actor"], entry["player_id"]) == (
        "level.recheck", "ops-anna", None,
    )  # fmt: skip
    (entry,) = audited(found, player_id)  # written by the worker that carried it out
    assert (entry["action"], entry["actor"], entry["player_id"], entry["outcome"]) == (
        "level.recheck", "ops-anna", "p1", "applied",
    )  # fmt: skip
    everything = {orjson.loads(r.value)["command_id"] for r in found[COMMANDS]}
    assert len(everything) == 2  # the refused ones published nothing


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
