"""docker-compose.yml: valid against the Compose Specification, and it starts what the product
needs in an order that comes up clean (Kafka healthy -> topics and programmes -> workers)."""

import copy
import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import compose_spec
import jsonschema
import pytest
import yaml

from loyalty_streams.runtime.metrics import Metrics
from loyalty_streams.settings import Settings
from tests.deploy.support import ROOT, SCHEMAS, cli, setting_names

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
ALERTS = ROOT / "helm" / "loyalty-streams" / "files" / "alerts.yml"  # the chart's too
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"

# compose's interpolation: ${VAR:-default} and ${VAR-default} resolve to the default,
# ${VAR:?message} and ${VAR?message} to what the operator must set (compose refuses to start
# without it)
INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
OPERATOR_ENV = {
    "LOYALTY_API_TOKEN_SECRET": "an-operator-chosen-random-key-of-32-bytes-or-more",
    "GRAFANA_ADMIN_PASSWORD": "an-operator-chosen-password",
}
"""What the operator sets in .env: the variables compose requires."""
SECRET = re.compile(r"SECRET|PASSWORD|TOKEN|KEY")


def resolve(match: re.Match[str]) -> str:
    name, operator, word = match.groups()
    if operator and operator.endswith("?"):
        return OPERATOR_ENV[name]  # a KeyError: a required variable this file does not know
    return word or ""


def interpolate(value: Any) -> Any:
    if isinstance(value, str):
        return INTERPOLATION.sub(resolve, value)
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    return value


@cache
def raw() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def compose() -> dict[str, Any]:
    """The compose file as `docker compose config` sees it with the operator's .env
    (OPERATOR_ENV): defaults and required variables filled in."""
    resolved: dict[str, Any] = interpolate(copy.deepcopy(raw()))
    return resolved


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def loyalty_services() -> dict[str, dict[str, Any]]:
    """Services running the loyalty-streams image built from the Dockerfile."""
    return {name: s for name, s in services().items() if s.get("build", {}).get("context") == "."}


def workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in loyalty_services().items() if command_of(s) == ["worker"]}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec["condition"] for name, spec in deps.items()}


def health_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def named_volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> mount target (bind mounts start with . or /)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith((".", "/")):
            mounts[source] = target
    return mounts


def bind_mounts(service: dict[str, Any]) -> dict[Path, str]:
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[(ROOT / source).resolve()] = target
    return mounts


# -- the specification -------------------------------------------------------------------------


@cache
def spec_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def spec_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in spec_validator().iter_errors(document)
    ]


def test_the_compose_file_validates_against_the_compose_specification() -> None:
    assert spec_errors(raw()) == []
    assert spec_errors(compose()) == []  # after interpolation, as docker compose checks it


def test_the_specification_check_is_not_vacuous() -> None:
    broken = copy.deepcopy(raw())
    broken["services"]["worker-1"]["restart_policy"] = "always"
    assert spec_errors(broken)
    broken = copy.deepcopy(raw())
    broken["services"]["worker-1"]["depends_on"]["setup"]["condition"] = "service_done"
    assert spec_errors(broken)
    broken = copy.deepcopy(raw())
    broken["services"]["kafka"]["healthcheck"]["intervall"] = "10s"
    assert spec_errors(broken)


def test_the_compose_spec_parser_reads_it() -> None:
    """A second, independent reading: the typed parser of the Rust compose_spec crate.

    It neither expands YAML merge keys nor interpolates ${VAR:-default} (docker compose does
    both before validating), so it reads the merged document with the defaults filled in.
    """
    parsed = compose_spec.PyCompose.from_json(json.dumps(compose()))
    parsed.validate()
    assert set(parsed.service_names()) == set(services())
    with pytest.raises(ValueError, match="restartt"):
        compose_spec.PyCompose.from_yaml("services:\n  a:\n    image: x\n    restartt: always\n")


def test_every_reference_resolves() -> None:
    declared_volumes = set(compose().get("volumes", {}))
    for name, service in services().items():
        for dependency, condition in depends_on(service).items():
            assert dependency in services(), f"{name} depends on unknown {dependency}"
            if condition == "service_healthy":
                assert "healthcheck" in services()[dependency], f"{dependency} has no healthcheck"
            if "profiles" not in service:
                assert "profiles" not in services()[dependency], f"{name} needs a profile"
        assert set(named_volume_mounts(service)) <= declared_volumes, name
        for source in bind_mounts(service):
            assert source.exists(), source


