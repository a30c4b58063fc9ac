"""The global tables (`runtime.global_tables`) on an in-memory cluster: read to their end before
`start` returns, bad records and tombstones skipped, then followed until `stop`."""

import time

import orjson

from loyalty_streams.kafka.topics import AUDIT, PLAYER_EVENTS, PROGRAMMES, WORKERS
from loyalty_streams.runtime.global_tables import GlobalTables, publish_programmes, read_catalogue
from loyalty_streams.runtime.ownership import Claim
from loyalty_streams.runtime.test_driver import MemoryCluster
from loyalty_streams.settings import Settings
from tests.domain.builders import T0, programme

SETTINGS = Settings(bootstrap_servers="memory:0")


def claim(worker: str, *partitions: int) -> bytes:
    url = f"http://{worker}:8080"
    found = Claim(app_id=SETTINGS.app_id, worker=worker, url=url, partitions=partitions, at=T0)
    return found.model_dump_json().encode()


def owner(tables: GlobalTables, partition: int) -> str | None:
    found = tables.owners.owner_of(partition)
    return None if found is None else found.worker


def test_the_tables_are_read_to_their_end_at_start_then_followed() -> None:
    cluster = MemoryCluster(partitions=3, owned=range(3))
    cluster.append(PLAYER_EVENTS, 0, b"aurora-casino:p1", b"{}", None)
    aurora = programme()
    cluster.append(PROGRAMMES, 1, b"aurora-casino:1", aurora.model_dump_json().encode(), None)
    cluster.append(PROGRAMMES, 1, b"aurora-casino:2", b"{not a programme", None)  # skipped
    cluster.append(PROGRAMMES, 2, b"aurora-casino:3", None, None)  # a tombstone: skipped
    cluster.append(WORKERS, 0, b"w1", claim("w1", 0, 1), None)
    tables = GlobalTables(SETTINGS, cluster)

    tables.start()
    try:
        assert tables.partitions == 3
        assert tables.catalogue.in_effect(aurora.brand_id, T0) == aurora
        assert len(tables.catalogue) == 1
        assert (owner(tables, 0), owner(tables, 1)) == ("w1", "w1")

        cluster.append(WORKERS, 2, b"w2", claim("w2", 1), None)  # after the catch-up
        deadline = time.monotonic() + 5
        while owner(tables, 1) != "w2" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (owner(tables, 0), owner(tables, 1)) == ("w1", "w2")
    finally:
        tables.stop()


def test_programmes_are_published_and_read_back_through_the_clients_given() -> None:
    cluster = MemoryCluster(partitions=2, owned=range(2))
    cluster.append(PLAYER_EVENTS, 0, b"aurora-casino:p1", b"{}", None)
    cluster.append(WORKERS, 0, b"w1", claim("w1", 0, 1), None)
    aurora = programme()

    publish_programmes(SETTINGS, [aurora], actor="test", reason="seed", clients=cluster)

    (entry,) = [orjson.loads(m.value() or b"") for n in range(2) for m in cluster.log(AUDIT, n)]
    assert (entry["actor"], entry["reason"]) == ("test", "seed")
    assert read_catalogue(SETTINGS, cluster).in_effect(aurora.brand_id, T0) == aurora
