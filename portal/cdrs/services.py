"""Queries over billing.cdr (partitioned by month of start_stamp).

Pages are keyset-paginated over (start_stamp, id) DESC: each page is one range scan
of ix_cdr_start_stamp_id (or ix_cdr_customer_id_start_stamp_id with a customer),
whatever the page number. Totals are a separate query over the same filter. The CSV
export reads through a server-side cursor and yields one chunk per batch, so memory
stays constant whatever the size of the export.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterator

from ..csvstream import stream_csv

PAGE_SIZE = 50


class CdrError(ValueError):
    """A filter or cursor that cannot be used; the message says why."""


class RerateUnavailable(CdrError):
    """billing_private.rerate_fs_cdr is not installed in this database."""


@dataclass
class CdrFilter:
    date_from: date | None = None
    date_to: date | None = None          # inclusive
    customer_id: int | None = None
    endpoint_id: int | None = None
    provider_id: int | None = None
    gateway: str | None = None
    prefix: str | None = None            # destination starts with
    hangup_cause: str | None = None
    answered: str | None = None          # 'yes' | 'no'
    status: str | None = None            # 'rated' | 'unrated'
    currency: str | None = None          # calls of customers paying in this currency


    def where(self) -> tuple[str, dict]:
        clauses, params = ["TRUE"], {}
        if self.date_from:
            clauses.append("c.start_stamp >= %(date_from)s")
            params["date_from"] = datetime.combine(self.date_from, time.min, timezone.utc)
        if self.date_to:
            clauses.append("c.start_stamp < %(date_to)s")
            params["date_to"] = datetime.combine(self.date_to + timedelta(days=1), time.min, timezone.utc)
        for name in ("customer_id", "endpoint_id", "provider_id", "gateway", "hangup_cause", "status"):
            value = getattr(self, name)
            if value not in (None, ""):
                clauses.append(f"c.{name} = %({name})s")
                params[name] = value
        if self.prefix:
            if not self.prefix.isdigit() or len(self.prefix) > 20:
                raise CdrError("the destination prefix is digits only")
            clauses.append("c.destination LIKE %(prefix)s")
            params["prefix"] = self.prefix + "%"
        if self.currency:
            clauses.append("c.customer_id IN (SELECT cu.id FROM billing.customers cu WHERE cu.currency = %(currency)s)")
            params["currency"] = self.currency
        if self.answered == "yes":
            clauses.append("c.billsec > 0")
        elif self.answered == "no":
            clauses.append("c.billsec = 0")
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Cursor:
    start_stamp: datetime
    id: int

    def encode(self) -> str:
        return f"{self.start_stamp.isoformat()}~{self.id}"

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        try:
            stamp, _, ident = token.partition("~")
            parsed = datetime.fromisoformat(stamp)
            if parsed.tzinfo is None:
                raise ValueError
            return cls(parsed, int(ident))
        except ValueError:
            raise CdrError("that page link is not valid any more; start from the first page") from None


@dataclass
class Page:
    rows: list[dict]
    older: Cursor | None = None     # cursor for the next (older) page
    newer: Cursor | None = None     # cursor for the previous (newer) page
    extra: dict = field(default_factory=dict)


SELECT_ROWS = """
    SELECT c.id, c.fs_cdr_id, c.uuid, c.start_stamp, c.answer_stamp, c.end_stamp, c.duration, c.billsec,
           c.billed_seconds, c.caller_id, c.destination, c.sell_prefix, c.sell_rate, c.sell_amount,
           c.cost_rate, c.cost_amount, c.cost_currency, c.cost_amount_original, c.exchange_rate,
           c.margin, c.hangup_cause, c.gateway, c.route_seq, c.status,
           c.unrated_reason, c.customer_id, cu.name AS customer, cu.currency, c.endpoint_id, e.name AS endpoint,
           c.provider_id, p.name AS provider
      FROM billing.cdr c
      LEFT JOIN billing.customers cu ON cu.id = c.customer_id
      LEFT JOIN billing.endpoints e ON e.id = c.endpoint_id
      LEFT JOIN billing.providers p ON p.id = c.provider_id
