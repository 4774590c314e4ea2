"""Reports over billing.cdr: calls, minutes, revenue, cost, margin, ASR, ACD grouped
by day, customer, provider or destination, for a date range (UTC days, inclusive).

Each report is one aggregate over the range (ix_cdr_start_stamp_id picks the monthly
partitions); names are joined after aggregation. Destinations: calls are grouped by
their rated sell prefix first (a few thousand groups at most), then each prefix is
named after its longest matching catalogue destination, then grouped by that name —
the longest-prefix lookup runs once per distinct prefix, not once per call.

Derived figures use the rounding of portal.cdrs.services.metrics (minutes 2 places,
ASR % 2 places, ACD seconds 1 place, half-up); money sums are exact.

Money is in the customer's currency (a call's cost is converted into it when rated), so
amounts of customers paying in different currencies are never added: with more than
one currency in use a report covers the customers of one currency (`currency`).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

from ..cdrs.services import metrics

DIMENSIONS = {"day": "Day", "customer": "Customer", "provider": "Provider", "destination": "Destination"}
MAX_DAYS = 366


class ReportError(ValueError):
    """A report that cannot be run as asked; the message says why."""


@dataclass
class Report:
    dimension: str
    date_from: date
    date_to: date
    rows: list[dict] = field(default_factory=list)
    total: dict = field(default_factory=dict)
    currency: str | None = None     # the customers' currency the amounts are in


_SUMS = """count(*) AS calls, count(*) FILTER (WHERE c.billsec > 0) AS answered,
           coalesce(sum(c.billsec), 0) AS billsec, coalesce(sum(c.sell_amount), 0) AS revenue,
           coalesce(sum(c.cost_amount), 0) AS cost"""



def _by_entity(column: str, table: str, missing: str) -> str:
    """Aggregate per id first, then join the names (column/table are fixed names)."""
    return f"""
        SELECT a.key, coalesce(n.name, '{missing}') AS label, a.calls, a.answered, a.billsec, a.revenue, a.cost
          FROM (SELECT c.{column} AS key, {_SUMS}
                  FROM billing.cdr c WHERE c.start_stamp >= %(t0)s AND c.start_stamp < %(t1)s {{extra}}
                 GROUP BY 1) a
          LEFT JOIN billing.{table} n ON n.id = a.key
         ORDER BY a.revenue DESC, label"""


_QUERIES = {
    "day": f"""
        SELECT (c.start_stamp AT TIME ZONE 'UTC')::date AS key, {_SUMS}
          FROM billing.cdr c WHERE c.start_stamp >= %(t0)s AND c.start_stamp < %(t1)s {{extra}}
         GROUP BY 1 ORDER BY 1""",
    "customer": _by_entity("customer_id", "customers", "(no customer)"),
    "provider": _by_entity("provider_id", "providers", "(no provider)"),
    "destination": f"""
        WITH by_prefix AS (
            SELECT c.sell_prefix, {_SUMS}
              FROM billing.cdr c WHERE c.start_stamp >= %(t0)s AND c.start_stamp < %(t1)s {{extra}}
             GROUP BY 1),
        named AS (
            SELECT b.*, coalesce(d.name, CASE WHEN b.sell_prefix IS NULL THEN '(unrated)' ELSE '(prefix ' || b.sell_prefix || ')' END) AS label,
                   d.prefix AS dest_prefix
              FROM by_prefix b
              LEFT JOIN LATERAL (
                    SELECT d.name, d.prefix FROM billing.destinations d
                     WHERE b.sell_prefix ~ '^[0-9]+$'
                       AND d.prefix = ANY (billing_private.prefixes(b.sell_prefix))
                     ORDER BY length(d.prefix) DESC LIMIT 1) d ON true)
        SELECT min(dest_prefix) AS key, label, sum(calls) AS calls, sum(answered) AS answered,
               sum(billsec) AS billsec, sum(revenue) AS revenue, sum(cost) AS cost
          FROM named GROUP BY label ORDER BY sum(revenue) DESC, label""",
}


def _range(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    if date_to < date_from:
        raise ReportError("the end of the range is before its start")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ReportError(f"a report covers at most {MAX_DAYS} days")
    return (datetime.combine(date_from, time.min, timezone.utc),
            datetime.combine(date_to + timedelta(days=1), time.min, timezone.utc))


def run(conn, dimension: str, date_from: date, date_to: date, customer_id: int | None = None,
        currency: str | None = None, filter_currency: bool = True) -> Report:
    """`currency`: the customers' currency of the amounts; calls of customers paying in
    another one are left out unless `filter_currency` is false (one currency in use)."""
    if dimension not in DIMENSIONS:
        raise ReportError(f"unknown report {dimension!r}")
    t0, t1 = _range(date_from, date_to)
    params = {"t0": t0, "t1": t1}
    extra = ""
    if customer_id is not None:
        extra = "AND c.customer_id = %(customer_id)s"
        params["customer_id"] = customer_id
    elif currency is not None and filter_currency:
        extra = "AND c.customer_id IN (SELECT cu.id FROM billing.customers cu WHERE cu.currency = %(currency)s)"
        params["currency"] = currency
    report = Report(dimension, date_from, date_to, currency=currency)
    with conn.cursor() as cur:
        cur.execute(_QUERIES[dimension].format(extra=extra), params)
        names = [d[0] for d in cur.description]
        for values in cur.fetchall():
            raw = dict(zip(names, values))
            label = raw.get("label", raw["key"])
            row = {"key": raw["key"], "label": label.isoformat() if isinstance(label, date) else label}
            row.update(metrics(raw["calls"], raw["answered"], raw["billsec"], raw["revenue"], raw["cost"]))
            report.rows.append(row)
    sums = {k: sum((r[k] for r in report.rows), start=0) for k in ("calls", "answered", "billsec")}
    money = {k: sum((r[k] for r in report.rows), start=Decimal(0)) for k in ("revenue", "cost")}
    report.total = metrics(sums["calls"], sums["answered"], sums["billsec"], money["revenue"], money["cost"])
    if dimension == "day":
        report.rows = _fill_days(report.rows, date_from, date_to)
    return report


def _fill_days(rows: list[dict], date_from: date, date_to: date) -> list[dict]:
    """Every day of the range, with zeros on days without calls (charts need them)."""
    by_day = {r["label"]: r for r in rows}
    filled = []
    day = date_from
    while day <= date_to:
        label = day.isoformat()
        filled.append(by_day.get(label) or {"key": day, "label": label, **metrics(0, 0, 0, 0, 0)})
        day += timedelta(days=1)
    return filled


COLUMNS = [("calls", "Calls"), ("answered", "Answered"), ("minutes", "Minutes"), ("revenue", "Revenue"),
           ("cost", "Cost"), ("margin", "Margin"), ("asr", "ASR %"), ("acd", "ACD s")]


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([DIMENSIONS[report.dimension].lower()] + [k for k, _ in COLUMNS])
    for row in report.rows + [{"label": "TOTAL", **report.total}]:
        writer.writerow([row["label"]] + ["" if row[k] is None else row[k] for k, _ in COLUMNS])
    return buffer.getvalue()


def chart_data(report: Report, limit: int = 15) -> dict:
    """Chart.js data (labels + datasets); amounts as decimal strings, charts only."""
    rows = report.rows if report.dimension == "day" else report.rows[:limit]
    labels = [str(r["label"]) for r in rows]
    if report.dimension == "day":
        return {"type": "bar", "labels": labels, "datasets": [
            {"label": "Revenue", "data": [str(r["revenue"]) for r in rows], "kind": "bar"},
            {"label": "Cost", "data": [str(r["cost"]) for r in rows], "kind": "bar"},
            {"label": "Calls", "data": [r["calls"] for r in rows], "kind": "line", "axis": "y1"}]}
    return {"type": "bar", "labels": labels, "horizontal": True, "datasets": [
        {"label": "Revenue", "data": [str(r["revenue"]) for r in rows]},
        {"label": "Margin", "data": [str(r["margin"]) for r in rows]}]}


# ----------------------------------------------------------------------------- dashboard

def live_calls(conn, limit: int = 20) -> dict:
    """Calls in progress = holds placed by route_call and not yet released."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), coalesce(sum(amount), 0) FROM billing.call_holds WHERE expires_at > now()")
        count, held = cur.fetchone()
        cur.execute("""
            SELECT h.call_uuid, h.created_at, h.destination, h.sell_rate, h.amount, h.max_duration,
                   cu.name AS customer, cu.currency, e.name AS endpoint
              FROM billing.call_holds h
              JOIN billing.customers cu ON cu.id = h.customer_id
              JOIN billing.endpoints e ON e.id = h.endpoint_id
             WHERE h.expires_at > now()
             ORDER BY h.created_at DESC LIMIT %s""", (limit,))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
    return {"count": count, "held": held, "rows": rows}


def low_balance_customers(conn, limit: int = 10) -> list[dict]:
    """Enabled customers whose available funds (balance + credit limit) are below their
    alert threshold (or the default threshold of the settings)."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT cu.id, cu.name, cu.currency, cu.balance, cu.credit_limit, cu.balance + cu.credit_limit AS available,
                   coalesce(cu.low_balance_alert, s.low_balance_default) AS threshold
              FROM billing.customers cu CROSS JOIN billing.settings s
             WHERE cu.enabled AND coalesce(cu.low_balance_alert, s.low_balance_default) IS NOT NULL
               AND cu.balance + cu.credit_limit < coalesce(cu.low_balance_alert, s.low_balance_default)
             ORDER BY cu.balance + cu.credit_limit, cu.name LIMIT %s""", (limit,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
