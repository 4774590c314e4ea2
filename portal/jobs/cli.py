"""`flask --app wsgi jobs list|run NAME|scheduler`: the jobs for cron users, and the
scheduler as a process of its own (docs/jobs.md, docs/deployment.md)."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from . import JOBS, JobError, last_runs, run_job

jobs_cli = AppGroup("jobs", help="Scheduled jobs: list them, or run one now (for cron).")


@jobs_cli.command("list")
def list_jobs():
    """Jobs, their schedules and their last runs."""
    from . import definitions  # noqa: F401

    runs = last_runs()
    for job in JOBS.values():
        run = runs.get(job.name)
        last = f"{run.status} at {run.started_at:%Y-%m-%d %H:%M:%S}" if run else "never run"
        click.echo(f"{job.name:24} {job.schedule:32} {last}")


@jobs_cli.command("run")
@click.argument("name")
def run(name: str):
    """Run job NAME now (skipped if another process is running it). Exit status 1 on error."""
    try:
        job_run = run_job(name, trigger="cli")
    except JobError as exc:
        raise click.ClickException(str(exc)) from exc
    if job_run.status == "error":
        raise click.ClickException(f"{name} failed: {job_run.error}")
    click.echo(f"{name}: {job_run.status}: {job_run.result}")


@jobs_cli.command("scheduler")
def scheduler():
    """Run every job on its schedule in the foreground until stopped (SIGTERM): the
    scheduler process of a production deployment (deploy/billing-scheduler.service)."""
    import logging

    from flask import current_app

    from .scheduler import run_forever

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_forever(current_app._get_current_object())


def register_cli(app):
    app.cli.add_command(jobs_cli)
