"""The observability parts operators run, for real: Debian's Prometheus, promtool and kcat.

- `promtool check rules` accepts the shipped alert rules, and `promtool test rules` shows four
  of them firing on the condition their summary names and staying quiet otherwise.
- A `prometheus` process scrapes a live worker with the shipped scrape configuration (its job,
  its relabelling) and loads the shipped rules; after two waves of play that move every series
  the dashboard charts, every panel's query, with the dashboard's variables at their defaults,
  returns series, and the dead-letter alert fires.
- `kcat`, a stock Kafka client that knows nothing of this project, reads
  `loyalty.points-accrued` and finds exactly the `PointsAccrued` an independent replay of the
  published bets gives, as JSON, on Tansu and on Apache Kafka.

A missing binary fails the test with the line that installs it (`make test` installs them).
"""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import confluent_kafka
import orjson
import pytest
import yaml
from confluent_kafka import Producer

from loyalty_streams.devtools.broker import EmbeddedBroker, free_port
from loyalty_streams.devtools.process import ServiceProcess
from loyalty_streams.devtools.replay import replay
from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.domain.outputs import PointsAccrued, encode
from loyalty_streams.domain.programme import Programme, shipped_programmes
from loyalty_streams.kafka.clients import producer_config
from loyalty_streams.kafka.partitioner import partition_of
from loyalty_streams.kafka.reading import read_topics
from loyalty_streams.kafka.topics import PLAYER_EVENTS, POINTS_ACCRUED, load_specs
from loyalty_streams.runtime.global_tables import publish_programmes
from tests.domain.builders import bet, bonus, command, win
from tests.integration.conftest import (
    PROGRAMMES,
    TOPICS_DIR,
    Cluster,
    get,
    on_both_brokers,
    wait_until,
)
from tests.integration.prometheus_server import Prometheus, binary, prometheus_server
from tests.runtime.test_dashboard import panels, scan, variable

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "helm/loyalty-streams/files/alerts.yml"
SCRAPE_CONFIG = ROOT / "deploy/prometheus/prometheus.yml"
JOB = "loyalty-streams"
"""The workers' scrape job in the shipped configuration, which the rules and the dashboard name."""

SCRAPE_INTERVAL = "1s"
RATE_INTERVAL = "30s"
"""What `$__rate_interval` stands for: Grafana makes it at least four scrape intervals."""

KCAT_INSTALL = "apt-get install -y kcat"


# -- promtool: the rules file --------------------------------------------------------------------


