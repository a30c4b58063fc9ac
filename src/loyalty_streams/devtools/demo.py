"""`loyalty-streams demo`: the whole product on a laptop, in one command.

Starts the embedded broker, applies the topics, starts a worker process, publishes a synthetic
stream (with bet cancellations and the sweepstakes brand's coin purchases) plus two malformed
records, then reads the output topics back with a stock Kafka client and checks every point and
store bonus against an independent replay of the published events through the rules. Then the
top player redeems their points through `loyalty.commands`, and bets whose points they redeemed
are cancelled (what the balance no longer held is unrecovered); lucky-sweeps players claim their
daily login reward (and the monthly bonus at a level with the perk). Last, the new outputs are
shown from their topics, and every player's balance is checked against the points that moved:
accrued - reversed - redeemed - expired - debited + credited = available + held.
"""

import secrets
import signal
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from loyalty_streams.devtools.broker import EmbeddedBroker, free_port
from loyalty_streams.devtools.generator import GeneratorReport, run
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.devtools.replay import Replay, replay
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.commands import (
    ClaimDailyReward,
    ClaimMonthlyBonus,
    Command,
    ConfirmRedemption,
    RedeemPoints,
)
from loyalty_streams.domain.events import BetCancelled, CancellationReason, PlayerEvent
from loyalty_streams.domain.outputs import PointsAccrued, PointsReversed, StoreBonusGranted
from loyalty_streams.domain.programme import Programme, shipped_programmes
from loyalty_streams.http.auth import ALL_BRANDS, Role, TokenRules, issue_token
from loyalty_streams.http.command_sender import publish_commands
from loyalty_streams.kafka.admin import apply_topics
from loyalty_streams.kafka.clients import KafkaClients, producer_config
from loyalty_streams.kafka.produce import produce
from loyalty_streams.kafka.reading import Records, read_topics
from loyalty_streams.kafka.topics import (
    COMMAND_REJECTIONS,
    DEAD_LETTER,
    LEVEL_CHANGED,
    PLAYER_EVENTS,
    POINTS_ACCRUED,
    POINTS_ADJUSTED,
    POINTS_EXPIRY,
    REDEMPTIONS,
    REWARDS,
    load_specs,
)
from loyalty_streams.settings import Settings, get_settings

MALFORMED = (b"this is not json", b'{"type": "BetPlaced", "amount": "-5"}')
DRAIN_TIMEOUT_S = 120.0
OUTPUT_TIMEOUT_S = 60.0
COIN_BRAND = "lucky-sweeps"
"""The sweepstakes brand whose players claim the daily login reward and the monthly bonus."""
DAILY_CLAIMS = 3
"""How many of its players (the most VIP points first) claim their daily login reward."""
MAX_CANCELLED = 5
"""At most this many of the top player's bets are cancelled after their redemption."""
POINT_MOVES = (POINTS_ACCRUED, REDEMPTIONS, POINTS_EXPIRY, POINTS_ADJUSTED)
"""The topics of every output that moves points: the final check's other side."""
KEPT_TOKEN_TTL = timedelta(hours=8)
"""Lifetime of the admin token `--keep` prints for the back office (at most the workers' limit)."""

Views = dict[tuple[str, str], dict[str, Any]]
"""The lookup view of each player, by brand and player id."""


