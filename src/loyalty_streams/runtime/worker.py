"""One worker process: the fold loop, the global tables, the player table, and the lookups the
HTTP views ask, run as a `mode` service of the Faust app that serves the views.

`Worker` starts the global tables (publishing the shipped programmes on a first start), then the
fold loop in its thread (`loop.FoldLoop`), and announces the partitions it owns. The fold loop
consumes with librdkafka, not through Faust: Faust's Kafka clients are not started at all (why:
docs/decisions/worker-bypasses-faust-consumer.md).
"""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
from faust.app.base import BootStrategy
from mode import Service

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import shipped_programmes
from loyalty_streams.kafka.clients import KafkaClients, producer_config
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.runtime.global_tables import GlobalTables, publish_claim, publish_programmes
from loyalty_streams.runtime.loop import FoldLoop
from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.runtime.ownership import Claim
from loyalty_streams.runtime.tuning import CLAIM_FLUSH_S, SEED_POLL_S, SEED_WAIT_S
from loyalty_streams.settings import Settings
from loyalty_streams.state.store import PartitionStore, PlayerTable

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Worker(Service):
    """The fold loop, the player table and the global tables of one worker, started with Faust."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        clients: KafkaClients | None = None,
    ) -> None:
        """`clock` gives the worker's time (UTC); `clients` makes its Kafka clients (by default
        librdkafka's)."""
        super().__init__()
        clients = clients or KafkaClients()
        self.settings = settings
        self.clock = clock
        self.worker_id = settings.worker_url
        self._clients = clients
        self.tables = GlobalTables(settings, clients)
        self.players = PlayerTable(settings.data_dir / "players")
        self._claims = clients.producer(producer_config(settings))
        self.metrics = Metrics()
        self.fold_loop = FoldLoop(
            settings,
            self.tables.catalogue.in_effect,
            self.players,
            clock,
            self._announce,
            self.metrics,
            clients,
        )

    async def on_start(self) -> None:
        await asyncio.to_thread(self._start)

    async def on_stop(self) -> None:
        await asyncio.to_thread(self._stop)

    def _start(self) -> None:
        self.tables.start()
        if self.settings.seed_programmes and not len(self.tables.catalogue):
            shipped = shipped_programmes()
            publish_programmes(
                self.settings,
                shipped,
                actor=f"worker:{self.worker_id}",
                reason="first start",
                clients=self._clients,
            )
            deadline = time.monotonic() + SEED_WAIT_S
            while len(self.tables.catalogue) < len(shipped) and time.monotonic() < deadline:
                time.sleep(SEED_POLL_S)
            log.info(
                "first start: published the shipped programmes %s", self.tables.catalogue.brands
            )
        self.fold_loop.start(self.tables.partitions)  # read with the global tables' metadata

    def _stop(self) -> None:
        self.fold_loop.stop()
        self._announce(())
        self._claims.flush(CLAIM_FLUSH_S)
        self.tables.stop()
        self.players.close()

    def _announce(self, partitions: tuple[int, ...]) -> None:
        claim = Claim(
            app_id=self.settings.app_id,
            worker=self.worker_id,
            url=self.worker_id,
            partitions=partitions,
            at=utc_now(),
        )
        publish_claim(self._claims, claim)

    # -- what the views ask ------------------------------------------------------------------

    def partition_of(self, key: str) -> int:
        return partition_of(key.encode(), self.tables.partitions)

    def owns(self, partition: int) -> bool:
        return partition in self.fold_loop.owned

    def owner_url(self, partition: int) -> str | None:
        """Where another worker owning the partition answers; None when it is this one or none."""
        claim = self.tables.owners.owner_of(partition)
        if claim is None or claim.worker == self.worker_id:
            return None
        return str(claim.url).rstrip("/")

    def read(self, partition: int, key: str) -> tuple[PlayerState | None, datetime | None]:
        """The local record of a player, and when its partition was last written here."""
        store = self.players.opened(partition)
        if store is None:
            return None, None
        return self.players.player(partition, key), store.checkpointed_at

    def store(self, partition: int) -> PartitionStore | None:
        """The partition's store, when this worker has it open (read it with `state.queries`)."""
        return self.players.opened(partition)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.fold_loop.alive else "failed",
            "worker": self.worker_id,
            "partitions": sorted(self.fold_loop.owned),
            "programmes": self.tables.catalogue.brands,
            "loop_age_s": round(time.monotonic() - self.fold_loop.last_loop, 3),
            "in_flight_records": self.fold_loop.in_flight_records,
            "processing_guarantee": self.settings.processing_guarantee,
            "failure": None if self.fold_loop.failure is None else repr(self.fold_loop.failure),
        }


def create_app(settings: Settings) -> faust.App:
    """The Faust app that runs a `Worker`'s service tree and serves its HTTP routes (added by
    `http.routes.install_routes`), listening on the settings' web host and port."""
    app = faust.App(
        settings.app_id,
        datadir=str(settings.data_dir / "faust"),
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_bind=settings.web_host,
    )
    # Faust's own Kafka consumer and producer stay off: the fold loop uses librdkafka.
    app.boot_strategy = BootStrategy(app, enable_kafka=False)

    return app
