"""The topic declarations in topics/ agree with the models, with the code's topic names and with
the retention of the store families they log (`state.keyspace`)."""

import json
import shutil
from pathlib import Path

import pytest

from loyalty_streams.kafka import topics
from loyalty_streams.kafka.topics import load_specs, write_schemas
from loyalty_streams.state.keyspace import HISTORY_PREFIX, LOG_DAYS

TOPICS_DIR = Path(__file__).resolve().parents[2] / "topics"
DAY_MS = 86_400_000


@pytest.mark.parametrize("spec", load_specs(TOPICS_DIR), ids=lambda spec: spec.name)
def test_declared_schema_is_the_one_generated_from_the_model(spec: topics.TopicSpec) -> None:
    assert spec.value_schema == spec.model_schema(), (
        f"{spec.name}: schema drifted from {spec.value_model}; run `loyalty-streams topics schemas`"
    )


def test_every_topic_the_code_uses_is_declared_with_room_to_scale() -> None:
    declared = {spec.name: spec for spec in load_specs(TOPICS_DIR)}
    dead_letters = {topics.DEAD_LETTER, topics.PMS_WEBHOOK_DEAD_LETTER}
    keyed_by_player = {
        topics.PLAYER_EVENTS,
        topics.COMMANDS,
        topics.POINTS_ACCRUED,
        topics.LEVEL_CHANGED,
        topics.REDEMPTIONS,
        topics.POINTS_ADJUSTED,
        topics.POINTS_EXPIRY,
        topics.REWARDS,
        topics.COMMAND_REJECTIONS,
    }
    assert keyed_by_player | dead_letters <= set(declared)
    for name in keyed_by_player:
        assert declared[name].partitions == declared[topics.PLAYER_EVENTS].partitions >= 12
        assert declared[name].key["pattern"] == "brand_id:player_id"
        assert "retention.ms" in declared[name].config


def test_schemas_command_rewrites_a_drifted_declaration(tmp_path: Path) -> None:
    shutil.copytree(TOPICS_DIR, tmp_path / "topics")
    path = tmp_path / "topics" / f"{topics.LEVEL_CHANGED}.json"
    document = json.loads(path.read_text())
    document["value"]["schema"] = {"type": "object"}
    path.write_text(json.dumps(document))

    assert write_schemas(tmp_path / "topics") == [path]
    assert write_schemas(tmp_path / "topics") == []
    assert json.loads(path.read_text())["value"]["schema"]["title"] == "LevelChanged"


def test_a_file_must_be_named_after_its_topic(tmp_path: Path) -> None:
    source = TOPICS_DIR / f"{topics.DEAD_LETTER}.json"
    (tmp_path / "wrong.json").write_text(source.read_text())
    with pytest.raises(ValueError, match="name the file after it"):
        load_specs(tmp_path)


def test_the_history_topic_forgets_rows_when_the_store_does() -> None:
    history = {spec.name: spec for spec in load_specs(TOPICS_DIR)}[topics.PLAYERS_HISTORY]
    # a restore reads what the topic still has: the rows the store keeps `LOG_DAYS`
    assert history.config["cleanup.policy"] == "delete"
    assert int(history.config["retention.ms"]) == LOG_DAYS * DAY_MS
    assert f"after {LOG_DAYS} days" in history.description
    pattern = history.key["pattern"].encode().decode("unicode_escape")
    assert pattern.encode().startswith(HISTORY_PREFIX)


def test_the_changelog_forgets_nothing_by_time() -> None:
    changelog = {spec.name: spec for spec in load_specs(TOPICS_DIR)}[topics.PLAYERS_CHANGELOG]
    # player records are kept for good; the bookkeeping families are forgotten when the store
    # deletes them (`SEEN_DAYS`, `LOG_DAYS`: state.retention), and compaction drops their tombstones
    assert changelog.config["cleanup.policy"] == "compact"
    assert changelog.config["retention.ms"] == "-1"
