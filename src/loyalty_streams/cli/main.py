"""The `loyalty-streams` command: one entry point for every process the product runs and every
operator task. Each subcommand, and the module that does its work:

- `worker`: a stream worker (`cli.worker`, then `runtime.worker`);
- `pms-webhook`, `redis-mirror`, `archive`: the side services (`services.pms_webhook`,
  `services.redis_mirror`, `services.archive`);
- `topics apply`, `topics schemas`: the topic declarations (`kafka.admin`, `kafka.topics`);
- `programmes load`: publish programme versions (`runtime.global_tables`);
- `programmes import`: a programme file from a brand's `vip_levels` table (`imports.vip_levels`);
- `command`, `recheck`: publish player commands, re-check levels (`http.command_sender`);
- `export`: finance CSVs (`reports.finance`);
- `what-if`: a proposed programme replayed over a brand's history beside the versions in
  effect, reported as a table, CSV, JSON and HTML (`whatif.job`, `whatif.render`);
- `token`: sign a bearer token for the HTTP API (`http.auth`);
- `explain`: why a player has their balance and level, asked of a worker's HTTP API
  (`http.explain`), printed as a statement (`domain.explanation`);
- `broker`, `generate`, `demo`: development tools (`devtools.broker`, `devtools.generator`,
  `devtools.demo`).

Each handler imports what it runs, so a command loads only its own modules.
"""

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from loyalty_streams.http.auth import Role
from loyalty_streams.settings import Settings, get_settings

if TYPE_CHECKING:
    from collections.abc import Callable

    from loyalty_streams.domain.commands import Command
    from loyalty_streams.domain.events import PlayerEvent
    from loyalty_streams.kafka.clients import KafkaClients


