"""The jobs of the platform and their default schedules (times in BILLING_TIMEZONE)."""
from __future__ import annotations

from sqlalchemy import delete, func, text

from ..extensions import db
from ..invoices.services import Period, billing_tz, local_today, run_period
from ..mail.delivery import deliver_due
from ..mail.messages import queue_daily_balances, queue_low_balance_alerts
from ..models import JobRun, MailMessage
from . import JobError, job

JOB_RUNS_KEPT_DAYS = 90
SENT_MAIL_KEPT_DAYS = 180
IDEMPOTENCY_KEYS_KEPT_DAYS = 30     # docs/api.md: a retry within 30 days posts once


@job("invoice_run", "Issue last month's invoices (postpaid) and statements (prepaid), and queue their e-mails",
     "days 1-5 of each month at 02:00", trigger="cron", day="1-5", hour=2, minute=0)
def invoice_run() -> str:
    # Runs on five days so a portal that was down on the 1st still invoices; documents
    # already issued for the period are skipped, so the later runs cost little.
    period = Period.previous_month(local_today())
    summary = run_period(period)
    if summary.errors:
        raise JobError(f"{period.label()}: {summary}")
    return f"{period.label()}: {summary}"


@job("invoice_reminders", "Queue a reminder e-mail for each overdue invoice, again every reminder interval",
     "daily at 07:00", trigger="cron", hour=7, minute=0)
def invoice_reminders() -> str:
    from ..invoices.payments import queue_reminders

    return str(queue_reminders(local_today()))


@job("low_balance_alerts", "Queue an e-mail for each new low-balance crossing",
     "every 5 minutes", trigger="interval", minutes=5)
def low_balance_alerts() -> str:
    return str(queue_low_balance_alerts())


@job("daily_balance", "Queue the daily balance e-mail of customers who asked for it",
     "daily at 06:00", trigger="cron", hour=6, minute=0)
def daily_balance() -> str:
    return f"{queue_daily_balances(local_today(), billing_tz())} e-mails queued"


@job("webhooks", "Queue cdr.unrated events; send due webhooks to the operator's endpoint, retrying with backoff",
     "every minute", trigger="interval", minutes=1)
def webhooks() -> str:
    from ..webhooks import services as webhook_services

    queued = webhook_services.queue_unrated_cdrs()
    db.session.commit()
    return f"{queued} cdr.unrated queued; {webhook_services.deliver_due()}"


@job("mail_delivery", "Send queued e-mails; retry failed ones with backoff",
     "every minute", trigger="interval", minutes=1)
def mail_delivery() -> str:
    return str(deliver_due())


def _call_private(function: str, what: str, args: str = "") -> str:
    signature = f"billing_private.{function}({'integer' if args else ''})"
    if db.session.scalar(text("SELECT to_regprocedure(:sig)"), {"sig": signature}) is None:
        raise JobError(f"{signature} does not exist in this database: deploy a build that has it and run "
                       "`flask --app wsgi db upgrade`")
    count = db.session.scalar(text(f"SELECT billing_private.{function}({args})"))
    return f"{count} {what}"


@job("sweep_stale_holds", "Release holds of calls whose CDR never arrived",
     "every minute", trigger="interval", minutes=1)
def sweep_stale_holds() -> str:
    return _call_private("sweep_stale_holds", "holds released")


@job("fold_gateway_stats", "Add the gateway samples of new CDRs to the ASR/ACD of quality and reliability routing",
     "every minute", trigger="interval", minutes=1)
def fold_gateway_stats() -> str:
    return _call_private("fold_gateway_stats", "gateways updated")


@job("refresh_gateway_stats", "Recompute per-gateway ASR/ACD for quality and reliability routing",
     "every 10 minutes", trigger="interval", minutes=10)
def refresh_gateway_stats() -> str:
    return _call_private("refresh_gateway_stats", "gateways refreshed")


@job("cdr_partitions", "Create the monthly CDR partitions of the next 3 months",
     "daily at 03:15", trigger="cron", hour=3, minute=15)
def cdr_partitions() -> str:
    return _call_private("ensure_cdr_partitions", "partitions created", "3")


@job("cdr_archive", "Archive the months of rated CDRs older than the retention setting (gzip CSV + manifest, "
     "verified) and drop their partitions; months not closed for billing are listed",
     "monthly, day 6 at 03:45", trigger="cron", day=6, hour=3, minute=45)
def cdr_archive() -> str:
    # Day 6: after the invoice run of days 1-5, so last month's invoices are out (last
    # month is never archived anyway; older months need their invoices issued).
    from ..models import Settings
    from ..retention import archive_dir, billing_timezone, services as retention

    keep = Settings.get().cdr_retention_months
    if keep == 0:
        return "cdr_retention_months is 0: every month is kept"
    outcome = retention.run_retention(lambda: db.session.connection().connection.dbapi_connection, archive_dir(),
                                      keep_months=keep, actor="job:cdr_archive", billing_tz=billing_timezone(),
                                      commit=db.session.commit)
    if outcome.refused or outcome.failed:
        raise JobError(outcome.summary())
    return outcome.summary()


@job("housekeeping", f"Delete job runs older than {JOB_RUNS_KEPT_DAYS} days, sent e-mails and webhooks older than "
     f"{SENT_MAIL_KEPT_DAYS} days, API idempotency keys older than {IDEMPOTENCY_KEYS_KEPT_DAYS} days and past "
     "API rate-limit windows", "daily at 04:30", trigger="cron", hour=4, minute=30)
def housekeeping() -> str:
    runs = db.session.execute(delete(JobRun).where(
        JobRun.status != "running", JobRun.started_at < func.now() - text(f"interval '{JOB_RUNS_KEPT_DAYS} days'")))
    mails = db.session.execute(delete(MailMessage).where(
        MailMessage.status == "sent", MailMessage.sent_at < func.now() - text(f"interval '{SENT_MAIL_KEPT_DAYS} days'")))
    keys = db.session.execute(text(f"DELETE FROM billing.api_idempotency_keys "
                                   f"WHERE created_at < now() - interval '{IDEMPOTENCY_KEYS_KEPT_DAYS} days'"))
    windows = db.session.execute(text("DELETE FROM billing.api_request_counts WHERE window_start < now() - interval '1 hour'"))
    return (f"{runs.rowcount} job runs, {mails.rowcount} sent messages, {keys.rowcount} idempotency keys and "
            f"{windows.rowcount} rate-limit windows deleted")
