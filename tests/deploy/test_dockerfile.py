"""The Dockerfile, linted: no image builder runs on these machines (no Docker engine, and base
images cannot be pulled), so the rules a build and hadolint would catch are checked on the parsed
file (dockerfile-parse), against the repository and the product's own settings and CLI."""

import fnmatch
import json
import shlex
from functools import cache
from pathlib import PurePosixPath
from typing import Any

import yaml
from dockerfile_parse import DockerfileParser

from tests.deploy.support import ROOT, cli, console_scripts, setting_default, setting_names

DOCKERFILE = ROOT / "Dockerfile"


@cache
def parser() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def instructions() -> list[dict[str, Any]]:
    return [i for i in parser().structure if i["instruction"] != "COMMENT"]


def stages() -> list[list[dict[str, Any]]]:
    """The instructions of each build stage, in order."""
    found: list[list[dict[str, Any]]] = []
    for instruction in instructions():
        if instruction["instruction"] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def final_stage() -> list[dict[str, Any]]:
    return stages()[-1]


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"{value} is not in exec form"
    return [str(item) for item in parsed]


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves out path (or a folder it is in)."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern):
                return True
            if bare != pattern and fnmatch.fnmatch(PurePosixPath(candidate).name, bare):
                return True
    return False


def test_the_dockerfile_parses_into_a_build_and_a_runtime_stage() -> None:
    assert parser().is_multistage
    assert len(stages()) == 2


def test_base_images_are_pinned() -> None:
    for image in parser().parent_images:
        name, _, tag = image.partition(":")
        assert tag, f"{image} has no tag"
        assert tag != "latest", image
        assert "$" not in image, f"{image}: an ARG without a default"
        assert name.startswith("python"), image
    python = parser().parent_images[-1].split(":")[1].split("-")[0]
    with (ROOT / "pyproject.toml").open() as file:
        floor = next(line for line in file if line.startswith("requires-python"))
    assert python in floor, f"image Python {python} vs {floor.strip()}"


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = values(final_stage(), "USER")
    assert users, "no USER in the final stage: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_it_exposes_the_workers_web_port() -> None:
    exposed = {
        port.split("/")[0] for value in values(final_stage(), "EXPOSE") for port in value.split()
    }
    assert exposed == {str(setting_default("web_port"))}
    assert parser().envs["LOYALTY_WEB_PORT"] == str(setting_default("web_port"))
    assert parser().envs["LOYALTY_WEB_HOST"] == "0.0.0.0"


def test_the_entrypoint_is_the_cli_and_the_default_command_a_worker() -> None:
    (entrypoint,) = values(final_stage(), "ENTRYPOINT")
    (command,) = values(final_stage(), "CMD")
    assert exec_form(entrypoint) == ["loyalty-streams"]
    assert "loyalty-streams" in console_scripts()
    assert cli(exec_form(command)).command == "worker"


def test_settings_point_inside_the_image() -> None:
    env = parser().envs
    assert {k for k in env if k.startswith("LOYALTY_")} <= setting_names()
    workdir = values(final_stage(), "WORKDIR")[-1]
    copies = [shlex.split(v) for v in values(final_stage(), "COPY")]
    topics_target = next(c[-1] for c in copies if c[0] == "topics")
    assert env["LOYALTY_TOPICS_DIR"] == str(PurePosixPath(workdir) / topics_target)
    assert "chown loyalty:loyalty " + env["LOYALTY_DATA_DIR"] in " ".join(
        values(final_stage(), "RUN")
    ), "the data dir must belong to the user the image runs as"


def test_copied_sources_exist_and_are_in_the_build_context() -> None:
    patterns = dockerignore()
    for stage in stages():
        for value in values(stage, "COPY"):
            args = shlex.split(value)
            if any(arg.startswith("--from=") for arg in args):
                continue
            for source in args[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not ignored(source, patterns), f"COPY {source}: left out by .dockerignore"
    assert not values(final_stage(), "ADD"), "use COPY (ADD fetches URLs and unpacks archives)"


def test_the_build_context_leaves_out_local_state() -> None:
    patterns = dockerignore()
    for path in (".venv", ".git", "var/data", "tests/deploy", "src/loyalty_streams.egg-info"):
        assert ignored(path, patterns), path
    assert ignored("src/loyalty_streams/__pycache__/x.pyc", patterns)
    for path in ("src/loyalty_streams/settings.py", "topics/casino.player-events.json"):
        assert not ignored(path, patterns), path


def test_pip_keeps_no_cache_in_the_image() -> None:
    for stage in stages():
        for run in values(stage, "RUN"):
            for step in run.split("&&"):
                if "pip install" in step:
                    assert "--no-cache-dir" in step, step


def test_compose_builds_its_image_from_this_dockerfile() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    assert builds
    for build in builds:
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
