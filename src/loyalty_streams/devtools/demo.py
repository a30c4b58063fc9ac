"""`loyalty-streams demo`: the whole product on a laptop, in one command.

Starts the embedded broker, applies the topics, starts a worker process, publishes a synthetic
stream plus two malformed records, then reads the output topics back with a stock Kafka client
and checks every point against an independent replay of the published events through the rules.
Last, the top player redeems their points through `loyalty.commands`.
"""

import secrets
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from loyalty_streams.devtools.broker import EmbeddedBroker, free_port
from loyalty_streams.devtools.generator import GeneratorReport, run
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.devtools.replay import replay
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.commands import Command, ConfirmRedemption, RedeemPoints
from loyalty_streams.domain.outputs import PointsAccrued
from loyalty_streams.domain.programme import shipped_programmes
from loyalty_streams.http.auth import ALL_BRANDS, Role, TokenRules, issue_token
from loyalty_streams.http.command_sender import publish_commands
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.clients import KafkaClients, producer_config
from loyalty_streams.kafka.reading import Records, read_topics
from loyalty_streams.kafka.topics import (
    COMMAND_REJECTIONS,
    DEAD_LETTER,
    LEVEL_CHANGED,
    PLAYER_EVENTS,
    POINTS_ACCRUED,
    REDEMPTIONS,
    load_specs,
)
from loyalty_streams.settings import Settings, get_settings

MALFORMED = (b"this is not json", b'{"type": "BetPlaced", "amount": "-5"}')
DRAIN_TIMEOUT_S = 120.0


def run_demo(
    duration: float,
    players: int = 300,
    rate: float = 200.0,
    seed: int = 2026,
    clients: KafkaClients | None = None,
) -> int:
    """Run the demo; returns 0 when every point out matches the replay, 1 otherwise. `clients`
    makes this process's Kafka clients (by default librdkafka's; the worker is another process,
    with its own)."""
    clients = clients or KafkaClients()
    with tempfile.TemporaryDirectory(prefix="loyalty-demo-") as tmp, EmbeddedBroker() as broker:
        print(f"broker: embedded Tansu on {broker.bootstrap_servers}")
        settings = get_settings().model_copy(
            update={
                "bootstrap_servers": broker.bootstrap_servers,
                "data_dir": Path(tmp) / "data",
                "web_port": free_port(),
                "api_token_secret": secrets.token_urlsafe(32),
                # the demo is a development run: nothing it starts needs the user's secrets
                "development": True,
            }
        )
        print(apply_topics(settings, load_specs(settings.topics_dir), clients=clients).render())
        log = Path(tmp) / "worker.log"
        with ServiceProcess(settings, log) as worker:
            print(f"worker: started, log in {log}; publishing for {duration:.0f} s ...")
            report = run(
                settings,
                players=players,
                rate=rate,
                duration=duration,
                seed=seed,
                clients=clients,
            )
            _publish_malformed(settings, clients)
            print(report.render())
            expected_bets = sum(report.bets.values())
            print(f"waiting for the worker to emit {expected_bets:,} PointsAccrued ...")
            began = time.monotonic()
            records = read_topics(
                settings,
                (PLAYER_EVENTS, POINTS_ACCRUED, LEVEL_CHANGED, DEAD_LETTER),
                until=lambda r: (
                    len(r[POINTS_ACCRUED]) >= expected_bets
                    and len(r[DEAD_LETTER]) >= len(MALFORMED)
                    and len(r[PLAYER_EVENTS]) >= report.sent + len(MALFORMED)
                ),
                timeout=DRAIN_TIMEOUT_S,
                clients=clients,
            )
            waited = time.monotonic() - began
            if not worker.running:
                print("the worker stopped unexpectedly:\n" + worker.log_tail())
                return 1
            code = _summarise(records, report, waited)
            top = _top_player(records)
            worker.settled()  # else the lookup below could lag the outputs just counted
            if top is not None:
                view = _show_player(settings, *top)
                available = Decimal(view["points"]["available"])
                code = max(code, _redeem(settings, clients, *top, available))
        return code


def _top_player(records: Records) -> tuple[str, str] | None:
    """The brand and id of the player who earned the most points."""
    earned: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for record in records[POINTS_ACCRUED]:
        value = orjson.loads(record.value or b"")
        earned[(value["brand_id"], value["player_id"])] += Decimal(value["points"])
    return max(earned, key=earned.__getitem__) if earned else None


def _show_player(settings: Settings, brand_id: str, player_id: str) -> dict[str, Any]:
    """What the lookup view says about a player, printed and returned."""
    url = f"http://127.0.0.1:{settings.web_port}/loyalty/{brand_id}/{player_id}"
    bearer = issue_token(
        TokenRules.of(settings), "demo", [Role.SERVICE], [ALL_BRANDS], datetime.now(UTC),
        timedelta(minutes=5),
    )  # fmt: skip
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        view: dict[str, Any] = orjson.loads(reply.read())
    following = view["progress"]["next_level"]
    print(f"\nGET {url}")
    print(
        f"  level {view['level']['name']}, points available {view['points']['available']}, "
        f"turnover {view['turnover']['cumulative']} {view['turnover']['currency']}, "
        f"VIP points {view['vip_points']}, last 30 days {view['progress']['rolling_30d']} "
        f"({view['progress']['basis']})"
    )
    if following is not None:
        print(f"  next level {following['name']}: {following['still_needed']} still needed")
    perks = [name for name, granted in view["perks"].items() if granted]
    print(f"  perks: {', '.join(perks) or 'none'}; multipliers {view['multipliers']}")
    return view


