"""`redis-mirror`: copy each player's level, points and turnover to Redis for fast reads.

Other platform services (lobby, cashier, CRM) need a player's level and balance in well under a
millisecond, without a hop through a worker's HTTP view. This process follows the player table's
changelog, the same records the workers rebuild their tables from, and keeps one Redis hash per
player. It is an edge: what the figures mean comes from `domain.standing`, as in the lookup view.

Offsets are committed only after a batch's Redis writes succeeded, so a restart (or a Redis
outage) resumes where it stopped and no change is lost; a batch that is written twice writes the
same values again. Off unless `LOYALTY_REDIS_URL` or `LOYALTY_REDIS_SENTINELS` is set.

A record the mirror cannot read (of a format above this code's, written by a newer worker, or
no player record at all) is left out, logged with the count of such records so far, and its
offset committed like the others: no retry can make it readable, and the player's hash keeps
its last figures until a record the mirror reads comes (upgrade the mirror with the workers).

The consumer, its commits and the stop on a signal are `consumer_service`'s; this module is the
policy it runs (`Mirror`), in batches of up to `MIRROR_BATCH` records.
"""

import logging
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from confluent_kafka import Message
from redis.sentinel import Sentinel
from redis.typing import EncodableT, FieldT

from loyalty_streams.domain.player import PlayerState
from loyalty_streams.domain.programme import Programme
from loyalty_streams.domain.standing import standing
from loyalty_streams.kafka.clients import KafkaClients, group_consumer_config
from loyalty_streams.kafka.topics import PLAYER_EVENTS, PLAYERS_CHANGELOG, PROGRAMMES, WORKERS
from loyalty_streams.runtime.global_tables import GlobalTables
from loyalty_streams.services.consumer_service import ConsumerService, serve
from loyalty_streams.services.redaction import redact, redact_url
from loyalty_streams.settings import Settings
from loyalty_streams.state.keyspace import BOOKKEEPING
from loyalty_streams.state.store import decode_player

log = logging.getLogger(__name__)

MIRROR_BATCH = 2_000
"""Changelog records per consume call, and so at most per Redis pipeline and commit."""
MIRROR_POLL_S = 1.0
"""How often the idle mirror looks at the stop flag."""
MIRROR_BACKOFF_FIRST_S = 0.1
"""The wait before the first retry of a batch Redis did not take; each retry doubles it."""
MIRROR_BACKOFF_MAX_S = 5.0
"""The longest wait between two retries of a batch, however long Redis stays away."""
REDIS_TIMEOUT_S = 5.0
"""The longest a connection to Redis (or to a sentinel) may take to open, or Redis to answer on
it, before the call fails (a batch's write is then retried)."""
NEEDED_TOPICS = (PLAYERS_CHANGELOG, PROGRAMMES, WORKERS, PLAYER_EVENTS)
"""The changelog, and what `GlobalTables` reads; a missing one would be auto-created by some
brokers on subscribe, with the wrong partition count, so the mirror checks first."""

FIELDS = (
    "level",
    "level_rank",
    "points_available",
    "points_held",
    "cumulative_turnover",
    "rolling_30d",
    "vip_points",
    "turnover_currency",
    "as_of",
)


class NotReady(Exception):
    """A record names a brand whose programme this process has not read yet: retry later."""


def mirror_fields(state: PlayerState, programme: Programme, now: datetime) -> dict[str, str]:
    """The hash a player gets: what the lookup view shows for these figures, at `now`.

    Values are strings (Redis stores bytes); decimals keep their exact text, never a float.
    """
    view = standing(state, programme, now)
    return {
        "level": view["level"]["name"],
        "level_rank": str(view["level"]["rank"]),
        "points_available": view["points"]["available"],
        "points_held": view["points"]["held"],
        "cumulative_turnover": view["turnover"]["cumulative"],
        # the level-basis figure of the last 30 brand days (turnover or VIP points)
        "rolling_30d": view["progress"]["rolling_30d"],
        "vip_points": view["vip_points"],
        "turnover_currency": view["turnover"]["currency"],
        "as_of": now.isoformat(),
    }


def redis_key(prefix: str, record_key: bytes) -> str:
    """The hash's key: the prefix, then the changelog key (`brand_id:player_id`)."""
    return prefix + record_key.decode()


