"""The Grafana dashboard: a dashboard Grafana can load, querying only what the worker exports.

Every PromQL expression (panels and template variables) is scanned for metric names, label
matchers, grouping labels and functions; each metric must be exported by `Metrics` with the
suffix its type gives it (`_total`, `_bucket`/`_count`/`_sum`), and each label must be one the
metric has. A metric or label renamed in the worker therefore fails here, not on a blank panel.
"""

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from loyalty_streams.runtime.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana/dashboards/loyalty.json"

TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus attaches to every scraped series."""

AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile", "stddev"}
)
FUNCTIONS = AGGREGATIONS | {
    "rate", "irate", "increase", "delta", "histogram_quantile", "sort", "sort_desc", "time",
    "vector", "scalar", "clamp_min", "clamp_max", "abs", "round", "absent", "label_replace",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time",
}  # fmt: skip
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})

TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    |(?P<matchers>\{[^}]*\})
    |(?P<range>\[[^\]]*\])
    |(?P<number>\d+(?:\.\d+)?(?:ms|[smhdwy])?)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<space>\s+)
    |(?P<op>==|!=|>=|<=|=~|!~|[-+*/%^(),<>=])
    """,
    re.VERBOSE,
)
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@cache
def exported() -> dict[str, frozenset[str]]:
    """Every series name a worker exposes (with its type's suffixes) -> its label names."""
    metrics = Metrics()
    collectors = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    families = {family.name for family in metrics.registry.collect()}
    assert {c.describe()[0].name for c in collectors} == families, "a metric kept nowhere"
    names: dict[str, frozenset[str]] = {}
    for collector in collectors:
        (family,) = collector.describe()
        labels = frozenset(collector._labelnames) | TARGET_LABELS
        if family.type == "counter":
            names[f"{family.name}_total"] = labels
        elif family.type == "histogram":
            names[f"{family.name}_bucket"] = labels | {"le"}
            names[f"{family.name}_count"] = names[f"{family.name}_sum"] = labels
        else:
            assert family.type == "gauge", f"{family.name}: a {family.type} is not handled here"
            names[family.name] = labels
    return names


@dataclass
class Selector:
    metric: str
    matchers: dict[str, tuple[str, str]]
    """label -> (operator, value)"""
    grouped_by: frozenset[str] = frozenset()
    """Labels the aggregations around it keep (`sum by (brand, level) (...)`): it must have them."""


@dataclass
class Query:
    """What one PromQL expression refers to."""

    selectors: list[Selector] = field(default_factory=list)
    functions: set[str] = field(default_factory=set)
    grouping: set[str] = field(default_factory=set)
    """Every label named in `by`, `on`, `ignoring` and `group_left`/`group_right` lists."""


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        assert match is not None, f"cannot read {expr[position:]!r} in {expr!r}"
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append((kind, match.group()))
    return tokens


def scan(expr: str) -> Query:
    """The metrics (with their matchers), functions and grouping labels of an expression."""
    tokens = tokenize(expr)
    query = Query()
    scopes: list[frozenset[str]] = []  # one per open parenthesis: the labels its body must have
    kept: frozenset[str] = frozenset()  # labels of a `by` list, for the parenthesis after it
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text == "(":
            scopes.append(kept)
            kept = frozenset()
        elif text == ")":
            assert scopes, f"unbalanced parentheses in {expr!r}"
            scopes.pop()
        elif kind == "ident" and text in GROUPING:
            assert following == "(" or text.startswith("group_"), f"{text} without labels"
            labels = set()
            if following == "(":  # a label list, up to its closing parenthesis
                i += 2
                while tokens[i][1] != ")":
                    label_kind, label = tokens[i]
                    if label != ",":
                        assert label_kind == "ident", f"{label!r} in a label list of {expr!r}"
                        labels.add(label)
                    i += 1
            query.grouping |= labels
            if text == "by":
                assert tokens[i + 1][1] == "(", f"write `sum by (...) (...)` in {expr!r}"
                kept = frozenset(labels)
        elif kind == "ident" and (
            following == "(" or (text in AGGREGATIONS and following in {"by", "without"})
        ):
            assert text in FUNCTIONS, f"unknown function {text!r} in {expr!r}"
            query.functions.add(text)
        elif kind == "ident" and text not in KEYWORDS:
            matchers: dict[str, tuple[str, str]] = {}
            if tokens[i + 1 : i + 2] and tokens[i + 1][0] == "matchers":
                body = tokens[i + 1][1][1:-1]
                found = list(MATCHER.finditer(body))
                assert "".join(m.group() for m in found) == body, f"matchers {body!r}"
                matchers = {m[1]: (m[2], m[3]) for m in found}
                i += 1
            query.selectors.append(Selector(text, matchers, frozenset().union(*scopes)))
        else:
            assert kind != "matchers", f"a label matcher without a metric name in {expr!r}"
        i += 1
    assert not scopes, f"unbalanced parentheses in {expr!r}"
    return query


@cache
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> list[dict[str, Any]]:
    """Every panel but rows, including those inside collapsed rows."""
    found = []
    for panel in dashboard()["panels"]:
        found.extend(panel.get("panels", []) if panel["type"] == "row" else [panel])
    return found


def targets() -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in panels() for t in p["targets"]]


def variable(name: str) -> dict[str, Any]:
    (found,) = [v for v in dashboard()["templating"]["list"] if v["name"] == name]
    return found


def variable_query(name: str) -> str:
    query = variable(name)["query"]
    text = query["query"] if isinstance(query, dict) else query
    assert isinstance(text, str)
    return text


# -- the shape Grafana loads --------------------------------------------------------------------


