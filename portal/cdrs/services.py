"""Rated calls (billing.cdr, partitioned by month of start_stamp), for every audience.

Each question is answered once, with the customer scope as an argument:
`customer_id=None` is staff (every customer, every column); `customer_id=N` is what
customer N may see (their rows only, and only their side of each call: no cost,
margin, provider, gateway or internal reason). The scope is ANDed to any filter, so a
filter naming another customer's endpoint simply matches nothing.

Pages are keyset pages over (start_stamp, id) DESC: each one is a range scan of
ix_cdr_start_stamp_id, or ix_cdr_customer_id_start_stamp_id with a customer (scope or
filter), whatever the page number. Totals are a separate aggregate over the same
filter. Exports stream from a server-side cursor (portal.csvstream).

Number search (`number_condition`, for the back office and self care alike): a number
that *starts with* some digits is an index range on ix_cdr_destination_pattern (0061)
or ix_cdr_caller_id_pattern (0130), both text_pattern_ops; a number that *contains*
some digits cannot use a btree, so it is read along the (customer,) start_stamp index
of its date range, which `contains_window` bounds (docs/operations.md has the plans and
timings on 10M CDRs).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..csvstream import BATCH, Export
from ..dbapi import fetch_all, fetch_one, fetch_value
from ..errors import Refused
from ..localtime import local_tz

PAGE_SIZE = 50
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CURSOR = re.compile(r"^(-?[0-9]{1,19})\.([0-9]{1,19})$")


class CdrError(Refused):
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
        raise CdrError("a number is digits, optionally with a leading +", "number")
    if number_in not in NUMBER_FIELDS:
        raise CdrError("search the caller, the destination or either", "number_in")
    if match not in MATCHES:
        raise CdrError("a number search matches a prefix or digits anywhere", "match")
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
                       "narrow the dates, or search for numbers that start with the digits (no limit)", "match")
    return date_from, date_to


OPERATOR = "operator"   # CdrFilter.zone: the operator's BILLING_TIMEZONE (UTC outside the app)


@dataclass(frozen=True)
class CdrFilter:
    """What to list. Dates are whole days (`date_to` included) in `zone`: OPERATOR (the
    default and the back office's: BILLING_TIMEZONE, portal/localtime.py), an IANA name,
    or None for the database session's time zone (self care's; a web request's
    connection has BILLING_TIMEZONE as its session zone). `answered` takes True/False or
    a form's 'yes'/'no'. `customer_id` here is a choice among customers (staff);
    isolation is the functions' `customer_id` scope. `number` searches the caller and/or
    destination (number_condition); `nothing` matches no call (a search that could not
    run)."""
    date_from: date | None = None
    date_to: date | None = None
    customer_id: int | None = None
    endpoint_id: int | None = None
    provider_id: int | None = None
    gateway: str | None = None
    prefix: str | None = None            # destination starts with these digits
    hangup_cause: str | None = None
    answered: bool | None = None
    status: str | None = None            # 'rated' | 'unrated'
    currency: str | None = None          # calls of customers paying in this currency
    review: bool = False                 # calls to review: overrun, no hold, absurd duration
    number: str | None = None            # caller / destination search (number_condition)
    number_in: str = "either"            # 'destination' | 'caller' | 'either'
    match: str = "prefix"                # 'prefix' | 'contains'
    nothing: bool = False                # a search that could not run: match no call
    zone: str | None = OPERATOR

    def __post_init__(self):
        answered = {"yes": True, "no": False, "": None}.get(self.answered, self.answered) \
            if isinstance(self.answered, str) else self.answered
        if answered not in (None, True, False):
            raise CdrError("answered is yes or no")
        object.__setattr__(self, "answered", answered)
        if self.prefix and (not self.prefix.isdigit() or len(self.prefix) > 20):
            raise CdrError("the destination prefix is digits only", "prefix")
        if self.status not in (None, "", "rated", "unrated"):
            raise CdrError("the rating status is rated or unrated", "status")
        if self.number:
            number_condition(self.number, self.number_in, self.match)   # refuses what it cannot search
        if self.zone not in (None, OPERATOR):
            try:
                ZoneInfo(self.zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise CdrError(f"unknown time zone {self.zone!r}") from None

    def _day_start(self, day: date, name: str, params: dict) -> str:
        """The instant `day` starts, as SQL: in `zone` (OPERATOR: BILLING_TIMEZONE as the
        query is built), or in the session's zone."""
        if self.zone is None:
            params[name] = day
            return f"CAST(%({name})s AS date)"
        params[name] = datetime.combine(day, time.min, local_tz() if self.zone == OPERATOR else ZoneInfo(self.zone))
        return f"%({name})s"

    def where(self, customer_id: int | None = None) -> tuple[str, dict]:
        """The WHERE clause over billing.cdr c, with `customer_id` as the scope."""
        clauses, params = ["TRUE"], {}
        if self.nothing:
            clauses.append("FALSE")
        if customer_id is not None:
            clauses.append("c.customer_id = %(scope)s")
            params["scope"] = customer_id
        if self.date_from:
            clauses.append(f"c.start_stamp >= {self._day_start(self.date_from, 'date_from', params)}")
        if self.date_to:
            clauses.append(f"c.start_stamp < {self._day_start(self.date_to + timedelta(days=1), 'date_to', params)}")
        for name in ("customer_id", "endpoint_id", "provider_id", "gateway", "hangup_cause", "status"):
            value = getattr(self, name)
            if value not in (None, ""):
                clauses.append(f"c.{name} = %({name})s")
                params[name] = value
        if self.prefix:
            clauses.append("c.destination LIKE %(prefix)s")
            params["prefix"] = self.prefix + "%"
        if self.currency:
            clauses.append("c.customer_id IN (SELECT cu.id FROM billing.customers cu WHERE cu.currency = %(currency)s)")
            params["currency"] = self.currency
        if self.number:
            condition, number_params = number_condition(self.number, self.number_in, self.match)
            clauses.append(condition)
            params.update(number_params)
        if self.review:
            # CONTRACT 1b's flags (docs/billing.md, "A call never costs more than its hold");
            # the partial index ix_cdr_review (0026) holds exactly these rows
            clauses.append("(c.overrun_seconds > 0 OR c.no_hold OR c.absurd_duration)")
        if self.answered is True:
            clauses.append("c.billsec > 0")
        elif self.answered is False:
            clauses.append("c.billsec = 0")
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Cursor:
    """A keyset position: exact microseconds since the epoch and the id."""
    start_stamp: datetime
    id: int

    @classmethod
    def of(cls, row: dict) -> "Cursor":
        return cls(row["start_stamp"], row["id"])

    def encode(self) -> str:
        return f"{(self.start_stamp - _EPOCH) // timedelta(microseconds=1)}.{self.id}"

    @classmethod
    def decode(cls, token: str) -> "Cursor":
        match = _CURSOR.match(token or "")
        try:
            if not match:
                raise ValueError(token)
            return cls(_EPOCH + timedelta(microseconds=int(match.group(1))), int(match.group(2)))
        except (ValueError, OverflowError):
            raise CdrError("that page link is not valid any more; start again from the first page", "cursor") from None


