"""Reports over billing.cdr: calls, minutes, revenue, cost, margin, ASR, ACD grouped
by day, customer, provider or destination, for a date range (days of the operator's
time zone, BILLING_TIMEZONE, inclusive).

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

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from ..cdrs.services import metrics
from ..csvstream import lines
from ..formatting import minor_units
from ..localtime import day_range, local_tz

DIMENSIONS = {"day": "Day", "customer": "Customer", "provider": "Provider", "destination": "Destination"}
MAX_DAYS = 366


# Calls to review (as the CDR browser's review filter: beyond their grant, billed without
# a hold, or longer than any call may last) and the seconds talked beyond the grant, which
# the customer was not charged for (the carrier's cost of them is in `cost`).
REVIEW_KEYS = ("overrun_seconds", "to_review")


class ReportError(ValueError):
    """A report that cannot be run as asked; the message says why."""


@dataclass
class Report:
    dimension: str
    date_from: date
    date_to: date
    rows: list[dict] = field(default_factory=list)
    total: dict = field(default_factory=dict)
    currency: str | None = None      # of the money columns (currency_of)


_SUMS = """count(*) AS calls, count(*) FILTER (WHERE c.billsec > 0) AS answered,
           coalesce(sum(c.billsec), 0) AS billsec, coalesce(sum(c.sell_amount), 0) AS revenue,
           coalesce(sum(c.cost_amount), 0) AS cost,
           coalesce(sum(c.overrun_seconds), 0) AS overrun_seconds,
           count(*) FILTER (WHERE c.overrun_seconds > 0 OR c.no_hold OR c.absurd_duration) AS to_review"""



def _by_entity(column: str, table: str, missing: str) -> str:
    """Aggregate per id first, then join the names (column/table are fixed names)."""
    return f"""
        SELECT a.key, coalesce(n.name, '{missing}') AS label, a.calls, a.answered, a.billsec, a.revenue, a.cost,
               a.overrun_seconds, a.to_review
          FROM (SELECT c.{column} AS key, {_SUMS}
                  FROM billing.cdr c WHERE c.start_stamp >= %(t0)s AND c.start_stamp < %(t1)s {{extra}}
                 GROUP BY 1) a
          LEFT JOIN billing.{table} n ON n.id = a.key
         ORDER BY a.revenue DESC, label"""


_QUERIES = {
    "day": f"""
        SELECT (c.start_stamp AT TIME ZONE %(tz)s)::date AS key, {_SUMS}
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
               sum(billsec) AS billsec, sum(revenue) AS revenue, sum(cost) AS cost,
               sum(overrun_seconds) AS overrun_seconds, sum(to_review) AS to_review
          FROM named GROUP BY label ORDER BY sum(revenue) DESC, label""",
}


def _range(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    if date_to < date_from:
        raise ReportError("the end of the range is before its start")
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise ReportError(f"a report covers at most {MAX_DAYS} days")
    return day_range(date_from, date_to)


def run(conn, dimension: str, date_from: date, date_to: date, customer_id: int | None = None,
        currency: str | None = None, filter_currency: bool = True) -> Report:
    """`currency`: the customers' currency of the amounts; calls of customers paying in
    another one are left out unless `filter_currency` is false (one currency in use)."""
    if dimension not in DIMENSIONS:
        raise ReportError(f"unknown report {dimension!r}")
    t0, t1 = _range(date_from, date_to)
    params = {"t0": t0, "t1": t1, "tz": str(local_tz().key)}
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
            row.update(overrun_seconds=int(raw["overrun_seconds"]), to_review=int(raw["to_review"]))
            report.rows.append(row)
    sums = {k: sum((r[k] for r in report.rows), start=0) for k in ("calls", "answered", "billsec") + REVIEW_KEYS}
    money = {k: sum((r[k] for r in report.rows), start=Decimal(0)) for k in ("revenue", "cost")}
    report.total = metrics(sums["calls"], sums["answered"], sums["billsec"], money["revenue"], money["cost"])
    report.total.update({k: sums[k] for k in REVIEW_KEYS})
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
        filled.append(by_day.get(label) or {"key": day, "label": label, **metrics(0, 0, 0, 0, 0),
                                            **dict.fromkeys(REVIEW_KEYS, 0)})
        day += timedelta(days=1)
    return filled


COLUMNS = [("calls", "Calls"), ("answered", "Answered"), ("minutes", "Minutes"), ("revenue", "Revenue"),
           ("cost", "Cost"), ("margin", "Margin"), ("asr", "ASR %"), ("acd", "ACD s"),
           ("to_review", "To review"), ("overrun_seconds", "Overrun s")]


def csv_header(report: Report) -> list[str]:
    return [DIMENSIONS[report.dimension].lower()] + [k for k, _ in COLUMNS]


def csv_rows(report: Report) -> list[list]:
    """The table's rows, then a TOTAL row."""
    return [[row["label"]] + [row[k] for k, _ in COLUMNS] for row in report.rows + [{"label": "TOTAL", **report.total}]]


def to_csv(report: Report) -> str:
    return "".join(lines(csv_header(report), [csv_rows(report)]))


def chart_data(report: Report, currency: str | None = None, limit: int = 15) -> dict:
    """Chart.js data for static/js/charts.js: labels, value axes and datasets, each
    dataset naming its axis. Money has an axis of its own titled with its currency
    (counts never share it: revenue of a few euros beside 80 calls would be a flat
    line). Amounts are decimal strings, for drawing only; tables show the values."""
    currency = currency or report.currency or ""
    rows = report.rows if report.dimension == "day" else report.rows[:limit]
    labels = [str(r["label"]) for r in rows]
    money_axis = {"id": "money", "title": currency, "places": minor_units(currency)}

    def money(label, key, kind="bar"):
        return {"label": f"{label} ({currency})" if currency else label, "data": [str(r[key]) for r in rows],
                "kind": kind, "axis": "money"}

    if report.dimension == "day":
        return {"type": "bar", "labels": labels,
                "axes": [money_axis, {"id": "count", "title": "calls", "places": 0}],
                "datasets": [money("Revenue", "revenue"), money("Cost", "cost"),
                             {"label": "Calls", "data": [r["calls"] for r in rows], "kind": "line", "axis": "count"}]}
    return {"type": "bar", "labels": labels, "horizontal": True, "axes": [money_axis],
            "datasets": [money("Revenue", "revenue"), money("Margin", "margin")]}


def currency_of(conn, customer_id: int | None = None) -> str:
    """The currency figures over several calls are shown in: the customer's when the
    calls are one customer's, else the operator's (settings)."""
    with conn.cursor() as cur:
        if customer_id is not None:
            cur.execute("SELECT currency FROM billing.customers WHERE id = %s", (customer_id,))
            row = cur.fetchone()
            if row:
                return row[0]
        cur.execute("SELECT currency FROM billing.settings LIMIT 1")
        row = cur.fetchone()
    return row[0] if row else "EUR"

