"""A real Prometheus for tests: Debian's `prometheus` on a free port, with a throwaway TSDB.

The dashboard and the alert rules are checked against the server operators run, not a PromQL
reimplementation: a query Prometheus refuses, or one that finds nothing on a live worker's
series, fails here. A missing binary fails the test with the install line, it is never skipped.
"""

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INSTALL = "apt-get install -y prometheus"
"""Debian's package, which also ships `promtool`."""


def binary(name: str) -> str:
    """The path of `prometheus` or `promtool`, or an error naming the package to install."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed; the observability tests need it: {INSTALL}")
    return path


class QueryError(RuntimeError):
    """Prometheus refused a query (a PromQL error), with its message."""


@dataclass(frozen=True)
class Prometheus:
    """A running server's HTTP API."""

    url: str
    log: Path

    def _get(self, path: str, **params: str | list[str]) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as error:  # 400/422: the error is in the JSON body
            body = json.loads(error.read())
        if body.get("status") != "success":
            raise QueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query now: its series (`metric` labels and `value`); a scalar as one."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's `label_values(match, label)` lists."""
        values: list[str] = self._get(f"/api/v1/label/{label}/values", **{"match[]": [match]})
        return values

    def targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self._get("/api/v1/targets")["activeTargets"]
        return targets

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule, with its group's name under `group`."""
        groups = self._get("/api/v1/rules")["groups"]
        return [{**rule, "group": group["name"]} for group in groups for rule in group["rules"]]


def _wait_ready(process: "subprocess.Popen[bytes]", url: str, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as reply:
                if reply.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"prometheus was not ready at {url} within 20 s:\n{log.read_text()}")


@contextmanager
def prometheus_server(directory: Path, config: dict[str, Any], port: int) -> Iterator[Prometheus]:
    """`prometheus` on 127.0.0.1:`port` with `config` (its `prometheus.yml`, as data) and a TSDB
    under `directory`; yields its API once ready, stops it after."""
    executable = binary("prometheus")
    directory.mkdir(parents=True, exist_ok=True)
    config_file = directory / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log = directory / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    command = [
        executable,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={directory / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(process, url, log)
        yield Prometheus(url, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
