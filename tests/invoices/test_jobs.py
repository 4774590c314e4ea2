"""Scheduled jobs: runs recorded, advisory locks across processes, CLI for cron."""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import select, text

from portal import create_app
from portal.config import TestingConfig
from portal.extensions import db
from portal.jobs import JOBS, LOCK_CLASS, Job, run_job
from portal.jobs.scheduler import build_scheduler, run_in_app
from portal.models import JobRun


@pytest.fixture()
def test_job():
    """A job that takes a while, registered for the test only."""
    started = threading.Event()

    def slow():
        started.set()
        time.sleep(1.0)
        return "slept"

    JOBS["test_slow"] = Job("test_slow", "sleeps", "never", slow)
    yield started
    del JOBS["test_slow"]


def test_a_job_run_is_recorded(db_session):
    run = run_job("cdr_partitions", trigger="test")
    assert run.status == "ok" and run.result.endswith("partitions created")
    assert run.finished_at >= run.started_at and run.error is None and ":" in run.host


def test_a_failing_job_is_recorded_with_its_error(db_session, pg):
    with pg.cursor() as cur:
        cur.execute("DROP FUNCTION IF EXISTS billing_private.sweep_stale_holds()")
    db_session.commit()
    run = run_job("sweep_stale_holds", trigger="test")
    assert run.status == "error"
    assert "billing_private.sweep_stale_holds() does not exist" in run.error and "db upgrade" in run.error
    with pg.cursor() as cur:
        cur.execute("CREATE FUNCTION billing_private.sweep_stale_holds() RETURNS integer LANGUAGE sql AS 'SELECT 7'")
    db_session.commit()
    run = run_job("sweep_stale_holds", trigger="test")
    assert (run.status, run.result) == ("ok", "7 holds released")


def test_an_unexpected_exception_keeps_its_traceback(db_session):
    def broken():
        raise ZeroDivisionError("boom")

    JOBS["test_broken"] = Job("test_broken", "breaks", "never", broken)
    try:
        run = run_job("test_broken", trigger="test")
    finally:
        del JOBS["test_broken"]
    assert run.status == "error" and "ZeroDivisionError: boom" in run.error and "Traceback" in run.error


def test_every_job_has_a_schedule_apscheduler_accepts(app):
    scheduler = build_scheduler(app)
    names = {j.id for j in scheduler.get_jobs()}
    assert {"invoice_run", "low_balance_alerts", "daily_balance", "mail_delivery", "sweep_stale_holds",
            "refresh_gateway_stats", "cdr_partitions", "housekeeping"} <= names


@pytest.fixture()
def fresh_app(fresh_db):
    app = create_app(TestingConfig, DATABASE_URL=fresh_db)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _runs(app, job):
    with app.app_context():
        runs = db.session.execute(select(JobRun.status, JobRun.trigger, JobRun.result)
                                  .where(JobRun.job == job).order_by(JobRun.id)).all()
        db.session.remove()
    return runs


def test_a_job_locked_by_another_process_is_skipped_and_recorded(fresh_app, fresh_db):
    other = psycopg2.connect(fresh_db)  # "another portal process" holding the job's lock
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, JOBS["cdr_partitions"].lock_key))
            assert cur.fetchone()[0]
        with fresh_app.app_context():
            assert run_job("cdr_partitions", trigger="test").status == "skipped"
            db.session.remove()
        with other.cursor() as cur:  # the other process finishes
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, JOBS["cdr_partitions"].lock_key))
    finally:
        other.close()
    with fresh_app.app_context():
        assert run_job("cdr_partitions", trigger="test").status == "ok"
        db.session.remove()
    assert [r[0] for r in _runs(fresh_app, "cdr_partitions")] == ["skipped", "ok"]


