"""`flask --app wsgi billing ...`: top-ups, re-rating, spool import, maintenance."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from flask.cli import AppGroup

from ..extensions import db
from ..formatting import money
from . import services, spool

billing_cli = AppGroup("billing", help="CDR billing: top-ups, re-rating, spool import, stale holds.")


def _when(value: str) -> datetime:
    """A date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM[:SS])."""
    try:
        if len(value) == 10:
            return datetime.strptime(value, "%Y-%m-%d").date()
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM)") from None


@billing_cli.command("topup")
@click.argument("customer")
@click.argument("amount")
@click.option("--note", default=None, help="Shown in the customer's ledger.")
def topup_command(customer: str, amount: str, note: str | None):
    """Credit CUSTOMER (by name) with AMOUNT (a decimal, e.g. 25.00)."""
    try:
        entry = services.topup(customer, amount, note=note, actor="cli")
    except services.BillingError as exc:  # raised before anything is written
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    c = services.customer_by_name(customer)
    click.echo(f"topped up {c.name} by {money(entry.amount, c.currency)}: balance {money(c.balance, c.currency)}")


@billing_cli.command("rerate")
@click.option("--from", "start", required=True, help="First day (YYYY-MM-DD) or date-time.")
@click.option("--to", "end", required=True, help="Last day, included (YYYY-MM-DD), or an exclusive date-time.")
@click.option("--customer", default=None, help="Only this customer's calls (by name).")
@click.option("--provider", default=None, help="Only the calls routed through this provider (by name).")
def rerate_command(start: str, end: str, customer: str | None, provider: str | None):
    """Re-rate the raw CDRs of a period and correct the ledger with adjustment entries."""
    try:
        result = services.rerate(_when(start), _when(end), customer, provider)
    except services.BillingError as exc:  # raised before anything is written
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(result.summary())


@billing_cli.command("import-spool")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "sql"]), default=None,
              help="Default: from the file name (.csv or .sql).")
@click.option("--columns", default=None,
              help="CSV column order, comma separated (default: cdr_pg_csv.conf.xml's <schema>, else CONTRACT 2's).")
@click.option("--config", "config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Read the CSV column order from this cdr_pg_csv.conf.xml.")
@click.option("--from-start", is_flag=True,
              help="Read the whole file again instead of resuming after the lines already billed.")
def import_spool_command(path: Path, fmt: str | None, columns: str | None, config: Path | None, from_start: bool):
    """Load a mod_cdr_pg_csv spool file (cdr-spool.csv or .sql) where FreeSWITCH writes it.

    Each run resumes after the lines an earlier run billed (FILE.imported beside it), so it
    can run every minute from cron; lines already billed are never billed twice anyway."""
    try:
        cols = None
        if columns:
            cols = spool.check_columns(columns.split(","))
        elif config:
            cols = spool.columns_from_config(config)
        result = spool.import_spool(path, fmt=fmt, columns=cols, from_start=from_start)
    except spool.SpoolError as exc:
        raise click.ClickException(str(exc)) from exc
    for line_no, message in result.errors:
        click.echo(f"{path.name}:{line_no}: {message}", err=True)
    click.echo(result.summary())
    if result.errors:
        raise SystemExit(1)


@billing_cli.command("sweep-holds")
def sweep_holds_command():
    """Release holds of calls whose CDR never came; create CDR partitions ahead of time."""
    result = services.sweep_holds()
    db.session.commit()
    click.echo(result.summary())


@billing_cli.command("refresh-gateway-stats")
def refresh_gateway_stats_command():
    """Recompute gateways' ASR/ACD from the last day of CDRs."""
    rows = services.refresh_gateway_stats()
    db.session.commit()
    click.echo(f"{rows} gateway(s) refreshed")


def _raw_connection():
    return db.session.connection().connection.dbapi_connection


def _retention():
    from .. import retention
    from ..retention import services as retention_services

    return retention, retention_services


@billing_cli.command("cdr-partitions")
@click.option("--exact", is_flag=True, help="Count the rows of each live partition (reads them all).")
def cdr_partitions_command(exact: bool):
    """List the months of rated CDRs: live partitions, archived files, restored months."""
    retention, rs = _retention()
    directory = retention.archive_dir()
    click.echo(f"archive directory: {directory}")
    click.echo(f"{'month':8} {'state':9} {'rows':>12} {'size':>10}  archive")
    for p in rs.partitions(_raw_connection(), directory):
        rows = p.rows
        if exact and p.state != "archived" and not p.rows_exact:
            from psycopg2 import sql

            with _raw_connection().cursor() as cur:
                cur.execute(sql.SQL("SELECT count(*) FROM billing.{}").format(sql.Identifier(p.name)))
                rows = cur.fetchone()[0]
        estimated = p.state != "archived" and not (exact or p.rows_exact)
        shown_rows = "?" if rows is None else ("~" if estimated else "") + f"{rows:,}"
        size = rs.size_text(p.bytes) if p.state != "archived" else "-"
        where = ""
        if p.archive:
            where = f"{p.archive['file_name']} ({rs.size_text(p.archive['file_bytes'])})"
            if p.file_present is False:
                where += " MISSING"
        click.echo(f"{p.label:8} {p.state:9} {shown_rows:>12} {size:>10}  {where}")


@billing_cli.command("cdr-archive")
@click.option("--month", default=None, help="Archive this month (YYYY-MM) whatever the retention setting.")
@click.option("--dry-run", is_flag=True, help="Check and count, write no file, drop nothing.")
@click.option("--accept-review", is_flag=True,
              help="Archive even when calls of the month are flagged to review (you have looked at them).")
def cdr_archive_command(month: str | None, dry_run: bool, accept_review: bool):
    """Archive months of rated CDRs older than settings.cdr_retention_months (or --month)
    to gzip CSV files with a manifest, verify them, then drop their partitions."""
    from ..models import Settings

    retention, rs = _retention()
    directory = retention.archive_dir()
    if month:
        try:
            result = rs.archive(_raw_connection(), rs.parse_month(month), directory, actor="cli",
                                billing_tz=retention.billing_timezone(), dry_run=dry_run,
                                accept_review=accept_review)
        except rs.RetentionError as exc:
            raise click.ClickException(str(exc)) from exc
        if not dry_run:
            db.session.commit()
        click.echo(result.summary())
        return
    keep = Settings.get().cdr_retention_months
    if keep == 0:
        click.echo("settings.cdr_retention_months is 0: every month is kept, nothing to archive")
        return
    outcome = rs.run_retention(_raw_connection, directory, keep_months=keep, actor="cli",
                               billing_tz=retention.billing_timezone(), dry_run=dry_run,
                               commit=db.session.commit)
    for result in outcome.archived:
        click.echo(result.summary())
    for refused in outcome.refused:
        click.echo(str(refused), err=True)
    for failure in outcome.failed:
        click.echo(failure, err=True)
    if not (outcome.archived or outcome.refused or outcome.failed):
        click.echo(f"no month older than {keep} months is in the database")
    if outcome.refused or outcome.failed:
        raise SystemExit(1)


@billing_cli.command("cdr-restore")
@click.argument("month")
def cdr_restore_command(month: str):
    """Restore an archived MONTH (YYYY-MM): check the file against its manifest and
    checksum, load it and attach the partition again, all or nothing."""
    retention, rs = _retention()
    try:
        result = rs.restore(_raw_connection(), rs.parse_month(month), retention.archive_dir(), actor="cli")
    except rs.RetentionError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(result.summary())


def register_cli(app):
    app.cli.add_command(billing_cli)
