"""What-if jobs: a what-if run in a process of its own, its report kept on disk for a while. The
HTTP API (`http/whatif.py`) submits them and serves them; nothing here knows HTTP.

A job is a directory `<data_dir>/what-if/<job_id>/`: `job.json`, its record (who asked, when,
over what range, its status), and once it is done its report as `report.json` (`report_json`),
`report.html` (`render_html`) and the CSV tables (`csv_tables`: `periods.csv`, `levels.csv`,
`moves.csv`, `players.csv`). The job's process writes the report's files, then its record,
done or failed with the reason; a process that dies before that is recorded failed by the
store. Records outlive the worker's process: a new store reads the kept jobs back, and a job
that was running then is recorded failed (its process ended with the worker's).

Each job's process is spawned (a fresh interpreter: nothing of the worker's state, memory
given back when it ends), runs at a lower priority (`NICE`), leads its own process group (so
ending it ends the processes its replay started) and kills itself if the worker that started
it is gone. At most `JobLimits.at_once` run at once: a submission beyond them is refused
(`Busy`), never queued. Finished jobs are kept `JobLimits.keep_for`, the newest
`JobLimits.keep` of them at most.
"""

import asyncio
import atexit
import json
import logging
import multiprocessing
import multiprocessing.util  # imported first, so its exit handler (joining children) runs last
import os
import shutil
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Self

from loyalty_streams.domain.programme import Programme
from loyalty_streams.runtime.gc_tuning import tune_collector
from loyalty_streams.settings import Settings
from loyalty_streams.whatif.job import run_what_if
from loyalty_streams.whatif.render import CSV_FILES, write_csv, write_html, write_json
from loyalty_streams.whatif.report import Period, Report

log = logging.getLogger(__name__)

RECORD = "job.json"
REPORT = "report.json"
HTML = "report.html"
TABLES = tuple(name.removesuffix(".csv") for name in CSV_FILES)
"""The report's CSV tables by name: `periods`, `levels`, `moves`, `players`."""

NICE = 10
"""How much lower a job's process runs than the worker: on a shared CPU the fold loop goes
first."""
POLL_S = 0.2
"""How often the store looks whether a job's process has ended."""
PARENT_CHECK_S = 1.0
"""How often a job's process looks whether the worker that started it is still there."""
KILL_WAIT_S = 5.0
"""How long `close` waits for a killed job's process to be gone."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Proposal:
    """What a job replays: `proposed` for `brand_id` over [since, until) (UTC; `since` None:
    the proposal governs the whole history), reported by `by`."""

    brand_id: str
    proposed: Programme
    since: datetime | None
    until: datetime
    by: Period = Period.DAY


@dataclass(frozen=True)
class Job:
    """A job's record, and its report (`report_json`) once it is done."""

    job_id: str
    brand_id: str
    since: datetime | None
    until: datetime
    by: Period
    submitted_by: str
    submitted_at: datetime
    status: JobStatus = JobStatus.RUNNING
    finished_at: datetime | None = None
    error: str | None = None
    report: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """The job as JSON values, without its report: what `job.json` holds."""
        return {
            "job_id": self.job_id,
            "brand_id": self.brand_id,
            "status": self.status.value,
            "submitted_by": self.submitted_by,
            "submitted_at": self.submitted_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "from": None if self.since is None else self.since.isoformat(),
            "to": self.until.isoformat(),
            "by": self.by.value,
            "error": self.error,
        }

    def answer(self) -> dict[str, Any]:
        """The record and the report (None until the job is done)."""
        return self.record() | {"report": self.report}

    @classmethod
    def of_record(cls, record: dict[str, Any], report: dict[str, Any] | None = None) -> Self:
        """The job `record()` gave. Raises KeyError, ValueError or TypeError for another
        value."""
        since, finished = record["from"], record["finished_at"]
        return cls(
            job_id=str(uuid.UUID(str(record["job_id"]))),
            brand_id=str(record["brand_id"]),
            since=None if since is None else datetime.fromisoformat(since),
            until=datetime.fromisoformat(record["to"]),
            by=Period(record["by"]),
            submitted_by=str(record["submitted_by"]),
            submitted_at=datetime.fromisoformat(record["submitted_at"]),
            status=JobStatus(record["status"]),
            finished_at=None if finished is None else datetime.fromisoformat(finished),
            error=record["error"],
            report=report,
        )

    def ended(self, status: JobStatus, error: str | None = None) -> Self:
        """This job finished now with `status`."""
        return replace(self, status=status, finished_at=utc_now(), error=error)


@dataclass(frozen=True)
class JobLimits:
    """How many jobs run at once, in how many processes each, and which finished jobs are
    kept: the newest `keep`, none finished longer than `keep_for` ago."""

    at_once: int = 1
    processes: int = 1
    keep: int = 20
    keep_for: timedelta = timedelta(days=1)

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """The limits the `LOYALTY_WHAT_IF_*` settings set."""
        return cls(
            settings.what_if_max_jobs,
            settings.what_if_processes,
            settings.what_if_keep_jobs,
            timedelta(seconds=settings.what_if_keep_s),
        )


