"""The what-if on a real broker: a worker folds a generated stream, and the what-if's baseline,
replaying the same topic with the versions read from `loyalty.programmes`, emits exactly what
the worker emitted on `loyalty.points-accrued` and `loyalty.level-changed`; the command runs
end to end with spawned processes reading their own partitions, and its figures add up to the
worker's."""

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from loyalty_streams.cli.main import main
from loyalty_streams.devtools.generator import synthetic_events
from loyalty_streams.domain.events import BetPlaced, PlayerEvent
from loyalty_streams.domain.outputs import Output, encode
from loyalty_streams.domain.programme import Programme
from loyalty_streams.kafka.reading import Records, read_topics
from loyalty_streams.kafka.topics import LEVEL_CHANGED, POINTS_ACCRUED
from loyalty_streams.runtime.fold import OUTPUT_TOPICS
from loyalty_streams.runtime.global_tables import publish_programmes, read_catalogue
from loyalty_streams.settings import get_settings
from loyalty_streams.whatif.job import HistorySource, partition_count
from loyalty_streams.whatif.replay import BASELINE, Plan, ShareFold
from tests.integration.conftest import CATALOGUE, Cluster, settled

AURORA = "aurora-casino"
COMPARED = (POINTS_ACCRUED, LEVEL_CHANGED)


def low_thresholds(since: datetime) -> Programme:
    """aurora-casino version 2 from `since`: Silver at 20 EUR, Gold at 100, Platinum at 400,
    so the generator's players climb."""
    shipped = CATALOGUE.latest(AURORA)
    assert shipped is not None
    levels = [
        level.model_copy(update={"threshold": Decimal(threshold)})
        for level, threshold in zip(shipped.levels, ("0", "20", "100", "400"), strict=True)
    ]
    return shipped.model_copy(update={"version": 2, "effective_from": since, "levels": levels})


def stream(start: datetime) -> list[PlayerEvent]:
    """About 1,500 aurora-casino events of 40 players, with cancellations, from `start`."""
    events = synthetic_events(90, 21, start, rate=20.0, cancellations=True)
    return [e for e in itertools.islice(events, 3_300) if e.brand_id == AURORA]


def by_id(records: Records) -> dict[str, dict[str, Any]]:
    return {
        value["output_id"]: value
        for topic in COMPARED
        for value in (orjson.loads(record.value or b"{}") for record in records[topic])
    }


@pytest.fixture
def cli_settings(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The command's settings (from the environment) aimed at the test's broker."""
    monkeypatch.setenv("LOYALTY_BOOTSTRAP_SERVERS", cluster.settings.bootstrap_servers)
    monkeypatch.setenv("LOYALTY_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.setenv("LOYALTY_APP_ID", cluster.settings.app_id)
    monkeypatch.setenv("LOYALTY_ARCHIVE_DIR", str(tmp_path / "archive"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_baseline_emits_what_the_worker_emitted(
    cluster: Cluster, cli_settings: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    publish_programmes(
        cluster.settings, [low_thresholds(start - timedelta(days=1))], actor="tests", reason="low"
    )
    worker = cluster.worker("solo")
    events = stream(start)
    cluster.publish(events)
    accruals = {f"{e.event_id}:points" for e in events if isinstance(e, BetPlaced)}
    records = read_topics(
        cluster.settings,
        COMPARED,
        until=lambda found: accruals <= set(by_id(found)),
        timeout=90,
    )
    settled(worker)
    emitted = by_id(read_topics(cluster.settings, COMPARED, until=lambda _: True, timeout=5))
    assert accruals <= set(emitted) and records

    settings = cluster.settings.model_copy(update={"archive_dir": tmp_path / "archive"})
    until = datetime.now(UTC)
    versions = read_catalogue(settings).versions(AURORA)
    assert [p.version for p in versions] == [1, 2]
    seen: list[Output] = []
    plan = Plan(AURORA, tuple(versions), versions[-1], None, until)
    fold = ShareFold(
        plan, seen=lambda run, outputs: seen.extend(outputs) if run == BASELINE else None
    )
    fold.fold_all(HistorySource(settings, AURORA, until, partition_count(settings))(0, 1))
    fold.finish()
    replayed = {
        o.output_id: orjson.loads(encode(o)) for o in seen if OUTPUT_TOPICS[type(o)] in COMPARED
    }
    assert replayed == emitted
    assert any(value["type"] == "LevelChanged" for value in emitted.values())
    assert any(value["type"] == "PointsReversed" for value in emitted.values())

    proposal = tmp_path / "proposal.json"
    proposal.write_text(low_thresholds(start).model_copy(update={"version": 3}).model_dump_json())
    argv = ["what-if", "--brand", AURORA, "--programme", str(proposal), "--to", until.isoformat()]
    argv += ["--by", "month", "--processes", "2", "--json", str(tmp_path / "report.json")]
    assert main(argv) == 0, capsys.readouterr().err
    report = orjson.loads((tmp_path / "report.json").read_bytes())
    assert report["stats"]["events"] == len(events)
    assert report["stats"]["processes"] == 2
    issued = sum(
        (
            Decimal(v["points"] if v["type"] == "PointsAccrued" else f"-{v['points_reversed']}")
            for v in emitted.values()
            if v["type"] in ("PointsAccrued", "PointsReversed")
        ),
        Decimal(0),
    )
    assert Decimal(report["total"]["baseline"]["points_issued"]) == issued
    assert report["total"]["baseline"] == report["total"]["proposal"]  # the same rules
    assert all(move["baseline"] == move["proposal"] for move in report["moves"])
