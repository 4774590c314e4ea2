"""Re-rating a period from the back office: preview what it would move, then apply it,
both as background jobs whose phase the page polls (billing.rerate_jobs, 0112).

The work is the stored procedures' (sql/procedures/21_rerate.sql): a preview runs
billing_private.rerate_preview and rolls back (only temp tables were written); applying
runs rerate_prepare_period then rerate_selection_booked -- exactly what
billing_private.rerate (and `flask --app wsgi billing rerate`) does -- and commits.
Progress is reported between those steps through a second, autocommitting connection,
so the page sees it while the job's own transaction is open.

Works on psycopg2 connections, like the rate import (portal/rateimport), so the same
code runs inline (tests) and in a thread with its own connections (the portal).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from .. import background
from ..localtime import day_range

MAX_DAYS = 366
SELECTION = """
    SELECT count(*) FROM billing.fs_cdr f
     WHERE ((f.start_stamp >= %(from)s AND f.start_stamp < %(to)s)
            OR (f.start_stamp IS NULL AND f.received_at >= %(from)s AND f.received_at < %(to)s))
       AND (%(customer)s::bigint IS NULL OR f.billing_customer_id = %(customer)s)
       AND (%(provider)s::bigint IS NULL OR f.billing_provider_id = %(provider)s)"""


class RerateError(ValueError):
    """A re-rate that cannot be started as asked; the message says why."""


def period(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """Days of the operator's time zone, `date_to` included -> [start, end)."""
    if date_to < date_from:
        raise RerateError("the end of the period is before its start")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise RerateError(f"a re-rate covers at most {MAX_DAYS} days")
    return day_range(date_from, date_to)


def create(conn, date_from: date, date_to: date, customer_id: int | None, provider_id: int | None,
           actor: str) -> int:
    """A new job (status 'previewing'); returns its id. The caller commits."""
    start, end = period(date_from, date_to)
    from ..retention.services import RetentionError, refuse_archived

    try:
        refuse_archived(conn, start, end)
    except RetentionError as exc:
        raise RerateError(str(exc)) from exc
    with conn.cursor() as cur:
        cur.execute("""INSERT INTO billing.rerate_jobs (period_from, period_to, customer_id, provider_id, status,
                                                        phase, step, steps, created_by)
                       VALUES (%s, %s, %s, %s, 'previewing', 'queued', 0, 2, %s) RETURNING id""",
                    (start, end, customer_id, provider_id, actor))
        return cur.fetchone()[0]


@dataclass
class Job:
    id: int
    period_from: datetime
    period_to: datetime
    customer_id: int | None
    provider_id: int | None
    status: str


def _job(cur, job_id: int) -> Job:
    cur.execute("SELECT id, period_from, period_to, customer_id, provider_id, status FROM billing.rerate_jobs "
                "WHERE id = %s", (job_id,))
    row = cur.fetchone()
    if row is None:
        raise RerateError(f"no re-rate job {job_id}")
    return Job(*row)


def _update(status_conn, job_id: int, **values) -> None:
    sets = ", ".join(f"{k} = %({k})s" for k in values)
    values = {k: (json.dumps(v, default=str) if isinstance(v, (dict, list)) else v) for k, v in values.items()}
    with status_conn.cursor() as cur:
        cur.execute(f"UPDATE billing.rerate_jobs SET {sets} WHERE id = %(job_id)s", {**values, "job_id": job_id})


def _args(job: Job) -> dict:
    return {"from": job.period_from, "to": job.period_to, "customer": job.customer_id, "provider": job.provider_id}


def _money(value) -> str:
    return str(Decimal(value or 0))


def preview(conn, job_id: int, status_conn=None) -> list[dict]:
    """Rate the selection with today's data without booking; store per customer what it
    would move. `conn`'s work is rolled back here (a savepoint when it is shared)."""
    status_conn = status_conn or conn
    shared = status_conn is conn
    with conn.cursor() as cur:
        job = _job(cur, job_id)
        _update(status_conn, job_id, status="previewing", phase="counting calls", step=0, steps=2,
                started_at=datetime.now(timezone.utc), error=None)
        cur.execute(SELECTION, _args(job))
        calls = cur.fetchone()[0]
        _update(status_conn, job_id, phase=f"rating {calls:,} calls with today's rates", step=1, calls=calls)
        if shared:
            cur.execute("SAVEPOINT rerate_preview")
        cur.execute("""SELECT p.customer_id, cu.name, cu.currency, p.calls, p.changed, p.sell_before, p.sell_after,
                              p.cost_before, p.cost_after
                         FROM billing_private.rerate_preview(%(from)s, %(to)s, %(customer)s, %(provider)s) p
                         LEFT JOIN billing.customers cu ON cu.id = p.customer_id
                        ORDER BY cu.name NULLS LAST""", _args(job))
        rows = [{"customer_id": r[0], "customer": r[1], "currency": r[2], "calls": r[3], "changed": r[4],
                 "sell_before": _money(r[5]), "sell_after": _money(r[6]),
                 "cost_before": _money(r[7]), "cost_after": _money(r[8])} for r in cur.fetchall()]
        if shared:
            cur.execute("ROLLBACK TO SAVEPOINT rerate_preview")
    if not shared:
        conn.rollback()
    _update(status_conn, job_id, status="previewed", phase="previewed", step=2, preview=rows,
            previewed_at=datetime.now(timezone.utc))
    return rows


