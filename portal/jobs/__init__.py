"""Scheduled jobs: what they are (`JOBS`), and how one runs (`run_job`).

Every run, whoever starts it (the in-process scheduler, `flask --app wsgi jobs run`,
the admin page), goes through `run_job`: it takes a PostgreSQL advisory lock for the
job on a dedicated connection, so several portal processes or a cron entry never run
one job twice at once, and records the run in billing.job_runs (a run that finds the
lock taken is recorded as 'skipped'). The jobs themselves are in `definitions`.
"""
from __future__ import annotations

import os
import socket
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import func, select, text

from ..extensions import db
from ..models import JobRun

LOCK_CLASS = 0x6A6F6273  # "jobs": first key of every job's advisory lock


class JobError(RuntimeError):
    """A job that could not do its work; the message is shown to admins."""


@dataclass(frozen=True)
class Job:
    name: str
    description: str
    schedule: str                      # for people
    func: Callable[[], str]            # returns a one-line result
    trigger: dict = field(default_factory=dict)  # APScheduler add_job() trigger arguments

    @property
    def lock_key(self) -> int:
        return zlib.crc32(self.name.encode()) - 2 ** 31  # fits PostgreSQL's int4


JOBS: dict[str, Job] = {}


def job(name: str, description: str, schedule: str, **trigger):
    """Register a job function under `name`."""
    def register(fn):
        JOBS[name] = Job(name, description, schedule, fn, trigger)
        return fn
    return register


def host_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_job(name: str, trigger: str = "cli") -> JobRun:
    """Run `name` once unless another process is running it; returns the recorded run.

    Needs an app context. Commits: the run row is written before the work starts, so
    a run that never finishes stays visible as 'running'."""
    from . import definitions  # noqa: F401  (registers the jobs)

    if name not in JOBS:
        raise JobError(f"unknown job {name!r}; known: {', '.join(sorted(JOBS))}")
    job_ = JOBS[name]
    lock_conn = db.engine.connect()
    locked = False
    try:
        locked = lock_conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"),
                                   {"c": LOCK_CLASS, "k": job_.lock_key}).scalar_one()
        lock_conn.commit()
        if not locked:
            run = JobRun(job=name, trigger=trigger, host=host_id(), status="skipped",
                         result="skipped: another process is running this job", finished_at=func.clock_timestamp())
            db.session.add(run)
            db.session.commit()
            return run
        run = JobRun(job=name, trigger=trigger, host=host_id(), status="running")
        db.session.add(run)
        db.session.commit()
        run_id = run.id
        try:
            result = job_.func()
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the run
            db.session.rollback()
            run = db.session.get(JobRun, run_id)
            run.status = "error"
            run.error = f"{type(exc).__name__}: {exc}" if isinstance(exc, JobError) else \
                "".join(traceback.format_exception(exc))[-4000:]
        else:
            run = db.session.get(JobRun, run_id)
            run.status, run.result = "ok", (result or "")[:4000]
        run.finished_at = func.clock_timestamp()
        db.session.commit()
        return run
    finally:
        if locked:
            lock_conn.execute(text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": job_.lock_key})
            lock_conn.commit()
        lock_conn.close()


def last_runs() -> dict[str, JobRun]:
    """The latest run of each job."""
    latest = (select(JobRun.job, func.max(JobRun.id).label("id")).group_by(JobRun.job).subquery())
    runs = db.session.scalars(select(JobRun).join(latest, latest.c.id == JobRun.id)).all()
    return {r.job: r for r in runs}
