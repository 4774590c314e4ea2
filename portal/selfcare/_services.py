"""Self-care business rules and queries.

Every function takes the customer id as its first argument and every SQL statement
filters on it; views pass `own_customer_id()` and nothing else. A row of another
customer is reported exactly like a missing row (`NotFound`), so the views answer 404
and ids of other customers cannot be probed.

Money stays Decimal end to end (psycopg2 returns numeric as Decimal); display rounding
happens only in the templates' `money` filter.
"""
from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import text

from .. import audit
from ..cdrs.services import CdrError, number_condition
from ..extensions import db
from ..ledger import LedgerError, parse_amount
from ..models import Customer, Endpoint, Settings, User
from ..security import MIN_PASSWORD_LENGTH, hash_password, verify_password


class SelfcareError(ValueError):
    """A request the rules refuse; `field` names the form field it is about."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class NotFound(SelfcareError):
    """No such row for this customer (missing or another customer's: same answer)."""


def _rows(sql: str, **params):
    return db.session.execute(text(sql), params).mappings().all()


def _row(sql: str, **params):
    return db.session.execute(text(sql), params).mappings().first()


def today() -> date:
    """Today in the database's time zone, the one every date filter is read in."""
    return db.session.execute(text("SELECT current_date")).scalar_one()


def db_timezone() -> str:
    """The time zone dates are read and shown in (the database session's)."""
    return db.session.execute(text("SELECT current_setting('TimeZone')")).scalar_one()


def _date_params(date_from: date | None, date_to: date | None) -> dict:
    """Dates are whole days in the database's time zone; `date_to` is inclusive."""
    return {"date_from": date_from, "date_to_excl": date_to + timedelta(days=1) if date_to else None}


# ----------------------------------------------------------------------------- funds

@dataclass(frozen=True)
class Funds:
    name: str
    billing_type: str
    currency: str
    balance: Decimal
    credit_limit: Decimal
    holds: Decimal
    calls_in_progress: int
    low_balance_alert: Decimal | None

    @property
    def available(self) -> Decimal:
        """What new calls may spend: balance + credit limit - holds of calls in progress."""
        return self.balance + self.credit_limit - self.holds

    @property
    def below_alert(self) -> bool:
        """The balance is under the customer's own alert threshold (the alert rule)."""
        return self.low_balance_alert is not None and self.balance < self.low_balance_alert


def funds(customer_id: int) -> Funds:
    """Balance, credit and holds read in one statement, so they agree with each other."""
    row = _row("""
        SELECT c.name, c.billing_type, c.currency, c.balance, c.credit_limit, c.low_balance_alert,
               coalesce(h.amount, 0) AS holds, coalesce(h.calls, 0) AS calls_in_progress
          FROM billing.customers c
          LEFT JOIN LATERAL (SELECT sum(amount) AS amount, count(*) AS calls
                               FROM billing.call_holds WHERE customer_id = c.id) h ON true
         WHERE c.id = :c""", c=customer_id)
    if row is None:
        raise NotFound("no such customer")
    return Funds(**row)


def calls_in_progress(customer_id: int):
    return _rows("""
        SELECT h.call_uuid, h.destination, h.created_at, h.max_duration, h.sell_rate, h.amount,
               e.name AS endpoint
          FROM billing.call_holds h
          JOIN billing.endpoints e ON e.id = h.endpoint_id
         WHERE h.customer_id = :c
         ORDER BY h.created_at DESC
         LIMIT 100""", c=customer_id)


def month_summary(customer_id: int):
    """Calls started this calendar month (database time zone) and what they cost."""
    return _row("""
        SELECT date_trunc('month', now())::date AS month,
               count(*) AS calls,
               count(*) FILTER (WHERE billsec > 0) AS answered,
               coalesce(sum(billsec), 0) AS billsec,
               coalesce(sum(sell_amount), 0) AS spend
          FROM billing.cdr
         WHERE customer_id = :c
           AND start_stamp >= date_trunc('month', now())
           AND start_stamp < date_trunc('month', now()) + interval '1 month'""", c=customer_id)


# ----------------------------------------------------------------------------- ledger

LEDGER_KINDS = {
    "initial": "Opening balance",
    "topup": "Top-up",
    "payment": "Payment",
    "credit_note": "Credit note",
    "adjustment": "Adjustment",
    "call": "Call",
    "rerate": "Re-rating",
}
# The filter's groups: what a customer thinks of, not the ledger's internal kinds.
LEDGER_GROUPS = {
    "charges": ("call", "rerate"),
    "payments": ("topup", "payment"),
    "credit_notes": ("credit_note",),
    "adjustments": ("adjustment", "initial"),
}


def _ledger_where(kinds: tuple[str, ...] | None) -> str:
    where = ("l.customer_id = :c"
             " AND (CAST(:date_from AS date) IS NULL OR l.created_at >= CAST(:date_from AS date))"
             " AND (CAST(:date_to_excl AS date) IS NULL OR l.created_at < CAST(:date_to_excl AS date))")
    if kinds:
        where += " AND l.kind = ANY(:kinds)"
    return where


def ledger_page(customer_id: int, *, date_from=None, date_to=None, group: str | None = None,
                page: int = 1, per_page: int = 50):
    """One page of ledger entries, newest first, each with the balance after it.

    The balance after an entry is the customer's current balance minus every entry
    newer than it (customers.balance is the ledger's sum, kept by the database), read
    in the same statement so that calls billed meanwhile cannot skew it. Cost: the
    entries from the bottom of the page up to now, by ix_ledger_customer_id_created_at.
    """
    kinds = list(LEDGER_GROUPS[group]) if group else None
    params = dict(c=customer_id, kinds=kinds, limit=per_page, offset=(page - 1) * per_page,
                  **_date_params(date_from, date_to))
    where = _ledger_where(kinds)
    total = db.session.execute(text(f"SELECT count(*) FROM billing.ledger l WHERE {where}"), params).scalar_one()
    rows = _rows(f"""
        WITH page AS (
            SELECT l.id, l.created_at, l.kind, l.amount, l.reference, l.note, l.call_uuid
              FROM billing.ledger l
             WHERE {where}
             ORDER BY l.created_at DESC, l.id DESC
             LIMIT :limit OFFSET :offset),
        span AS (
            SELECT l.id,
                   sum(l.amount) OVER (ORDER BY l.created_at DESC, l.id DESC
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS newer
              FROM billing.ledger l
             WHERE l.customer_id = :c
               AND (l.created_at, l.id) >= (SELECT p.created_at, p.id FROM page p
                                             ORDER BY p.created_at, p.id LIMIT 1))
        SELECT p.*, c.balance - coalesce(s.newer, 0) AS balance_after
          FROM page p
          JOIN span s ON s.id = p.id
          CROSS JOIN billing.customers c
         WHERE c.id = :c
         ORDER BY p.created_at DESC, p.id DESC""", **params)
    return rows, total


def ledger_days(customer_id: int, *, date_from=None, date_to=None, page: int = 1, per_page: int = 50):
    """The ledger summarised per day (database time zone), newest first: calls and
    their charges, other credits and debits, and the balance at the end of the day.

    The closing balance of a day is the current balance minus everything after that
    day, so the window covers every entry since `date_from` (all entries without it).
    """
    params = dict(c=customer_id, limit=per_page, offset=(page - 1) * per_page, **_date_params(date_from, date_to))
    rows = _rows("""
        WITH days AS (
            SELECT date_trunc('day', l.created_at)::date AS day,
                   count(*) AS entries,
                   count(*) FILTER (WHERE l.kind = 'call') AS calls,
                   coalesce(sum(l.amount) FILTER (WHERE l.kind IN ('call', 'rerate')), 0) AS charges,
                   coalesce(sum(l.amount) FILTER (WHERE l.kind NOT IN ('call', 'rerate') AND l.amount > 0), 0) AS credits,
                   coalesce(sum(l.amount) FILTER (WHERE l.kind NOT IN ('call', 'rerate') AND l.amount < 0), 0) AS debits,
                   sum(l.amount) AS net
              FROM billing.ledger l
             WHERE l.customer_id = :c
               AND (CAST(:date_from AS date) IS NULL OR l.created_at >= CAST(:date_from AS date))
             GROUP BY 1),
        closing AS (
            SELECT d.*, c.balance - coalesce(sum(d.net) OVER (ORDER BY d.day DESC
                                             ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS closing
              FROM days d CROSS JOIN billing.customers c
             WHERE c.id = :c)
        SELECT *
          FROM closing
         WHERE CAST(:date_to_excl AS date) IS NULL OR day < CAST(:date_to_excl AS date)
         ORDER BY day DESC
         LIMIT :limit OFFSET :offset""", **params)
    total = db.session.execute(text(f"""
        SELECT count(DISTINCT date_trunc('day', l.created_at)) FROM billing.ledger l WHERE {_ledger_where(None)}"""),
        params).scalar_one()
    return rows, total


def ledger_period(customer_id: int, *, date_from=None, date_to=None):
    """Opening and closing balance of the filtered period and what moved in between.
    Opening = current balance minus everything since `date_from` (0 without it);
    closing = current balance minus everything after `date_to`."""
    params = dict(c=customer_id, **_date_params(date_from, date_to))
    return _row("""
        WITH since AS (
            SELECT l.amount, l.created_at >= coalesce(CAST(:date_to_excl AS date), 'infinity') AS after_period
              FROM billing.ledger l
             WHERE l.customer_id = :c
               AND l.created_at >= coalesce(CAST(:date_from AS date), '-infinity'))
        SELECT c.balance - coalesce((SELECT sum(amount) FROM since), 0) AS opening,
               c.balance - coalesce((SELECT sum(amount) FROM since WHERE after_period), 0) AS closing,
               coalesce((SELECT sum(amount) FROM since WHERE NOT after_period AND amount > 0), 0) AS credits,
               coalesce((SELECT sum(amount) FROM since WHERE NOT after_period AND amount < 0), 0) AS debits
          FROM billing.customers c
         WHERE c.id = :c""", **params)


# ----------------------------------------------------------------------------- CDRs

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CURSOR = re.compile(r"^(-?\d{1,19})\.(\d{1,19})$")


def encode_cursor(start_stamp: datetime, cdr_id: int) -> str:
    """A keyset position as text: exact microseconds since the epoch and the id."""
    return f"{(start_stamp - _EPOCH) // timedelta(microseconds=1)}.{cdr_id}"


def decode_cursor(token: str) -> tuple[datetime, int]:
    match = _CURSOR.match(token or "")
    if not match:
        raise SelfcareError("this page link is not valid any more; start again from the first page", "cursor")
    return _EPOCH + timedelta(microseconds=int(match.group(1))), int(match.group(2))


@dataclass(frozen=True)
class CdrFilter:
    date_from: date | None = None
    date_to: date | None = None
    endpoint_id: int | None = None
    prefix: str | None = None          # digits only (validated by the form)
    answered: bool | None = None
    number: str | None = None          # caller / destination search: portal.cdrs.services.number_condition
    number_in: str = "either"
    match: str = "prefix"

    def sql(self) -> tuple[str, dict]:
        where = ["c.customer_id = :c"]
        params = _date_params(self.date_from, self.date_to)
        if self.date_from:
            where.append("c.start_stamp >= CAST(:date_from AS date)")
        if self.date_to:
            where.append("c.start_stamp < CAST(:date_to_excl AS date)")
        if self.endpoint_id is not None:
            where.append("c.endpoint_id = :endpoint_id")
            params["endpoint_id"] = self.endpoint_id
        if self.prefix:
            if not self.prefix.isdigit():
                raise SelfcareError("a destination prefix is digits only", "prefix")
            where.append("c.destination LIKE :prefix_like")
            params["prefix_like"] = self.prefix + "%"
        if self.number:
            try:
                condition, number_params = number_condition(self.number, self.number_in, self.match,
                                                            param=lambda name: f":{name}")
            except CdrError as exc:
                raise SelfcareError(str(exc), "number") from None
            where.append(condition)
            params.update(number_params)
        if self.answered is True:
            where.append("c.billsec > 0")
        elif self.answered is False:
            where.append("c.billsec = 0")
        return " AND ".join(where), params


def own_endpoints(customer_id: int):
    return _rows("SELECT id, name, auth FROM billing.endpoints WHERE customer_id = :c ORDER BY name", c=customer_id)


def check_own_endpoint(customer_id: int, endpoint_id: int) -> None:
    if _row("SELECT 1 FROM billing.endpoints WHERE id = :e AND customer_id = :c", e=endpoint_id, c=customer_id) is None:
        raise NotFound("no such endpoint")


_CDR_COLUMNS = """
    c.id, c.uuid, c.start_stamp, c.answer_stamp, c.end_stamp, c.caller_id, c.destination,
    c.duration, c.billsec, c.billed_seconds, c.sell_prefix, c.sell_rate, c.sell_amount,
    c.hangup_cause, c.status, e.name AS endpoint,
    (SELECT d.name FROM billing.destinations d
      WHERE d.prefix = ANY (billing_private.prefixes(c.destination))
      ORDER BY length(d.prefix) DESC LIMIT 1) AS destination_name"""
_CDR_FROM = """
    FROM billing.cdr c
    LEFT JOIN billing.endpoints e ON e.id = c.endpoint_id AND e.customer_id = c.customer_id"""


def cdr_page(customer_id: int, flt: CdrFilter, *, before: str | None = None, after: str | None = None,
             per_page: int = 50):
    """Keyset page of CDRs, newest first. `before`/`after` are cursors of the last/first
    row of the neighbouring page. Returns (rows, older_cursor, newer_cursor); a cursor
    is None when there is nothing in that direction. Cost: ix_cdr_customer_id_start_stamp_id (migration 0060).
    """
    where, params = flt.sql()
    params.update(c=customer_id, n=per_page + 1)
    if before and after:
        raise SelfcareError("use either an older or a newer page link, not both", "cursor")
    order = "DESC"
    if before:
        params["k_ts"], params["k_id"] = decode_cursor(before)
        where += " AND (c.start_stamp, c.id) < (:k_ts, :k_id)"
    elif after:
        params["k_ts"], params["k_id"] = decode_cursor(after)
        where += " AND (c.start_stamp, c.id) > (:k_ts, :k_id)"
        order = "ASC"
    rows = list(_rows(f"SELECT {_CDR_COLUMNS} {_CDR_FROM} WHERE {where} "
                      f"ORDER BY c.start_stamp {order}, c.id {order} LIMIT :n", **params))
    more = len(rows) > per_page
    rows = rows[:per_page]
    if after:
        rows.reverse()
    if not rows:
        return rows, None, None
    first, last = rows[0], rows[-1]
    has_older = more if not after else True
    has_newer = more if after else bool(before)
    if after and has_older:
        has_older = _cdr_exists(customer_id, flt, "<", last)
    if before and has_newer:
        has_newer = _cdr_exists(customer_id, flt, ">", first)
    return (rows,
            encode_cursor(last["start_stamp"], last["id"]) if has_older else None,
            encode_cursor(first["start_stamp"], first["id"]) if has_newer else None)


def _cdr_exists(customer_id: int, flt: CdrFilter, op: str, row) -> bool:
    where, params = flt.sql()
    params.update(c=customer_id, k_ts=row["start_stamp"], k_id=row["id"])
    return db.session.execute(text(
        f"SELECT EXISTS (SELECT 1 FROM billing.cdr c WHERE {where} AND (c.start_stamp, c.id) {op} (:k_ts, :k_id))"),
        params).scalar_one()


def cdr_totals(customer_id: int, flt: CdrFilter):
    where, params = flt.sql()
    params["c"] = customer_id
    return _row(f"""
        SELECT count(*) AS calls,
               count(*) FILTER (WHERE c.billsec > 0) AS answered,
               coalesce(sum(c.billsec), 0) AS billsec,
               coalesce(sum(c.billed_seconds), 0) AS billed_seconds,
               coalesce(sum(c.sell_amount), 0) AS amount
          FROM billing.cdr c WHERE {where}""", **params)


CDR_CSV_COLUMNS = ["start", "answer", "end", "endpoint", "caller_id", "destination", "destination_name",
                   "duration", "billsec", "billed_seconds", "rate_prefix", "rate_per_minute", "amount",
                   "hangup_cause", "status", "uuid"]


def iter_cdrs(customer_id: int, flt: CdrFilter, batch: int = 1000):
    """Every CDR of the filter, oldest first, through a server-side cursor: memory stays
    constant whatever the number of rows (`batch` rows at a time)."""
    where, params = flt.sql()
    params["c"] = customer_id
    result = db.session.execute(
        text(f"SELECT {_CDR_COLUMNS} {_CDR_FROM} WHERE {where} ORDER BY c.start_stamp, c.id"), params,
        execution_options={"stream_results": True, "yield_per": batch})
    for part in result.mappings().partitions(batch):
        yield [(r["start_stamp"], r["answer_stamp"], r["end_stamp"], r["endpoint"], r["caller_id"], r["destination"],
                r["destination_name"], r["duration"], r["billsec"], r["billed_seconds"], r["sell_prefix"],
                r["sell_rate"], r["sell_amount"], r["hangup_cause"], r["status"], r["uuid"]) for r in part]


def recent_calls(customer_id: int, limit: int = 10):
    return _rows(f"SELECT {_CDR_COLUMNS} {_CDR_FROM} WHERE c.customer_id = :c "
                 "ORDER BY c.start_stamp DESC, c.id DESC LIMIT :n", c=customer_id, n=limit)


# ----------------------------------------------------------------------------- rates

def own_ratecards(customer_id: int):
    return _rows("""
        SELECT cr.priority, rc.id, rc.name, rc.currency
          FROM billing.customer_ratecards cr JOIN billing.ratecards rc ON rc.id = cr.ratecard_id
         WHERE cr.customer_id = :c ORDER BY cr.priority""", c=customer_id)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rate_search(query: str | None) -> tuple[str, dict]:
    """Digits search prefixes that start with them; anything else searches names."""
    q = (query or "").strip()
    if not q:
        return "true", {}
    digits = q[1:] if q.startswith("+") else q
    if digits.isdigit():
        return "n.prefix LIKE :q_prefix", {"q_prefix": digits + "%"}
    return "n.destination ILIKE :q_name", {"q_name": "%" + _like_escape(q) + "%"}


# Prefixes present in the customer's ratecards now (blocked ones too, so the customer
# sees that a destination is barred), each named by the longest destination prefix.
_RATE_PREFIXES = """
    WITH cards AS (
        SELECT cr.ratecard_id FROM billing.customer_ratecards cr WHERE cr.customer_id = :c),
    prefixes AS (
        SELECT DISTINCT r.prefix
          FROM billing.rates r JOIN cards USING (ratecard_id)
         WHERE (r.valid_from IS NULL OR r.valid_from <= now())
           AND (r.valid_to IS NULL OR now() < r.valid_to)),
    named AS (
        SELECT p.prefix,
               (SELECT d.name FROM billing.destinations d
                 WHERE d.prefix = ANY (billing_private.prefixes(p.prefix))
                 ORDER BY length(d.prefix) DESC LIMIT 1) AS destination
          FROM prefixes p)"""

# The rate that applies to a number starting with the prefix: exactly the rating rule
# (billing_private.find_sell_rate), so this page cannot disagree with the bill.
_APPLIED = """
    SELECT n.prefix, n.destination,
           s.prefix AS applied_prefix, s.rate, s.connect_fee, s.min_duration,
           s.increment_first, s.increment_next, s.valid_to,
           rc.name AS ratecard, rc.currency, cr.priority
      FROM page n
      LEFT JOIN LATERAL billing_private.find_sell_rate(:c, n.prefix, now()) s ON true
      LEFT JOIN billing.ratecards rc ON rc.id = s.ratecard_id
      LEFT JOIN billing.customer_ratecards cr ON cr.ratecard_id = s.ratecard_id AND cr.customer_id = :c"""


def rates_page(customer_id: int, query: str | None = None, page: int = 1, per_page: int = 50):
    """Prefixes of the customer's ratecards (valid now), ordered by prefix, each with
    the rate that applies. Cost: the distinct prefixes of the customer's cards (plus a
    destination lookup for each when searching by name), then one find_sell_rate per
    row of the page only."""
    search, params = _rate_search(query)
    params.update(c=customer_id, limit=per_page, offset=(page - 1) * per_page)
    total = db.session.execute(text(f"{_RATE_PREFIXES} SELECT count(*) FROM named n WHERE {search}"),
                               params).scalar_one()
    rows = _rows(f"""{_RATE_PREFIXES},
        page AS (SELECT * FROM named n WHERE {search} ORDER BY n.prefix LIMIT :limit OFFSET :offset)
        {_APPLIED} ORDER BY n.prefix""", **params)
    return rows, total


RATE_CSV_COLUMNS = ["prefix", "destination", "rate_per_minute", "currency", "connect_fee", "increment",
                    "min_duration", "applied_prefix", "ratecard", "valid_to", "available"]


def iter_rates(customer_id: int, query: str | None = None, batch: int = 1000):
    search, params = _rate_search(query)
    params["c"] = customer_id
    result = db.session.execute(
        text(f"{_RATE_PREFIXES}, page AS (SELECT * FROM named n WHERE {search}) {_APPLIED} ORDER BY n.prefix"),
        params, execution_options={"stream_results": True, "yield_per": batch})
    for part in result.mappings().partitions(batch):
        yield [(r["prefix"], r["destination"], r["rate"], r["currency"], r["connect_fee"],
                f"{r['increment_first']}/{r['increment_next']}" if r["rate"] is not None else None,
                r["min_duration"], r["applied_prefix"], r["ratecard"], r["valid_to"],
                "yes" if r["rate"] is not None else "no") for r in part]


def rate_for_number(customer_id: int, number: str):
    """What a call to `number` is charged now (None: the call would be refused, no_rate)."""
    number = number.strip().lstrip("+")
    if not number.isdigit() or len(number) > 20:
        return None
    return _row("""
        SELECT s.prefix, s.rate, s.connect_fee, s.min_duration, s.increment_first, s.increment_next,
               rc.name AS ratecard, rc.currency,
               (SELECT d.name FROM billing.destinations d
                 WHERE d.prefix = ANY (billing_private.prefixes(:n))
                 ORDER BY length(d.prefix) DESC LIMIT 1) AS destination
          FROM billing_private.find_sell_rate(:c, :n, now()) s
          JOIN billing.ratecards rc ON rc.id = s.ratecard_id""", c=customer_id, n=number)


# ----------------------------------------------------------------------------- endpoints

def endpoints(customer_id: int):
    """The customer's endpoints with this month's spend and calls in progress."""
    return _rows("""
        SELECT e.id, e.name, e.auth, e.ip, e.username, e.enabled, e.max_calls, e.spend_limit_month,
               e.strip_digits, e.add_prefix, p.name AS permission,
               (SELECT string_agg(w.name, ', ' ORDER BY w.name)
                  FROM billing.permission_weights pw JOIN billing.weights w ON w.id = pw.weight_id
                 WHERE pw.permission_id = e.permission_id) AS classes,
               coalesce((SELECT s.amount FROM billing.endpoint_month_spend s
                          WHERE s.endpoint_id = e.id AND s.month = date_trunc('month', now())::date), 0) AS month_spend,
               (SELECT count(*) FROM billing.call_holds h WHERE h.endpoint_id = e.id) AS calls_in_progress
          FROM billing.endpoints e JOIN billing.permissions p ON p.id = e.permission_id
         WHERE e.customer_id = :c
         ORDER BY e.auth DESC, e.name""", c=customer_id)


def sip_domain() -> str:
    return Settings.get().sip_domain


def sip_endpoint(customer_id: int, endpoint_id: int) -> Endpoint:
    """One of the customer's SIP accounts; anything else (another customer's, an IP
    endpoint, a missing id) is NotFound."""
    endpoint = db.session.scalar(db.select(Endpoint).where(
        Endpoint.id == endpoint_id, Endpoint.customer_id == customer_id, Endpoint.auth == "sip"))
    if endpoint is None:
        raise NotFound("no such SIP account")
    return endpoint


SIP_PASSWORD_MIN = 12
SIP_PASSWORD_MAX = 128
# Characters every SIP phone's configuration screen and provisioning file accepts.
SIP_PASSWORD_SYMBOLS = "-_.!@#$%^*+=~:,?/"
_SIP_PASSWORD_CHARS = set(string.ascii_letters + string.digits + SIP_PASSWORD_SYMBOLS)


def sip_password_problem(password: str, username: str | None) -> str | None:
    """Why a SIP password is too weak, or None. SIP accounts are scanned and
    brute-forced from the internet all day, and a stolen one places calls on the
    customer's money, so the bar is higher than for the portal."""
    if len(password) < SIP_PASSWORD_MIN:
        return f"Use at least {SIP_PASSWORD_MIN} characters."
    if len(password) > SIP_PASSWORD_MAX:
        return f"Use at most {SIP_PASSWORD_MAX} characters."
    bad = sorted(set(password) - _SIP_PASSWORD_CHARS)
    if bad:
        return ("Only letters, digits and " + " ".join(SIP_PASSWORD_SYMBOLS)
                + " are allowed (not " + " ".join(repr(c) for c in bad) + ").")
    classes = sum(bool(re.search(p, password)) for p in ("[a-z]", "[A-Z]", "[0-9]", r"[^A-Za-z0-9]"))
    if classes < 3:
        return "Mix at least three of: lower-case letters, upper-case letters, digits, symbols."
    if len(set(password)) < 6:
        return "Use more different characters."
    if username and username.lower() in password.lower():
        return "The password must not contain the SIP user name."
    return None


def suggest_sip_password() -> str:
    """A random password that passes sip_password_problem (about 95 bits)."""
    alphabet = string.ascii_letters + string.digits + "-_.+="
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(16))
        if sip_password_problem(candidate, None) is None:
            return candidate