@dataclass
class Page:
    rows: list[dict]
    older: Cursor | None = None     # of the last row, when there are older rows
    newer: Cursor | None = None     # of the first row, when there are newer rows


_DESTINATION_NAME = """(SELECT d.name FROM billing.destinations d
                          WHERE d.prefix = ANY (billing_private.prefixes(c.destination))
                          ORDER BY length(d.prefix) DESC LIMIT 1)"""
# A page row: what a customer may see of a call, then what only staff may see.
_CUSTOMER_COLUMNS = f"""
    c.id, c.uuid, c.start_stamp, c.answer_stamp, c.end_stamp, c.caller_id, c.destination,
    c.duration, c.billsec, c.billed_seconds, c.sell_prefix, c.sell_rate, c.sell_amount,
    c.hangup_cause, c.status, c.endpoint_id, e.name AS endpoint, {_DESTINATION_NAME} AS destination_name"""
_STAFF_COLUMNS = _CUSTOMER_COLUMNS + """,
    c.fs_cdr_id, c.cost_rate, c.cost_amount, c.margin, c.gateway, c.route_seq, c.unrated_reason,
    c.held_seconds, c.overrun_seconds, c.no_hold, c.absurd_duration,
    c.customer_id, cu.name AS customer, cu.currency, c.provider_id, p.name AS provider,
    p.currency AS provider_currency, c.cost_currency, c.cost_amount_original, c.exchange_rate"""
