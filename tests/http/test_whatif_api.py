"""What-ifs through the API, as jobs, on the views served by aiohttp: a proposal and its range
are checked before any job starts, only the roles that read the business's figures may run and
read them (a job's brand included), a job runs in a process of its own (forked here, replaying
the by-hand stream in memory) and is fetched, its HTML and CSV served once it is done; at most
`at_once` run, the others are refused; a job that fails or whose process dies is failed with the
reason; finished jobs survive a new store on the same directory, a running one is recorded
failed; old jobs are forgotten with their files; the routes are documented."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from loyalty_streams.domain.catalogue import Catalogue
from loyalty_streams.http.auth import Role, TokenRules, issue_token
from loyalty_streams.http.errors import serve_json_errors
from loyalty_streams.http.openapi import OPERATIONS, openapi_document
from loyalty_streams.http.whatif import JOB_STORES, ROUTES, WhatIfJob, WhatIfReport
from loyalty_streams.settings import Settings
from loyalty_streams.whatif.jobs import (
    RECORD,
    Job,
    JobLimits,
    Proposal,
    WhatIfJobs,
)
from loyalty_streams.whatif.replay import MemorySource, positioned
from loyalty_streams.whatif.report import Period, Report
from loyalty_streams.whatif.run import what_if
from tests.whatif.support import AURORA, aurora, by_hand, changed_levels
from tests.whatif.test_silver_threshold import MALTA_2_NOV, MALTA_5_NOV, MOVES

pytestmark = pytest.mark.filterwarnings(
    "ignore:It is recommended to use web.RequestKey"  # api_view keeps the caller by a str key
)

SECRET = "what-if-api-tests-secret-of-32-bytes-at-least"
NOW = MALTA_5_NOV
"""The workers' clock: the default `to`."""
WAIT_S = 30.0


def silver_at_5000() -> dict[str, Any]:
    return changed_levels(aurora(), 2, Silver="5000").model_dump(mode="json")


def by_hand_replay(settings: Settings, proposal: Proposal, processes: int) -> Report:
    """The by-hand stream of `tests.whatif`, in memory, as the job's replay."""
    return what_if(
        MemorySource(positioned(by_hand())),
        proposal.brand_id,
        [aurora()],
        proposal.proposed,
        proposal.since,
        proposal.until,
        proposal.by,
        processes,
        partitions=12,
    )


def gated_replay(settings: Settings, proposal: Proposal, processes: int) -> Report:
    """`by_hand_replay` once the file `go` is in the data dir."""
    while not (settings.data_dir / "go").exists():
        time.sleep(0.02)
    return by_hand_replay(settings, proposal, processes)


def broken_replay(settings: Settings, proposal: Proposal, processes: int) -> Report:
    raise ValueError("the archive is unreadable")


def dying_replay(settings: Settings, proposal: Proposal, processes: int) -> Report:
    os._exit(3)