"""


def _dicts(cur) -> list[dict]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def page(conn, flt: CdrFilter, older_than: str | None = None, newer_than: str | None = None,
         size: int = PAGE_SIZE) -> Page:
    """One page of CDRs, newest first. `older_than` / `newer_than` are cursor tokens."""
    where, params = flt.where()
    params["limit"] = size + 1
    if newer_than:
        cursor = Cursor.decode(newer_than)
        params.update(k_stamp=cursor.start_stamp, k_id=cursor.id)
        sql = (f"{SELECT_ROWS} WHERE {where} AND (c.start_stamp, c.id) > (%(k_stamp)s, %(k_id)s) "
               "ORDER BY c.start_stamp, c.id LIMIT %(limit)s")
    else:
        keyset = ""
        if older_than:
            cursor = Cursor.decode(older_than)
            params.update(k_stamp=cursor.start_stamp, k_id=cursor.id)
            keyset = "AND (c.start_stamp, c.id) < (%(k_stamp)s, %(k_id)s)"
        sql = f"{SELECT_ROWS} WHERE {where} {keyset} ORDER BY c.start_stamp DESC, c.id DESC LIMIT %(limit)s"
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = _dicts(cur)
    more = len(rows) > size
    rows = rows[:size]
    if newer_than:
        rows.reverse()
        result = Page(rows)
        if rows:
            result.older = Cursor(rows[-1]["start_stamp"], rows[-1]["id"])
            if more:
                result.newer = Cursor(rows[0]["start_stamp"], rows[0]["id"])
        return result
    result = Page(rows)
    if rows:
        if more:
            result.older = Cursor(rows[-1]["start_stamp"], rows[-1]["id"])
        if older_than:
            result.newer = Cursor(rows[0]["start_stamp"], rows[0]["id"])
    return result


def currencies_in_use(conn) -> list[str]:
    """The currencies customers pay in. Amounts of customers in different currencies are
    never added up: sums are per currency when there is more than one."""
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT currency FROM billing.customers ORDER BY 1")
        return [r[0] for r in cur.fetchall()]


def totals(conn, flt: CdrFilter) -> dict:
    """Totals of the filtered set. Rounding: minutes half-up to 2 places, ASR (%) to 2,
    ACD (seconds) to 1; money sums are exact (6 places). When the set holds calls of
    customers paying in different currencies, `by_currency` lists the money per currency
    and the single revenue / cost / margin are None (they cannot be added)."""
    where, params = flt.where()
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE c.billsec > 0), coalesce(sum(c.billsec), 0),
                   coalesce(sum(c.billed_seconds), 0), coalesce(sum(c.sell_amount), 0),
                   coalesce(sum(c.cost_amount), 0), coalesce(sum(c.margin), 0),
                   count(*) FILTER (WHERE c.status = 'unrated')
              FROM billing.cdr c WHERE {where}""", params)
        calls, answered, billsec, billed, revenue, cost, margin, unrated = cur.fetchone()
        by_currency = []
        if not flt.customer_id and not flt.currency and len(currencies_in_use(conn)) > 1:
            cur.execute(f"""
                SELECT cu.currency, coalesce(sum(c.sell_amount), 0), coalesce(sum(c.cost_amount), 0),
                       coalesce(sum(c.margin), 0)
                  FROM billing.cdr c JOIN billing.customers cu ON cu.id = c.customer_id
                 WHERE {where} AND (c.sell_amount <> 0 OR c.cost_amount <> 0)
                 GROUP BY 1 ORDER BY 1""", params)
            by_currency = [{"currency": cur_, "revenue": r, "cost": co, "margin": m} for cur_, r, co, m in cur.fetchall()]
    result = metrics(calls, answered, billsec, revenue, cost) | {"billed_seconds": int(billed), "margin": margin,
                                                                  "unrated": unrated}
    if len(by_currency) > 1:
        result.update(revenue=None, cost=None, margin=None, by_currency=by_currency)
    return result


def metrics(calls, answered, billsec, revenue, cost) -> dict:
    """Derived traffic figures from raw sums, as exact Decimals (see totals())."""
    calls, answered, billsec = int(calls), int(answered), int(billsec)
    revenue, cost = Decimal(revenue), Decimal(cost)
    return {
        "calls": calls, "answered": answered, "billsec": billsec,
        "minutes": (Decimal(billsec) / 60).quantize(Decimal("0.01"), ROUND_HALF_UP),
        "revenue": revenue, "cost": cost, "margin": revenue - cost,
        "asr": (Decimal(100 * answered) / calls).quantize(Decimal("0.01"), ROUND_HALF_UP) if calls else None,
        "acd": (Decimal(billsec) / answered).quantize(Decimal("0.1"), ROUND_HALF_UP) if answered else None,
    }