# Export columns: (header, SQL). Staff get both sides; customers their own side.
STAFF_EXPORT = [
    ("start_stamp", "c.start_stamp"), ("answer_stamp", "c.answer_stamp"), ("end_stamp", "c.end_stamp"),
    ("uuid", "c.uuid"), ("customer", "cu.name"), ("endpoint", "e.name"), ("caller_id", "c.caller_id"),
    ("destination", "c.destination"), ("sell_prefix", "c.sell_prefix"), ("duration", "c.duration"),
    ("billsec", "c.billsec"), ("billed_seconds", "c.billed_seconds"), ("sell_rate", "c.sell_rate"),
    ("sell_amount", "c.sell_amount"), ("provider", "p.name"), ("gateway", "c.gateway"), ("cost_rate", "c.cost_rate"),
    ("cost_amount", "c.cost_amount"), ("margin", "c.margin"), ("hangup_cause", "c.hangup_cause"),
    ("status", "c.status"), ("unrated_reason", "c.unrated_reason"), ("held_seconds", "c.held_seconds"),
    ("overrun_seconds", "c.overrun_seconds"), ("no_hold", "c.no_hold"), ("absurd_duration", "c.absurd_duration"),
    # the customer's currency (sell, cost, margin), and where a converted cost came from (0110)
    ("currency", "cu.currency"), ("cost_currency", "c.cost_currency"),
    ("cost_amount_original", "c.cost_amount_original"), ("exchange_rate", "c.exchange_rate"),
]
CUSTOMER_EXPORT = [
    ("start", "c.start_stamp"), ("answer", "c.answer_stamp"), ("end", "c.end_stamp"), ("endpoint", "e.name"),
    ("caller_id", "c.caller_id"), ("destination", "c.destination"), ("destination_name", _DESTINATION_NAME),
    ("duration", "c.duration"), ("billsec", "c.billsec"), ("billed_seconds", "c.billed_seconds"),
    ("rate_prefix", "c.sell_prefix"), ("rate_per_minute", "c.sell_rate"), ("amount", "c.sell_amount"),
    ("hangup_cause", "c.hangup_cause"), ("status", "c.status"), ("uuid", "c.uuid"),
]
EXPORT_HEADER = [name for name, _ in STAFF_EXPORT]
CUSTOMER_EXPORT_HEADER = [name for name, _ in CUSTOMER_EXPORT]
STAFF_ONLY_TOTALS = ("cost", "margin", "unrated", "overrun_seconds", "to_review")


def _from(customer_id: int | None) -> str:
    if customer_id is None:
        return """
          FROM billing.cdr c
          LEFT JOIN billing.customers cu ON cu.id = c.customer_id
          LEFT JOIN billing.endpoints e ON e.id = c.endpoint_id
          LEFT JOIN billing.providers p ON p.id = c.provider_id"""
    # An endpoint since moved to another customer is not named to this one.
    return """
          FROM billing.cdr c
          LEFT JOIN billing.endpoints e ON e.id = c.endpoint_id AND e.customer_id = c.customer_id"""


def page(conn, flt: CdrFilter, older_than: str | None = None, newer_than: str | None = None,
         size: int = PAGE_SIZE, *, customer_id: int | None = None, with_newer: bool = True) -> Page:
    """One page of calls, newest first. `older_than` / `newer_than` are cursor tokens of
    the neighbouring page's edge row; a returned cursor is None when there is nothing
    more in that direction. `with_newer=False` skips finding out whether there are newer
    rows (one query less, for callers that only page forwards: the API)."""
    if older_than and newer_than:
        raise CdrError("use either an older or a newer page link, not both", "cursor")
    where, params = flt.where(customer_id)
    columns = _STAFF_COLUMNS if customer_id is None else _CUSTOMER_COLUMNS
    keyset, order = "", "DESC"
    if older_than or newer_than:
        cursor = Cursor.decode(older_than or newer_than)
        params.update(k_stamp=cursor.start_stamp, k_id=cursor.id)
        keyset = f"AND (c.start_stamp, c.id) {'<' if older_than else '>'} (%(k_stamp)s, %(k_id)s)"
        order = "DESC" if older_than else "ASC"
    params["limit"] = size + 1
    rows = fetch_all(conn, f"SELECT {columns} {_from(customer_id)} WHERE {where} {keyset} "
                           f"ORDER BY c.start_stamp {order}, c.id {order} LIMIT %(limit)s", params)
    more = len(rows) > size
    rows = rows[:size]
    if newer_than:
        rows.reverse()
    if not rows:
        return Page(rows)
    first, last = rows[0], rows[-1]
    has_older = more if not newer_than else _exists(conn, where, params, "<", last)
    has_newer = more if newer_than else bool(older_than) and with_newer and _exists(conn, where, params, ">", first)
    return Page(rows, Cursor.of(last) if has_older else None, Cursor.of(first) if has_newer else None)