Replay = Callable[[Settings, Proposal, int], Report]
"""What a job's process runs: the settings, the proposal and the processes to fold in give the
report."""


def replay(settings: Settings, proposal: Proposal, processes: int) -> Report:
    """The what-if of `proposal` on the brand's real history: its versions from
    `loyalty.programmes`, its events from the archive and the topic (`job.run_what_if`, which
    says what it raises)."""
    return run_what_if(
        settings,
        proposal.brand_id,
        proposal.proposed,
        proposal.since,
        proposal.until,
        proposal.by,
        processes,
    )


class Busy(Exception):
    """Every job slot of the store is taken; the message says so."""


class WhatIfJobs:
    """One worker's what-if jobs: submitted, run in their processes, kept on disk under
    `<data_dir>/what-if`. Used from one event loop; `close` ends the running jobs' processes
    (also at the interpreter's exit)."""

    def __init__(
        self,
        settings: Settings,
        limits: JobLimits | None = None,
        *,
        replay_with: Replay = replay,
        start_method: str = "spawn",
    ) -> None:
        """`replay_with` is what each job's process runs (picklable with "spawn"; tests pass
        another with "fork")."""
        self.settings = settings
        self.limits = limits or JobLimits.of(settings)
        self.directory = settings.data_dir / "what-if"
        self._replay = replay_with
        self._context = multiprocessing.get_context(start_method)
        self._jobs: dict[str, Job] = {}
        self._processes: dict[str, BaseProcess] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._loading: asyncio.Task[None] | None = None
        self._closed = False
        atexit.register(self.close)

    async def loaded(self) -> None:
        """Once: the jobs kept on disk read back (a running one recorded failed), the old ones
        forgotten. Never raises: an unreadable job is left out, and logged."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        await asyncio.shield(self._loading)

    async def _load(self) -> None:
        for job in await asyncio.to_thread(self._read_kept):
            self._jobs.setdefault(job.job_id, job)
        await self._prune()

    def job(self, job_id: str) -> Job | None:
        """The job, running or kept; None for any other id."""
        return self._jobs.get(job_id)

    def running(self) -> int:
        return sum(job.status is JobStatus.RUNNING for job in self._jobs.values())

    def file(self, job: Job, name: str) -> Path:
        """Where the job's file `name` is (`HTML`, `REPORT`, `<table>.csv`)."""
        return self.directory / job.job_id / name

    def submit(self, proposal: Proposal, actor: str) -> Job:
        """Start a what-if of `proposal` for `actor`: its job, running; its process starts
        at once, off this loop. Raises `Busy` when `limits.at_once` jobs are running. Must be
        called on the event loop that runs the store."""
        running = self.running()
        if running >= self.limits.at_once:
            raise Busy(
                f"{running} what-if job(s) running on this worker, the most it runs at once "
                "(LOYALTY_WHAT_IF_MAX_JOBS): submit again once one is done"
            )
        job = Job(
            job_id=str(uuid.uuid4()),
            brand_id=proposal.brand_id,
            since=proposal.since,
            until=proposal.until,
            by=proposal.by,
            submitted_by=actor,
            submitted_at=utc_now(),
        )
        self._jobs[job.job_id] = job  # its slot is taken from now on
        self._tasks[job.job_id] = asyncio.get_running_loop().create_task(self._run(job, proposal))
        return job

    async def _run(self, job: Job, proposal: Proposal) -> None:
        """Start the job's process, wait for it to end, take its outcome."""
        began = time.monotonic()
        try:
            process = await asyncio.to_thread(self._start, job, proposal)
        except Exception as error:  # no process: the job failed to start
            log.exception("what-if job %s could not start", job.job_id)
            finished = job.ended(JobStatus.FAILED, f"the job's process did not start: {error}")
            await asyncio.to_thread(self._write_record, finished)
        else:
            while process.exitcode is None:
                await asyncio.sleep(POLL_S)
            self._processes.pop(job.job_id, None)
            exitcode = process.exitcode
            process.close()
            finished = await asyncio.to_thread(self._outcome, job, exitcode)
        self._jobs[job.job_id] = finished
        self._tasks.pop(job.job_id, None)
        log.info(
            "what-if job %s of %s (by %s) %s after %.1f s%s",
            job.job_id,
            job.brand_id,
            job.submitted_by,
            finished.status.value,
            time.monotonic() - began,
            "" if finished.error is None else f": {finished.error}",
        )
        await self._prune()

    def _start(self, job: Job, proposal: Proposal) -> BaseProcess:
        """The job's directory and running record, then its process (started)."""
        if self._closed:
            raise RuntimeError("the worker is stopping")
        (self.directory / job.job_id).mkdir(parents=True)
        self._write_record(job)
        process: BaseProcess = self._context.Process(  # type: ignore[attr-defined]
            target=run_job,
            args=(
                self._replay,
                self.settings,
                proposal,
                job.record(),
                self.limits.processes,
                self.directory / job.job_id,
                os.getpid(),
            ),
            name=f"what-if-{job.job_id}",
        )
        process.start()
        self._processes[job.job_id] = process  # here, so `close` finds it even from atexit
        return process

    def _outcome(self, job: Job, exitcode: int) -> Job:
        """The job as its process recorded it, with the report when done; failed if the
        process ended without recording it."""
        try:
            found = Job.of_record(_read(self.file(job, RECORD)))
            if found.status is JobStatus.DONE:
                return replace(found, report=_read(self.file(job, REPORT)))
            if found.status is JobStatus.FAILED:
                return found
        except (OSError, ValueError, KeyError, TypeError):
            log.exception("what-if job %s: its record could not be read", job.job_id)
        how = f"killed by signal {-exitcode}" if exitcode < 0 else f"exit code {exitcode}"
        failed = job.ended(JobStatus.FAILED, f"the job's process ended ({how}) without a report")
        self._write_record(failed)
        return failed

    def _write_record(self, job: Job) -> None:
        _write(self.file(job, RECORD), job.record())

    def _read_kept(self) -> list[Job]:
        """The jobs under the directory: finished ones as they are, running ones failed."""
        kept: list[Job] = []
        try:
            directories = sorted(self.directory.iterdir()) if self.directory.exists() else []
        except OSError:
            log.exception("what-if jobs under %s could not be listed", self.directory)
            return kept
        for directory in directories:
            try:
                job = Job.of_record(_read(directory / RECORD))
                if job.job_id != directory.name:
                    raise ValueError(f"the record is job {job.job_id}'s")
                if job.status is JobStatus.RUNNING:
                    job = job.ended(JobStatus.FAILED, "the worker stopped while the job ran")
                    self._write_record(job)
                elif job.status is JobStatus.DONE:
                    job = replace(job, report=_read(directory / REPORT))
            except (OSError, ValueError, KeyError, TypeError) as error:
                log.warning("what-if job %s left out: %s", directory.name, error)
                continue
            kept.append(job)
        return kept

    async def _prune(self) -> None:
        """Forget the finished jobs past `limits` (running ones are always kept), and remove
        their directories."""
        finished = sorted(
            (job for job in self._jobs.values() if job.finished_at is not None),
            key=lambda job: job.finished_at or job.submitted_at,
            reverse=True,
        )
        oldest = utc_now() - self.limits.keep_for
        old = [
            job
            for rank, job in enumerate(finished)
            if rank >= self.limits.keep or (job.finished_at or oldest) < oldest
        ]
        for job in old:
            del self._jobs[job.job_id]
        if old:
            await asyncio.to_thread(_remove, [self.directory / job.job_id for job in old])

    def close(self) -> None:
        """Kill every running job's process and the processes it started (their jobs end
        failed); no job starts after. Also run at the interpreter's exit."""
        self._closed = True
        atexit.unregister(self.close)
        for job_id, process in list(self._processes.items()):
            _kill(process)
            self._processes.pop(job_id, None)