def test_promtool_accepts_the_shipped_alert_rules() -> None:
    """The rules file the chart and compose ship parses and type-checks in Prometheus's own
    tool, every rule counted (a PromQL typo or a bad `for` fails here, not in a deployment)."""
    rules = yaml.safe_load(ALERTS.read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    done = subprocess.run(
        [binary("promtool"), "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {count} rules found" in done.stdout, done.stdout


def summary(alert: str, **labels: str) -> str:
    """An alert's summary as the rules file writes it, with `$labels` filled in."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    (rule,) = [r for g in groups for r in g["rules"] if r.get("alert") == alert]
    text: str = rule["annotations"]["summary"]
    for name, value in labels.items():
        text = text.replace(f"{{{{ $labels.{name} }}}}", value)
    assert "{{" not in text, f"{alert}: fill in {text!r}"
    return text


def test_the_alerts_fire_on_what_they_describe_and_only_then(tmp_path: Path) -> None:
    """`promtool test rules` on synthetic series: a worker down for its `for` fires (one merely
    pending does not), a new dead letter fires until it leaves the 10-minute window, lag on the
    player events fires after 10 minutes (lag on commands alone never), and a stale census fires
    only for a worker that owns player-event partitions."""
    w1 = {"job": JOB, "instance": "w1:6066"}
    w2 = {"job": JOB, "instance": "w2:6066"}

    def series(name: str, values: str, **labels: str) -> dict[str, str]:
        matchers = ", ".join(f'{k}="{v}"' for k, v in labels.items())
        return {"series": f"{name}{{{matchers}}}", "values": values}

    lag = "loyalty_consumer_lag"
    census = "loyalty_last_census_timestamp_seconds"
    tests = [
        {
            "interval": "1m",
            "input_series": [
                series("up", "1 1 0 0 0 0 0", **w1),
                series("up", "1x6", **w2),
                series(
                    "loyalty_dead_letters_total", "0 0 0 1x14", topic="casino.player-events", **w1
                ),
                series(lag, "30000x12", topic="casino.player-events", partition="0", **w1),
                series(lag, "30000x12", topic="casino.player-events", partition="1", **w2),
                series(lag, "900000x12", topic="loyalty.commands", partition="0", **w1),
            ],
            "alert_rule_test": [
                {"eval_time": "3m", "alertname": "LoyaltyWorkerDown", "exp_alerts": []},
                {
                    "eval_time": "4m",
                    "alertname": "LoyaltyWorkerDown",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "critical", **w1},
                            "exp_annotations": {
                                "summary": summary("LoyaltyWorkerDown", instance=w1["instance"])
                            },
                        }
                    ],
                },
                {"eval_time": "2m", "alertname": "LoyaltyDeadLetters", "exp_alerts": []},
                {
                    "eval_time": "5m",
                    "alertname": "LoyaltyDeadLetters",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "warning", "topic": "casino.player-events"},
                            "exp_annotations": {
                                "summary": summary(
                                    "LoyaltyDeadLetters", topic="casino.player-events"
                                )
                            },
                        }
                    ],
                },
                {"eval_time": "15m", "alertname": "LoyaltyDeadLetters", "exp_alerts": []},
                {"eval_time": "9m", "alertname": "LoyaltyConsumerLagHigh", "exp_alerts": []},
                {
                    "eval_time": "10m",
                    "alertname": "LoyaltyConsumerLagHigh",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "warning"},
                            "exp_annotations": {
                                "summary": "loyalty-streams is 60000 player events behind"
                            },
                        }
                    ],
                },
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                # both workers last counted at the epoch; only w1 owns player-event partitions
                series(census, "0x60", **w1),
                series(census, "0x60", **w2),
                series(lag, "0x60", topic="casino.player-events", partition="0", **w1),
                series(lag, "0x60", topic="loyalty.commands", partition="0", **w2),
            ],
            "alert_rule_test": [
                {"eval_time": "40m", "alertname": "LoyaltyCensusStale", "exp_alerts": []},
                {
                    "eval_time": "50m",
                    "alertname": "LoyaltyCensusStale",
                    "exp_alerts": [
                        {
                            "exp_labels": {"severity": "warning", **w1},
                            "exp_annotations": {
                                "summary": summary("LoyaltyCensusStale", instance=w1["instance"])
                            },
                        }
                    ],
                },
            ],
        },
    ]
    test_file = tmp_path / "alerts_test.yml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [str(ALERTS)], "evaluation_interval": "1m", "tests": tests})
    )
    done = subprocess.run(
        [binary("promtool"), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout, done.stdout


# -- Prometheus scraping a live worker; the dashboard's panels ------------------------------------


def lapsing() -> Programme:
    """Aurora's table under another brand whose idle balances expire after a day, unwarned."""
    aurora = next(p for p in shipped_programmes() if p.brand_id == "aurora-casino")
    policies = aurora.policies.model_copy(
        update={"inactivity_expiry_days": 1, "expiry_warning_days": 0}
    )
    return aurora.model_copy(update={"brand_id": "lapsing-casino", "policies": policies})


def scrape_config(worker_port: int, own_port: int) -> dict[str, Any]:
    """The shipped `prometheus.yml`, aimed at this test's worker and server, scraping every
    second, with the shipped rules file (compose mounts it at `/etc/prometheus/alerts.yml`)."""
    config: dict[str, Any] = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"] = {
        "scrape_interval": SCRAPE_INTERVAL,
        "scrape_timeout": SCRAPE_INTERVAL,
        "evaluation_interval": SCRAPE_INTERVAL,
    }
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = [str(ALERTS)]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {JOB, "prometheus"}
    jobs[JOB]["static_configs"] = [{"targets": [f"127.0.0.1:{worker_port}"]}]
    jobs["prometheus"]["static_configs"] = [{"targets": [f"127.0.0.1:{own_port}"]}]
    return config


def play(cluster: Cluster, worker: ServiceProcess, wave: int) -> None:
    """One wave of play that moves every series the dashboard charts, for new players (a second
    wave moves the same label sets again, so `increase(...) > 0` finds them):

    - an aurora whale: 60,000 on slots yesterday, a win and a bonus release; Bronze -> Gold, the
      day closes at Gold and pays capped cashback; then redeems 1,000 points, confirmed;
    - a test-casino player who bet 60,000 forty days ago: Gold, then down when the bet left the
      30-day window (that brand has no grace);
    - a lapsing-casino player idle for three days: the balance expired after one;
    - a record that is not JSON: a dead letter.
    """
    now = datetime.now(UTC)
    yesterday = now - timedelta(days=1)
    whale = f"whale-{wave}"
    cluster.publish(
        [
            bet("60000", player_id=whale, occurred_at=yesterday),
            win("1000", player_id=whale, occurred_at=yesterday),
            bonus("500", player_id=whale, occurred_at=yesterday),
            bet(
                "60000",
                brand_id="test-casino",
                player_id=f"idle-{wave}",
                occurred_at=now - timedelta(days=40),
            ),
            bet(
                "100",
                brand_id="lapsing-casino",
                player_id=f"lapsed-{wave}",
                occurred_at=now - timedelta(days=3),
            ),
        ]
    )
    producer = Producer(producer_config(cluster.settings))
    producer.produce(PLAYER_EVENTS, b"not json", b"aurora-casino:junk")
    assert producer.flush(10) == 0
    # commands and events are different topics: redeem once the bet has been folded
    wait_until(
        lambda: get(worker, f"/loyalty/aurora-casino/{whale}")[0] == 200, 60, f"{whale}'s bet"
    )
    rid = f"redeem-{wave}"
    cluster.publish(
        [
            command("RedeemPoints", player_id=whale, command_id=rid, points="1000", issued_at=now),
            command(
                "ConfirmRedemption",
                player_id=whale,
                command_id=f"confirm-{wave}",
                redemption_id=rid,
                issued_at=now + timedelta(minutes=1),
            ),
        ]
    )


def panel_queries() -> list[tuple[str, str]]:
    """(panel title and refId, expression) with the dashboard's variables at their defaults: the
    job the shipped configuration scrapes, every brand (the variable's All)."""
    brand = variable("brand")
    assert brand["current"]["value"] == ["$__all"]
    values = {
        "$job": variable("job")["current"]["value"],
        "$brand": brand["allValue"],
        "$__rate_interval": RATE_INTERVAL,
    }
    found = []
    for panel in panels():
        for target in panel["targets"]:
            expr = target["expr"]
            for name, value in values.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: a variable left in {expr!r}"
            found.append((f"{panel['title']} {target['refId']}", expr))
    return found


def charted() -> set[str]:
    """Every series name a panel queries."""
    return {s.metric for _, expr in panel_queries() for s in scan(expr).selectors}


def names_in(prometheus: Prometheus) -> set[str]:
    return {
        s["metric"]["__name__"] for s in prometheus.query(f'group by (__name__) ({{job="{JOB}"}})')
    }


def empty_panels(prometheus: Prometheus) -> list[str]:
    """The panel queries that find no series now (a query Prometheus refuses raises)."""
    return [title for title, expr in panel_queries() if not prometheus.query(expr)]


@pytest.fixture
def observed(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[ServiceProcess, Prometheus]]:
    """A worker taking a census every second, and a Prometheus scraping it with the shipped
    configuration and rules."""
    publish_programmes(cluster.settings, [lapsing()], actor="tests", reason="expiry in a day")
    worker = cluster.worker("observed", census_interval_s=1.0)
    port = free_port()
    config = scrape_config(worker.settings.web_port, port)
    with prometheus_server(tmp_path / "prometheus", config, port) as prometheus:
        yield worker, prometheus


def test_prometheus_finds_series_for_every_dashboard_panel_on_a_live_worker(
    observed: tuple[ServiceProcess, Prometheus], cluster: Cluster, tmp_path: Path
) -> None:
    """Every panel of the Grafana dashboard, its query sent to a real Prometheus scraping a
    live worker, returns at least one series; the dashboard's variables list the job and the
    brands played; the shipped configuration and rules load, every rule evaluates without
    error, and the dead letters' alert fires. A metric or label renamed in the worker, a panel
    joining series that never share labels, or a query Prometheus refuses fails here."""
    worker, prometheus = observed
    checked = subprocess.run(
        [binary("promtool"), "check", "config", str(tmp_path / "prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def scraped() -> bool:
        up = prometheus.query(f'up{{job="{JOB}"}} == 1')
        # the shipped relabelling names the worker by its host
        return len(up) == 1 and up[0]["metric"]["worker"] == "127.0.0.1"

    wait_until(scraped, 30, f"Prometheus to scrape the worker\n{worker.log_tail()}")

    play(cluster, worker, 1)
    wanted = charted()
    wait_until(
        lambda: wanted <= names_in(prometheus),
        60,
        f"every charted series in Prometheus; missing {sorted(wanted - names_in(prometheus))}"
        f"\n{worker.log_tail()}",
    )
    play(cluster, worker, 2)

    deadline = time.monotonic() + 45
    while (empty := empty_panels(prometheus)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not empty, f"panels finding no series: {empty}\n{worker.log_tail()}"

    assert prometheus.label_values("job", "loyalty_records_processed_total") == [JOB]
    brands = prometheus.label_values("brand", f'players_per_level{{job=~"{JOB}"}}')
    assert set(brands) == {"aurora-casino", "test-casino", "lapsing-casino"}

    def rules_evaluated() -> bool:
        rules = prometheus.rules()
        return bool(rules) and all(rule["health"] == "ok" for rule in rules)

    wait_until(rules_evaluated, 20, f"every rule to evaluate: {prometheus.rules()}")
    rules = {rule["name"]: rule for rule in prometheus.rules()}
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert set(rules) == {rule["alert"] for group in groups for rule in group["rules"]}
    wait_until(
        lambda: any(
            r["name"] == "LoyaltyDeadLetters" and r["state"] == "firing" for r in prometheus.rules()
        ),
        20,
        "the dead letters' alert to fire",
    )
    assert {r["name"]: r["state"] for r in prometheus.rules()}["LoyaltyWorkerDown"] == "inactive"


# -- kcat: a stock client reads an output topic ---------------------------------------------------


def kcat_env(cluster: Cluster, directory: Path) -> dict[str, str]:
    """The environment kcat runs in: Debian's kcat and librdkafka as installed, except on Tansu.

    Debian 12's librdkafka (2.0.2) skips one byte less than a tagged field's size, so it
    misreads an ApiVersions v3 response carrying tagged fields with data and never connects.
    Apache Kafka leaves out the tags at their defaults and stock kcat reads it as is; Tansu
    sends them all. On Tansu only, kcat gets the fixed librdkafka the confluent-kafka wheel
    bundles: kcat links `librdkafka.so.1`, so a link by that name in a directory of its own on
    `LD_LIBRARY_PATH` is all it takes.
    """
    if not isinstance(cluster.broker, EmbeddedBroker):
        return dict(os.environ)
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    (bundled,) = libs.glob("librdkafka*.so*")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "librdkafka.so.1").symlink_to(bundled)
    return {**os.environ, "LD_LIBRARY_PATH": str(directory)}


def kcat(bootstrap: str, topic: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """`kcat -C` from the beginning to the end of every partition, one JSON envelope a record."""
    executable = shutil.which("kcat")
    assert executable, f"kcat is not installed; the observability tests need it: {KCAT_INSTALL}"
    command = [executable, "-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-J", "-q"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@on_both_brokers
def test_kcat_reads_the_points_accrued_a_worker_wrote(cluster: Cluster, tmp_path: Path) -> None:
    """kcat, knowing nothing of the project (no schema, no settings), on either broker, reads
    `loyalty.points-accrued` to its end: one record per bet, keyed by the player, on the
    partition the key hashes to, whose value is JSON equal to the `PointsAccrued` a replay of
    the published bets through the rules gives."""
    cluster.worker("accruer")
    now = datetime.now(UTC)
    bets = [bet(f"{10 * n + 5}", player_id=f"reader-{n}", occurred_at=now) for n in range(8)]
    bets.append(bet("1500", "table", brand_id="borealis-casino", player_id="nordic",
                    currency="SEK", occurred_at=now))  # fmt: skip
    cluster.publish(bets)
    inbound = read_topics(cluster.settings, [PLAYER_EVENTS], until=lambda r: False, timeout=1.0)
    replayed = replay(inbound[PLAYER_EVENTS], Catalogue(PROGRAMMES).in_effect)
    want = {
        output.output_id: orjson.loads(encode(output))
        for output in replayed.outputs
        if isinstance(output, PointsAccrued)
    }
    assert len(want) == len(bets)

    env = kcat_env(cluster, tmp_path / "kcat-libs")
    records: list[dict[str, Any]] = []

    def all_read() -> bool:
        records[:] = kcat(cluster.settings.bootstrap_servers, POINTS_ACCRUED, env)
        return len(records) >= len(bets)

    wait_until(all_read, 60, f"kcat to read {len(bets)} PointsAccrued")
    partitions = len({(r["partition"]) for r in records})
    assert partitions > 1  # several partitions, each read to its end
    values = [json.loads(record["payload"]) for record in records]
    assert {value["output_id"]: value for value in values} == want
    assert len(values) == len(want)  # none twice
    (spec,) = [s for s in load_specs(TOPICS_DIR) if s.name == POINTS_ACCRUED]
    for record, value in zip(records, values, strict=True):
        key = f"{value['brand_id']}:{value['player_id']}"
        assert (record["topic"], record["key"]) == (POINTS_ACCRUED, key)
        assert record["partition"] == partition_of(key.encode(), spec.partitions)