def currencies_in_use(conn) -> list[str]:
    """The currencies customers pay in. Amounts of customers in different currencies are
    never added up: sums are per currency when there is more than one."""
    with conn.cursor() as cur:
        cur.execute("SELECT DISTINCT currency FROM billing.customers ORDER BY 1")
        return [r[0] for r in cur.fetchall()]


def _exists(conn, where: str, params: dict, op: str, row: dict) -> bool:
    return fetch_value(conn, f"SELECT EXISTS (SELECT 1 FROM billing.cdr c WHERE {where} "
                             f"AND (c.start_stamp, c.id) {op} (%(e_stamp)s, %(e_id)s))",
                       {**params, "e_stamp": row["start_stamp"], "e_id": row["id"]})


def recent(conn, *, customer_id: int | None = None, limit: int = 10) -> list[dict]:
    """The latest calls (the first page without a filter)."""
    return page(conn, CdrFilter(), size=limit, customer_id=customer_id).rows


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
    found = fetch_all(conn, f"""
        SELECT c.*, cu.name AS customer, cu.currency, e.name AS endpoint, e.auth AS endpoint_auth,
               p.name AS provider, p.currency AS provider_currency, g.id AS gateway_id
          FROM billing.cdr c
          LEFT JOIN billing.customers cu ON cu.id = c.customer_id
          LEFT JOIN billing.endpoints e ON e.id = c.endpoint_id
          LEFT JOIN billing.providers p ON p.id = c.provider_id
          LEFT JOIN billing.gateways g ON g.name = c.gateway
         WHERE c.id = %(id)s{scope}""", {"id": cdr_id, "customer_id": customer_id})
    if not found:
        return None
    call = name_destinations(conn, found)[0]
    call["raw"] = fetch_one(conn, "SELECT * FROM billing.fs_cdr WHERE id = %(id)s", {"id": call["fs_cdr_id"]}) or {}
    call["sell_rate_row"] = fetch_one(conn, "SELECT * FROM billing.rates WHERE id = %(id)s",
                                      {"id": call.get("sell_rate_id")})
    call["cost_rate_row"] = fetch_one(conn, "SELECT * FROM billing.provider_rates WHERE id = %(id)s",
                                      {"id": call.get("cost_rate_id")})
    call["ledger"] = fetch_all(conn, """
        SELECT id, created_at, kind, amount, reference, note, created_by FROM billing.ledger
         WHERE call_uuid = %(uuid)s AND customer_id IS NOT DISTINCT FROM %(customer_id)s
         ORDER BY created_at, id""", {"uuid": call["uuid"], "customer_id": call["customer_id"]})
    call["hold"] = fetch_one(conn, "SELECT * FROM billing.call_holds WHERE call_uuid = %(uuid)s",
                             {"uuid": call["uuid"]})
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