def _read(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_bytes())
    if not isinstance(value, dict):
        raise ValueError(f"{path} does not hold an object")
    return value


def _write(path: Path, value: dict[str, Any]) -> None:
    """`value` as JSON at `path`, complete or not at all."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def _remove(directories: list[Path]) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)


def _kill(process: BaseProcess) -> None:
    """Kill a job's process and its group (the processes its replay started)."""
    pid = process.pid
    if pid is None or process.exitcode is not None:
        return
    try:
        if os.getpgid(pid) == pid:  # it leads its group
            os.killpg(pid, signal.SIGKILL)
        else:  # not yet: it has started nothing
            process.kill()
    except ProcessLookupError:
        return
    process.join(KILL_WAIT_S)


# -- in the job's process ----------------------------------------------------------------------


def run_job(
    replay_with: Replay,
    settings: Settings,
    proposal: Proposal,
    record: dict[str, Any],
    processes: int,
    directory: Path,
    parent: int,
) -> None:
    """A job's process: the replay (`replay_with`), the report's files written into
    `directory`, then the record (`record`, ended done, or failed with the error). Leads its
    own process group at a lower priority, and kills it when process `parent` is gone. Never
    raises: a failure is recorded (its traceback goes to stderr, the worker's log)."""
    grouped = _lead_group()
    os.nice(NICE)
    threading.Thread(target=_watch_parent, args=(parent, grouped), daemon=True).start()
    tune_collector()
    job = Job.of_record(record)
    try:
        report = replay_with(settings, proposal, processes)
        write_csv(report, directory)
        write_html(report, directory / HTML)
        write_json(report, directory / REPORT)
    except Exception as error:
        traceback.print_exc()
        job = job.ended(JobStatus.FAILED, f"{type(error).__name__}: {error}")
    else:
        job = job.ended(JobStatus.DONE)
    _write(directory / RECORD, job.record())


def _lead_group() -> bool:
    """Make this process the leader of a new process group; whether it could."""
    try:
        os.setpgid(0, 0)
    except OSError:
        return False
    return True


def _watch_parent(parent: int, grouped: bool) -> None:
    """Kill this process (and its group, when it leads one) once `parent` is gone."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    if grouped:
        os.killpg(0, signal.SIGKILL)
    os._exit(1)