def _broker(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.devtools.broker import BrokerError, serve

    if args.nodes < 1 or (args.kind == "tansu" and args.nodes != 1):
        print("--nodes: Tansu runs one node; Apache Kafka 1 or more", file=sys.stderr)
        return 2
    try:
        serve(get_settings(), args.kind, args.nodes)
    except BrokerError as error:  # its message says what failed, with the broker's log
        print(error, file=sys.stderr)
        return 1
    return 0


def _topics_apply(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.kafka.admin import apply_topics
    from loyalty_streams.kafka.topics import load_specs

    settings = get_settings()
    report = apply_topics(settings, load_specs(args.dir or settings.topics_dir), clients=clients)
    print(report.render())
    return 0 if report.ok else 1


def _topics_schemas(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.kafka.topics import write_schemas

    changed = write_schemas(args.dir or get_settings().topics_dir)
    for path in changed:
        print(f"rewrote {path}")
    print(f"{len(changed)} schema(s) updated")
    return 0


def _generate(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.devtools.generator import run

    report = run(
        get_settings(),
        players=args.players,
        rate=args.rate,
        duration=args.duration,
        seed=args.seed,
        clients=clients,
    )
    print(report.render())
    return 0


def _worker(_: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.cli.worker import run_worker

    return run_worker(get_settings(), clients)


def _programmes_load(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from datetime import UTC, datetime

    from loyalty_streams.domain.catalogue import Backdated, StaleVersion
    from loyalty_streams.domain.programme import load_programme, shipped_programmes
    from loyalty_streams.domain.validation import check_unique_keys
    from loyalty_streams.runtime.global_tables import publish_programmes, read_catalogue

    try:
        programmes = [load_programme(path) for path in args.files]
        for path in args.files:  # a threshold written twice would silently keep the last
            check_unique_keys(path.read_bytes())
    except (OSError, ValueError) as error:  # a ValidationError is a ValueError too
        print(f"not loaded, nothing was published: {error}", file=sys.stderr)
        return 1
    if not programmes and not args.shipped:
        print("name programme files, or --shipped", file=sys.stderr)
        return 2
    settings = get_settings()
    current = read_catalogue(settings, clients)  # the versions they supersede, for the audit
    now = datetime.now(UTC)
    for programme in programmes:
        try:
            current.check_new(programme, now, backfill=args.backfill)
        except (StaleVersion, Backdated) as error:
            print(f"not loaded, nothing was published: {error}", file=sys.stderr)
            return 1
    # the shipped programmes seed a new installation, as a worker's first start does: a system
    # action, allowed to take effect in the past (audited as a backfill all the same)
    if args.shipped:
        programmes.extend(shipped_programmes())
    publish_programmes(
        settings,
        programmes,
        actor=f"cli:{getpass.getuser()}",
        reason=args.reason,
        previous=current.latest,
        clients=clients,
    )
    for programme in programmes:
        print(
            f"published {programme.brand_id} version {programme.version} "
            f"(effective from {programme.effective_from.isoformat()})"
        )
    return 0


def _programmes_import(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    """A programme file from an export of a brand's `vip_levels` table: notes and a summary on
    stderr; exit 2, with one line naming the row and column, for a table that cannot be one."""
    from loyalty_streams.imports.vip_levels import import_vip_levels, load_base, read_export

    try:
        text = args.file.read_bytes().decode("utf-8-sig")  # newlines in quoted cells kept
        imported = import_vip_levels(
            read_export(text),
            args.brand,
            load_base(args.base),
            name=args.name,
            version=args.version,
            effective_from=args.effective_from,
        )
    except (OSError, ValueError) as error:  # ImportProblem, UnicodeDecodeError
        print(f"not imported: {error}", file=sys.stderr)
        return 2
    for note in imported.notes:
        print(f"note: {note}", file=sys.stderr)
    programme = imported.programme
    document = programme.model_dump_json(indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(document)
    else:
        try:
            args.out.write_text(document, encoding="utf-8")
        except OSError as error:
            print(f"not written: {error}", file=sys.stderr)
            return 1
    print(
        f"imported {len(programme.levels)} levels of brand {programme.brand_id} as "
        f"{programme.name!r} version {programme.version} (effective from "
        f"{programme.effective_from.isoformat()}) to {args.out or 'stdout'}",
        file=sys.stderr,
    )
    return 0


def _command(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.domain.commands import decode_command
    from loyalty_streams.kafka.topics import COMMANDS

    return _publish(args.records, decode_command, COMMANDS, clients)


def _event(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.domain.events import decode_player_event
    from loyalty_streams.kafka.topics import PLAYER_EVENTS

    return _publish(args.records, decode_player_event, PLAYER_EVENTS, clients)


def _publish(
    arguments: list[str],
    decode: "Callable[[str], Command | PlayerEvent]",
    topic: str,
    clients: "KafkaClients | None",
) -> int:
    """Validate records (one JSON object per argument, or JSON lines on stdin with `-`) with
    `decode` and publish them to `topic` keyed by their player; nothing is published if one is
    bad (exit 1)."""
    from loyalty_streams.domain.validation import check_unique_keys, validation_summary
    from loyalty_streams.kafka.produce import publish

    texts = sys.stdin.read().splitlines() if arguments == ["-"] else arguments
    texts = [text for text in texts if text.strip()]
    try:
        records = [decode(text) for text in texts]
        for text in texts:  # published re-encoded: the worker would see one of the two keys
            check_unique_keys(text)
    except ValidationError as error:
        print(f"not sent, nothing was published: {validation_summary(error)}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"not sent, nothing was published: {error}", file=sys.stderr)
        return 1
    keyed = [(record.key.encode(), record.model_dump_json().encode()) for record in records]
    sent = publish(get_settings(), topic, keyed, clients=clients)
    for record in records:
        print(f"sent {record.type} {_record_id(record)} for {record.key}")
    print(f"{sent} record(s) published to {topic}; outcomes appear on the output topics")
    return 0


def _record_id(record: "Command | PlayerEvent") -> str:
    from loyalty_streams.domain.commands import CommandEnvelope

    return record.command_id if isinstance(record, CommandEnvelope) else record.event_id


def _recheck(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    """Re-check levels now: one player's (a RecheckLevel command), or every player's of a brand
    (a RecheckBrand record to every partition of loyalty.commands, and its audit entry)."""
    from datetime import UTC, datetime
    from uuid import uuid4

    from confluent_kafka import KafkaException
    from pydantic import ValidationError

    from loyalty_streams.domain.commands import RecheckBrand, RecheckLevel
    from loyalty_streams.domain.validation import validation_summary
    from loyalty_streams.http.command_sender import publish_brand_recheck, publish_commands
    from loyalty_streams.kafka.clients import KafkaClients, producer_config
    from loyalty_streams.runtime.global_tables import read_catalogue

    settings = get_settings()
    clients = clients or KafkaClients()
    command_id, now = str(uuid4()), datetime.now(UTC)
    fields = {"command_id": command_id, "brand_id": args.brand, "issued_at": now}
    fields |= {"actor": args.actor, "reason": args.reason}
    try:  # validated before any broker is asked
        if args.player is None:
            RecheckBrand(**fields, partition=0)
        else:
            command = RecheckLevel(**fields, player_id=args.player)
    except ValidationError as error:
        print(f"not sent, nothing was published: {validation_summary(error)}", file=sys.stderr)
        return 1
    try:
        if read_catalogue(settings, clients).in_effect(args.brand, now) is None:
            print(f"not sent: no programme of brand {args.brand!r} in effect", file=sys.stderr)
            return 1
        if args.player is not None:
            publish_commands(settings, [command], clients=clients)
            print(f"sent RecheckLevel {command_id} for {command.key}; outcomes appear on the "
                  "output topics and loyalty.audit")  # fmt: skip
            return 0
        partitions = publish_brand_recheck(
            clients.producer(producer_config(settings)),
            args.brand,
            command_id=command_id,
            issued_at=now,
            actor=args.actor,
            reason=args.reason,
        )
    except (RuntimeError, KafkaException) as error:  # TimeoutError is a RuntimeError's peer
        print(f"not acknowledged: {error}", file=sys.stderr)
        return 1
    except TimeoutError as error:
        print(f"the cluster did not answer: {error}", file=sys.stderr)
        return 1
    print(f"sent RecheckBrand {command_id} for {args.brand} to {partitions} partition(s) of "
          "loyalty.commands, audited on loyalty.audit")  # fmt: skip
    return 0


EXPORT_KINDS = ("accruals", "reversals", "redemptions", "cashback", "coin-rewards")
"""`reports.finance.ExportKind`'s values, spelled out: the parser does not load the readers."""


def _export(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    """A finance CSV export; dates and naive times are in the brand's time zone."""
    from datetime import UTC, datetime

    from loyalty_streams.reports.finance import ExportKind, brand_zone, export_csv, parse_bound
    from loyalty_streams.runtime.global_tables import read_catalogue

    settings = _service_logging(get_settings())
    zone = brand_zone(read_catalogue(settings, clients), args.brand, datetime.now(UTC))
    if zone is None:
        print(f"not exported: no programme of brand {args.brand!r}", file=sys.stderr)
        return 1
    try:
        since, until = parse_bound(args.since, zone), parse_bound(args.until, zone)
        chunks = export_csv(settings, ExportKind(args.kind), args.brand, since, until, clients)
    except ValueError as error:
        print(f"not exported: {error}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.writelines(chunks)
        sys.stdout.flush()
        return 0
    partial = args.out.with_name(args.out.name + ".partial")  # the file appears complete or not
    try:
        with partial.open("w", encoding="utf-8", newline="") as file:
            file.writelines(chunks)
        partial.replace(args.out)
    finally:
        partial.unlink(missing_ok=True)
    print(f"wrote {args.out} ({since.isoformat()} to {until.isoformat()})", file=sys.stderr)
    return 0


def _what_if(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    """A what-if of a proposed programme: the table on stdout, the files asked for written;
    exit 2 for a bad input (file, brand, dates), 1 when the cluster or a process fails.
    Dates and naive times are in the brand's time zone."""
    from datetime import UTC, datetime

    from confluent_kafka import KafkaException

    from loyalty_streams.domain.catalogue import Catalogue
    from loyalty_streams.domain.programme import load_programme
    from loyalty_streams.domain.validation import check_unique_keys
    from loyalty_streams.reports.finance import brand_zone, parse_bound
    from loyalty_streams.runtime.gc_tuning import tune_collector
    from loyalty_streams.runtime.global_tables import read_catalogue
    from loyalty_streams.whatif.job import run_what_if
    from loyalty_streams.whatif.render import render_text, write_csv, write_html, write_json
    from loyalty_streams.whatif.replay import default_processes

    settings = _service_logging(get_settings())
    try:
        files = [args.programme, *(args.baseline or ())]
        for path in files:  # a threshold written twice would silently keep the last
            check_unique_keys(path.read_bytes())
        proposed, *given = [load_programme(path) for path in files]
    except (OSError, ValueError) as error:  # a ValidationError is a ValueError too
        print(f"not run: {error}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    failures = (LookupError, TimeoutError, KafkaException, OSError, RuntimeError)
    try:
        catalogue = Catalogue(given) if args.baseline else read_catalogue(settings, clients)
    except failures as error:
        print(f"not run: the programmes could not be read: {error}", file=sys.stderr)
        return 1
    zone = brand_zone(catalogue, args.brand, now)
    if zone is None:
        print(f"not run: no programme of brand {args.brand!r}", file=sys.stderr)
        return 2
    try:
        since = None if args.since is None else parse_bound(args.since, zone)
        until = now if args.until is None else parse_bound(args.until, zone)
    except (ValueError, OverflowError) as error:  # OverflowError: a date near year 1 or 9999
        print(f"not run: --from/--to: {error}", file=sys.stderr)
        return 2
    tune_collector()  # this process folds (with --processes 1) and forks nothing
    try:
        report = run_what_if(
            settings,
            args.brand,
            proposed,
            since,
            until,
            args.by,
            args.processes or default_processes(),
            baseline=catalogue.versions(args.brand),
            top=args.top,
            clients=clients,
            # in-memory clients (tests) are copied into forked processes, never pickled
            start_method="spawn" if clients is None else "fork",
        )
    except (ValueError, OverflowError) as error:  # the proposal refused, or a bad range
        print(f"not run: {error}", file=sys.stderr)
        return 2
    except failures as error:
        print(f"not run: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(render_text(report))
    try:
        written = [] if args.csv is None else write_csv(report, args.csv)
        if args.json is not None:
            written.append(write_json(report, args.json))
        if args.html is not None:
            written.append(write_html(report, args.html))
    except OSError as error:
        print(f"not written: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _token(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    """Sign an API token with LOYALTY_API_TOKEN_SECRET."""
    from datetime import UTC, datetime, timedelta

    from loyalty_streams.http.auth import ALL_BRANDS, TokenRules, issue_token

    settings = get_settings()
    brands = [ALL_BRANDS] if args.all_brands else args.brand
    if not brands:
        print("name the brands the token covers (--brand B ...), or --all-brands", file=sys.stderr)
        return 2
    ttl = timedelta(seconds=args.ttl or settings.api_token_ttl_s)
    try:
        token = issue_token(
            TokenRules.of(settings), args.subject, args.role, brands, datetime.now(UTC), ttl
        )
    except ValueError as error:
        print(f"no token signed: {error}", file=sys.stderr)
        return 2
    print(token)
    return 0


EXPLAIN_TOKEN_TTL_S = 300
"""Lifetime of the token `explain` signs for itself when it is given none."""


def _explain(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    """Why a player has their balance and level: a worker's `/explain` (any worker: it forwards
    to the player's owner), printed as a statement, or as the JSON answer with `--json`. Without
    `--token`, signs a short-lived service token for the brand with LOYALTY_API_TOKEN_SECRET."""
    import json
    import urllib.error
    import urllib.request
    from datetime import UTC, datetime, timedelta

    from loyalty_streams.domain.explanation import statement_lines
    from loyalty_streams.http.auth import TokenRules, issue_token
    from loyalty_streams.http.forwarding import owner_url

    settings = get_settings()
    token = args.token
    if token is None:
        rules = TokenRules.of(settings)
        ttl = min(timedelta(seconds=EXPLAIN_TOKEN_TTL_S), rules.max_ttl)
        subject = f"cli:{getpass.getuser()}"
        token = issue_token(rules, subject, [Role.SERVICE], [args.brand], datetime.now(UTC), ttl)
    query = {"limit": str(args.limit)} if args.limit is not None else {}
    query |= {"cursor": args.cursor} if args.cursor is not None else {}
    base = (args.url or settings.worker_url).rstrip("/")
    url = str(owner_url(base, args.brand, args.player, "/explain", query))
    try:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    except ValueError as error:  # not a URL
        print(f"--url: {base!r} is not a worker's URL ({error})", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as reply:
            answer = json.loads(reply.read())
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        print(f"not explained: {error.code}: {body}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:  # unreachable, timed out, or not JSON
        print(f"no answer from {url}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        print("\n".join(statement_lines(answer)))
    return 0


def _pms_webhook(_: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.services.pms_webhook import run_pms_webhook

    return run_pms_webhook(_service_logging(get_settings()), clients)


def _redis_mirror(_: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.services.redis_mirror import run_redis_mirror

    return run_redis_mirror(_service_logging(get_settings()), clients)


def _archive(_: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.services.archive import run_archive

    return run_archive(_service_logging(get_settings()), clients)


def _service_logging(settings: Settings) -> Settings:
    """Log lines with time and source at the configured level (Faust does this for workers)."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def _demo(args: argparse.Namespace, clients: "KafkaClients | None") -> int:
    from loyalty_streams.devtools.demo import run_demo

    return run_demo(duration=args.duration, clients=clients, keep=args.keep)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loyalty-streams",
        description="Loyalty points and VIP levels as a Kafka stream processor.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    broker = commands.add_parser(
        "broker", help="run a development broker: Tansu (default) or Apache Kafka"
    )
    broker.add_argument(
        "--kind",
        choices=("tansu", "apache"),
        default="tansu",
        help="tansu: in memory, starts at once, no Java; apache: Apache Kafka (KRaft), "
        "needs Java and Maven, jars fetched into .cache/kafka on first use",
    )
    broker.add_argument(
        "--nodes", type=int, default=1, help="Apache Kafka nodes (broker and controller each)"
    )
    broker.set_defaults(handler=_broker)

    topics = commands.add_parser("topics", help="topic declarations in topics/")
    topic_commands = topics.add_subparsers(dest="topics_command", required=True)
    for name, handler, text in (
        ("apply", _topics_apply, "create missing topics, report those that differ"),
        ("schemas", _topics_schemas, "regenerate the value schemas from the models"),
    ):
        sub = topic_commands.add_parser(name, help=text)
        sub.add_argument("--dir", type=Path, default=None, help="declarations folder")
        sub.set_defaults(handler=handler)

    commands.add_parser("worker", help="run a stream worker").set_defaults(handler=_worker)

    programmes = commands.add_parser("programmes", help="brand programmes on loyalty.programmes")
    programme_commands = programmes.add_subparsers(dest="programmes_command", required=True)
    load = programme_commands.add_parser(
        "load", help="validate programme files and publish them as new versions"
    )
    load.add_argument("files", type=Path, nargs="*", help="programme JSON files")
    load.add_argument("--shipped", action="store_true", help="also the shipped programmes")
    load.add_argument(
        "--backfill",
        action="store_true",
        help="let the files' versions take effect in the past (audited as programme.backfill)",
    )
    load.add_argument(
        "--reason", default="loaded from file", help="why, for the audit trail (loyalty.audit)"
    )
    load.set_defaults(handler=_programmes_load)
    imports = programme_commands.add_parser(
        "import", help="a programme file from a CSV or JSON export of a vip_levels table"
    )
    imports.add_argument("file", type=Path, help="the export: CSV with a header, or JSON rows")
    imports.add_argument("--brand", required=True, help="brand_id whose rows to import")
    imports.add_argument(
        "--base",
        type=Path,
        default=None,
        help="programme file for what the table does not hold (default: shipped lucky-sweeps)",
    )
    imports.add_argument("--name", default=None, help="programme name (default: the base's)")
    imports.add_argument("--version", type=int, default=None, help="default: the base's")
    imports.add_argument(
        "--effective-from", default=None, help="RFC 3339 time (default: the base's)"
    )
    imports.add_argument("--out", type=Path, default=None, help="file to write (default stdout)")
    imports.set_defaults(handler=_programmes_import)

    token = commands.add_parser("token", help="sign a bearer token for the HTTP API")
    token.add_argument("--subject", required=True, help="who: becomes the actor of their changes")
    token.add_argument(
        "--role", action="append", required=True, choices=[r.value for r in Role], help="repeatable"
    )
    token.add_argument("--brand", action="append", default=[], help="a brand it covers; repeatable")
    token.add_argument("--all-brands", action="store_true", help="cover every brand")
    token.add_argument("--ttl", type=int, help="seconds; default LOYALTY_API_TOKEN_TTL_S")
    token.set_defaults(handler=_token)

    explain = commands.add_parser(
        "explain", help="why a player has their balance and level, from a worker's HTTP API"
    )
    explain.add_argument("--brand", required=True, help="brand_id")
    explain.add_argument("--player", required=True, help="player_id")
    explain.add_argument(
        "--url",
        default=None,
        help="a worker's URL (default: LOYALTY_ADVERTISED_URL, or "
        "http://LOYALTY_WEB_HOST:LOYALTY_WEB_PORT)",
    )
    explain.add_argument(
        "--token",
        default=None,
        help="bearer token (default: a 5-minute service token for the brand, signed with "
        "LOYALTY_API_TOKEN_SECRET)",
    )
    explain.add_argument("--limit", type=int, default=None, help="brand days a page holds")
    explain.add_argument(
        "--cursor", default=None, help="the brand day (YYYY-MM-DD) to start at: a next_cursor"
    )
    explain.add_argument("--json", action="store_true", help="print the answer as JSON")
    explain.add_argument("--timeout", type=float, default=30.0, help="seconds to wait")
    explain.set_defaults(handler=_explain)

    commands.add_parser(
        "pms-webhook", help="POST level changes to LOYALTY_PMS_WEBHOOK_URL until Ctrl-C / SIGTERM"
    ).set_defaults(handler=_pms_webhook)

    commands.add_parser(
        "redis-mirror", help="mirror each player's level, points and turnover to Redis"
    ).set_defaults(handler=_redis_mirror)

    commands.add_parser(
        "archive",
        help="write casino.player-events as Parquet files to LOYALTY_ARCHIVE_DIR, for replays",
    ).set_defaults(handler=_archive)

    for name, handler, topic in (
        ("command", _command, "loyalty.commands"),
        ("event", _event, "casino.player-events"),
    ):
        send = commands.add_parser(
            name, help=f"validate {name}s (JSON) and publish them to {topic}, keyed by player"
        )
        send.add_argument(
            "records", nargs="+", help=f"one JSON {name} per argument, or - for JSON lines on stdin"
        )
        send.set_defaults(handler=handler)

    recheck = commands.add_parser(
        "recheck",
        help="re-check levels now (after a programme change): one player's, or a whole brand's",
    )
    recheck.add_argument("--brand", required=True, help="brand_id")
    recheck.add_argument(
        "--player", default=None, help="player_id; without it, every player of the brand"
    )
    recheck.add_argument("--reason", required=True, help="why, for the audit trail")
    recheck.add_argument("--actor", required=True, help="who, for the audit trail")
    recheck.set_defaults(handler=_recheck)

    export = commands.add_parser(
        "export", help="finance CSV of one brand's outputs of a kind over [--from, --to)"
    )
    export.add_argument("kind", choices=EXPORT_KINDS)
    export.add_argument("--brand", required=True, help="brand_id")
    export.add_argument(
        "--from",
        dest="since",
        required=True,
        help="first day (YYYY-MM-DD: 00:00 in the brand's time zone) or ISO time, included",
    )
    export.add_argument(
        "--to", dest="until", required=True, help="day or ISO time after the last, excluded"
    )
    export.add_argument("--out", type=Path, default=None, help="file to write (default stdout)")
    export.set_defaults(handler=_export)

    what_if = commands.add_parser(
        "what-if",
        help="replay a brand's history through a proposed programme beside the versions in "
        "effect, and report what differs (nothing live is touched)",
    )
    what_if.add_argument("--brand", required=True, help="brand_id")
    what_if.add_argument(
        "--programme", type=Path, required=True, help="the proposed programme (a JSON file)"
    )
    what_if.add_argument(
        "--baseline",
        type=Path,
        nargs="+",
        default=None,
        help="the brand's versions as files, instead of those on loyalty.programmes",
    )
    what_if.add_argument(
        "--from",
        dest="since",
        default=None,
        help="when the proposal takes over and the report starts: a day (00:00 in the brand's "
        "time zone) or ISO time (default: the proposal governs all of the history)",
    )
    what_if.add_argument(
        "--to", dest="until", default=None, help="day or ISO time, excluded (default: now)"
    )
    what_if.add_argument("--by", choices=("day", "month"), default="day", help="periods")
    what_if.add_argument(
        "--csv", type=Path, default=None, help="directory for periods, levels, moves, players"
    )
    what_if.add_argument("--json", type=Path, default=None, help="file for the whole report")
    what_if.add_argument("--html", type=Path, default=None, help="file for the charts' page")
    what_if.add_argument(
        "--processes", type=int, default=None, help="processes folding (default: one a CPU)"
    )
    what_if.add_argument("--top", type=int, default=20, help="most affected players listed")
    what_if.set_defaults(handler=_what_if)

    generate = commands.add_parser("generate", help="publish a synthetic stream of player events")
    generate.add_argument("--players", type=int, default=1000, help="distinct players")
    generate.add_argument("--rate", type=float, default=500.0, help="events per second")
    generate.add_argument("--duration", type=float, default=30.0, help="seconds to run")
    generate.add_argument(
        "--seed", type=int, default=None, help="random seed, for a repeatable run"
    )
    generate.set_defaults(handler=_generate)

    demo = commands.add_parser("demo", help="broker + worker + generator, then a summary")
    demo.add_argument("--duration", type=float, default=30.0, help="seconds of generated traffic")
    demo.add_argument(
        "--keep",
        action="store_true",
        help="leave the broker and the worker running at the end and print the back office's "
        "address with a token (Ctrl-C stops them)",
    )
    demo.set_defaults(handler=_demo)
    return parser


def settings_problem(error: ValidationError) -> str:
    """The settings that failed validation, named by their variables: `LOYALTY_<FIELD>: <what
    was wrong>`, joined by `; ` (values are left out: some are secrets)."""
    return "; ".join(
        f"LOYALTY_{'_'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
        for item in error.errors(include_url=False, include_input=False)
    )


def main(argv: Sequence[str] | None = None, clients: "KafkaClients | None" = None) -> int:
    """Run the subcommand `argv` names (default: the process's arguments); gives its exit code.
    `clients` makes the Kafka clients the command needs (by default librdkafka's), except the
    readers of `export` and the consumer of `redis-mirror`, which make their own."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args, clients)
    except ValidationError as error:  # a LOYALTY_* variable that is not a valid setting
        print(f"bad setting: {settings_problem(error)}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
