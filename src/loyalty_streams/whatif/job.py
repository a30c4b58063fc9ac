"""The what-if of a brand's real history: its versions from `loyalty.programmes`, its events
from the archive and the topic's unarchived tail (`archive.history`), the report built.

Nothing here writes: the programmes topic and the events are read, as a worker reads them,
with consumers outside any group; no output topic, changelog or store is touched.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from loyalty_streams.archive.history import history
from loyalty_streams.domain.programme import Programme
from loyalty_streams.kafka.clients import KafkaClients
from loyalty_streams.kafka.reading import PartitionReader
from loyalty_streams.kafka.topics import PLAYER_EVENTS
from loyalty_streams.runtime.global_tables import read_catalogue
from loyalty_streams.settings import Settings
from loyalty_streams.whatif.replay import Positioned
from loyalty_streams.whatif.report import Period, Report
from loyalty_streams.whatif.run import ProposalRefused, what_if


@dataclass(frozen=True)
class HistorySource:
    """A brand's history up to `until` (`archive.history`), a share of `partitions` (the
    topic's partition count) at a time: each process reads only its partitions' files and
    tail. Picklable when `clients` is (None: librdkafka's, made in each process)."""

    settings: Settings
    brand_id: str
    until: datetime
    partitions: int
    clients: KafkaClients | None = None

    def __call__(self, share: int, shares: int) -> Iterator[Positioned]:
        mine = None
        if shares > 1:
            mine = {number for number in range(self.partitions) if number % shares == share}
        return history(
            self.settings, self.brand_id, None, self.until, self.clients, partitions=mine
        )


def partition_count(settings: Settings, clients: KafkaClients | None = None) -> int:
    """The partitions of `casino.player-events`. Raises `LookupError` when the topic does not
    exist, `KafkaException` when the cluster does not answer."""
    with PartitionReader(settings, "what-if", clients=clients) as reader:
        return len(reader.partitions([PLAYER_EVENTS]))


def run_what_if(
    settings: Settings,
    brand_id: str,
    proposed: Programme,
    since: datetime | None,
    until: datetime,
    by: Period | str = Period.DAY,
    processes: int = 1,
    *,
    baseline: Sequence[Programme] | None = None,
    top: int = 20,
    clients: KafkaClients | None = None,
    start_method: str = "spawn",
) -> Report:
    """The what-if of `proposed` for `brand_id` over [since, until) (UTC; `since` None: the
    proposal governs all of the history, reported from its first brand day), by `by` (`day`,
    `month`, in the brand's zone), folded in `processes` processes (spawned by default: each
    makes its own Kafka clients), with the `top` most affected players.

    The baseline is the brand's versions on `loyalty.programmes` as they took effect, or
    `baseline` when given (files, for tests and offline use); the history is the brand's events
    before `until` from the archive and the topic's tail (`archive.history`). `clients` makes
    the Kafka clients (by default librdkafka's; an in-memory cluster only with
    `start_method="fork"` or one process).

    Raises `ProposalRefused` (a ValueError) for a proposal of another brand or a brand
    without a version, ValueError for `since` not before `until`; `LookupError` when a topic
    does not exist, `TimeoutError` or `KafkaException` when the cluster stops answering,
    `OSError` for an archive file that cannot be read, `RuntimeError` when a process fails.
    """
    if baseline is None:
        versions = read_catalogue(settings, clients).versions(brand_id)
    else:
        versions = [programme for programme in baseline if programme.brand_id == brand_id]
    if not versions:
        raise ProposalRefused(f"no programme version of brand {brand_id!r} to compare with")
    partitions = partition_count(settings, clients)
    source = HistorySource(settings, brand_id, until, partitions, clients)
    return what_if(
        source,
        brand_id,
        versions,
        proposed,
        since,
        until,
        by,
        processes,
        top=top,
        partitions=partitions,
        start_method=start_method,
    )