def test_start_order_has_no_cycle() -> None:
    order: list[str] = []
    pending = {name: set(depends_on(s)) for name, s in services().items()}
    while pending:
        ready = sorted(name for name, deps in pending.items() if deps <= set(order))
        assert ready, f"dependency cycle among {sorted(pending)}"
        order.extend(ready)
        for name in ready:
            del pending[name]
    assert order.index("kafka") < order.index("setup") < order.index("worker-1")


# -- Kafka and the setup job ------------------------------------------------------------------


def test_kafka_is_the_official_image_in_kraft_mode() -> None:
    kafka = services()["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert not kafka["image"].endswith(":latest")
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert "kafka-broker-api-versions.sh" in health_test(kafka)
    assert named_volume_mounts(kafka) == {"kafka-data": env["KAFKA_LOG_DIRS"]}


def test_the_setup_job_applies_topics_then_loads_the_shipped_programmes() -> None:
    setup = services()["setup"]
    assert setup["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = setup["command"]
    steps = [shlex.split(step) for step in script.split("&&")]
    assert [step[0] for step in steps] == ["loyalty-streams", "loyalty-streams"]
    topics, programmes = (cli(step[1:]) for step in steps)
    assert (topics.command, topics.topics_command) == ("topics", "apply")
    assert (programmes.command, programmes.programmes_command) == ("programmes", "load")
    assert programmes.shipped
    assert depends_on(setup) == {"kafka": "service_healthy"}
    assert setup["restart"] == "no"
    assert environment(setup)["LOYALTY_BOOTSTRAP_SERVERS"] == "kafka:9092"


# -- the workers -------------------------------------------------------------------------------


def test_two_workers_with_their_own_rocksdb_volumes() -> None:
    found = workers()
    assert len(found) >= 2
    volumes = []
    for name, worker in found.items():
        env = environment(worker)
        mounts = named_volume_mounts(worker)
        assert len(mounts) == 1, name
        ((volume, target),) = mounts.items()
        assert target == env["LOYALTY_DATA_DIR"], name
        volumes.append(volume)
    assert len(set(volumes)) == len(volumes), "workers must not share a data volume"


def test_each_worker_advertises_its_own_address_and_listens_on_all_interfaces() -> None:
    urls = set()
    for name, worker in workers().items():
        env = environment(worker)
        assert env["LOYALTY_WEB_HOST"] == "0.0.0.0"
        assert env["LOYALTY_ADVERTISED_URL"] == f"http://{name}:{env['LOYALTY_WEB_PORT']}"
        assert env["LOYALTY_APP_ID"] == "loyalty-streams"
        urls.add(env["LOYALTY_ADVERTISED_URL"])
    assert len(urls) == len(workers())


def test_workers_start_after_setup_and_report_health() -> None:
    for name, worker in workers().items():
        deps = depends_on(worker)
        assert deps["setup"] == "service_completed_successfully", name
        assert deps["kafka"] == "service_healthy", name
        port = environment(worker)["LOYALTY_WEB_PORT"]
        assert f"http://127.0.0.1:{port}/health" in health_test(worker), name


def test_the_generator_is_an_optional_profile() -> None:
    generator = services()["generator"]
    assert generator["profiles"] == ["generator"]
    args = cli(command_of(generator))
    assert args.command == "generate"
    assert args.players > 0
    assert args.rate > 0
    assert args.duration > 0
    for name, service in services().items():
        assert "generator" not in depends_on(service), name


def test_one_archive_keeps_its_files_on_a_volume_of_its_own() -> None:
    archives = {n: s for n, s in loyalty_services().items() if command_of(s) == ["archive"]}
    assert list(archives) == ["archive"], "one archive per app id and directory"
    archive = archives["archive"]
    assert cli(command_of(archive)).command == "archive"
    env = environment(archive)
    ((volume, target),) = named_volume_mounts(archive).items()
    assert Path(env["LOYALTY_ARCHIVE_DIR"]).is_relative_to(target)
    for name, service in services().items():
        if name != "archive":
            assert volume not in named_volume_mounts(service), f"{name} mounts the archive"
    assert depends_on(archive) == {
        "kafka": "service_healthy",
        "setup": "service_completed_successfully",
    }
    assert archive["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", ["setup", "generator"])
def test_the_jobs_do_not_restart(name: str) -> None:
    assert services()[name]["restart"] == "no"


def test_no_secret_falls_back_to_a_public_value() -> None:
    """Every variable that carries a secret is required: without it compose refuses to start,
    saying what to set; none has a default anyone could read here."""
    text = COMPOSE.read_text()
    secrets = [m for m in INTERPOLATION.finditer(text) if SECRET.search(m.group(1))]
    assert {m.group(1) for m in secrets} == set(OPERATOR_ENV)
    for match in secrets:
        name, operator, message = match.groups()
        assert operator == ":?", f"{name} falls back to {message!r}"
        assert name in message, match.group(0)
    for name, service in services().items():
        for key, value in environment(service).items():
            if SECRET.search(key):
                assert value in OPERATOR_ENV.values(), f"{name}: {key} is written in the file"


def test_the_workers_run_as_production_with_the_operators_token_key() -> None:
    for name, worker in workers().items():
        env = environment(worker)
        assert "LOYALTY_DEVELOPMENT" not in env, name
        secret = env["LOYALTY_API_TOKEN_SECRET"]
        assert secret == OPERATOR_ENV["LOYALTY_API_TOKEN_SECRET"], name
        assert Settings(api_token_secret=secret).secret_problems("api_token_secret") == []


def test_every_loyalty_variable_is_a_setting() -> None:
    known = setting_names()
    for name, service in loyalty_services().items():
        loyalty = {key for key in environment(service) if key.startswith("LOYALTY_")}
        assert loyalty - known == set(), name


# -- Prometheus and Grafana ----------------------------------------------------------------------


def exposed_metric_names() -> set[str]:
    names = set()
    for family in Metrics().registry.collect():
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
            "gauge": [""],
        }[family.type]
        names |= {family.name + suffix for suffix in suffixes}
    return names


def test_prometheus_scrapes_metrics_of_every_worker() -> None:
    prometheus = services()["prometheus"]
    mounted = bind_mounts(prometheus)
    assert mounted[PROMETHEUS.resolve()] == "/etc/prometheus/prometheus.yml"
    assert mounted[ALERTS.resolve()] == "/etc/prometheus/alerts.yml"
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    # the alert rules, the dashboard and the chart's ServiceMonitor (jobLabel) share this job
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "loyalty-streams")
    assert job["metrics_path"] == "/metrics"
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    expected = {f"{name}:{environment(w)['LOYALTY_WEB_PORT']}" for name, w in workers().items()}
    assert targets == expected
    assert "wget" in health_test(prometheus)


PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "rate", "increase", "histogram_quantile"}
PROMQL_WORDS |= {"time", "and", "or", "unless"}  # the time function, the set operators


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (selectors, ranges, groupings and vector
    matchings removed)."""
    labels = r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    expr = re.sub(r"\{[^}]*\}|\[[^]]*\]|" + labels, " ", expr)
    return set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr)) - PROMQL_WORDS


def test_alerts_use_metrics_the_workers_expose() -> None:
    rules = [r for group in yaml.safe_load(ALERTS.read_text())["groups"] for r in group["rules"]]
    assert rules
    exposed = exposed_metric_names() | {"up"}
    assert metric_names('sum by (le) (rate(x_bucket{a="b"}[5m])) > 5') == {"x_bucket"}
    assert metric_names("x > 1 and on (job) count by (job) (y)") == {"x", "y"}
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        metrics = metric_names(rule["expr"])
        assert metrics, rule["alert"]
        assert metrics <= exposed, f"{rule['alert']}: {metrics - exposed}"


def test_grafana_reads_prometheus_and_provisions_the_dashboard_folder() -> None:
    grafana = services()["grafana"]
    assert depends_on(grafana) == {"prometheus": "service_healthy"}
    mounted = bind_mounts(grafana)
    assert mounted[PROVISIONING.resolve()] == "/etc/grafana/provisioning"
    dashboards_target = mounted[DASHBOARDS.resolve()]
    (source,) = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    prometheus_port = services()["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    assert source["uid"] == "prometheus"
    (provider,) = yaml.safe_load((PROVISIONING / "dashboards" / "loyalty-streams.yml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == dashboards_target
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_target}/loyalty.json"
    assert "/api/health" in health_test(grafana)


def test_the_dashboard_uses_the_provisioned_datasource() -> None:
    """Provisioning does not resolve an export's ${DS_...} inputs: the dashboard must name the
    provisioned datasource (uid "prometheus") or a datasource variable of its own."""
    dashboard = json.loads((DASHBOARDS / "loyalty.json").read_text())
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    allowed = {"prometheus"} | {f"${name}" for name in variables} | {f"${{{n}}}" for n in variables}
    used = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict) and "uid" in source:
                used.add(source["uid"])
            elif isinstance(source, str):
                used.add(source)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(dashboard)
    assert used - allowed - {"-- Grafana --", "grafana"} == set()