def totals(conn, flt: CdrFilter, *, customer_id: int | None = None) -> dict:
    """Totals of the filtered calls (see metrics() for the rounding); `revenue` is the
    sum of what the customers are charged. Staff also get cost, margin and the count
    of unrated calls."""
    where, params = flt.where(customer_id)
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT count(*), count(*) FILTER (WHERE c.billsec > 0), coalesce(sum(c.billsec), 0),
                   coalesce(sum(c.billed_seconds), 0), coalesce(sum(c.sell_amount), 0),
                   coalesce(sum(c.cost_amount), 0), coalesce(sum(c.margin), 0),
                   count(*) FILTER (WHERE c.status = 'unrated'), coalesce(sum(c.overrun_seconds), 0),
                   count(*) FILTER (WHERE c.overrun_seconds > 0 OR c.no_hold OR c.absurd_duration)
              FROM billing.cdr c WHERE {where}""", params)
        calls, answered, billsec, billed, revenue, cost, margin, unrated, overrun, to_review = cur.fetchone()
        by_currency = []
        if customer_id is None and not flt.customer_id and not flt.currency and len(currencies_in_use(conn)) > 1:
            cur.execute(f"""
                SELECT cu.currency, coalesce(sum(c.sell_amount), 0), coalesce(sum(c.cost_amount), 0),
                       coalesce(sum(c.margin), 0)
                  FROM billing.cdr c JOIN billing.customers cu ON cu.id = c.customer_id
                 WHERE {where} AND (c.sell_amount <> 0 OR c.cost_amount <> 0)
                 GROUP BY 1 ORDER BY 1""", params)
            by_currency = [{"currency": cur_, "revenue": r, "cost": co, "margin": m} for cur_, r, co, m in cur.fetchall()]
    result = metrics(calls, answered, billsec, revenue, cost) | {"billed_seconds": int(billed), "margin": margin,
                                                                 "unrated": unrated, "overrun_seconds": int(overrun),
                                                                 "to_review": int(to_review)}
    if len(by_currency) > 1:
        result.update(revenue=None, cost=None, margin=None, by_currency=by_currency)
    if customer_id is not None:
        for key in STAFF_ONLY_TOTALS:
            del result[key]
    return result


def metrics(calls, answered, billsec, revenue, cost) -> dict:
    """Derived traffic figures from raw sums, as exact Decimals. Rounding: minutes
    half-up to 2 places, ASR (%) to 2, ACD (seconds) to 1; money sums are exact."""
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
        if key == "by_currency":
            shown[key] = [{k: (v if k == "currency" else money(v, row["currency"])) for k, v in row.items()}
                          for row in value]
        elif value is None:
            shown[key] = "—"
        elif key in ("revenue", "cost", "margin"):
            shown[key] = money(value, currency)
        else:
            shown[key] = str(value)
    return shown


def export(flt: CdrFilter, *, customer_id: int | None = None) -> Export:
    """The filtered calls as a CSV export, oldest first (STAFF_EXPORT or CUSTOMER_EXPORT
    columns by scope)."""
    where, params = flt.where(customer_id)
    columns = STAFF_EXPORT if customer_id is None else CUSTOMER_EXPORT
    select = ", ".join(f"{sql} AS {name}" for name, sql in columns)
    return Export([name for name, _ in columns],
                  f"SELECT {select} {_from(customer_id)} WHERE {where} ORDER BY c.start_stamp, c.id", params)


def export_csv(conn, flt: CdrFilter, batch: int = BATCH, *, customer_id: int | None = None) -> Iterator[str]:
    """The CSV text of export(), one chunk per `batch` rows."""
    return export(flt, customer_id=customer_id).text(conn, batch)


# ----------------------------------------------------------------------------- unrated (staff)

def unrated_raw(conn, limit: int = 100) -> list[dict]:
    """Raw CDRs the billing trigger could not rate (ix_fs_cdr_unrated), newest first."""
    return fetch_all(conn, """
        SELECT f.id, f.uuid, f.start_stamp, f.caller_id_number, f.destination_number, f.billsec,
               f.hangup_cause, f.unrated_reason, f.received_at, cu.name AS customer
          FROM billing.fs_cdr f
          LEFT JOIN billing.customers cu ON cu.id = f.billing_customer_id
         WHERE f.status = 'unrated'
         ORDER BY f.received_at DESC
         LIMIT %(limit)s""", {"limit": limit})


def review_count(conn, since: date) -> int:
    """Calls since `since` that a person should look at: billed beyond their hold
    (overrun), without a hold, or longer than any call may last. Cost: ix_cdr_review
    (0026, a partial index holding only those calls)."""
    return fetch_value(conn, """SELECT count(*) FROM billing.cdr c WHERE c.start_stamp >= %(since)s
                                   AND (c.overrun_seconds > 0 OR c.no_hold OR c.absurd_duration)""",
                       {"since": since})


def unrated_count(conn) -> int:
    return fetch_value(conn, "SELECT count(*) FROM billing.fs_cdr WHERE status = 'unrated'")


def rerate_available(conn) -> bool:
    return fetch_value(conn, "SELECT to_regprocedure('billing_private.rerate_fs_cdr(bigint)') IS NOT NULL")


def rerate(conn, fs_cdr_id: int) -> str:
    """Rate one raw CDR again (billing helper's function); returns its new status."""
    if not rerate_available(conn):
        raise RerateUnavailable("re-rating needs billing_private.rerate_fs_cdr, which this database does not have yet "
                                "(run `flask --app wsgi db upgrade` after installing the billing release)")
    if fetch_value(conn, "SELECT count(*) FROM billing.fs_cdr WHERE id = %(id)s", {"id": fs_cdr_id}) == 0:
        raise CdrError(f"raw CDR {fs_cdr_id} does not exist")
    from ..retention.services import RetentionError, refuse_archived

    started = fetch_value(conn, "SELECT coalesce(start_stamp, received_at) FROM billing.fs_cdr WHERE id = %(id)s",
                          {"id": fs_cdr_id})
    try:
        refuse_archived(conn, started, started + timedelta(microseconds=1))
    except RetentionError as exc:
        raise CdrError(str(exc)) from exc
    return fetch_value(conn, "SELECT billing_private.rerate_fs_cdr(%(id)s)", {"id": fs_cdr_id})
