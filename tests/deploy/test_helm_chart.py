"""The Helm chart: renders with Helm's engine, validates against the Kubernetes schemas, and
deploys the workers the way the product needs (stable identities, a volume each, lookups routed
between pods, probes on /health, lag autoscaling never above the partition count)."""

import base64
import copy
import json
import re
from functools import cache
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.deploy.support import (
    PLAYER_EVENTS,
    ROOT,
    cli,
    manifest_errors,
    setting_default,
    setting_names,
    topic_partitions,
)

CHART = ROOT / "helm" / "loyalty-streams"
RELEASE = "loyalty"
NAMESPACE = "casino"
# the chart's kubeVersion floor, and the newest Kubernetes kubernetes-validate knows
KUBE_VERSIONS = ("1.27", "1.37")

PRODUCTION = yaml.safe_load((CHART / "values-production.yaml").read_text())

TOKEN_KEY = "an-operator-chosen-random-token-key-of-32-bytes"
HMAC_KEY = "an-operator-chosen-random-webhook-key-32-bytes"
KEYS = {"secrets": {"apiTokenSecret": TOKEN_KEY}}
"""The one value without a default: the chart generates no key and ships none."""

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": KEYS,
    "production": PRODUCTION,
    "keda-plaintext": {**KEYS, "autoscaling": {"enabled": True, "mode": "keda"}},
    "hpa": {**KEYS, "autoscaling": {"enabled": True, "mode": "hpa"}},
    "all-optional": {
        "metrics": {"serviceMonitor": {"enabled": True}},
        "pmsWebhook": {"enabled": True, "url": "https://pms.test/hook"},
        "redisMirror": {"enabled": True, "url": "redis://redis:6379/0"},
        "archive": {"enabled": True},
        "secrets": {"existingSecret": "loyalty-secrets"},
        "kafka": {
            "securityProtocol": "SASL_PLAINTEXT",
            "sasl": {"mechanism": "PLAIN"},
        },
        "autoscaling": {"enabled": True},
    },
}


