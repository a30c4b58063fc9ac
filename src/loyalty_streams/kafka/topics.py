"""Topic declarations: the contracts in `topics/*.json`, loaded and checked.

Each declaration names its topic, partitions, replication, Kafka configs, key format and the JSON
Schema of its values. The schema is generated from the pydantic model the declaration names, so
`loyalty-streams topics schemas` rewrites it and a test fails when the two drift apart.
"""

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

PLAYER_EVENTS = "casino.player-events"
COMMANDS = "loyalty.commands"
INBOUND = (PLAYER_EVENTS, COMMANDS)
"""The fold loop's inputs: co-partitioned, so a player's events and commands meet in one worker."""
REDEMPTIONS = "loyalty.redemptions"
POINTS_ADJUSTED = "loyalty.points-adjusted"
POINTS_EXPIRY = "loyalty.points-expiry"
REWARDS = "loyalty.rewards"
COMMAND_REJECTIONS = "loyalty.command-rejections"
CAMPAIGN_TRIGGERS = "loyalty.campaign-triggers"
NOTIFICATIONS = "loyalty.notifications"
GMS_FLAGS = "loyalty.gms-flags"
AUDIT = "loyalty.audit"
POINTS_ACCRUED = "loyalty.points-accrued"
LEVEL_CHANGED = "loyalty.level-changed"
DEAD_LETTER = "loyalty.dead-letter"
PMS_WEBHOOK_DEAD_LETTER = "loyalty.pms-webhook-dead-letter"
PLAYERS_CHANGELOG = "loyalty.players-changelog"
PLAYERS_HISTORY = "loyalty.players-history"
PROGRAMMES = "loyalty.programmes"
WORKERS = "loyalty.workers"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    description: str
    partitions: int
    replication_factor: int
    config: dict[str, str]
    key: dict[str, str]
    value_model: str
    value_schema: dict[str, Any]

    def model_schema(self) -> dict[str, Any]:
        """The JSON Schema generated from the value model the declaration names."""
        module_name, _, attr = self.value_model.partition(":")
        model = getattr(importlib.import_module(module_name), attr)
        return TypeAdapter(model).json_schema(mode="serialization")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "partitions": self.partitions,
            "replication_factor": self.replication_factor,
            "config": self.config,
            "key": self.key,
            "value": {"format": "json", "model": self.value_model, "schema": self.value_schema},
        }


def load_spec(path: Path) -> TopicSpec:
    raw = json.loads(path.read_text())
    return TopicSpec(
        name=raw["name"],
        description=raw["description"],
        partitions=int(raw["partitions"]),
        replication_factor=int(raw["replication_factor"]),
        config={str(k): str(v) for k, v in raw["config"].items()},
        key=raw["key"],
        value_model=raw["value"]["model"],
        value_schema=raw["value"]["schema"],
    )


def load_specs(directory: Path) -> list[TopicSpec]:
    """All declarations in a folder, by topic name; a file must be named after its topic."""
    specs = []
    for path in sorted(directory.glob("*.json")):
        spec = load_spec(path)
        if path.stem != spec.name:
            raise ValueError(f"{path} declares topic {spec.name!r}; name the file after it")
        specs.append(spec)
    if not specs:
        raise FileNotFoundError(f"no topic declarations (*.json) in {directory}")
    return specs


def write_schemas(directory: Path) -> list[Path]:
    """Regenerate each declaration's value schema from its model; returns the files changed."""
    changed = []
    for spec in load_specs(directory):
        fresh = spec.model_schema()
        if fresh != spec.value_schema:
            path = directory / f"{spec.name}.json"
            document = spec.to_json()
            document["value"]["schema"] = fresh
            path.write_text(json.dumps(document, indent=2) + "\n")
            changed.append(path)
    return changed
