"""What-ifs through the API, as jobs: `POST /loyalty/what-if/{brand_id}` checks a proposed
programme and its range at once and starts the what-if as a job on this worker (`whatif.jobs`:
a process of its own, nothing live touched); `GET /loyalty/what-if/jobs/{job_id}` answers the
job, its report once it is done; `.../report.html` and `.../report.csv?table=` its renderings.

A job lives on the worker that accepted it (the 202's `url` names that worker): another worker
answers 404 for it. The answers' shapes are the models below, which the OpenAPI document
publishes.
"""

import logging
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Annotated
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from aiohttp import web
from faust.web import Request, Response
from faust.web.exceptions import WebError
from pydantic import BaseModel, ConfigDict, Field

from loyalty_streams.domain.programme import Programme
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.bodies import parse_body
from loyalty_streams.http.errors import refuse
from loyalty_streams.http.parameters import query_choice
from loyalty_streams.reports.finance import brand_zone, parse_bound
from loyalty_streams.runtime.worker import Worker
from loyalty_streams.whatif.jobs import (
    HTML,
    TABLES,
    Busy,
    Job,
    JobStatus,
    Proposal,
    WhatIfJobs,
)
from loyalty_streams.whatif.report import Period
from loyalty_streams.whatif.run import ProposalRefused, check_proposal

log = logging.getLogger(__name__)

WHAT_IF_PERMISSION = Permission.RUN_WHAT_IF
"""Who may run what-ifs and read them: `loyalty_admin` and `marketing_manager`."""

MAX_AHEAD = timedelta(days=366)
"""`to` at most this long after now: time-driven work (expiries, downgrades) runs to it."""
MAX_SPAN = timedelta(days=3661)
"""`from` at most this long (ten years) before `to`: a period each day of it is reported."""

JOBS = "/loyalty/what-if/jobs/{job_id}"

JOB_STORES: WeakKeyDictionary[Worker, WhatIfJobs] = WeakKeyDictionary()
"""Each worker's jobs, made on first use (a test puts its own store here first)."""


async def jobs_of(worker: Worker) -> WhatIfJobs:
    """The worker's what-if jobs, the ones kept on disk read back on first use."""
    jobs = JOB_STORES.get(worker)
    if jobs is None:
        jobs = JOB_STORES[worker] = WhatIfJobs(worker.settings)
    await jobs.loaded()
    return jobs


# -- bodies and answers ------------------------------------------------------------------------