def run_demo(
    duration: float,
    players: int = 300,
    rate: float = 200.0,
    seed: int = 2026,
    clients: KafkaClients | None = None,
    keep: bool = False,
) -> int:
    """Run the demo; returns 0 when every point out matches the replay and every balance the
    points that moved, 1 otherwise. `clients` makes this process's Kafka clients (by default
    librdkafka's; the worker is another process, with its own). `keep` leaves the broker and
    the worker running at the end, with the back office's address and a token printed, until
    Ctrl-C or SIGTERM."""
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
            bets, cancellations = sum(report.bets.values()), sum(report.cancellations.values())
            print(
                f"waiting for the worker to emit {bets:,} PointsAccrued and "
                f"{cancellations:,} PointsReversed ..."
            )
            began = time.monotonic()
            records = read_topics(
                settings,
                (PLAYER_EVENTS, POINTS_ACCRUED, LEVEL_CHANGED, DEAD_LETTER),
                until=lambda r: (
                    len(r[POINTS_ACCRUED]) >= bets + cancellations
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
            replayed = replay(records[PLAYER_EVENTS], Catalogue(shipped_programmes()).in_effect)
            bonuses = _store_bonuses(settings, clients, replayed)
            code = _summarise(records, report, waited, replayed, bonuses)
            top = _top_player(records)
            worker.settled()  # else the lookup below could lag the outputs just counted
            if top is not None:
                bearer = _bearer(settings)
                view = _show_player(settings, bearer, *top)
                available = Decimal(view["points"]["available"])
                code = max(code, _redeem(settings, clients, bearer, *top, available))
                code = max(code, _cancel_redeemed(settings, clients, bearer, records, *top))
            worker.settled()
            views = _lookups(settings, _players(records))
            code = max(code, _claim_coin_rewards(settings, clients, views))
            worker.settled()
            code = max(code, _final_check(settings, clients, _lookups(settings, views)))
            if keep:
                code = max(code, _keep_running(settings, worker, top))
            return code


def _keep_running(settings: Settings, worker: ServiceProcess, top: tuple[str, str] | None) -> int:
    """Print the back office's address and a token for each role a person signs in with
    (`loyalty_admin`, `marketing_manager`; every brand), then wait for Ctrl-C or SIGTERM (0),
    or for the worker to stop (1). The tokens are signed with the demo's own random secret:
    `loyalty-streams token` cannot make one this worker accepts."""
    rules = TokenRules.of(settings)
    ttl = min(KEPT_TOKEN_TTL, rules.max_ttl)
    print(f"\nback office: {settings.worker_url}/backoffice/")
    hours = ttl.total_seconds() / 3600
    for subject, role in (
        ("demo-admin", Role.LOYALTY_ADMIN),
        ("demo-marketing", Role.MARKETING_MANAGER),
    ):
        bearer = issue_token(rules, subject, [role], [ALL_BRANDS], datetime.now(UTC), ttl)
        print(f"sign in with this token ({role.value}, every brand, {hours:g} h):\n{bearer}")
    if top is not None:
        print(f"a player to look up: {top[1]} at {top[0]} (the one who earned the most)")
    print("the broker and the worker keep running: Ctrl-C stops them")
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        while True:
            # a Ctrl-C reaches the worker too: a signal waiting wins over the worker's exit
            if signal.sigtimedwait(stops, 1.0 if worker.running else 0) is not None:
                print("stopping the worker and the broker ...")
                return 0
            if not worker.running:
                print("the worker stopped unexpectedly:\n" + worker.log_tail())
                return 1
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)


def _values(records: Records, *topics: str) -> list[dict[str, Any]]:
    """The JSON values of the records of `topics`, each output once (by output id: a worker
    that folded a record twice sends the same output twice)."""
    values = (orjson.loads(r.value or b"") for topic in topics for r in records[topic])
    return list({value["output_id"]: value for value in values}.values())


def _of_type(values: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [value for value in values if value["type"] == kind]


def _top_player(records: Records) -> tuple[str, str] | None:
    """The brand and id of the player who earned the most points."""
    earned: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for value in _of_type(_values(records, POINTS_ACCRUED), "PointsAccrued"):
        earned[(value["brand_id"], value["player_id"])] += Decimal(value["points"])
    return max(earned, key=earned.__getitem__) if earned else None


def _players(records: Records) -> set[tuple[str, str]]:
    """Every player an output on `loyalty.points-accrued` names (each placed a bet)."""
    return {(v["brand_id"], v["player_id"]) for v in _values(records, POINTS_ACCRUED)}


def _bearer(settings: Settings) -> str:
    return issue_token(
        TokenRules.of(settings), "demo", [Role.SERVICE], [ALL_BRANDS], datetime.now(UTC),
        timedelta(minutes=5),
    )  # fmt: skip


def _lookup(settings: Settings, bearer: str, brand_id: str, player_id: str) -> dict[str, Any]:
    """What the lookup view says about a player."""
    url = f"http://127.0.0.1:{settings.web_port}/loyalty/{brand_id}/{player_id}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        view: dict[str, Any] = orjson.loads(reply.read())
    return view


def _lookups(settings: Settings, players: Iterable[tuple[str, str]]) -> Views:
    bearer = _bearer(settings)
    return {player: _lookup(settings, bearer, *player) for player in sorted(players)}


def _show_player(settings: Settings, bearer: str, brand_id: str, player_id: str) -> dict[str, Any]:
    """What the lookup view says about a player, printed and returned."""
    view = _lookup(settings, bearer, brand_id, player_id)
    following = view["progress"]["next_level"]
    print(f"\nGET http://127.0.0.1:{settings.web_port}/loyalty/{brand_id}/{player_id}")
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


def _wait_for(
    settings: Settings, clients: KafkaClients, topics: tuple[str, ...], wanted: set[str]
) -> dict[str, dict[str, Any]]:
    """The outputs of `topics` by output id, once all of `wanted` are there (or the timeout)."""

    def outcomes(records: Records) -> dict[str, dict[str, Any]]:
        return {value["output_id"]: value for value in _values(records, *topics)}

    records = read_topics(
        settings,
        topics,
        until=lambda r: wanted <= set(outcomes(r)),
        timeout=OUTPUT_TIMEOUT_S,
        clients=clients,
    )
    found = outcomes(records)
    if not wanted <= set(found):
        print(f"  MISSING: {sorted(wanted - set(found))}")
    return found


def _redeem(
    settings: Settings,
    clients: KafkaClients,
    bearer: str,
    brand_id: str,
    player_id: str,
    available: Decimal,
) -> int:
    """Redeem as many of the player's points as the programme's steps allow (hold, confirm), and
    ask for as many again once."""
    policies = _programme(brand_id).policies
    points = available // policies.redemption_step_points * policies.redemption_step_points
    if points < policies.redemption_min_points:
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
    found = _wait_for(settings, clients, (REDEMPTIONS, COMMAND_REJECTIONS), wanted)
    for output_id in sorted(wanted & set(found)):
        value = found[output_id]
        detail = (
            value.get("reason")
            or f"{value['points']} points = {value['value']} " + value["currency"]
        )
        print(f"  {value['type']:<18}{detail}")
    if not wanted <= set(found):
        return 1
    _show_player(settings, bearer, brand_id, player_id)
    return 0


def _cancel_redeemed(
    settings: Settings,
    clients: KafkaClients,
    bearer: str,
    records: Records,
    brand_id: str,
    player_id: str,
) -> int:
    """Cancel the player's biggest bets, whose points they have just redeemed, until their
    points are more than the balance left (at most `MAX_CANCELLED`): the balance goes to zero,
    never below, and the rest is unrecovered."""
    available = Decimal(_lookup(settings, bearer, brand_id, player_id)["points"]["available"])
    values = _values(records, POINTS_ACCRUED)
    cancelled = {v["bet_id"] for v in _of_type(values, "PointsReversed")}
    bets = sorted(
        (
            v
            for v in _of_type(values, "PointsAccrued")
            if (v["brand_id"], v["player_id"]) == (brand_id, player_id)
            and v["bet_id"] not in cancelled
        ),
        key=lambda v: Decimal(v["points"]),
        reverse=True,
    )
    chosen: list[dict[str, Any]] = []
    for bet in bets[:MAX_CANCELLED]:
        chosen.append(bet)
        if sum(Decimal(v["points"]) for v in chosen) > available:
            break
    if not chosen:
        return 0
    now = datetime.now(UTC)
    events: list[PlayerEvent] = [
        BetCancelled.model_validate(
            {
                "event_id": f"demo-void-{index}",
                "brand_id": brand_id,
                "player_id": player_id,
                "occurred_at": now,
                "amount": bet["amount"],  # the whole bet, in its currency
                "currency": bet["currency"],
                "bet_id": bet["bet_id"],
                "reason": CancellationReason.ROUND_VOIDED,
            }
        )
        for index, bet in enumerate(chosen)
    ]
    _publish(settings, clients, events)
    print(
        f"\nevents: {len(events)} of the player's biggest bets voided after the redemption "
        f"({available} points left to take from)"
    )
    wanted = {f"{event.event_id}:reversed" for event in events}
    found = _wait_for(settings, clients, (POINTS_ACCRUED,), wanted)
    for output_id in sorted(wanted & set(found)):
        value = found[output_id]
        print(
            f"  {value['type']:<18}{value['amount']} {value['currency']}: {value['points']} "
            f"points, {value['points_reversed']} taken back, {value['points_unrecovered']} "
            f"unrecovered, {value['points_available']} left"
        )
    if not wanted <= set(found):
        return 1
    view = _show_player(settings, bearer, brand_id, player_id)
    return 0 if Decimal(view["points"]["available"]) >= 0 else 1


def _claim_coin_rewards(settings: Settings, clients: KafkaClients, views: Views) -> int:
    """The daily login reward for the lucky-sweeps players with the most VIP points (and a second
    claim the same day by the first), the monthly bonus for those at a level with the perk."""
    ranked = sorted(
        (key for key in views if key[0] == COIN_BRAND),
        key=lambda key: Decimal(views[key]["vip_points"]),
        reverse=True,
    )
    if not ranked:
        return 0
    now = datetime.now(UTC)
    commands: list[Command] = []
    for _, player_id in ranked[:DAILY_CLAIMS]:
        commands.append(
            ClaimDailyReward(
                command_id=f"demo-daily-{player_id}",
                brand_id=COIN_BRAND,
                player_id=player_id,
                issued_at=now,
            )
        )
    first = ranked[0][1]
    commands.append(
        ClaimDailyReward(
            command_id="demo-daily-again", brand_id=COIN_BRAND, player_id=first, issued_at=now
        )
    )
    monthly = [key for key in ranked if views[key]["perks"].get("monthly_bonus")]
    for _, player_id in monthly:
        commands.append(
            ClaimMonthlyBonus(
                command_id=f"demo-monthly-{player_id}",
                brand_id=COIN_BRAND,
                player_id=player_id,
                issued_at=now,
            )
        )
    publish_commands(settings, commands, clients=clients)
    perk = [level.name for level in _programme(COIN_BRAND).levels if level.perks.monthly_bonus]
    print(
        f"\ncommands: the daily login reward for {min(len(ranked), DAILY_CLAIMS)} {COIN_BRAND} "
        f"players and a second claim by {first} the same day; "
        + (
            "the monthly bonus for " + ", ".join(player_id for _, player_id in monthly)
            if monthly
            else f"no monthly bonus: no player is at a level with it ({', '.join(perk)})"
        )
    )
    wanted = {f"demo-daily-{player_id}:daily-reward" for _, player_id in ranked[:DAILY_CLAIMS]}
    wanted |= {"demo-daily-again:rejected"}
    wanted |= {f"demo-monthly-{player_id}:monthly-bonus" for _, player_id in monthly}
    found = _wait_for(settings, clients, (REWARDS, COMMAND_REJECTIONS), wanted)
    for output_id in sorted(wanted & set(found)):
        value = found[output_id]
        if value["type"] == "CommandRejected":
            detail = f"{value['code']}: {value['reason']}"
        else:
            detail = f"{value['level']}: {value['gc']} GC + {value['sc']} SC"
        print(f"  {value['type']:<20}{value['player_id']:<10} {detail}")
    rejected = found.get("demo-daily-again:rejected")
    return 0 if wanted <= set(found) and rejected and rejected["code"] == "already_claimed" else 1


def _programme(brand_id: str) -> Programme:
    """The brand's shipped programme in effect now (the demo's worker runs the shipped ones)."""
    programme = Catalogue(shipped_programmes()).in_effect(brand_id, datetime.now(UTC))
    assert programme is not None  # the demo's players are of the shipped brands
    return programme


def _publish(settings: Settings, clients: KafkaClients, events: Iterable[PlayerEvent]) -> None:
    producer = clients.producer(producer_config(settings))
    for event in events:
        timestamp = int(event.occurred_at.timestamp() * 1000)
        produce(
            producer,
            PLAYER_EVENTS,
            event.model_dump_json().encode(),
            event.key.encode(),
            timestamp=timestamp,
        )
    producer.flush(10)


def _publish_malformed(settings: Settings, clients: KafkaClients) -> None:
    producer = clients.producer(producer_config(settings))
    for value in MALFORMED:
        producer.produce(PLAYER_EVENTS, key=b"aurora-casino:garbage", value=value)
    producer.flush(10)


def _store_bonuses(
    settings: Settings, clients: KafkaClients, replayed: Replay
) -> dict[str, dict[str, Any]]:
    """The store bonuses on `loyalty.rewards`, once every one the replay pays is there (they
    travel on another topic than the points, and may arrive a little later)."""
    wanted = {o.output_id for o in replayed.outputs if isinstance(o, StoreBonusGranted)}
    found = _wait_for(settings, clients, (REWARDS,), wanted)
    return {k: v for k, v in found.items() if v["type"] == "StoreBonusGranted"}


def _summarise(
    records: Records,
    report: GeneratorReport,
    waited: float,
    replayed: Replay,
    bonuses: dict[str, dict[str, Any]],
) -> int:
    """Counts of what came out, and per brand the points earned and reversed next to the
    replay's; 0 when they are the same."""
    values = _values(records, POINTS_ACCRUED)
    accrued = _of_type(values, "PointsAccrued")
    reversals = _of_type(values, "PointsReversed")
    refusals = _of_type(values, "CancellationRefused")
    levels = _values(records, LEVEL_CHANGED)
    dead = [orjson.loads(r.value or b"") for r in records[DEAD_LETTER]]
    earned: defaultdict[str, Decimal] = defaultdict(Decimal)
    taken: defaultdict[str, Decimal] = defaultdict(Decimal)
    for value in accrued:
        earned[value["brand_id"]] += Decimal(value["points"])
    for value in reversals:
        taken[value["brand_id"]] += Decimal(value["points_reversed"])
    expected_earned: defaultdict[str, Decimal] = defaultdict(Decimal)
    expected_taken: defaultdict[str, Decimal] = defaultdict(Decimal)
    expected_bonuses = 0
    for output in replayed.outputs:
        if isinstance(output, PointsAccrued):
            expected_earned[output.brand_id] += output.points
        elif isinstance(output, PointsReversed):
            expected_taken[output.brand_id] += output.points_reversed
        elif isinstance(output, StoreBonusGranted):
            expected_bonuses += 1
    moves = Counter(
        (value["brand_id"], f"{value['from_level']}->{value['to_level']}") for value in levels
    )
    bets, cancellations = sum(report.bets.values()), sum(report.cancellations.values())

    print()
    print("=" * 78)
    print(
        f"events in           {len(records[PLAYER_EVENTS]):>8,}  (published {report.sent:,} "
        f"+ {len(MALFORMED)} malformed)"
    )
    print(f"drained in          {waited:>8.1f} s")
    print(f"PointsAccrued       {len(accrued):>8,}  (one per bet: {bets:,})")
    print(f"PointsReversed      {len(reversals):>8,}  (one per cancellation: {cancellations:,})")
    print(f"CancellationRefused {len(refusals):>8,}")
    print(f"StoreBonusGranted   {len(bonuses):>8,}  (replayed rules: {expected_bonuses:,})")
    print(f"LevelChanged        {len(levels):>8,}")
    print(f"dead letters        {len(dead):>8,}")
    for letter in dead:
        print(f"  - {letter['reason'][:100]}")
    print()
    titles = f"{'points out':>14}{'replayed':>14}{'reversed':>12}{'replayed':>12}"
    print(f"  {'brand':<18}{titles}   check")
    ok = (
        len(accrued) == bets
        and len(reversals) + len(refusals) == cancellations
        and len(bonuses) == expected_bonuses
        and len(dead) == len(MALFORMED)
    )
    for brand in sorted(set(earned) | set(expected_earned)):
        same = earned[brand] == expected_earned[brand] and taken[brand] == expected_taken[brand]
        ok = ok and same
        print(
            f"  {brand:<18}{earned[brand]:>14,}{expected_earned[brand]:>14,}"
            f"{taken[brand]:>12,}{expected_taken[brand]:>12,}   {'OK' if same else 'DIFF'}"
        )
    if moves:
        print()
        print("  level changes")
        for (brand, move), count in sorted(moves.items()):
            print(f"  {brand:<18}{move:<22}{count:>6,}")
    print("=" * 78)
    print("the worker's outputs are the replay's" if ok else "MISMATCH: see above")
    return 0 if ok else 1


def _final_check(settings: Settings, clients: KafkaClients, views: Views) -> int:
    """The new outputs read back from their topics (a count and an example of each), then per
    brand: accrued - reversed - redeemed - expired - debited + credited (the outputs that moved
    points) = available + held (every player's lookup); 0 when every brand's sides agree."""
    records = read_topics(
        settings, (*POINT_MOVES, REWARDS), until=lambda _: True, timeout=30, clients=clients
    )
    moves = _values(records, *POINT_MOVES)
    rewards = _values(records, REWARDS)
    print()
    print("=" * 78)
    print("cancelled bets, store bonuses and coin rewards, read back from their topics")
    _example(moves, "PointsReversed", _reversal, "points_unrecovered")
    _example(moves, "CancellationRefused", lambda v: f"{v['code']}: {v['reason']}")
    _example(rewards, "StoreBonusGranted", _store_bonus, "multiplier")
    _example(rewards, "DailyRewardGranted", _daily_reward, "multiplier")
    _example(rewards, "MonthlyBonusGranted", _monthly_bonus)

    print()
    titles = ("accrued", "- reversed", "- redeemed", "- expired", "- debited", "+ credited")
    print(f"  {'points':<16}" + "".join(f"{t:>13}" for t in titles) + f"{'= avail+held':>15}")
    ok = bool(views)
    for brand_id, side in sorted(point_sides(moves, views).items()):
        same = balanced(side)
        ok = ok and same
        cells = "".join(f"{side[column]:>13,}" for column in SIDES[:-1])
        print(f"  {brand_id:<16}{cells}{side['held']:>15,}   {'OK' if same else 'DIFF'}")
    print("=" * 78)
    print("every point accounted for" if ok else "MISMATCH: see above")
    return 0 if ok else 1


SIDES = ("accrued", "reversed", "redeemed", "expired", "debited", "credited", "held")
"""The figures of the final check; `held` is available + held, the others what outputs moved."""

_MOVED_BY = {
    "PointsAccrued": ("accrued", "points"),
    "PointsReversed": ("reversed", "points_reversed"),  # what was taken, not what was earned
    "PointsRedeemed": ("redeemed", "points"),
    "PointsExpired": ("expired", "points"),
}


def point_sides(moves: Iterable[dict[str, Any]], views: Views) -> dict[str, dict[str, Decimal]]:
    """Per brand, the points the outputs `moves` moved (`SIDES` but `held`, from their JSON
    values; other outputs are left out) and the players' available + held (`held`, from their
    lookup `views`)."""
    sides: defaultdict[str, dict[str, Decimal]] = defaultdict(
        lambda: dict.fromkeys(SIDES, Decimal(0))
    )
    for value in moves:
        kind = value["type"]
        if kind in _MOVED_BY:
            column, field = _MOVED_BY[kind]
        elif kind == "PointsAdjusted":
            column, field = value["direction"] + "ed", "points"  # credited, debited
        else:
            continue
        sides[value["brand_id"]][column] += Decimal(value[field])
    for (brand_id, _), view in views.items():
        points = view["points"]
        sides[brand_id]["held"] += Decimal(points["available"]) + Decimal(points["held"])
    return dict(sides)


def balanced(side: dict[str, Decimal]) -> bool:
    """accrued - reversed - redeemed - expired - debited + credited = available + held."""
    moved = (
        side["accrued"] - side["reversed"] - side["redeemed"] - side["expired"]
        - side["debited"] + side["credited"]
    )  # fmt: skip
    return moved == side["held"]


def _example(
    outputs: list[dict[str, Any]],
    kind: str,
    describe: Callable[[dict[str, Any]], str],
    prefer: str | None = None,
) -> None:
    """How many outputs of type `kind` there are, and one of them; `prefer` picks the one with
    the largest value of that field (an unrecovered part, a multiplier above 1)."""
    values = _of_type(outputs, kind)
    if not values:
        print(f"  {kind:<20}{0:>6}")
        return
    example = max(values, key=lambda v: Decimal(v[prefer])) if prefer else values[0]
    print(f"  {kind:<20}{len(values):>6,}  e.g. {example['player_id']}@{example['brand_id']}:")
    print(f"      {describe(example)}")


def _reversal(v: dict[str, Any]) -> str:
    return (
        f"bet {v['bet_id'][:12]} {v['reason']}: {v['amount']} {v['currency']} cancelled "
        f"({v['remaining']} left of it): {v['points']} points, {v['points_reversed']} taken "
        f"back, {v['points_unrecovered']} unrecovered, balance {v['points_available']}"
    )


def _store_bonus(v: dict[str, Any]) -> str:
    return (
        f"{v['package_id']} ({v['gc']} GC + {v['sc']} SC for {v['price']} {v['currency']}) at "
        f"{v['level']} x{v['multiplier']}: bonus {v['bonus_gc']} GC + {v['bonus_sc']} SC"
    )


def _daily_reward(v: dict[str, Any]) -> str:
    return (
        f"day {v['day']}, streak {v['streak']}, {v['level']} x{v['multiplier']}: "
        f"{v['base_gc']} GC + {v['base_sc']} SC -> {v['gc']} GC + {v['sc']} SC"
    )


def _monthly_bonus(v: dict[str, Any]) -> str:
    return f"{v['month']} at {v['level']}: {v['gc']} GC + {v['sc']} SC"
