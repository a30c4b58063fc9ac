"""The tables every worker reads whole: programme versions and the owners of partitions.

One reader thread follows every partition of `loyalty.programmes` and `loyalty.workers` from the
start, without a consumer group (each worker needs all of it), and keeps a `Catalogue` and an
`Owners` current. Start-up waits until both are read to their end, so no event is judged without
its programme.
"""

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message, Producer, TopicPartition
from pydantic import ValidationError

from loyalty_streams.domain.catalogue import Catalogue, publication_audit
from loyalty_streams.domain.outputs import encode
from loyalty_streams.domain.programme import Programme
from loyalty_streams.kafka.clients import KafkaClients, producer_config, reader_config
from loyalty_streams.kafka.topics import AUDIT, PLAYER_EVENTS, PROGRAMMES, WORKERS
from loyalty_streams.runtime.ownership import Claim, Owners
from loyalty_streams.settings import Settings

log = logging.getLogger(__name__)


class GlobalTables:
    def __init__(self, settings: Settings, clients: KafkaClients | None = None) -> None:
        """`clients` makes the reader (by default librdkafka's)."""
        self.catalogue = Catalogue()
        self.owners = Owners(settings.app_id)
        self.partitions = 0
        """Partitions of the inbound topic (and of the player table), read at start."""
        self._pending_eof: set[tuple[str, int]] = set()
        self._caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="global-tables", daemon=True)
        self._consumer = (clients or KafkaClients()).consumer(reader_config(settings, "global"))

    def start(self, timeout: float = 60.0) -> None:
        """Start following both topics; returns once they are read to their end."""
        metadata = self._consumer.list_topics(timeout=15).topics
        self.partitions = len(metadata[PLAYER_EVENTS].partitions)
        partitions = [
            TopicPartition(name, number, 0)
            for name in (PROGRAMMES, WORKERS)
            for number in metadata[name].partitions
        ]
        self._pending_eof = {(tp.topic, tp.partition) for tp in partitions}
        self._consumer.assign(partitions)
        self._thread.start()
        if not self._caught_up.wait(timeout):
            raise TimeoutError(f"{PROGRAMMES} and {WORKERS} not read within {timeout:.0f} s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for message in self._consumer.consume(500, 0.2):
                    self._take(message)
        finally:
            self._consumer.close()

    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._pending_eof.discard((str(message.topic()), int(message.partition() or 0)))
                if not self._pending_eof:
                    self._caught_up.set()
            else:
                log.warning("global tables: %s", error)
            return
        value = message.value()
        if not isinstance(value, bytes):
            return
        try:
            if message.topic() == PROGRAMMES:
                self.catalogue.add(Programme.model_validate_json(value))
            else:
                self.owners.apply(Claim.model_validate_json(value))
        except ValidationError as error:
            # the CLI and the API validate before publishing; a bad record is skipped, loudly
            log.error("%s offset %s skipped: %s", message.topic(), message.offset(), error)


def read_catalogue(settings: Settings) -> Catalogue:
    """Every programme version on the topic, read once as a worker reads them (for the CLI)."""
    tables = GlobalTables(settings)
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
) -> None:
    """Put programme versions on their topic, keyed by brand and version (compaction keeps all),
    each with its audit entry; `previous(brand)` is the version each one supersedes."""
    producer = Producer(producer_config(settings))
    at = datetime.now(UTC)
    for programme in programmes:
        key = f"{programme.brand_id}:{programme.version}".encode()
        producer.produce(PROGRAMMES, programme.model_dump_json().encode(), key)
        entry = publication_audit(programme, previous(programme.brand_id), actor, reason, at)
        producer.produce(AUDIT, encode(entry), programme.brand_id.encode())
    if producer.flush(30):
        raise RuntimeError(f"programmes not delivered to {PROGRAMMES}")


def publish_claim(producer: Producer, claim: Claim) -> None:
    producer.produce(WORKERS, claim.model_dump_json().encode(), claim.worker.encode())
    producer.poll(0)
