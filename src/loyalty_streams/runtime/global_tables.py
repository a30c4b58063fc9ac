"""The tables every worker reads whole: programme versions and the owners of partitions.

A `kafka.reading.PartitionReader`, outside any consumer group (each worker needs all of it),
reads every partition of `loyalty.programmes` and `loyalty.workers` to its end at start, so no
event is judged without its programme, then follows them in a thread, keeping a `Catalogue` and
an `Owners` current.
"""

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING
from pydantic import ValidationError

from loyalty_streams.domain.catalogue import Catalogue, publication_audit
from loyalty_streams.domain.outputs import encode
from loyalty_streams.domain.programme import Programme
from loyalty_streams.kafka.clients import KafkaClients, ProducerClient, producer_config
from loyalty_streams.kafka.reading import Partition, PartitionReader, ReadRecord
from loyalty_streams.kafka.topics import AUDIT, PLAYER_EVENTS, PROGRAMMES, WORKERS
from loyalty_streams.runtime.ownership import Claim, Owners
from loyalty_streams.runtime.tuning import PUBLISH_FLUSH_S, TABLES_STOP_S
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)

TABLES = (PROGRAMMES, WORKERS)
"""The topics read whole."""


class GlobalTables:
    def __init__(self, settings: Settings, clients: KafkaClients | None = None) -> None:
        """`clients` makes the reader (by default librdkafka's)."""
        self.catalogue = Catalogue()
        self.owners = Owners(settings.app_id)
        self.partitions = 0
        """Partitions of the inbound topic (and of the player table), read at start."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader = PartitionReader(settings, "global", clients=clients)

    def start(self) -> None:
        """Read both topics to their end (`PartitionReader.read_to_end`), then follow them in a
        thread until `stop`. Raises `LookupError` for a topic that does not exist, `TimeoutError`
        when the cluster sends nothing for `kafka.reading.STALL_S`, `KafkaException` when it
        does not answer or on a fatal client error."""
        listed = self._reader.partitions((PLAYER_EVENTS, *TABLES))
        self.partitions = sum(topic == PLAYER_EVENTS for topic, _ in listed)
        positions: dict[Partition, int] = {
            at: OFFSET_BEGINNING for at in listed if at[0] != PLAYER_EVENTS
        }
        for record in self._reader.read_to_end(positions, self._reader.ends(TABLES)):
            self._take(record)
            positions[record.topic, record.partition] = record.offset + 1
        self._thread = threading.Thread(
            target=self._follow, args=(positions,), name="global-tables", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop following and close the reader (also when `start` failed or never ran)."""
        self._stop.set()
        if self._thread is None:
            self._reader.close()
        else:
            self._thread.join(TABLES_STOP_S)

    def _follow(self, positions: dict[Partition, int]) -> None:
        try:
            for record in self._reader.follow(positions, self._stop):
                self._take(record)
        finally:
            self._reader.close()

    def _take(self, record: ReadRecord) -> None:
        if record.value is None:
            return  # a tombstone: nothing to add
        try:
            if record.topic == PROGRAMMES:
                self.catalogue.add(Programme.model_validate_json(record.value))
            else:
                self.owners.apply(Claim.model_validate_json(record.value))
        except ValidationError as error:
            # the CLI and the API validate before publishing; a bad record is skipped, loudly
            log.error("%s offset %s skipped: %s", record.topic, record.offset, error)


def read_catalogue(settings: Settings, clients: KafkaClients | None = None) -> Catalogue:
    """Every programme version on the topic, read once as a worker reads them (for the CLI);
    `clients` makes the reader (by default librdkafka's)."""
    tables = GlobalTables(settings, clients)
    tables.start()
    tables.stop()
    return tables.catalogue


def publish_programmes(
    settings: Settings,
    programmes: list[Programme],
    *,
    actor: str,
    reason: str,
    previous: Callable[[str], Programme | None] = lambda _: None,
    clients: KafkaClients | None = None,
) -> None:
    """Put programme versions on their topic, keyed by brand and version (compaction keeps all),
    each with its audit entry; `previous(brand)` is the version each one supersedes; `clients`
    makes the producer (by default librdkafka's). Raises `RuntimeError` when the cluster has
    not acknowledged them all within `tuning.PUBLISH_FLUSH_S`."""
    producer = (clients or KafkaClients()).producer(producer_config(settings))
    at = datetime.now(UTC)
    for programme in programmes:
        key = f"{programme.brand_id}:{programme.version}".encode()
        producer.produce(PROGRAMMES, programme.model_dump_json().encode(), key)
        entry = publication_audit(programme, previous(programme.brand_id), actor, reason, at)
        producer.produce(AUDIT, encode(entry), programme.brand_id.encode())
    if producer.flush(PUBLISH_FLUSH_S):
        raise RuntimeError(f"programmes not delivered to {PROGRAMMES}")


def publish_claim(producer: ProducerClient, claim: Claim) -> None:
    """Put a worker's claim on the partitions it owns on `loyalty.workers`, keyed by the worker
    (compaction keeps its latest); sent in the background."""
    producer.produce(WORKERS, claim.model_dump_json().encode(), claim.worker.encode())
    producer.poll(0)
