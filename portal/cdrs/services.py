"""Queries over billing.cdr (partitioned by month of start_stamp).

Pages are keyset-paginated over (start_stamp, id) DESC: each page is one range scan
of ix_cdr_start_stamp_id (or ix_cdr_customer_id_start_stamp_id with a customer),
whatever the page number. Totals are a separate query over the same filter. The CSV
export reads through a server-side cursor and yields one chunk per batch, so memory
stays constant whatever the size of the export.

Number search (`number_condition`, shared with self care): a number that *starts with*
some digits is an index range on ix_cdr_destination_pattern (0061) or
ix_cdr_caller_id_pattern (0130), both text_pattern_ops; a number that *contains* some
digits cannot use a btree, so it is read along the (customer,) start_stamp index of
its date range, which `contains_window` bounds (docs/operations.md has the plans and
timings on 10M CDRs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
import re
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterator

from ..csvstream import stream_csv
from ..localtime import day_range

PAGE_SIZE = 50


class CdrError(ValueError):
    """A filter or cursor that cannot be used; the message says why."""


class RerateUnavailable(CdrError):
    """billing_private.rerate_fs_cdr is not installed in this database."""


NUMBER_RE = re.compile(r"^\+?[0-9]{1,20}$")
NUMBER_FIELDS = {"destination": ("destination",), "caller": ("caller_id",), "either": ("destination", "caller_id")}
MATCHES = ("prefix", "contains")
CONTAINS_MAX_DAYS = 31      # a "contains" search reads every call of its range: keep the range bounded


def number_condition(number: str, number_in: str = "either", match: str = "prefix", *,
                     param=lambda name: f"%({name})s", alias: str = "c") -> tuple[str, dict]:
    """SQL condition and parameters for "the caller / destination number starts with
    (or contains) these digits". The digits are validated here and only ever passed
    as parameters. A leading + is optional on both sides: '+4670' and '4670' find
    '+46701234567' and '46701234567' alike. `param` renders a parameter placeholder
    (psycopg2 `%(x)s` by default, `:x` for SQLAlchemy text())."""
    if not NUMBER_RE.match(number or ""):
        raise CdrError("a number is digits, optionally with a leading +")
    if number_in not in NUMBER_FIELDS:
        raise CdrError("search the caller, the destination or either")
    if match not in MATCHES:
        raise CdrError("a number search matches a prefix or digits anywhere")
    digits = number.lstrip("+")
    if match == "prefix":
        params = {"number_plain": digits + "%", "number_plus": "+" + digits + "%"}
        one = "({col} LIKE {p} OR {col} LIKE {pp})"
        parts = [one.format(col=f"{alias}.{col}", p=param("number_plain"), pp=param("number_plus"))
                 for col in NUMBER_FIELDS[number_in]]
    else:
        params = {"number_any": "%" + digits + "%"}
        parts = [f"{alias}.{col} LIKE {param('number_any')}" for col in NUMBER_FIELDS[number_in]]
    return "(" + " OR ".join(parts) + ")", params


def contains_window(date_from: date | None, date_to: date | None, today: date) -> tuple[date, date]:
    """The date range of a "contains" search: the one given, else the last 31 days; at
    most CONTAINS_MAX_DAYS long."""
    date_to = date_to or (date_from + timedelta(days=CONTAINS_MAX_DAYS - 1) if date_from else today)
    date_from = date_from or date_to - timedelta(days=CONTAINS_MAX_DAYS - 1)
    if (date_to - date_from).days + 1 > CONTAINS_MAX_DAYS:
        raise CdrError(f"a search for digits anywhere in a number covers at most {CONTAINS_MAX_DAYS} days: "
                       "narrow the dates, or search for numbers that start with the digits (no limit)")
    return date_from, date_to


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
    number: str | None = None            # caller / destination search (number_condition)
    number_in: str = "either"            # 'destination' | 'caller' | 'either'
    match: str = "prefix"                # 'prefix' | 'contains'
    nothing: bool = False                # a search that could not run: match no call

    def where(self) -> tuple[str, dict]:
        clauses, params = self._where()
        if self.nothing:
            clauses.append("FALSE")
        return " AND ".join(clauses), params

    def _where(self) -> tuple[list[str], dict]:
        clauses, params = ["TRUE"], {}
        start, end = day_range(self.date_from, self.date_to)   # the operator's days (BILLING_TIMEZONE)
        if start:
            clauses.append("c.start_stamp >= %(date_from)s")
            params["date_from"] = start
        if end:
            clauses.append("c.start_stamp < %(date_to)s")
            params["date_to"] = end
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
        if self.number:
            condition, number_params = number_condition(self.number, self.number_in, self.match)
            clauses.append(condition)
            params.update(number_params)
        if self.answered == "yes":
            clauses.append("c.billsec > 0")
        elif self.answered == "no":
            clauses.append("c.billsec = 0")
        return clauses, params


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
           c.cost_rate, c.cost_amount, c.margin, c.hangup_cause, c.gateway, c.route_seq, c.status,
           c.unrated_reason, c.customer_id, cu.name AS customer, cu.currency, c.endpoint_id, e.name AS endpoint,
           c.provider_id, p.name AS provider, p.currency AS cost_currency
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


def name_destinations(conn, rows: list[dict]) -> list[dict]:
    """Add `destination_name` to each row: the catalogue name of the longest prefix of
    its number (one statement for the page, one uq_destinations_prefix probe per
    distinct number)."""
    numbers = sorted({r["destination"].lstrip("+") for r in rows if r.get("destination")})
    names = {}
    if numbers:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT n.number, (SELECT d.name FROM billing.destinations d
                                   WHERE d.prefix = ANY (billing_private.prefixes(n.number))
                                   ORDER BY length(d.prefix) DESC LIMIT 1)
                  FROM unnest(%s::text[]) AS n(number)""", (numbers,))
            names = dict(cur.fetchall())
    for r in rows:
        r["destination_name"] = names.get((r.get("destination") or "").lstrip("+"))
    return rows


