"""The one typed settings object, read from `LOYALTY_*` environment variables.

Defaults suit the embedded development broker on 127.0.0.1:9092; pointing
`LOYALTY_BOOTSTRAP_SERVERS` (and, for a secured cluster, the security settings) at any Kafka
cluster is all it takes to run against it.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET_BYTES = 32
"""The shortest secret accepted outside development: HS256 and HMAC-SHA256 want a key of at
least 256 bits (RFC 7518, section 3.2)."""
PUBLIC_DEFAULT_SECRET = "change-me"
"""The secrets' default, public by definition: accepted only in development."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALTY_", extra="ignore", frozen=True)

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated host:port"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None

    broker_port: int = Field(9092, description="Port of the embedded development broker")
    broker_host: str = Field("127.0.0.1", description="Address the embedded broker listens on")

    app_id: str = Field("loyalty-streams", description="Faust app id: consumer group and prefix")
    data_dir: Path = Field(Path("var/data"), description="Where RocksDB tables live")
    topics_dir: Path = Field(Path("topics"), description="Topic declarations (topics/*.json)")
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, description="Port of the worker's HTTP views")
    advertised_url: str | None = Field(
        None,
        description="URL other workers use to reach this one's views "
        "(default http://web_host:web_port; set it to the pod's address in a cluster)",
    )
    timers_wait_s: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="How long after a timer's instant the worker fires it on its own clock, so "
        "records dated before the instant that arrive this late still count (a player's own "
        "later record fires it at once); what fires is dated at the instant either way",
    )
    census_interval_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="How often the population gauges are recounted from the stored players "
        "(read a slice at a time between fetches)",
    )
    player_cache_size: int = Field(
        50_000,
        ge=0,
        description="Decoded player records the fold thread keeps in memory, so returning "
        "players skip RocksDB; 0 turns the cache off (memory per record: "
        "docs/decisions/player-cache-size.md)",
    )
    event_max_ahead_s: float = Field(
        300.0,
        ge=0,
        description="An event dated more than this after its record's timestamp is a dead letter",
    )
    event_max_age_days: float = Field(
        90.0,
        gt=0,
        description="An event dated more than this before its record's timestamp is a dead "
        "letter: late corrections and backfills pass, an implausible time does not",
    )
    command_clock_skew_s: float = Field(
        300.0,
        ge=0,
        description="A command whose issued_at differs from its record's timestamp by more "
        "than this is rejected (code clock_skew); rules run on the record's timestamp",
    )
    seed_programmes: bool = Field(
        True, description="Publish the shipped programmes when loyalty.programmes is empty"
    )
    session_timeout_s: float = Field(
        6.0,
        description="Consumer group session timeout; short, so workers join and fail over fast",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="at_least_once: a crash may send a batch's outputs again (same ids, "
        "consumers drop repeats by id); exactly_once: each checkpoint's outputs, changelog "
        "records and inbound offsets commit in one Kafka transaction, so read_committed "
        "consumers see every output once (needs a broker with transactions: a worker refuses "
        "to start on one without)",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    development: bool = Field(
        False,
        description="A laptop or test run: accept the public default or a short secret "
        "(never in production)",
    )

    api_token_secret: str = Field(
        PUBLIC_DEFAULT_SECRET,
        description="HS256 key of the API's bearer tokens (JWT): random, at least 32 bytes",
    )
    api_token_ttl_s: int = Field(
        3600, gt=0, description="Lifetime of tokens issued by `loyalty-streams token`"
    )
    api_token_max_ttl_s: int = Field(
        86_400,
        gt=0,
        description="The longest lifetime of a token the API accepts (exp - iat, or exp - now "
        "without iat); a longer-lived token is refused",
    )
    api_token_issuer: str | None = Field(
        None, description="When set, tokens must carry this `iss` (and the CLI writes it)"
    )
    api_token_audience: str | None = Field(
        None, description="When set, tokens must carry this `aud` (and the CLI writes it)"
    )

    pms_webhook_url: str | None = Field(
        None, description="Where level changes are POSTed for the PMS; unset: no delivery"
    )
    pms_webhook_secret: str = Field(
        PUBLIC_DEFAULT_SECRET,
        description="HMAC-SHA256 key of the webhook's signature header: random, at least 32 bytes",
    )
    pms_webhook_secret_previous: str | None = Field(
        None,
        description="During a rotation, the secret being replaced: requests are signed with both",
    )
    pms_webhook_max_attempts: int = Field(
        8, ge=1, description="Attempts per notification before it goes to the dead letters"
    )
    pms_webhook_backoff_s: float = Field(
        0.5, gt=0, description="First retry delay; doubles per attempt, with jitter"
    )
    pms_webhook_backoff_max_s: float = Field(30.0, gt=0, description="Longest retry delay")
    pms_webhook_breaker_failures: int = Field(
        5, ge=1, description="Consecutive failures that open the circuit breaker"
    )
    pms_webhook_breaker_reset_s: float = Field(
        30.0, gt=0, description="How long an open breaker waits before one trial request"
    )

    redis_url: str | None = Field(
        None, description="Mirror players to this Redis (redis://host:port/db); unset: off"
    )
    redis_sentinels: str | None = Field(
        None, description="Sentinels host:port,host:port; when set, the master comes from them"
    )
    redis_sentinel_service: str = Field("mymaster", description="The master's name in Sentinel")
    redis_key_prefix: str = Field("loyalty:", description="Prefix of the mirror's keys")

    archive_dir: Path | None = Field(
        None,
        description="Where `loyalty-streams archive` writes casino.player-events as Parquet "
        "files, and where the replay's history reads them (default: <data_dir>/archive)",
    )
    archive_roll_records: int = Field(
        100_000, ge=1, description="The archive writes its files once it holds this many records"
    )
    archive_roll_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1,
        description="... or this many bytes of keys and values (what it holds in memory)",
    )
    archive_roll_s: float = Field(
        900.0,
        gt=0,
        description="... or once its oldest record waiting was read this many seconds ago: how "
        "far the files may lag behind the topic (the replay reads the rest from the topic); "
        "shorter makes more, smaller files, which are slower to read",
    )
    archive_exit_before_commit: bool = Field(
        False,
        description="Tests only: the archive exits (code 3) right after its first files are "
        "renamed, before their offsets are committed, as a crash there would",
    )

    what_if_max_jobs: int = Field(
        1,
        ge=1,
        le=64,
        description="What-if jobs a worker runs at once for the API, each in a process of its "
        "own; a submission beyond them is refused (429), never queued",
    )
    what_if_processes: int = Field(
        1,
        ge=1,
        le=256,
        description="Processes each API what-if job folds in: 1, the job's own process, so a "
        "job takes at most one CPU from the worker's fold loop",
    )
    what_if_keep_jobs: int = Field(
        20,
        ge=1,
        le=10_000,
        description="Finished what-if jobs a worker keeps (in memory, their reports under "
        "<data_dir>/what-if), the newest first",
    )
    what_if_keep_s: float = Field(
        86_400.0,
        gt=0,
        description="How long after it finished a what-if job is kept",
    )

    @property
    def worker_url(self) -> str:
        return self.advertised_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def archive_root(self) -> Path:
        """The archive's directory: `archive_dir`, else `archive` under `data_dir`."""
        return self.archive_dir if self.archive_dir is not None else self.data_dir / "archive"

    @property
    def exactly_once(self) -> bool:
        """Checkpoints commit in Kafka transactions (`processing_guarantee`)."""
        return self.processing_guarantee == "exactly_once"

    def secret_problems(self, *names: str) -> list[str]:
        """Why the secret settings `names` (field names) must not be used: one line each.

        Empty is always refused (nothing can be signed with it); the public default and anything
        shorter than MIN_SECRET_BYTES in UTF-8 are refused unless `development` is set. An
        optional secret that is unset (None) is fine. Raises KeyError for an unknown name.
        """
        problems = []
        for name in names:
            if name not in type(self).model_fields:
                raise KeyError(name)
            secret: str | None = getattr(self, name)
            if secret is None or (self.development and secret):
                continue
            size = len(secret.encode())
            if secret == PUBLIC_DEFAULT_SECRET:
                what = f"the public default {PUBLIC_DEFAULT_SECRET!r}"
            elif size < MIN_SECRET_BYTES:
                what = f"{size} bytes long" if secret else "empty"
            else:
                continue
            problems.append(
                f"LOYALTY_{name.upper()} is {what}: set a random secret of at least "
                f"{MIN_SECRET_BYTES} bytes (python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')"
                + ("" if not secret else "; only LOYALTY_DEVELOPMENT=true accepts a weak one")
            )
        return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
