"""What the deployment tests share: paths, the product's settings and CLI, schema validation."""

import argparse
import json
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate

from loyalty_streams.cli.main import build_parser
from loyalty_streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"

PLAYER_EVENTS = "casino.player-events"

CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject-keda.sh-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication-keda.sh-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring.coreos.com-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring.coreos.com-v1.json",
}


def setting_names() -> set[str]:
    """The LOYALTY_* variable names the deployment may set."""
    return {f"LOYALTY_{name.upper()}" for name in Settings.model_fields}


def setting_default(name: str) -> Any:
    return Settings.model_fields[name].default


def cli(args: list[str]) -> argparse.Namespace:
    """The parsed command line of `loyalty-streams ARGS`; fails the test if the CLI refuses it."""
    try:
        return build_parser().parse_args(args)
    except SystemExit as exit_:
        command = " ".join(args)
        raise AssertionError(f"`loyalty-streams {command}` is not a valid command") from exit_


def console_scripts() -> dict[str, str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        scripts: dict[str, str] = tomllib.load(file)["project"]["scripts"]
    return scripts


def topic_partitions(topic: str) -> int:
    declaration = json.loads((ROOT / "topics" / f"{topic}.json").read_text())
    partitions: int = declaration["partitions"]
    return partitions


@cache
def _crd_validator(filename: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / filename).read_text())
    return jsonschema.Draft202012Validator(schema)


def manifest_errors(manifest: dict[str, Any], kube_version: str) -> list[str]:
    """Why a manifest is invalid (empty when it is valid); never silent about an unknown kind.

    Built-in kinds go to kubernetes-validate in strict mode (unknown fields are errors, and an
    apiVersion the Kubernetes version does not serve has no schema); custom resources to the
    vendored strict CRD schemas.
    """
    key = (manifest.get("apiVersion", ""), manifest.get("kind", ""))
    if key in CRD_SCHEMAS:
        validator = _crd_validator(CRD_SCHEMAS[key])
        return [
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(manifest)
        ]
    try:
        kubernetes_validate.validate(manifest, kube_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [error.message]
    return []