def call_detail(conn, cdr_id: int, customer_id: int | None = None) -> dict | None:
    """Everything known about one rated call: the billing.cdr row (every column, so
    columns added later — overrun_seconds, no_hold — appear without a change here),
    its raw CDR from FreeSWITCH, the rates that priced it, its ledger entries, its hold
    if the call is still held, and the routes tried. `customer_id` scopes the lookup
    (another customer's call answers None, like a missing one).

    Cost: the primary key of each monthly partition (id leads it), ix_ledger_call_uuid."""
    scope = " AND c.customer_id = %(customer_id)s" if customer_id is not None else ""
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT c.*, cu.name AS customer, cu.currency, e.name AS endpoint, e.auth AS endpoint_auth,
                   p.name AS provider, p.currency AS cost_currency, g.id AS gateway_id
              FROM billing.cdr c
              LEFT JOIN billing.customers cu ON cu.id = c.customer_id
              LEFT JOIN billing.endpoints e ON e.id = c.endpoint_id
              LEFT JOIN billing.providers p ON p.id = c.provider_id
              LEFT JOIN billing.gateways g ON g.name = c.gateway
             WHERE c.id = %(id)s{scope}""", {"id": cdr_id, "customer_id": customer_id})
        found = _dicts(cur)
        if not found:
            return None
        call = name_destinations(conn, found)[0]
        cur.execute("SELECT * FROM billing.fs_cdr WHERE id = %s", (call["fs_cdr_id"],))
        raw = _dicts(cur)
        cur.execute("SELECT * FROM billing.rates WHERE id = %s", (call.get("sell_rate_id"),))
        sell_rate = _dicts(cur)
        cur.execute("SELECT * FROM billing.provider_rates WHERE id = %s", (call.get("cost_rate_id"),))
        cost_rate = _dicts(cur)
        cur.execute("""SELECT id, created_at, kind, amount, reference, note, created_by FROM billing.ledger
                        WHERE call_uuid = %s AND customer_id IS NOT DISTINCT FROM %s
                        ORDER BY created_at, id""", (call["uuid"], call["customer_id"]))
        ledger = _dicts(cur)
        cur.execute("SELECT * FROM billing.call_holds WHERE call_uuid = %s", (call["uuid"],))
        hold = _dicts(cur)
    call["raw"] = raw[0] if raw else {}
    call["sell_rate_row"] = sell_rate[0] if sell_rate else None
    call["cost_rate_row"] = cost_rate[0] if cost_rate else None
    call["ledger"] = ledger
    call["hold"] = hold[0] if hold else None
    call["routes"] = routes_tried(call)
    return call


def routes_tried(call: dict) -> list[dict]:
    """The carriers route_call offered, as far as the CDR tells: FreeSWITCH reports the
    last route it tried (billing_route_seq, gateway, provider); routes before it were
    tried and did not answer, but the CDR does not name them."""
    last = call.get("route_seq")
    if not last:
        return []
    routes = [{"seq": n, "known": False} for n in range(1, last)]
    routes.append({"seq": last, "known": True, "provider": call.get("provider"), "provider_id": call.get("provider_id"),
                   "gateway": call.get("gateway"), "gateway_id": call.get("gateway_id"),
                   "cost_rate": call.get("cost_rate"), "answered": bool(call.get("billsec")),
                   "hangup_cause": call.get("hangup_cause")})
    return routes


def totals(conn, flt: CdrFilter) -> dict:
    """Totals of the filtered set. Rounding: minutes half-up to 2 places, ASR (%) to 2,
    ACD (seconds) to 1; money sums are exact (6 places)."""
    where, params = flt.where()
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE c.billsec > 0), coalesce(sum(c.billsec), 0),
                   coalesce(sum(c.billed_seconds), 0), coalesce(sum(c.sell_amount), 0),
                   coalesce(sum(c.cost_amount), 0), coalesce(sum(c.margin), 0),
                   count(*) FILTER (WHERE c.status = 'unrated')
              FROM billing.cdr c WHERE {where}""", params)
        calls, answered, billsec, billed, revenue, cost, margin, unrated = cur.fetchone()
    return metrics(calls, answered, billsec, revenue, cost) | {"billed_seconds": int(billed), "margin": margin,
                                                                "unrated": unrated}


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