def test_two_schedulers_never_run_a_job_twice(fresh_db, test_job):
    """Two portal processes (two apps, two schedulers, two connections) fire the same job at once."""
    apps = [create_app(TestingConfig, DATABASE_URL=fresh_db) for _ in range(2)]
    at = datetime.now(timezone.utc) + timedelta(seconds=0.5)
    schedulers = []
    for app in apps:
        scheduler = BackgroundScheduler(timezone="UTC")
        scheduler.add_job(run_in_app, "date", run_date=at, args=(app, "test_slow"))
        scheduler.start()
        schedulers.append(scheduler)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        runs = _runs(apps[0], "test_slow")
        if len(runs) == 2 and all(status != "running" for status, *_ in runs):
            break
        time.sleep(0.1)
    for scheduler in schedulers:
        scheduler.shutdown(wait=True)
    runs = _runs(apps[0], "test_slow")
    assert sorted(r[0] for r in runs) == ["ok", "skipped"]
    assert {r[1] for r in runs} == {"scheduler"}
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_the_lock_is_released_after_a_run(fresh_app, fresh_db):
    with fresh_app.app_context():
        run_job("cdr_partitions", trigger="test")
        db.session.remove()
    conn = psycopg2.connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s::oid",
                        (LOCK_CLASS,))
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()


def test_cli_jobs_run_and_list(cli, db_session):
    result = cli.invoke(args=["jobs", "run", "cdr_partitions"])
    assert result.exit_code == 0, result.output
    assert "cdr_partitions: ok:" in result.output
    listing = cli.invoke(args=["jobs", "list"])
    assert listing.exit_code == 0
    assert "invoice_run" in listing.output and "mail_delivery" in listing.output
    assert "cdr_partitions" in listing.output and " ok at " in listing.output
    unknown = cli.invoke(args=["jobs", "run", "no_such_job"])
    assert unknown.exit_code != 0 and "unknown job" in unknown.output
    assert db_session.scalar(select(JobRun.trigger).where(JobRun.job == "cdr_partitions")) == "cli"


def test_cli_reports_a_failed_job_with_exit_status_1(cli, db_session, pg):
    with pg.cursor() as cur:
        cur.execute("DROP FUNCTION IF EXISTS billing_private.refresh_gateway_stats()")
    db_session.commit()
    result = cli.invoke(args=["jobs", "run", "refresh_gateway_stats"])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_invoice_and_mail_jobs_run_end_to_end(db_session, catalogue, smtp_server):
    from decimal import Decimal

    from portal.invoices.services import Period, local_today
    from tests import factories
    from tests.invoices.conftest import cdr

    c = factories.customer(name="endtoend", billing_type="postpaid", credit_limit=Decimal("10"),
                           email="ap@endtoend.example")
    period = Period.previous_month(local_today())
    cdr(c, datetime.combine(period.start, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=5), "1.500000")
    run = run_job("invoice_run", trigger="test")
    assert run.status == "ok" and "1 issued" in run.result
    assert run_job("mail_delivery", trigger="test").result.startswith("1 sent")
    assert len(smtp_server.messages) == 1
    assert "1 already issued" in run_job("invoice_run", trigger="test").result


def test_scheduler_starts_with_the_portal_but_not_in_cli_commands(fresh_db, monkeypatch):
    import sys

    from portal.jobs.scheduler import cli_command_name

    assert cli_command_name(["flask", "--app", "wsgi", "jobs", "run", "x"]) == "jobs"
    assert cli_command_name(["flask", "-A", "wsgi", "--debug", "run", "-p", "80"]) == "run"
    for env, argv, started in ((None, ["gunicorn", "wsgi:app"], True),
                               ("true", ["flask", "--app", "wsgi", "run"], True),
                               ("true", ["flask", "--app", "wsgi", "jobs", "run", "mail_delivery"], False)):
        if env:
            monkeypatch.setenv("FLASK_RUN_FROM_CLI", env)
        else:
            monkeypatch.delenv("FLASK_RUN_FROM_CLI", raising=False)
        monkeypatch.setattr(sys, "argv", argv)
        app = create_app(TestingConfig, DATABASE_URL=fresh_db, SCHEDULER_ENABLED=True)
        scheduler = app.extensions.get("scheduler")
        try:
            assert (scheduler is not None) == started, argv
            if started:
                assert scheduler.running and scheduler.get_job("mail_delivery") is not None
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
