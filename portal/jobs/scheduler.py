"""The scheduler (APScheduler's BackgroundScheduler), in one of two places:

* inside the portal when SCHEDULER_ENABLED=1 (`make run`, a single process);
* as a process of its own, `flask --app wsgi jobs scheduler` (`run_forever`): the
  production layout (deploy/billing-scheduler.service), so that several gunicorn
  workers serve pages and none of them runs jobs.

Either way each job run takes the job's advisory lock (see portal/jobs/__init__.py), so
with several schedulers one runs the job and the others record a 'skipped' run.
"""
from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from ..extensions import db
from . import JOBS, run_job

log = logging.getLogger(__name__)


def run_in_app(app, name: str, trigger: str = "scheduler") -> None:
    """Run one job in its own app context (scheduler threads have none)."""
    with app.app_context():
        try:
            run_job(name, trigger=trigger)
        except Exception:  # noqa: BLE001 - a scheduler thread must never die
            log.exception("job %s could not be run", name)
        finally:
            db.session.remove()


def build_scheduler(app, names=None) -> BackgroundScheduler:
    """A scheduler with the registered jobs (or only `names`), not yet started."""
    from . import definitions  # noqa: F401  (registers the jobs)

    scheduler = BackgroundScheduler(
        timezone=app.config.get("BILLING_TIMEZONE") or "UTC",
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300})
    for job in JOBS.values():
        if names is None or job.name in names:
            scheduler.add_job(run_in_app, args=(app, job.name), id=job.name, name=job.description, **job.trigger)
    return scheduler


def cli_command_name(argv: list[str]) -> str | None:
    """The command of a `flask [--app X] COMMAND ...` command line."""
    args = iter(argv[1:])
    for arg in args:
        if arg in ("--app", "-A", "--env-file", "-e"):
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _in_cli_command() -> bool:
    """True inside `flask --app wsgi <command>` other than `flask run`: a cron `jobs run`
    with SCHEDULER_ENABLED=1 in its environment must not start a scheduler of its own.
    (Flask sets FLASK_RUN_FROM_CLI for every command of its CLI.)"""
    if os.environ.get("FLASK_RUN_FROM_CLI") != "true":
        return False
    return cli_command_name(sys.argv) not in (None, "run")


def start_scheduler(app) -> BackgroundScheduler | None:
    if _in_cli_command():
        log.info("scheduler not started in a CLI command")
        return None
    scheduler = build_scheduler(app)
    scheduler.start()
    app.extensions["scheduler"] = scheduler
    atexit.register(lambda: scheduler.running and scheduler.shutdown(wait=False))
    log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
    return scheduler


def run_forever(app, stop: threading.Event | None = None) -> None:
    """Run every job on its schedule in this process until SIGTERM or SIGINT (or
    `stop`), then wait for running jobs to finish. The systemd unit's ExecStart."""
    stop = stop or threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler = build_scheduler(app)
    scheduler.start()
    names = ", ".join(sorted(job.id for job in scheduler.get_jobs()))
    log.warning("scheduler started with %d jobs: %s", len(scheduler.get_jobs()), names)
    try:
        stop.wait()
    finally:
        log.warning("scheduler stopping: waiting for running jobs")
        scheduler.shutdown(wait=True)
        log.warning("scheduler stopped")