def _redeem(
    settings: Settings, clients: KafkaClients, brand_id: str, player_id: str, available: Decimal
) -> int:
    """Redeem the player's whole thousands of points (hold, confirm), and ask for too many once."""
    points = available // 1000 * 1000
    if points < 1000:
        return 0
    now = datetime.now(UTC)
    player = {"brand_id": brand_id, "player_id": player_id}
    commands: list[Command] = [
        RedeemPoints(command_id="demo-redeem", points=str(points), issued_at=now, **player),
        ConfirmRedemption(
            command_id="demo-confirm", redemption_id="demo-redeem", issued_at=now, **player
        ),
        RedeemPoints(command_id="demo-too-much", points=str(points), issued_at=now, **player),
    ]
    publish_commands(settings, commands, clients=clients)
    print(f"\ncommands: redeem {points} points, confirm, then redeem {points} more")
    wanted = {"demo-redeem:held", "demo-redeem:redeemed", "demo-too-much:rejected"}
    topics = (REDEMPTIONS, COMMAND_REJECTIONS)

    def outcomes(records: Records) -> dict[str, dict[str, Any]]:
        values = (orjson.loads(r.value or b"") for topic in topics for r in records[topic])
        return {value["output_id"]: value for value in values}

    found = outcomes(
        read_topics(
            settings,
            topics,
            until=lambda r: wanted <= set(outcomes(r)),
            timeout=60,
            clients=clients,
        )
    )
    for output_id in sorted(wanted & set(found)):
        value = found[output_id]
        detail = (
            value.get("reason")
            or f"{value['points']} points = {value['value']} " + value["currency"]
        )
        print(f"  {value['type']:<18}{detail}")
    if not wanted <= set(found):
        print(f"  MISSING: {sorted(wanted - set(found))}")
        return 1
    _show_player(settings, brand_id, player_id)
    return 0


def _publish_malformed(settings: Settings, clients: KafkaClients) -> None:
    producer = clients.producer(producer_config(settings))
    for value in MALFORMED:
        producer.produce(PLAYER_EVENTS, key=b"aurora-casino:garbage", value=value)
    producer.flush(10)


def _replay(records: Records) -> defaultdict[str, Decimal]:
    """Points per brand from folding the inbound topic through the rules, outside the worker."""
    points: defaultdict[str, Decimal] = defaultdict(Decimal)
    folded = replay(records[PLAYER_EVENTS], Catalogue(shipped_programmes()).in_effect)
    for output in folded.outputs:
        if isinstance(output, PointsAccrued):
            points[output.brand_id] += output.points
    return points


def _summarise(records: Records, report: GeneratorReport, waited: float) -> int:
    accrued = [orjson.loads(r.value or b"") for r in records[POINTS_ACCRUED]]
    levels = [orjson.loads(r.value or b"") for r in records[LEVEL_CHANGED]]
    dead = [orjson.loads(r.value or b"") for r in records[DEAD_LETTER]]
    out: defaultdict[str, Decimal] = defaultdict(Decimal)
    for value in accrued:
        out[value["brand_id"]] += Decimal(value["points"])
    expected = _replay(records)
    moves = Counter(
        (value["brand_id"], f"{value['from_level']}->{value['to_level']}") for value in levels
    )

    print()
    print("=" * 72)
    print(
        f"events in        {len(records[PLAYER_EVENTS]):>10,}  (published {report.sent:,} "
        f"+ {len(MALFORMED)} malformed)"
    )
    print(
        f"PointsAccrued    {len(accrued):>10,}  (one per bet: {sum(report.bets.values()):,})"
        f"   drained in {waited:.1f} s"
    )
    print(f"LevelChanged     {len(levels):>10,}")
    print(f"dead letters     {len(dead):>10,}")
    for letter in dead:
        print(f"  - {letter['reason'][:100]}")
    print()
    print(f"  {'brand':<18}{'points out':>16}{'replayed rules':>18}   check")
    ok = len(accrued) == sum(report.bets.values()) and len(dead) == len(MALFORMED)
    for brand in sorted(set(out) | set(expected)):
        same = out[brand] == expected[brand]
        ok = ok and same
        print(f"  {brand:<18}{out[brand]:>16,}{expected[brand]:>18,}   {'OK' if same else 'DIFF'}")
    if moves:
        print()
        print("  level changes")
        for (brand, move), count in sorted(moves.items()):
            print(f"  {brand:<18}{move:<22}{count:>6,}")
    print("=" * 72)
    print("every point accounted for" if ok else "MISMATCH: see above")
    return 0 if ok else 1