def display_totals(totals: dict) -> dict:
    """Totals formatted for people (money to 2 places half-up, as on the pages)."""
    from ..formatting import money

    shown = {}
    for key, value in totals.items():
        if key == "by_currency":
            shown[key] = [{k: (v if k == "currency" else money(v, places=4)) for k, v in row.items()} for row in value]
        elif value is None:
            shown[key] = "—"
        elif key in ("revenue", "cost", "margin"):
            shown[key] = money(value, places=4)
        else:
            shown[key] = str(value)
    return shown


EXPORT_HEADER = ["start_stamp", "answer_stamp", "end_stamp", "uuid", "customer", "endpoint", "caller_id",
                 "destination", "sell_prefix", "duration", "billsec", "billed_seconds", "sell_rate", "sell_amount",
                 "provider", "gateway", "cost_rate", "cost_amount", "margin", "hangup_cause", "status",
                 "unrated_reason", "currency", "cost_currency", "cost_amount_original", "exchange_rate"]


def export_csv(conn, flt: CdrFilter, batch: int = 5000) -> Iterator[str]:
    """CSV of the filtered CDRs, oldest first, one chunk per `batch` rows.

    A server-side (named) cursor keeps only one batch in memory on both sides.
    """
    where, params = flt.where()
    sql = f"""
        SELECT c.start_stamp, c.answer_stamp, c.end_stamp, c.uuid, cu.name, e.name, c.caller_id,
               c.destination, c.sell_prefix, c.duration, c.billsec, c.billed_seconds, c.sell_rate,
               c.sell_amount, p.name, c.gateway, c.cost_rate, c.cost_amount, c.margin, c.hangup_cause,
               c.status, c.unrated_reason, cu.currency, c.cost_currency, c.cost_amount_original, c.exchange_rate
          FROM billing.cdr c
          LEFT JOIN billing.customers cu ON cu.id = c.customer_id
          LEFT JOIN billing.endpoints e ON e.id = c.endpoint_id
          LEFT JOIN billing.providers p ON p.id = c.provider_id
         WHERE {where}
         ORDER BY c.start_stamp, c.id"""
    return stream_csv(conn, sql, params, EXPORT_HEADER, batch,
                      row=lambda r: ["" if v is None else (v.isoformat() if isinstance(v, datetime) else v) for v in r])


# ----------------------------------------------------------------------------- unrated

def unrated_raw(conn, limit: int = 100) -> list[dict]:
    """Raw CDRs the billing trigger could not rate (ix_fs_cdr_unrated), newest first."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT f.id, f.uuid, f.start_stamp, f.caller_id_number, f.destination_number, f.billsec,
                   f.hangup_cause, f.unrated_reason, f.received_at, cu.name AS customer
              FROM billing.fs_cdr f
              LEFT JOIN billing.customers cu ON cu.id = f.billing_customer_id
             WHERE f.status = 'unrated'
             ORDER BY f.received_at DESC
             LIMIT %s""", (limit,))
        return _dicts(cur)


def unrated_count(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM billing.fs_cdr WHERE status = 'unrated'")
        return cur.fetchone()[0]


def rerate_available(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regprocedure('billing_private.rerate_fs_cdr(bigint)') IS NOT NULL")
        return cur.fetchone()[0]


def rerate(conn, fs_cdr_id: int) -> str:
    """Rate one raw CDR again (billing helper's function); returns its new status."""
    if not rerate_available(conn):
        raise RerateUnavailable("re-rating needs billing_private.rerate_fs_cdr, which this database does not have yet "
                                "(run `flask --app wsgi db upgrade` after installing the billing release)")
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM billing.fs_cdr WHERE id = %s", (fs_cdr_id,))
        if cur.fetchone() is None:
            raise CdrError(f"raw CDR {fs_cdr_id} does not exist")
        cur.execute("SELECT billing_private.rerate_fs_cdr(%s)", (fs_cdr_id,))
        return cur.fetchone()[0]