def apply(conn, job_id: int, status_conn=None) -> dict:
    """Re-rate the selection and book the differences (the caller commits `conn`)."""
    status_conn = status_conn or conn
    with conn.cursor() as cur:
        job = _job(cur, job_id)
        if job.status not in ("previewed", "running"):
            raise RerateError("preview the re-rate first; only a previewed job can be applied")
        _update(status_conn, job_id, status="running", phase="counting calls", step=0, steps=3,
                started_at=datetime.now(timezone.utc), error=None)
        cur.execute(SELECTION, _args(job))
        calls = cur.fetchone()[0]
        _update(status_conn, job_id, phase=f"rating {calls:,} calls with today's rates", step=1, calls=calls)
        cur.execute("SELECT billing_private.rerate_prepare_period(%(from)s, %(to)s, %(customer)s, %(provider)s)",
                    _args(job))
        _update(status_conn, job_id, phase="booking the differences", step=2)
        cur.execute("SELECT rerated, adjusted, still_unrated FROM billing_private.rerate_selection_booked()")
        rerated, adjusted, still_unrated = cur.fetchone()
        cur.execute("""SELECT d.customer_id, cu.name, cu.currency, d.amount, d.calls
                         FROM pg_temp.billing_rerate_delta d JOIN billing.customers cu ON cu.id = d.customer_id
                        ORDER BY cu.name""")
        entries = [{"customer_id": r[0], "customer": r[1], "currency": r[2], "amount": _money(r[3]), "calls": r[4]}
                   for r in cur.fetchall()]
    result = {"rerated": rerated, "adjusted": adjusted, "still_unrated": still_unrated, "ledger": entries}
    with conn.cursor() as cur:   # the final state goes with the booking: both commit or neither
        cur.execute("""UPDATE billing.rerate_jobs SET status = 'done', phase = 'done', step = 3, result = %s,
                              finished_at = now() WHERE id = %s""", (json.dumps(result, default=str), job_id))
    return result


def fail(status_conn, job_id: int, error: Exception) -> None:
    _update(status_conn, job_id, status="failed", phase="failed", error=str(error).splitlines()[0][:500],
            finished_at=datetime.now(timezone.utc))


def start_background(dsn: str, job_id: int, what: str) -> threading.Thread:
    """Run `what` ('preview' | 'apply') in a thread with its own two connections."""

    def work(conn, status_conn) -> bool:
        if what == "preview":
            preview(conn, job_id, status_conn)
            return False            # a preview changes nothing
        apply(conn, job_id, status_conn)
        return True

    return background.start(dsn, f"rerate-{what}-{job_id}", work,
                            lambda status_conn, exc: fail(status_conn, job_id, exc))


def preview_rows(rows: list[dict]) -> list[dict]:
    """The stored preview (decimal strings) as Decimals, with the differences."""
    out = []
    for r in rows:
        row = dict(r)
        for key in ("sell_before", "sell_after", "cost_before", "cost_after"):
            row[key] = Decimal(r[key])
        row["sell_diff"] = row["sell_after"] - row["sell_before"]
        row["cost_diff"] = row["cost_after"] - row["cost_before"]
        out.append(row)
    return out


def ledger_rows(result: dict) -> list[dict]:
    return [dict(e, amount=Decimal(e["amount"])) for e in (result or {}).get("ledger", [])]


def totals_by_currency(rows: list[dict]) -> list[dict]:
    """Preview sums per currency (money of different currencies is never added)."""
    out: dict[str, dict] = {}
    for r in rows:
        t = out.setdefault(r.get("currency") or "", {"currency": r.get("currency") or "", "calls": 0, "changed": 0,
                                                      "sell": Decimal(0), "cost": Decimal(0)})
        t["calls"] += r["calls"]
        t["changed"] += r["changed"]
        t["sell"] += Decimal(r["sell_after"]) - Decimal(r["sell_before"])
        t["cost"] += Decimal(r["cost_after"]) - Decimal(r["cost_before"])
    return list(out.values())