def change_sip_password(customer_id: int, endpoint_id: int, new_password: str, actor: str) -> Endpoint:
    endpoint = sip_endpoint(customer_id, endpoint_id)
    problem = sip_password_problem(new_password, endpoint.username)
    if problem:
        raise SelfcareError(problem, "password")
    if new_password == endpoint.password:
        raise SelfcareError("This is the current password: choose a new one.", "password")
    endpoint.password = new_password
    audit.record("sip_password_changed", "endpoint", endpoint.id, actor=actor, name=endpoint.name)
    db.session.commit()
    return endpoint


# ----------------------------------------------------------------------------- settings

ALERT_MAX = Decimal("1000000000")


def parse_threshold(value: str | None) -> Decimal | None:
    """A low-balance threshold: empty for none, else an amount with at most 6 decimals.
    Negative thresholds are allowed (postpaid customers run below zero)."""
    if value is None or not str(value).strip():
        return None
    try:
        return parse_amount(str(value).replace(",", "").strip())
    except LedgerError as exc:
        raise SelfcareError(str(exc).capitalize() + ".", "low_balance_alert") from None


def update_alert_settings(customer_id: int, *, low_balance_alert: Decimal | None, email: str | None,
                          daily_balance_email: bool, actor: str) -> Customer:
    customer = db.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("no such customer")
    email = (email or "").strip() or None
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+", email):
        raise SelfcareError("Enter an e-mail address like billing@example.com.", "email")
    if email is None and (low_balance_alert is not None or daily_balance_email):
        raise SelfcareError("Alerts and the daily balance are sent by e-mail: enter an address.", "email")
    before = {"low_balance_alert": customer.low_balance_alert, "email": customer.email,
              "daily_balance_email": customer.daily_balance_email}
    customer.low_balance_alert = low_balance_alert
    customer.email = email
    customer.daily_balance_email = bool(daily_balance_email)
    after = {"low_balance_alert": low_balance_alert, "email": email, "daily_balance_email": bool(daily_balance_email)}
    audit.record("selfcare_settings_changed", "customer", customer.id, actor=actor,
                 **{k: [before[k], after[k]] for k in after if before[k] != after[k]})
    db.session.commit()
    return customer


def change_portal_password(user_id: int, current_password: str, new_password: str) -> None:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    if not verify_password(user.password_hash, current_password or ""):
        raise SelfcareError("The current password is not correct.", "current_password")
    if len(new_password) < MIN_PASSWORD_LENGTH:
        raise SelfcareError(f"Use at least {MIN_PASSWORD_LENGTH} characters.", "new_password")
    if new_password == current_password:
        raise SelfcareError("The new password must differ from the current one.", "new_password")
    if user.email.lower() in new_password.lower():
        raise SelfcareError("The password must not contain your e-mail address.", "new_password")
    user.password_hash = hash_password(new_password)
    audit.record("password_changed", "user", user.id, actor=user.email)
    db.session.commit()