def test_the_dashboard_has_the_shape_grafana_loads() -> None:
    board = dashboard()
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["title"] and board["id"] is None  # provisioning assigns the id
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board["time"]["from"] and board["templating"]["list"]
    assert panels()
    ids = [p["id"] for p in board["panels"]]
    ids += [p["id"] for p in panels() if p not in board["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    for panel in panels():
        assert panel["type"] in {"timeseries", "stat", "bargauge", "gauge", "table"}, panel["title"]
        assert panel["title"] and panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]


def test_panels_fit_the_grid_without_overlapping() -> None:
    boxes = [(p["title"], p["gridPos"]) for p in dashboard()["panels"]]
    for title, box in boxes:
        assert box["x"] >= 0 and box["w"] > 0 and box["x"] + box["w"] <= 24, title
        assert box["y"] >= 0 and box["h"] > 0, title
    for n, (title, a) in enumerate(boxes):
        for other, b in boxes[n + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"{title!r} overlaps {other!r}"


def test_every_query_uses_the_datasource_variable_whose_default_is_the_provisioned_one() -> None:
    source = variable("datasource")
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    assert source["current"]["value"] == "prometheus"  # the uid docker compose provisions

    def references(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
            return found + [r for value in node.values() for r in references(value)]
        if isinstance(node, list):
            return [r for value in node for r in references(value)]
        return []

    prometheus = [r for r in references(dashboard()) if r.get("type") == "prometheus"]
    assert prometheus and all(r["uid"] == "${datasource}" for r in prometheus)
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_the_brand_and_job_variables() -> None:
    brand = variable("brand")
    assert brand["type"] == "query" and brand["multi"] and brand["includeAll"]
    job = variable("job")
    assert job["type"] == "query"  # any job that has the worker's metrics, when imported elsewhere
    # by default, the workers' scrape job of the docker compose setup
    scrapes = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    jobs = {scrape["job_name"] for scrape in scrapes["scrape_configs"]}
    assert job["current"]["value"] in jobs
    for name in ("brand", "job"):
        match = re.fullmatch(r"label_values\((.+), *(\w+)\)", variable_query(name))
        assert match, variable_query(name)
        query = scan(match[1])
        assert [s.metric for s in query.selectors] and not query.functions
        for selector in query.selectors:
            assert match[2] in exported()[selector.metric], variable_query(name)


# -- PromQL against the worker's registry --------------------------------------------------------


def test_the_scanner_reads_what_the_dashboard_writes() -> None:
    query = scan(
        'sum by (brand, level) (increase(a_total{job=~"$job", window="7d"}[1d])) / on (brand)'
        " group_left () (b > 0) - histogram_quantile(0.99, c_bucket[$__rate_interval])"
    )
    assert [(s.metric, s.matchers) for s in query.selectors] == [
        ("a_total", {"job": ("=~", "$job"), "window": ("=", "7d")}),
        ("b", {}),
        ("c_bucket", {}),
    ]
    assert query.functions == {"sum", "increase", "histogram_quantile"}
    assert query.grouping == {"brand", "level"}
    assert [s.grouped_by for s in query.selectors] == [{"brand", "level"}, set(), set()]
    nested = scan("sum by (a) (x * on (a, b) sum by (a, b) (y))").selectors
    assert [s.grouped_by for s in nested] == [{"a"}, {"a", "b"}]
    with pytest.raises(AssertionError, match="unknown function"):
        scan("summ(a)")
    with pytest.raises(AssertionError, match="label list"):  # group_left took the parenthesis
        scan("a / on (x) group_left (sum(b))")


@pytest.mark.parametrize(
    ("title", "target"), targets(), ids=[f"{t} {q['refId']}" for t, q in targets()]
)
def test_every_query_names_exported_metrics_and_their_labels(
    title: str, target: dict[str, Any]
) -> None:
    metrics = exported()
    query = scan(target["expr"])
    assert query.selectors, "a query of no metric"
    available: set[str] = set()
    for selector in query.selectors:
        assert selector.metric in metrics, f"{selector.metric} is not exported by the worker"
        labels = metrics[selector.metric]
        available |= labels
        assert set(selector.matchers) <= labels, f"{selector.metric}: {set(selector.matchers)}"
        missing = selector.grouped_by - labels
        assert not missing, f"{selector.metric} aggregated by {missing}, which it does not have"
        # the dashboard's variables apply to every selector that can take them
        assert selector.matchers.get("job") == ("=~", "$job"), f"{selector.metric} of any job"
        if "brand" in labels:
            by_brand = selector.matchers.get("brand")
            assert by_brand == ("=~", "$brand"), f"{selector.metric} of any brand"
    assert query.grouping <= available, f"grouping by {query.grouping - available}"
    legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
    shown = query.grouping if query.grouping else available
    assert legend <= shown, f"legend shows {legend - shown}, which the query does not keep"


def test_the_dashboard_charts_the_funnel_retention_revenue_and_pipeline() -> None:
    used = {s.metric for _, t in targets() for s in scan(t["expr"]).selectors}
    assert used >= {
        "players_per_level",
        "loyalty_active_players",
        "loyalty_closed_day_bets_total",
        "loyalty_closed_day_cancelled_total",
        "loyalty_closed_day_wins_total",
        "loyalty_closed_day_bonus_releases_total",
        "loyalty_closed_player_days_total",
        "cashback_awarded_total",
        "points_accrued_total",
        "points_redeemed_total",
        "points_expired_total",
        "level_up_events_total",
        "level_down_events_total",
        "loyalty_processing_latency_seconds_bucket",
        "loyalty_consumer_lag",
        "loyalty_dead_letters_total",
        "loyalty_records_processed_total",
        "loyalty_last_census_timestamp_seconds",
    }
