"""Applies the topic declarations to a cluster: creates what is missing, never alters.

An existing topic that differs from its declaration is reported, not changed: more partitions
move keys to other partitions (and so break per-player order and table state), and config
changes on a live topic deserve a person's decision.
"""

from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    PartitionMetadata,
    ResourceType,
)

from loyalty_streams.kafka.clients import KafkaClients
from loyalty_streams.kafka.topics import TopicSpec
from loyalty_streams.settings import Settings

MIN_INSYNC_REPLICAS = "min.insync.replicas"

REQUEST_TIMEOUT_S = 15.0
"""How long an admin request waits for the cluster (seconds), unless its caller says."""

Status = Literal["created", "unchanged", "differs", "failed"]


@dataclass(frozen=True, slots=True)
class TopicResult:
    """What applying one declaration did, the differences found, and the caps applied."""

    name: str
    status: Status
    differences: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        line = f"{self.name}: {self.status}"
        if self.differences:
            line += ": " + "; ".join(self.differences)
        if self.notes:
            line += " [" + "; ".join(self.notes) + "]"
        return line


@dataclass(frozen=True, slots=True)
class TopicReport:
    results: tuple[TopicResult, ...]

    @property
    def ok(self) -> bool:
        """False when any topic differs from its declaration or could not be created."""
        return all(result.status in ("created", "unchanged") for result in self.results)

    def render(self) -> str:
        return "\n".join(result.render() for result in self.results)


@dataclass(frozen=True, slots=True)
class _Target:
    """A declaration fitted to the cluster: what is created, and what existing topics match."""

    spec: TopicSpec
    replication_factor: int
    config: dict[str, str]
    notes: tuple[str, ...]


def apply_topics(
    settings: Settings,
    specs: list[TopicSpec],
    timeout: float = REQUEST_TIMEOUT_S,
    *,
    clients: KafkaClients | None = None,
) -> TopicReport:
    """Create the declared topics that are missing; report how existing ones compare.

    `timeout` (seconds) bounds each request to the cluster; `clients` makes the admin client
    (by default librdkafka's)."""
    admin = (clients or KafkaClients()).admin(settings)
    # All topics, none named: a metadata request naming an unknown topic creates it on Tansu
    # (and on Kafka with auto.create.topics.enable).
    metadata = admin.list_topics(timeout=timeout)
    targets = [_fit(spec, len(metadata.brokers)) for spec in specs]
    missing = [t for t in targets if t.spec.name not in metadata.topics]
    existing = [t for t in targets if t.spec.name in metadata.topics]
    results = _create(admin, missing, timeout) | _compare(admin, existing, metadata, timeout)
    return TopicReport(tuple(results[spec.name] for spec in specs))


def _fit(spec: TopicSpec, brokers: int) -> _Target:
    """Cap the replication factor at the brokers there are, and min.insync.replicas at that."""
    notes = []
    replication_factor = spec.replication_factor
    if replication_factor > brokers:
        replication_factor = brokers
        notes.append(
            f"replication factor {brokers}, declared {spec.replication_factor}: "
            f"the cluster has {brokers} broker(s)"
        )
    config = dict(spec.config)
    declared_isr = config.get(MIN_INSYNC_REPLICAS)
    if declared_isr is not None and int(declared_isr) > replication_factor:
        config[MIN_INSYNC_REPLICAS] = str(replication_factor)
        notes.append(
            f"{MIN_INSYNC_REPLICAS} {replication_factor}, declared {declared_isr}: "
            "capped at the replication factor"
        )
    return _Target(spec, replication_factor, config, tuple(notes))


def _create(admin: AdminClient, targets: list[_Target], timeout: float) -> dict[str, TopicResult]:
    if not targets:
        return {}
    futures = admin.create_topics(
        [
            NewTopic(
                t.spec.name,
                num_partitions=t.spec.partitions,
                replication_factor=t.replication_factor,
                config=t.config,
            )
            for t in targets
        ],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    results = {}
    for target in targets:
        name = target.spec.name
        try:
            futures[name].result()
        except KafkaException as exc:
            results[name] = TopicResult(name, "failed", (_error_text(exc),), target.notes)
        else:
            results[name] = TopicResult(name, "created", (), target.notes)
    return results


def _compare(
    admin: AdminClient, targets: list[_Target], metadata: ClusterMetadata, timeout: float
) -> dict[str, TopicResult]:
    if not targets:
        return {}
    resources = {t.spec.name: ConfigResource(ResourceType.TOPIC, t.spec.name) for t in targets}
    futures = admin.describe_configs(list(resources.values()), request_timeout=timeout)
    results = {}
    for target in targets:
        name = target.spec.name
        future: Future[dict[str, ConfigEntry]] = futures[resources[name]]
        topic = metadata.topics[name]
        try:
            if topic.error is not None:
                raise KafkaException(topic.error)
            differences = _differences(target, list(topic.partitions.values()), future.result())
        except KafkaException as exc:
            results[name] = TopicResult(name, "failed", (_error_text(exc),), target.notes)
        else:
            status: Status = "differs" if differences else "unchanged"
            results[name] = TopicResult(name, status, differences, target.notes)
    return results


def _differences(
    target: _Target, partitions: list[PartitionMetadata], configs: dict[str, ConfigEntry]
) -> tuple[str, ...]:
    """Partitions, replication and every declared config, as "what is, and what is wanted".

    Only declared keys are compared: Tansu returns only the configs that were set, Kafka all.
    """
    found = []
    if len(partitions) != target.spec.partitions:
        found.append(f"partitions is {len(partitions)}, want {target.spec.partitions}")
    replicas = sorted({len(p.replicas) for p in partitions})
    if replicas and replicas != [target.replication_factor]:
        shown = ", ".join(map(str, replicas))
        found.append(f"replication factor is {shown}, want {target.replication_factor}")
    for key, wanted in target.config.items():
        entry = configs.get(key)
        actual = None if entry is None else entry.value
        if actual != wanted:
            found.append(f"{key} is {'not set' if actual is None else actual}, want {wanted}")
    return tuple(found)


def _error_text(exc: KafkaException) -> str:
    """The broker's own words for a failure, without the KafkaError{...} wrapping."""
    error = exc.args[0] if exc.args else None
    return error.str() if isinstance(error, KafkaError) else str(exc)


def partition_counts(settings: Settings, clients: KafkaClients | None = None) -> dict[str, int]:
    """Every topic of the cluster and its partition count (asking for all creates none);
    `clients` makes the admin client (by default librdkafka's)."""
    admin = (clients or KafkaClients()).admin(settings)
    topics = admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
    return {name: len(metadata.partitions) for name, metadata in topics.items()}


def missing_topics_problem(
    settings: Settings, needed: Iterable[str], existing: Iterable[str]
) -> str | None:
    """What to tell an operator when a process needs topics the cluster lacks."""
    present = set(existing)
    missing = [name for name in needed if name not in present]
    if not missing:
        return None
    return (
        f"topics missing on {settings.bootstrap_servers}: {', '.join(missing)}; "
        "create them first with `loyalty-streams topics apply`"
    )