_BOUND_TEXT = (
    "a date (midnight in the brand's time zone), or an RFC 3339 time (without an offset: "
    "in the brand's zone)"
)
Bound = Annotated[str, Field(min_length=1, max_length=64)]
DecimalText = Annotated[str, Field(description="An exact decimal string, e.g. 1090.00")]
UtcTime = Annotated[datetime, Field(description="RFC 3339, UTC")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WhatIfRequest(_Strict):
    """A what-if to run: a whole proposed programme for the path's brand, over a range."""

    programme: Programme = Field(
        description="The proposal, validated as a version to publish is; of the path's brand. "
        "Its version and effective_from are not used: it governs from `from` on"
    )
    since: Bound | None = Field(
        None,
        alias="from",
        description=f"Where the proposal starts to govern and the report begins: {_BOUND_TEXT}. "
        "Default: none, the proposal governs the whole history (reported from its first day)",
    )
    until: Bound | None = Field(
        None,
        alias="to",
        description=f"Where the report ends (excluded): {_BOUND_TEXT}. Default: now; at most a "
        "year ahead, and at most ten years after `from`",
    )
    by: Period = Field(Period.DAY, description="Report by brand day or calendar month")


class WhatIfAccepted(_Strict):
    """A what-if started: poll `url`, on the worker that runs it."""

    job_id: str = Field(description="A random UUID")
    status: JobStatus
    url: str = Field(description="The job, on this worker: GET it until its status is not running")


class RunFigures(_Strict):
    """One run's figures over a period: players per level at its end, points, money."""

    players: dict[str, int]
    points_accrued: DecimalText
    points_reversed: DecimalText
    points_issued: DecimalText
    liability: dict[str, DecimalText] = Field(description="Points issued at the redemption rate")
    cashback: dict[str, DecimalText]
    cashback_caps: int
    tier_rewards: int
    tier_reward_gc: DecimalText
    level_ups: int
    level_downs: int


class PeriodFigures(_Strict):
    period: str = Field(description="YYYY-MM-DD, YYYY-MM, or the total's label")
    start: UtcTime
    end: UtcTime
    baseline: RunFigures
    proposal: RunFigures


class LevelMove(_Strict):
    """Players at `baseline` in the baseline and at `proposal` in the proposal, at the end."""

    baseline: str
    proposal: str
    players: int


class AffectedPlayer(_Strict):
    player_id: str
    baseline_level: str
    proposal_level: str
    level_change: int
    baseline_points: DecimalText
    proposal_points: DecimalText
    points_change: DecimalText


class ByRun(_Strict):
    baseline: int
    proposal: int


class ReplayStats(_Strict):
    events: int
    folds: int
    players: int
    processes: int
    seconds: float
    events_per_second: int
    duplicates: int
    unprogrammed: int
    misrouted: int
    rejected: ByRun
    failed: ByRun
    failures: list[str]


class WhatIfReport(_Strict):
    """The report (`whatif.render.report_json`): see the README's What-if section."""

    brand_id: str
    since: UtcTime
    until: UtcTime
    by: Period
    timezone: str
    baseline_versions: list[int]
    proposed_version: int
    proposed_name: str
    proposal_from: UtcTime | None
    levels: list[str]
    periods: list[PeriodFigures]
    total: PeriodFigures
    moves: list[LevelMove]
    affected: list[AffectedPlayer]
    stats: ReplayStats


class WhatIfJob(_Strict):
    """A what-if job: running, then done (with its report) or failed (with the reason)."""

    job_id: str
    brand_id: str
    status: JobStatus
    submitted_by: str = Field(description="The token's subject")
    submitted_at: UtcTime
    finished_at: UtcTime | None
    since: UtcTime | None = Field(alias="from", description="null: the whole history")
    until: UtcTime = Field(alias="to")
    by: Period
    error: str | None = Field(description="Why it failed; null otherwise")
    report: WhatIfReport | None = Field(description="Once done; null otherwise")


# -- views -------------------------------------------------------------------------------------


class WhatIfView(ApiView):
    """POST: a what-if of a proposed programme for the path's brand, started as a job."""

    async def post(self, request: Request, brand_id: str) -> Response:
        caller = self.authorize(request, WHAT_IF_PERMISSION, brand_id)
        body = await parse_body(request, WhatIfRequest)
        proposal = self.proposal(brand_id, body)
        jobs = await jobs_of(self.worker)
        try:
            job = jobs.submit(proposal, caller.subject)
        except Busy as error:
            raise refuse(HTTPStatus.TOO_MANY_REQUESTS, str(error)) from error
        log.info(
            "what-if job %s of %s submitted by %s: %r from %s to %s by %s",
            job.job_id,
            brand_id,
            caller.subject,
            proposal.proposed.name,
            "the start" if proposal.since is None else proposal.since.isoformat(),
            proposal.until.isoformat(),
            proposal.by.value,
        )
        url = self.worker.settings.worker_url.rstrip("/") + JOBS.format(job_id=job.job_id)
        return self.json(
            WhatIfAccepted(job_id=job.job_id, status=job.status, url=url).model_dump(mode="json"),
            status=HTTPStatus.ACCEPTED,
            headers={"Location": url},
        )

    def proposal(self, brand_id: str, body: WhatIfRequest) -> Proposal:
        """The job `body` asks for. Raises a WebError: 404 for a brand without a version, 422
        for a proposal of another brand or a range that does not hold."""
        catalogue = self.worker.tables.catalogue
        versions = catalogue.versions(brand_id)
        if not versions:
            raise refuse(HTTPStatus.NOT_FOUND, f"no programme of brand {brand_id!r}")
        try:
            check_proposal(brand_id, versions, body.programme)
        except ProposalRefused as error:
            raise refuse(HTTPStatus.UNPROCESSABLE_ENTITY, f"programme.{error}") from error
        now = self.worker.clock()
        zone = brand_zone(catalogue, brand_id, now)
        assert zone is not None  # the brand has versions
        since = None if body.since is None else _bound(body.since, zone, "from")
        until = now if body.until is None else _bound(body.until, zone, "to")
        if until > now + MAX_AHEAD:
            raise _unprocessable(f"to: {until.isoformat()} is more than a year ahead")
        if since is not None and since >= until:
            raise _unprocessable(
                f"from ({since.isoformat()}) must be before to ({until.isoformat()})"
            )
        if since is not None and until - since > MAX_SPAN:
            raise _unprocessable("from: the range is longer than ten years")
        return Proposal(brand_id, body.programme, since, until, body.by)


def _bound(text: str, zone: ZoneInfo, name: str) -> datetime:
    """`text` as `parse_bound` reads it, in UTC; raises a 422 WebError naming `name`."""
    try:
        return parse_bound(text, zone).astimezone(UTC)
    except (ValueError, OverflowError) as error:  # OverflowError: out of the calendar in UTC
        raise _unprocessable(f"{name}: {error}") from error


def _unprocessable(message: str) -> WebError:
    return refuse(HTTPStatus.UNPROCESSABLE_ENTITY, message)


class JobView(ApiView):
    """A view of one job: the caller's role checked, then the job's brand."""

    async def job(self, request: Request, job_id: str) -> tuple[WhatIfJobs, Job]:
        """The store and the job. Raises a WebError: 403 without the role or the job's brand,
        404 for an id this worker does not keep."""
        self.authorize(request, WHAT_IF_PERMISSION)
        jobs = await jobs_of(self.worker)
        job = jobs.job(job_id)
        if job is None:
            raise refuse(
                HTTPStatus.NOT_FOUND,
                f"no what-if job {job_id!r} on this worker (a job is kept by the worker that "
                "accepted it, for LOYALTY_WHAT_IF_KEEP_S)",
            )
        self.authorize(request, WHAT_IF_PERMISSION, job.brand_id)
        return jobs, job

    async def report_file(
        self, request: Request, job_id: str, name: str, headers: dict[str, str]
    ) -> web.FileResponse:
        """The done job's file `name`, answered with `headers`. Raises a WebError: 409 while
        the job runs or if it failed, 404 if the file is gone, besides `job`'s."""
        jobs, job = await self.job(request, job_id)
        if job.status is JobStatus.RUNNING:
            raise refuse(HTTPStatus.CONFLICT, "the what-if job is still running: no report yet")
        if job.status is JobStatus.FAILED:
            raise refuse(HTTPStatus.CONFLICT, f"the what-if job failed: {job.error}")
        path = jobs.file(job, name)
        if not path.is_file():  # aiohttp would answer an empty 404
            raise refuse(HTTPStatus.NOT_FOUND, f"the what-if job's {name} is gone")
        return web.FileResponse(path, headers=headers)


class WhatIfJobView(JobView):
    """GET: the job, its report once done."""

    async def get(self, request: Request, job_id: str) -> Response:
        _, job = await self.job(request, job_id)
        return self.json(job.answer())


class WhatIfHtmlView(JobView):
    """GET: the done job's report as an HTML page of plotly charts."""

    async def get(self, request: Request, job_id: str) -> web.StreamResponse:
        headers = {"Content-Type": "text/html; charset=utf-8"}
        return await self.report_file(request, job_id, HTML, headers)


class WhatIfCsvView(JobView):
    """GET: one of the done job's report tables as CSV (`?table=`: `TABLES`)."""

    async def get(self, request: Request, job_id: str) -> web.StreamResponse:
        self.authorize(request, WHAT_IF_PERMISSION)  # a 401 or 403 before a 400
        table = query_choice(request.query.get("table"), "table", TABLES)
        if table is None:
            raise refuse(HTTPStatus.BAD_REQUEST, f"table is required: one of {', '.join(TABLES)}")
        headers = {
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="what-if-{job_id}-{table}.csv"',
        }
        return await self.report_file(request, job_id, f"{table}.csv", headers)


ROUTES: dict[str, type[ApiView]] = {
    f"{JOBS}/report.html": WhatIfHtmlView,
    f"{JOBS}/report.csv": WhatIfCsvView,
    JOBS: WhatIfJobView,
    "/loyalty/what-if/{brand_id}": WhatIfView,
}
