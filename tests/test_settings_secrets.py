"""A worker or a PMS webhook with a public, empty or short secret does not start outside the
development setting: one line on stderr naming the variable, a non-zero exit, no traceback."""

import os
import subprocess
import sys

import pytest

from loyalty_streams.settings import MIN_SECRET_BYTES, Settings

STRONG = "k" * MIN_SECRET_BYTES
NOWHERE = "127.0.0.1:1"  # no broker: a refused secret must not need one


@pytest.mark.parametrize(
    ("secret", "what"),
    [("change-me", "public default"), ("", "empty"), ("k" * (MIN_SECRET_BYTES - 1), "31 bytes")],
)
def test_a_weak_secret_is_a_problem_that_names_its_variable(secret: str, what: str) -> None:
    settings = Settings(api_token_secret=secret, pms_webhook_secret=secret)
    (problem,) = settings.secret_problems("api_token_secret")
    assert problem.startswith("LOYALTY_API_TOKEN_SECRET ") and what in problem
    assert ("LOYALTY_DEVELOPMENT" in problem) == bool(secret) and "\n" not in problem
    (webhook,) = settings.secret_problems("pms_webhook_secret")
    assert webhook.startswith("LOYALTY_PMS_WEBHOOK_SECRET ")


def test_bytes_count_not_characters() -> None:
    almost = "é" * (MIN_SECRET_BYTES // 2)  # 16 characters, 32 bytes in UTF-8
    assert Settings(api_token_secret=almost).secret_problems("api_token_secret") == []


def test_a_strong_secret_and_an_unset_previous_one_are_fine() -> None:
    settings = Settings(api_token_secret=STRONG, pms_webhook_secret=STRONG)
    assert settings.secret_problems("api_token_secret", "pms_webhook_secret") == []
    assert settings.secret_problems("pms_webhook_secret_previous") == []
    short_previous = Settings(pms_webhook_secret_previous="old")
    assert short_previous.secret_problems("pms_webhook_secret_previous")


def test_development_accepts_the_default_and_a_short_secret_but_never_an_empty_one() -> None:
    settings = Settings(development=True, pms_webhook_secret="short")
    assert settings.secret_problems("api_token_secret", "pms_webhook_secret") == []
    empty = Settings(development=True, api_token_secret="")
    assert empty.secret_problems("api_token_secret")  # it would answer 500 to every request


def start(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`loyalty-streams COMMAND` with only these LOYALTY_* variables; what it did."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    return subprocess.run(
        [sys.executable, "-m", "loyalty_streams.cli.main", command],
        env={**clean, "LOYALTY_BOOTSTRAP_SERVERS": NOWHERE, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("secret", [None, "", "too-short"])
def test_the_worker_refuses_to_start_with_a_weak_token_secret(secret: str | None) -> None:
    env = {} if secret is None else {"LOYALTY_API_TOKEN_SECRET": secret}
    done = start("worker", **env)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("LOYALTY_API_TOKEN_SECRET ")


def test_the_pms_webhook_refuses_to_start_with_a_weak_secret() -> None:
    url = {"LOYALTY_PMS_WEBHOOK_URL": "https://pms.example/hook"}
    done = start("pms-webhook", **url)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("LOYALTY_PMS_WEBHOOK_SECRET ")
    rotating = {**url, "LOYALTY_PMS_WEBHOOK_SECRET": STRONG}
    done = start("pms-webhook", **rotating, LOYALTY_PMS_WEBHOOK_SECRET_PREVIOUS="old")
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("LOYALTY_PMS_WEBHOOK_SECRET_PREVIOUS ")