class Worker:
    """What the views ask of a worker: its settings, clock and programmes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tables = SimpleNamespace(catalogue=Catalogue([aurora()]))
        self.clock = lambda: NOW


@dataclass
class Api:
    client: TestClient[Any, Any]
    worker: Worker
    jobs: WhatIfJobs

    def token(self, *roles: Role, brands: tuple[str, ...] = ("*",), subject: str = "anna") -> str:
        rules = TokenRules(SECRET, timedelta(hours=1))
        return issue_token(rules, subject, roles, brands, NOW, timedelta(hours=1))

    async def call(
        self, method: str, path: str, token: str | None, body: Any = None
    ) -> ClientResponse:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await self.client.request(method, path, json=body, headers=headers)

    async def submit(self, body: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
        answer = await self.call("POST", f"/loyalty/what-if/{AURORA}", token or self.admin, body)
        return answer.status, await answer.json()

    async def job(self, job_id: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
        answer = await self.call("GET", f"/loyalty/what-if/jobs/{job_id}", token or self.admin)
        return answer.status, await answer.json()

    async def finished(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            status, job = await self.job(job_id)
            assert status == 200, job
            if job["status"] != "running":
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"job {job_id} still running after {WAIT_S} s")

    @property
    def admin(self) -> str:
        return self.token(Role.LOYALTY_ADMIN)


Serve = Callable[..., Any]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """`serve(replay, **limits)`: the what-if routes of a worker whose jobs run `replay`."""
    started: list[tuple[TestClient[Any, Any], WhatIfJobs]] = []

    async def start(replay: Any = by_hand_replay, **limits: Any) -> Api:
        settings = Settings(
            data_dir=tmp_path / f"worker-{len(started)}",
            api_token_secret=SECRET,
            advertised_url="http://worker-1:6066",
        )
        worker = Worker(settings)
        jobs = WhatIfJobs(settings, JobLimits(**limits), replay_with=replay, start_method="fork")
        JOB_STORES[worker] = jobs  # type: ignore[index]  # the stand-in serves as a worker
        app = faust.App(f"what-if-tests-{len(started)}", web_port=6066)
        serve_json_errors(app)
        for path, view in ROUTES.items():
            app.page(path)(type(view.__name__, (view,), {"worker": worker}))
        client: TestClient[Any, Any] = TestClient(TestServer(app.web.web_app))
        await client.start_server()
        started.append((client, jobs))
        return Api(client, worker, jobs)

    yield start
    for client, jobs in started:
        jobs.close()
        await client.close()


async def test_a_proposal_and_its_range_are_checked_before_any_job_starts(serve: Serve) -> None:
    api: Api = await serve()
    broken = silver_at_5000()
    broken["levels"][1]["threshold"] = "0"
    elsewhere = silver_at_5000() | {"brand_id": "lucky-sweeps"}
    refused = [
        ({"programme": broken}, 422, "levels[1].threshold"),
        ({"programme": elsewhere}, 422, "programme.brand_id"),
        ({"programme": silver_at_5000(), "from": "yesterday"}, 422, "from:"),
        ({"programme": silver_at_5000(), "to": "2026-13-01"}, 422, "to:"),
        ({"programme": silver_at_5000(), "from": "2026-11-04", "to": "2026-11-03"}, 422, "before"),
        ({"programme": silver_at_5000(), "to": "2028-01-01"}, 422, "a year ahead"),
        ({"programme": silver_at_5000(), "from": "2016-01-01"}, 422, "ten years"),
        ({"programme": silver_at_5000(), "from": "0001-01-01T00:00:00+01:00"}, 422, "from:"),
        ({"programme": silver_at_5000(), "by": "week"}, 422, "by"),
        ({"programme": silver_at_5000(), "since": "2026-11-01"}, 422, "since"),
        ({"from": "2026-11-01"}, 422, "programme"),
        ([1, 2], 422, ""),
    ]
    for body, status, named in refused:
        answer = await api.submit(body)
        assert (answer[0], named in answer[1]["error"]) == (status, True), (body, answer)
    answer = await api.call("POST", "/loyalty/what-if/nowhere-casino", api.admin, {})
    assert answer.status == 422  # the body first: it names nothing of the path
    answer = await api.call(
        "POST", "/loyalty/what-if/nowhere-casino", api.admin, {"programme": silver_at_5000()}
    )
    assert (answer.status, (await answer.json())["error"]) == (
        404,
        "no programme of brand 'nowhere-casino'",
    )
    answer = await api.client.post(
        f"/loyalty/what-if/{AURORA}",
        data=b'{"programme": ',
        headers={"Authorization": f"Bearer {api.admin}"},
    )
    assert answer.status == 400 and "invalid JSON" in (await answer.json())["error"]
    assert api.jobs.running() == 0 and not api.jobs.directory.exists()


async def test_only_the_roles_that_read_the_figures_run_and_read_what_ifs(serve: Serve) -> None:
    api: Api = await serve()
    body = {"programme": silver_at_5000()}
    answer = await api.call("POST", f"/loyalty/what-if/{AURORA}", None, body)
    assert answer.status == 401 and answer.headers["WWW-Authenticate"] == "Bearer"
    status, refused = await api.submit(body, api.token(Role.SERVICE))
    assert (status, refused["error"]) == (403, "service may not run what-ifs")
    status, refused = await api.submit(body, api.token())
    assert (status, refused["error"]) == (403, "no role may not run what-ifs")
    lucky = api.token(Role.MARKETING_MANAGER, brands=("lucky-sweeps",), subject="mark")
    status, refused = await api.submit(body, lucky)
    assert (status, "does not cover brand 'aurora-casino'" in refused["error"]) == (403, True)

    marketing = api.token(Role.MARKETING_MANAGER, brands=(AURORA,), subject="mark")
    status, accepted = await api.submit(body, marketing)
    assert status == 202, accepted
    job = await api.finished(accepted["job_id"])
    assert (job["status"], job["submitted_by"]) == ("done", "mark")
    for token, expected in (
        (marketing, 200),
        (lucky, 403),
        (api.token(Role.SERVICE), 403),
        (api.token(Role.LOYALTY_ADMIN, brands=("lucky-sweeps",)), 403),
    ):
        for suffix in ("", "/report.html", "/report.csv?table=moves"):
            path = f"/loyalty/what-if/jobs/{accepted['job_id']}{suffix}"
            assert (await api.call("GET", path, token)).status == expected, (path, token)


async def test_a_job_runs_in_its_process_and_its_report_is_fetched(serve: Serve) -> None:
    api: Api = await serve()
    answer = await api.call(
        "POST", f"/loyalty/what-if/{AURORA}", api.admin, {"programme": silver_at_5000()}
    )
    accepted = await answer.json()
    job_id = accepted["job_id"]
    assert answer.status == 202 and uuid.UUID(job_id).version == 4
    url = f"http://worker-1:6066/loyalty/what-if/jobs/{job_id}"
    assert accepted == {"job_id": job_id, "status": "running", "url": url}
    assert answer.headers["Location"] == url

    job = await api.finished(job_id)
    WhatIfJob.model_validate(job)  # the shape the OpenAPI document publishes
    assert {key: job[key] for key in ("brand_id", "status", "submitted_by", "from", "by")} == {
        "brand_id": AURORA,
        "status": "done",
        "submitted_by": "anna",
        "from": None,
        "by": "day",
    }
    assert job["to"] == NOW.isoformat() and job["error"] is None
    assert job["submitted_at"] <= job["finished_at"]
    report = WhatIfReport.model_validate(job["report"])
    assert (report.since, report.until) == (MALTA_2_NOV, NOW)
    assert [(m.baseline, m.proposal, m.players) for m in report.moves] == [
        (m.baseline, m.proposal, m.players) for m in MOVES
    ]
    assert [p.player_id for p in report.affected] == ["b", "c", "e"]

    page = await api.call("GET", f"/loyalty/what-if/jobs/{job_id}/report.html", api.admin)
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert 'id="chart-moves"' in html and "Plotly" in html
    table = await api.call(
        "GET", f"/loyalty/what-if/jobs/{job_id}/report.csv?table=moves", api.admin
    )
    assert table.status == 200 and table.content_type == "text/csv"
    assert (await table.text()).splitlines() == [
        "baseline_level,proposal_level,players",
        *(f"{m.baseline},{m.proposal},{m.players}" for m in MOVES),
    ]
    for query, named in (("", "table is required"), ("?table=secrets", "table: 'secrets'")):
        path = f"/loyalty/what-if/jobs/{job_id}/report.csv{query}"
        answer = await api.call("GET", path, api.admin)
        assert answer.status == 400 and named in (await answer.json())["error"]
        assert (await api.call("GET", path, None)).status == 401  # who first
        assert (await api.call("GET", path, api.token(Role.SERVICE))).status == 403

    unknown = str(uuid.uuid4())
    for suffix in ("", "/report.html", "/report.csv?table=moves"):
        answer = await api.call("GET", f"/loyalty/what-if/jobs/{unknown}{suffix}", api.admin)
        assert answer.status == 404 and "no what-if job" in (await answer.json())["error"]

    _, ranged = await api.submit(
        {"programme": silver_at_5000(), "from": "2026-11-02", "to": "2026-11-05", "by": "month"}
    )
    job = await api.finished(ranged["job_id"])
    assert (job["from"], job["to"], job["by"]) == (
        MALTA_2_NOV.isoformat(),
        NOW.isoformat(),
        "month",
    )
    assert [period["period"] for period in job["report"]["periods"]] == ["2026-11"]


async def test_one_job_at_a_time_the_others_are_refused_and_no_report_until_done(
    serve: Serve,
) -> None:
    api: Api = await serve(gated_replay)
    status, accepted = await api.submit({"programme": silver_at_5000()})
    assert status == 202
    job_id = accepted["job_id"]
    status, job = await api.job(job_id)
    assert (status, job["status"], job["finished_at"], job["report"]) == (
        200,
        "running",
        None,
        None,
    )
    for suffix in ("/report.html", "/report.csv?table=periods"):
        answer = await api.call("GET", f"/loyalty/what-if/jobs/{job_id}{suffix}", api.admin)
        assert answer.status == 409 and "still running" in (await answer.json())["error"]
    status, busy = await api.submit({"programme": silver_at_5000()})
    assert status == 429 and "LOYALTY_WHAT_IF_MAX_JOBS" in busy["error"]

    (api.worker.settings.data_dir / "go").touch()
    assert (await api.finished(job_id))["status"] == "done"
    status, accepted = await api.submit({"programme": silver_at_5000()})
    assert status == 202
    assert (await api.finished(accepted["job_id"]))["status"] == "done"


async def test_two_jobs_at_once_when_the_limit_says_so(serve: Serve) -> None:
    api: Api = await serve(gated_replay, at_once=2)
    first = (await api.submit({"programme": silver_at_5000()}))[1]["job_id"]
    second = (await api.submit({"programme": silver_at_5000()}))[1]["job_id"]
    assert (await api.submit({"programme": silver_at_5000()}))[0] == 429
    (api.worker.settings.data_dir / "go").touch()
    for job_id in (first, second):
        assert (await api.finished(job_id))["status"] == "done"


@pytest.mark.parametrize(
    ("replay", "error"),
    [
        (broken_replay, "ValueError: the archive is unreadable"),
        (dying_replay, "the job's process ended (exit code 3) without a report"),
    ],
)
async def test_a_job_that_fails_or_dies_is_failed_with_the_reason(
    serve: Serve, replay: Any, error: str
) -> None:
    api: Api = await serve(replay)
    job_id = (await api.submit({"programme": silver_at_5000()}))[1]["job_id"]
    job = await api.finished(job_id)
    assert (job["status"], job["error"], job["report"]) == ("failed", error, None)
    assert job["finished_at"] is not None
    answer = await api.call("GET", f"/loyalty/what-if/jobs/{job_id}/report.html", api.admin)
    assert (
        answer.status == 409
        and (await answer.json())["error"] == f"the what-if job failed: {error}"
    )
    assert api.jobs.running() == 0


async def test_closing_the_store_kills_a_running_job(serve: Serve) -> None:
    api: Api = await serve(gated_replay)
    job_id = (await api.submit({"programme": silver_at_5000()}))[1]["job_id"]
    deadline = time.monotonic() + WAIT_S
    while not api.jobs._processes and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    (process,) = api.jobs._processes.values()
    api.jobs.close()
    assert process.exitcode is not None
    job = await api.finished(job_id)
    assert job["error"] == "the job's process ended (killed by signal 9) without a report"


async def test_finished_jobs_outlive_the_store_a_running_one_is_failed(serve: Serve) -> None:
    api: Api = await serve()
    done_id = (await api.submit({"programme": silver_at_5000()}))[1]["job_id"]
    done = await api.finished(done_id)
    lost = Job(str(uuid.uuid4()), AURORA, None, NOW, Period.DAY, "anna", NOW - timedelta(minutes=1))
    (api.jobs.directory / lost.job_id).mkdir()
    (api.jobs.directory / lost.job_id / RECORD).write_text(json.dumps(lost.record()))
    api.jobs.close()

    again = WhatIfJobs(api.worker.settings, start_method="fork")
    try:
        JOB_STORES[api.worker] = again  # type: ignore[index]
        assert await api.job(done_id) == (200, done)
        answer = await api.call("GET", f"/loyalty/what-if/jobs/{done_id}/report.html", api.admin)
        assert answer.status == 200
        status, after = await api.job(lost.job_id)
        assert (status, after["status"]) == (200, "failed")
        assert after["error"] == "the worker stopped while the job ran"
    finally:
        again.close()


async def test_old_jobs_are_forgotten_with_their_files(serve: Serve) -> None:
    api: Api = await serve(keep=2)
    ids = []
    for _ in range(3):
        ids.append((await api.submit({"programme": silver_at_5000()}))[1]["job_id"])
        await api.finished(ids[-1])
    assert (await api.job(ids[0]))[0] == 404
    deadline = time.monotonic() + WAIT_S
    while (api.jobs.directory / ids[0]).exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)  # removed in a thread
    assert not (api.jobs.directory / ids[0]).exists()
    assert [(await api.job(job_id))[0] for job_id in ids[1:]] == [200, 200]

    stale = WhatIfJobs(api.worker.settings, JobLimits(keep_for=timedelta(seconds=0.5)))
    try:
        await asyncio.sleep(0.6)
        await stale.loaded()
        assert [stale.job(job_id) for job_id in ids] == [None, None, None]
        assert sorted(api.jobs.directory.iterdir()) == []
    finally:
        stale.close()


def test_the_routes_are_documented_with_their_roles_and_answers() -> None:
    documented = {op.path: op for op in OPERATIONS if "/what-if/" in op.path}
    assert sorted(documented) == sorted(ROUTES)
    paths = openapi_document()["paths"]
    for path, op in documented.items():
        operation = paths[path][op.method]
        assert operation["description"].startswith("Roles: loyalty_admin, marketing_manager;")
    submit = paths["/loyalty/what-if/{brand_id}"]["post"]
    assert set(submit["responses"]) >= {"202", "404", "422", "429"}
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WhatIfRequest"
    }
    schemas = openapi_document()["components"]["schemas"]
    assert set(schemas["WhatIfRequest"]["properties"]) == {"programme", "from", "to", "by"}
    assert set(schemas["WhatIfJob"]["properties"]) == {
        "job_id", "brand_id", "status", "submitted_by", "submitted_at", "finished_at", "from",
        "to", "by", "error", "report",
    }  # fmt: skip
    html = paths["/loyalty/what-if/jobs/{job_id}/report.html"]["get"]
    assert list(html["responses"]["200"]["content"]) == ["text/html"]
    assert html["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}


RUNNING_JOB = """
import asyncio, sys, time
from datetime import UTC, datetime
from pathlib import Path
from loyalty_streams.settings import Settings
from loyalty_streams.whatif.jobs import Proposal, WhatIfJobs
from tests.whatif.support import aurora