def render(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would produce offline."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(values or None, name=RELEASE, namespace=NAMESPACE, is_install=True)


def manifests_for(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        doc
        for path, text in render(values).items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]


@cache
def manifests(variant: str) -> tuple[dict[str, Any], ...]:
    docs: list[dict[str, Any]] = []
    for path, text in sorted(render(copy.deepcopy(VARIANTS[variant])).items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return tuple(docs)


def of_kind(variant: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in manifests(variant) if doc["kind"] == kind]


def one(variant: str, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [doc for doc in of_kind(variant, kind) if name in (None, doc["metadata"]["name"])]
    assert len(found) == 1, f"{variant}: expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def workers(variant: str) -> dict[str, Any]:
    return one(variant, "StatefulSet")


def worker_container(variant: str) -> dict[str, Any]:
    containers = workers(variant)["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == "worker")


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def config_map(variant: str) -> dict[str, str]:
    data: dict[str, str] = one(variant, "ConfigMap")["data"]
    return data


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def pod_templates(variant: str) -> list[dict[str, Any]]:
    kinds = ("StatefulSet", "Deployment", "Job")
    return [doc["spec"]["template"] for doc in manifests(variant) if doc["kind"] in kinds]


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmRenderError) as caught:
        render(values)
    return str(caught.value)


# -- Helm itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_chart_lints_without_warnings(variant: str) -> None:
    report = helm.lint(CHART, VARIANTS[variant] or None, strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    serious = [m for m in report["messages"] if m["severity"] >= 2]
    assert serious == [], serious


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_manifest_validates_against_the_kubernetes_schemas(
    variant: str, kube_version: str
) -> None:
    docs = manifests(variant)
    assert docs, "nothing rendered"
    problems = {
        f"{doc['kind']}/{doc['metadata']['name']}": errors
        for doc in docs
        if (errors := manifest_errors(doc, kube_version))
    }
    assert problems == {}


def test_the_validation_is_not_vacuous() -> None:
    """A typo in a built-in kind and in each custom resource is caught."""
    statefulset = copy.deepcopy(workers("defaults"))
    statefulset["spec"]["replica"] = 3
    assert manifest_errors(statefulset, "1.37")
    statefulset = copy.deepcopy(workers("defaults"))
    statefulset["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "x"
    assert manifest_errors(statefulset, "1.37")
    for kind in ("ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PrometheusRule"):
        resource = copy.deepcopy(one("production", kind))
        resource["spec"]["unknownField"] = True
        assert manifest_errors(resource, "1.37"), kind
    scaled = copy.deepcopy(one("production", "ScaledObject"))
    scaled["spec"]["maxReplicaCount"] = "twelve"
    assert manifest_errors(scaled, "1.37")
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert manifest_errors(unknown, "1.37")


# -- the workers ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_each_worker_pod_gets_its_own_rocksdb_volume(variant: str) -> None:
    statefulset = workers(variant)
    claims = statefulset["spec"]["volumeClaimTemplates"]
    assert [claim["metadata"]["name"] for claim in claims] == ["data"]
    assert claims[0]["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claims[0]["spec"]["resources"]["requests"]["storage"]
    mounts = {m["name"]: m["mountPath"] for m in worker_container(variant)["volumeMounts"]}
    assert mounts["data"] == config_map(variant)["LOYALTY_DATA_DIR"]
    pod_volumes = {v["name"] for v in statefulset["spec"]["template"]["spec"].get("volumes", [])}
    assert "data" not in pod_volumes, "data must come from the claim template, not a shared volume"


@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_a_headless_service_gives_the_pods_stable_dns_names(variant: str) -> None:
    statefulset = workers(variant)
    headless = one(variant, "Service", statefulset["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert selects(headless["spec"]["selector"], pod_labels)
    assert selects(statefulset["spec"]["selector"]["matchLabels"], pod_labels)


@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_each_worker_advertises_its_own_pod_dns_name(variant: str) -> None:
    statefulset = workers(variant)
    container = worker_container(variant)
    env = env_of(container)
    names = [entry["name"] for entry in container["env"]]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # $(POD_NAME) is expanded by the kubelet only if POD_NAME is defined before it
    assert names.index("POD_NAME") < names.index("LOYALTY_ADVERTISED_URL")
    headless = statefulset["spec"]["serviceName"]
    assert env["LOYALTY_ADVERTISED_URL"]["value"] == (
        f"http://$(POD_NAME).{headless}.{NAMESPACE}.svc.cluster.local:{port}"
    )
    assert env["LOYALTY_WEB_HOST"]["value"] == "0.0.0.0"
    assert config_map(variant)["LOYALTY_WEB_PORT"] == str(port)
    assert container["args"] == ["worker"]
    assert cli(container["args"]).command == "worker"


@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_probes_ask_the_workers_health_endpoint(variant: str) -> None:
    container = worker_container(variant)
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/health", probe
        assert check["port"] in port_names, probe


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_container_requests_resources_and_runs_a_real_command(variant: str) -> None:
    templates = pod_templates(variant)
    assert templates
    for template in templates:
        spec = template["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            requests = container["resources"]["requests"]
            assert requests.get("cpu") and requests.get("memory"), container["name"]
            assert container["resources"]["limits"].get("memory"), container["name"]
            cli(container["args"])


@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_the_api_service_and_the_budget_cover_the_workers(variant: str) -> None:
    statefulset = workers(variant)
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    port_names = {p["name"] for p in worker_container(variant)["ports"]}
    api = [s for s in of_kind(variant, "Service") if s["spec"].get("clusterIP") != "None"]
    assert len(api) == 1
    assert selects(api[0]["spec"]["selector"], pod_labels)
    assert {p["targetPort"] for p in api[0]["spec"]["ports"]} <= port_names
    budget = one(variant, "PodDisruptionBudget")
    assert selects(budget["spec"]["selector"]["matchLabels"], pod_labels)
    assert budget["spec"]["maxUnavailable"] >= 1


@pytest.mark.parametrize("variant", ["defaults", "production"])
def test_settings_come_from_a_config_map_and_a_secret(variant: str) -> None:
    sources = worker_container(variant)["envFrom"]
    config_ref = next(s["configMapRef"]["name"] for s in sources if "configMapRef" in s)
    secret_ref = next(s["secretRef"]["name"] for s in sources if "secretRef" in s)
    assert config_ref == one(variant, "ConfigMap")["metadata"]["name"]
    assert config_map(variant)["LOYALTY_APP_ID"]
    secrets = of_kind(variant, "Secret")
    if VARIANTS[variant].get("secrets", {}).get("existingSecret"):
        assert secret_ref == VARIANTS[variant]["secrets"]["existingSecret"]
        assert secret_ref not in {s["metadata"]["name"] for s in secrets}
    else:
        secret = next(s for s in secrets if s["metadata"]["name"] == secret_ref)
        assert base64.b64decode(secret["data"]["LOYALTY_API_TOKEN_SECRET"]) == TOKEN_KEY.encode()
        assert "LOYALTY_PMS_WEBHOOK_SECRET" not in secret["data"]  # no webhook, no key


def test_given_secrets_are_used_as_they_are() -> None:
    rotating = {"apiTokenSecret": TOKEN_KEY, "pmsWebhookSecret": HMAC_KEY}
    rotating["pmsWebhookSecretPrevious"] = "the-webhook-key-being-rotated-out-32-bytes"
    docs = manifests_for({"secrets": rotating})
    secret = next(doc for doc in docs if doc["kind"] == "Secret")
    assert {key: base64.b64decode(value).decode() for key, value in secret["data"].items()} == {
        "LOYALTY_API_TOKEN_SECRET": TOKEN_KEY,
        "LOYALTY_PMS_WEBHOOK_SECRET": HMAC_KEY,
        "LOYALTY_PMS_WEBHOOK_SECRET_PREVIOUS": rotating["pmsWebhookSecretPrevious"],
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "secrets.apiTokenSecret is required (or secrets.existingSecret)"),
        ({"secrets": {"apiTokenSecret": "token-key"}}, "secrets.apiTokenSecret is 9 bytes long"),
        (
            {**KEYS, "pmsWebhook": {"enabled": True, "url": "https://pms.test/hook"}},
            "secrets.pmsWebhookSecret is required (or secrets.existingSecret)",
        ),
        (
            {"secrets": {"apiTokenSecret": TOKEN_KEY, "pmsWebhookSecretPrevious": "old"}},
            "secrets.pmsWebhookSecretPrevious is 3 bytes long",
        ),
    ],
)
def test_a_secret_is_never_generated_nor_short(values: dict[str, Any], message: str) -> None:
    """The operator gives every key (or a Secret of their own): a generated one would differ
    per `helm template` run and could not be shared with the PMS."""
    assert message in render_error(values)


def test_an_existing_secret_needs_no_keys_in_the_values() -> None:
    docs = manifests_for({"secrets": {"existingSecret": "mine"}})
    assert [doc for doc in docs if doc["kind"] == "Secret"] == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_loyalty_variable_is_a_setting(variant: str) -> None:
    known = setting_names()
    used = set(config_map(variant))
    for template in pod_templates(variant):
        for container in template["spec"]["containers"]:
            used |= {entry["name"] for entry in container.get("env", [])}
    for secret in of_kind(variant, "Secret"):
        used |= set(secret.get("data", {})) | set(secret.get("stringData", {}))
    loyalty = {name for name in used if name.startswith("LOYALTY_")}
    assert loyalty - known == set()


def test_the_time_driven_settings_default_to_the_workers_own() -> None:
    """Timers' wait and census interval: the chart's defaults are the worker's, so a release
    without values runs the timers and the census as the worker documents them."""
    data = config_map("defaults")
    assert float(data["LOYALTY_TIMERS_WAIT_S"]) == setting_default("timers_wait_s")
    assert float(data["LOYALTY_CENSUS_INTERVAL_S"]) == setting_default("census_interval_s")
    production = config_map("production")
    assert float(production["LOYALTY_TIMERS_WAIT_S"]) >= 0
    assert float(production["LOYALTY_CENSUS_INTERVAL_S"]) > 0


# -- autoscaling on consumer lag -------------------------------------------------------------


@pytest.mark.parametrize("variant", ["production", "keda-plaintext", "all-optional"])
def test_keda_scales_the_statefulset_on_the_groups_lag(variant: str) -> None:
    scaled = one(variant, "ScaledObject")
    statefulset = workers(variant)
    assert "replicas" not in statefulset["spec"], "replicas belong to the autoscaler"
    assert of_kind(variant, "HorizontalPodAutoscaler") == []
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", statefulset["metadata"]["name"])
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == config_map(variant)["LOYALTY_APP_ID"]
    assert trigger["metadata"]["topic"] == PLAYER_EVENTS
    assert (
        trigger["metadata"]["bootstrapServers"] == config_map(variant)["LOYALTY_BOOTSTRAP_SERVERS"]
    )
    assert trigger["metadata"]["allowIdleConsumers"] == "false"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] <= topic_partitions(PLAYER_EVENTS)
    if "authenticationRef" in trigger:
        auth = one(variant, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        params = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
        assert {"sasl", "username", "password", "tls"} <= params


def test_the_hpa_alternative_scales_on_an_external_lag_metric() -> None:
    hpa = one("hpa", "HorizontalPodAutoscaler")
    assert of_kind("hpa", "ScaledObject") == []
    assert "replicas" not in workers("hpa")["spec"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == workers("hpa")["metadata"]["name"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    selector = metric["external"]["metric"]["selector"]["matchLabels"]
    group = config_map("hpa")["LOYALTY_APP_ID"]
    assert selector == {"consumergroup": group, "topic": PLAYER_EVENTS}
    assert hpa["spec"]["maxReplicas"] <= topic_partitions(PLAYER_EVENTS)


def test_without_autoscaling_the_replica_count_is_fixed() -> None:
    assert workers("defaults")["spec"]["replicas"] == 2
    assert of_kind("defaults", "ScaledObject") == []
    assert of_kind("defaults", "HorizontalPodAutoscaler") == []


@pytest.mark.parametrize("values_file", ["values.yaml", "values-production.yaml"])
def test_the_partition_bound_is_the_topics_partition_count(values_file: str) -> None:
    values = yaml.safe_load((CHART / values_file).read_text())
    partitions = topic_partitions(PLAYER_EVENTS)
    assert values["kafka"]["partitions"] == partitions
    assert values["autoscaling"]["maxReplicas"] <= partitions
    assert values.get("replicaCount", 2) <= partitions


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"autoscaling": {"enabled": True, "maxReplicas": 13}},
            "autoscaling.maxReplicas (13) must not exceed kafka.partitions (12)",
        ),
        (
            {"autoscaling": {"enabled": True, "mode": "hpa", "maxReplicas": 24}},
            "autoscaling.maxReplicas (24) must not exceed kafka.partitions (12)",
        ),
        (
            {"kafka": {"partitions": 6}, "autoscaling": {"enabled": True, "maxReplicas": 8}},
            "autoscaling.maxReplicas (8) must not exceed kafka.partitions (6)",
        ),
        ({"replicaCount": 13}, "replicaCount (13) must not exceed kafka.partitions (12)"),
        (
            {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 4}},
            "autoscaling.minReplicas (5) must not exceed autoscaling.maxReplicas (4)",
        ),
        ({"pmsWebhook": {"enabled": True}}, "pmsWebhook.url is required"),
        ({"redisMirror": {"enabled": True}}, "redisMirror.url or redisMirror.sentinels"),
        (
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "PLAIN"}}},
            "topicsJob with SASL needs secrets.existingSecret",
        ),
    ],
)
def test_rendering_fails_on_values_that_cannot_work(values: dict[str, Any], message: str) -> None:
    assert message in render_error(values)


def test_the_bound_allows_exactly_the_partition_count() -> None:
    scaling = {"autoscaling": {"enabled": True, "maxReplicas": 12}, "replicaCount": 12}
    docs = manifests_for({**KEYS, **scaling})
    scaled = next(doc for doc in docs if doc["kind"] == "ScaledObject")
    assert scaled["spec"]["maxReplicaCount"] == 12


# -- monitoring, jobs, optional deployments ----------------------------------------------------


def test_the_service_monitor_scrapes_metrics_of_the_api_service() -> None:
    monitor = one("production", "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    selected = [
        s
        for s in of_kind("production", "Service")
        if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    assert len(selected) == 1, "exactly one Service, or every worker is scraped twice"
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert of_kind("defaults", "ServiceMonitor") == []


def test_the_service_monitor_labels_the_job_as_the_alerts_expect() -> None:
    """job="loyalty-streams" in the alert rules and dashboard: the compose scrape job's name,
    and the chart's job through the ServiceMonitor's jobLabel (a label of the API Service)."""
    monitor = one("production", "ServiceMonitor")
    api = next(
        s
        for s in of_kind("production", "Service")
        if selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
    )
    job = api["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    assert job == "loyalty-streams"
    groups = one("production", "PrometheusRule")["spec"]["groups"]
    exprs = [rule["expr"] for group in groups for rule in group["rules"]]
    assert any('job="loyalty-streams"' in expr for expr in exprs)


def test_the_prometheus_rule_carries_the_alert_rules_file_unchanged() -> None:
    rule = one("production", "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yml").read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert of_kind("defaults", "PrometheusRule") == []


def test_the_topics_job_applies_topics_before_install_and_upgrade() -> None:
    job = one("defaults", "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = cli(container["args"])
    assert (args.command, args.topics_command) == ("topics", "apply")
    env = env_of(container)
    assert (
        env["LOYALTY_BOOTSTRAP_SERVERS"]["value"]
        == config_map("defaults")["LOYALTY_BOOTSTRAP_SERVERS"]
    )
    production = env_of(one("production", "Job")["spec"]["template"]["spec"]["containers"][0])
    ref = production["LOYALTY_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == PRODUCTION["secrets"]["existingSecret"]


def test_the_optional_services_are_off_by_default_and_run_their_commands() -> None:
    assert of_kind("defaults", "Deployment") == []
    deployments = {d["metadata"]["name"]: d for d in of_kind("all-optional", "Deployment")}
    commands = {}
    for deployment in deployments.values():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        commands[cli(container["args"]).command] = env_of(container)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(deployment["spec"]["selector"]["matchLabels"], labels)
    assert set(commands) == {"pms-webhook", "redis-mirror", "archive"}
    assert commands["pms-webhook"]["LOYALTY_PMS_WEBHOOK_URL"]["value"] == "https://pms.test/hook"
    assert commands["redis-mirror"]["LOYALTY_REDIS_URL"]["value"] == "redis://redis:6379/0"
    mirror = next(d for d in deployments.values() if d["metadata"]["name"].endswith("mirror"))
    assert mirror["spec"]["replicas"] == 1, "one mirror per app id"


@pytest.mark.parametrize("variant", ["production", "all-optional"])
def test_one_archive_writes_to_a_claim_of_its_own_that_outlives_the_release(variant: str) -> None:
    deployment = one(variant, "Deployment", f"{workers(variant)['metadata']['name']}-archive")
    assert deployment["spec"]["replicas"] == 1, "one archive per app id and directory"
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}, "never two at once"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert cli(container["args"]).command == "archive"
    env = env_of(container)
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["archive"] == env["LOYALTY_ARCHIVE_DIR"]["value"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "archive"]
    claim = one(variant, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["fsGroup"] == 10001, "the volume must be writable by the image"


def test_the_archives_roll_limits_default_to_the_settings_own() -> None:
    deployment = one(
        "all-optional", "Deployment", f"{workers('all-optional')['metadata']['name']}-archive"
    )
    env = env_of(deployment["spec"]["template"]["spec"]["containers"][0])
    for name in ("archive_roll_records", "archive_roll_bytes", "archive_roll_s"):
        value = env[f"LOYALTY_{name.upper()}"]["value"]
        assert value.isdigit(), f"{name}: {value!r} (a float's exponent would not parse)"
        assert float(value) == setting_default(name), name
    assert of_kind("defaults", "PersistentVolumeClaim") == []


# -- values.yaml and values.schema.json ----------------------------------------------------------


def schema_gaps(values: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Keys of values.yaml the schema does not describe (the schema refuses unknown keys)."""
    if not isinstance(values, dict) or "properties" not in schema:
        return []
    gaps = []
    for key, value in values.items():
        if key not in schema["properties"]:
            gaps.append(f"{path}{key}")
        else:
            gaps += schema_gaps(value, schema["properties"][key], f"{path}{key}.")
    return gaps


def test_the_values_schema_describes_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema_gaps(yaml.safe_load((CHART / "values.yaml").read_text()), schema) == []
    assert schema.get("additionalProperties") is False


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"autoscalling": {"enabled": True}}, "autoscalling"),
        ({"kafka": {"partitions": "12"}}, "/kafka/partitions"),
        ({"autoscaling": {"mode": "cron"}}, "/autoscaling/mode"),
        ({"kafka": {"securityProtocol": "TLS"}}, "/kafka/securityProtocol"),
        ({"config": {"extraEnv": {"CENSUS": "1"}}}, "CENSUS"),
        ({"persistence": {"size": "lots"}}, "/persistence/size"),
    ],
)
def test_the_values_schema_refuses_typos(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render(values)


KEY = re.compile(r"^(\s*)([A-Za-z][\w.-]*):(\s|$)")


def undocumented_keys(text: str) -> list[str]:
    """Keys with no comment block right above them.

    A key whose comment starts with `# --` documents its whole value: the keys nested in it
    (a default map such as resources) are data, not settings of their own. A key with another
    comment is a section: each key inside it needs its own comment.
    """
    lines = text.splitlines()
    missing = []
    value_of = None  # indentation of a `# --` key whose nested keys are its default value
    for number, line in enumerate(lines):
        match = KEY.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        if value_of is not None and indent > value_of:
            continue
        value_of = None
        block = []
        above = number - 1
        while above >= 0 and lines[above].strip().startswith("#"):
            block.insert(0, lines[above].strip())
            above -= 1
        if not block:
            missing.append(f"line {number + 1}: {line.strip()}")
        elif block[0].startswith("# --") and line.rstrip().endswith(":"):
            value_of = indent
    return missing


def test_values_yaml_documents_every_setting() -> None:
    assert undocumented_keys((CHART / "values.yaml").read_text()) == []


def test_an_undocumented_setting_is_found() -> None:
    text = "# A section.\nsection:\n  # -- documented\n  a: 1\n  b: 2\n"
    assert undocumented_keys(text) == ["line 5: b: 2"]
    text = "# -- a default map\nresources:\n  requests:\n    cpu: 1\nother: 2\n"
    assert undocumented_keys(text) == ["line 5: other: 2"]