def display_totals(totals: dict, currency: str | None) -> dict:
    """Totals formatted for people, with the money rule of the pages (formatting.money)."""
    from ..formatting import money

    shown = {}
    for key, value in totals.items():
        if value is None:
            shown[key] = "—"
        elif key in ("revenue", "cost", "margin"):
            shown[key] = money(value, currency)
        else:
            shown[key] = str(value)
    return shown


EXPORT_HEADER = ["start_stamp", "answer_stamp", "end_stamp", "uuid", "customer", "endpoint", "caller_id",
                 "destination", "sell_prefix", "duration", "billsec", "billed_seconds", "sell_rate", "sell_amount",
                 "provider", "gateway", "cost_rate", "cost_amount", "margin", "hangup_cause", "status",
                 "unrated_reason"]


def export_csv(conn, flt: CdrFilter, batch: int = 5000) -> Iterator[str]:
    """CSV of the filtered CDRs, oldest first, one chunk per `batch` rows.

    A server-side (named) cursor keeps only one batch in memory on both sides.
    """
    where, params = flt.where()
    sql = f"""
        SELECT c.start_stamp, c.answer_stamp, c.end_stamp, c.uuid, cu.name, e.name, c.caller_id,
               c.destination, c.sell_prefix, c.duration, c.billsec, c.billed_seconds, c.sell_rate,
               c.sell_amount, p.name, c.gateway, c.cost_rate, c.cost_amount, c.margin, c.hangup_cause,
               c.status, c.unrated_reason
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