def forever(settings, proposal, processes):
    time.sleep(3600)

async def main():
    settings = Settings(data_dir=Path(sys.argv[1]))
    jobs = WhatIfJobs(settings, replay_with=forever, start_method="fork")
    await jobs.loaded()
    jobs.submit(Proposal("aurora-casino", aurora(), None, datetime.now(UTC)), "tests")
    while not jobs._processes:
        await asyncio.sleep(0.01)
    (process,) = jobs._processes.values()
    print(process.pid, flush=True)
    if sys.argv[2] == "stay":
        await asyncio.sleep(3600)

asyncio.run(main())
"""
"""A process that starts a job that never ends, prints its pid, then exits (`leave`) or stays
until it is killed (`stay`)."""


def gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie no one reaps has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("how", ["leave", "stay"])
def test_a_running_job_ends_with_the_process_that_started_it(tmp_path: Path, how: str) -> None:
    """At the interpreter's exit the store kills its jobs (before multiprocessing would wait
    for them); a job whose worker was SIGKILLed kills itself."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root / 'src'}:{root}"}
    starter = subprocess.Popen(
        [sys.executable, "-c", RUNNING_JOB, str(tmp_path), how], stdout=subprocess.PIPE, env=env
    )
    assert starter.stdout is not None
    job = int(starter.stdout.readline())
    assert not gone(job)
    if how == "stay":
        starter.kill()
    assert starter.wait(WAIT_S) == (-signal.SIGKILL if how == "stay" else 0)
    deadline = time.monotonic() + WAIT_S
    while not gone(job) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(job)