def connect(settings: Settings) -> redis.Redis | None:
    """A client for the master: from Sentinel when sentinels are set, else from the URL."""
    if settings.redis_sentinels:
        sentinels = []
        for address in settings.redis_sentinels.split(","):
            host, _, port = address.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"LOYALTY_REDIS_SENTINELS: {address!r} is not host:port")
            sentinels.append((host, int(port)))
        # redis.sentinel has no annotations; the socket_* options apply to the sentinels too
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            sentinels,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        # the pool asks the sentinels again for the master after a failover (connection errors)
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            settings.redis_sentinel_service
        )
        return master
    if settings.redis_url:
        client: redis.Redis = redis.Redis.from_url(
            settings.redis_url,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
        return client
    return None


def target(settings: Settings) -> str:
    """Where the mirror writes, for the log: without the URL's user info and query."""
    if settings.redis_sentinels:
        return f"master {settings.redis_sentinel_service!r} of sentinels {settings.redis_sentinels}"
    return redact_url(settings.redis_url or "")


class Mirror:
    """The mirror's policy for `ConsumerService`: write a batch of changelog records to Redis,
    retrying until it succeeds, before it is committed; `stop` ends the retries."""

    def __init__(
        self,
        settings: Settings,
        client: redis.Redis,
        stop: threading.Event,
        clients: KafkaClients | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.stop = stop
        self.tables = GlobalTables(settings, clients)
        self.unreadable = 0
        """Changelog records left out since the start because they do not decode."""

    def handle(self, records: Sequence[Message]) -> int:
        """Write the batch to Redis until it succeeds (all done), or a stop comes first (none
        done: the next start writes this batch again). Records that do not decode are logged
        and left out (`Decoded`)."""
        decoded = Decoded.of(players(records))
        for key, reason in decoded.unreadable.items():
            self.unreadable += 1
            log.error(
                "changelog record %r does not decode, not mirrored (%d so far): %s",
                key,
                self.unreadable,
                reason,
            )
        latest = decoded.players
        backoff = MIRROR_BACKOFF_FIRST_S
        while True:
            try:
                written = self.write(latest)
                break
            except (redis.RedisError, NotReady) as error:
                log.warning(
                    "batch not written to Redis, retrying in %.1f s: %s: %s",
                    backoff,
                    type(error).__name__,
                    redact(str(error), self.settings.redis_url or ""),
                )
                if self.stop.wait(backoff):
                    return 0
                backoff = min(backoff * 2, MIRROR_BACKOFF_MAX_S)
        log.debug("%d players written from %d changelog records", written, len(records))
        return len(records)

    def write(self, records: Mapping[bytes, PlayerState | None]) -> int:
        """One pipeline (MULTI/EXEC) for the batch: each player's hash, or its deletion."""
        if not records:
            return 0
        now = datetime.now(UTC)
        prefix = self.settings.redis_key_prefix
        with self.client.pipeline(transaction=True) as pipe:
            for key, state in records.items():
                name = redis_key(prefix, key)
                if state is None:
                    pipe.delete(name)
                    continue
                programme = self.programme(state.brand_id, now)
                fields = mirror_fields(state, programme, now)
                # a copy typed as hset wants it (its Mapping is invariant in the key)
                mapping: dict[FieldT, EncodableT] = dict(fields.items())
                pipe.hset(name, mapping=mapping)
            pipe.execute()
        return len(records)

    def programme(self, brand_id: str, now: datetime) -> Programme:
        """The version in effect now, as the lookup view uses; else the brand's first one."""
        catalogue = self.tables.catalogue
        programme = catalogue.in_effect(brand_id, now)
        if programme is None:
            versions = catalogue.versions(brand_id)
            if not versions:
                raise NotReady(f"no programme of {brand_id} read yet")
            programme = versions[0]
        return programme


def players(records: Sequence[Message]) -> dict[bytes, bytes | None]:
    """The newest value (None: a tombstone) of each player's key among changelog `records`; the
    workers' bookkeeping (keys starting with `BOOKKEEPING`) is left out."""
    latest: dict[bytes, bytes | None] = {}
    for record in records:
        key, value = record.key(), record.value()
        if not isinstance(key, bytes) or key.startswith(BOOKKEEPING):
            continue  # the workers' bookkeeping (applied ids, cashback log), not a player
        latest[key] = value if isinstance(value, bytes) else None
    return latest


@dataclass(slots=True)
class Decoded:
    """A batch's player records, decoded: what the mirror writes, and what it leaves out."""

    players: dict[bytes, PlayerState | None] = field(default_factory=dict)
    """Each player's newest record by key (None: a tombstone, the hash is deleted)."""
    unreadable: dict[bytes, str] = field(default_factory=dict)
    """The keys whose newest record does not decode, and why: no retry can fix them."""

    @classmethod
    def of(cls, records: Mapping[bytes, bytes | None]) -> "Decoded":
        """Decode each value with `state.store.decode_player` (so a record of a format above
        this code's is refused, never guessed at)."""
        decoded = cls()
        for key, value in records.items():
            try:
                decoded.players[key] = None if value is None else decode_player(value)
            except (ValueError, KeyError, TypeError, ArithmeticError) as error:
                decoded.unreadable[key] = f"{type(error).__name__}: {error}"
        return decoded


def run_redis_mirror(settings: Settings, clients: KafkaClients | None = None) -> int:
    """Run until SIGTERM/SIGINT; 2 when the mirror is not configured or topics are missing.
    `clients` makes the Kafka clients (by default librdkafka's)."""
    made = clients or KafkaClients()
    try:
        client = connect(settings)
    except ValueError as error:
        print(redact(str(error), settings.redis_url or ""), file=sys.stderr)
        return 2
    if client is None:
        print(
            "the Redis mirror is off: set LOYALTY_REDIS_URL (redis://host:port/db) or "
            "LOYALTY_REDIS_SENTINELS (host:port,host:port) to run it",
            file=sys.stderr,
        )
        return 2

    def mirror(stop: threading.Event) -> None:
        policy = Mirror(settings, client, stop, made)
        # every programme first, so no record is judged without its brand's version
        policy.tables.start()
        log.info("mirroring %s to Redis (%s)", PLAYERS_CHANGELOG, target(settings))
        config = group_consumer_config(settings, f"{settings.app_id}-redis-mirror")
        try:
            service = ConsumerService(
                config, PLAYERS_CHANGELOG, MIRROR_BATCH, MIRROR_POLL_S, stop, made
            )
            service.run(policy)
        finally:
            policy.tables.stop()

    try:
        return serve(settings, NEEDED_TOPICS, mirror, made)
    finally:
        client.close()
